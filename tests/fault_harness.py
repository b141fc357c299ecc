"""Real processes for the fault tests (tests/test_faults.py).

* :class:`Pserve`: ``pserve`` of an ini file made from production.ini (its
  ``[server:main]`` and logging as they are, only the address, the log
  paths and the app's storage, database and cache changed), in a session
  of its own so that the parent and its workers are signalled together.
* :class:`Corpus` and :class:`Load`: N clients uploading M text files of
  1 KB..2 MB, a fifth of them repeating earlier content, each upload's
  answer and timing recorded.
* :func:`check_store`: the blob store against the database (temp files,
  files without a row, rows without a file, files whose name is not the
  SHA-256 of their bytes).

The size of the loads comes from ``FAULTS_SCALE``: ``smoke`` (the default,
what ``make test`` runs) or ``soak`` (``make soak``).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select

from benchmarks.load import config as ini_config
from pastefile.core.models import Blob, PasteFile

from .servers import ServerError, children, group_members, wait_for_port

PSERVE = os.path.join(os.path.dirname(sys.executable), "pserve")
PASTEFILE = os.path.join(os.path.dirname(sys.executable), "pastefile")
KB, MB = 1024, 1024 * 1024


# -- scale ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    name: str
    clients: int
    files: int


SCALES = {"smoke": Scale("smoke", clients=8, files=200), "soak": Scale("soak", clients=32, files=10_000)}


def scale() -> Scale:
    name = os.environ.get("FAULTS_SCALE", "smoke")
    if name not in SCALES:
        raise ValueError(f"FAULTS_SCALE must be one of {', '.join(SCALES)}, not {name!r}")
    return SCALES[name]


# -- processes ------------------------------------------------------------------


def _open_files(pid: int) -> list[str]:
    """What each descriptor of ``pid`` points at (nothing for a gone process)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    out = []
    for fd in fds:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return out


def deleted_files_open(pid: int) -> list[str]:
    """Files ``pid`` holds open that no longer have a name (spooled request
    bodies waitress forgot to close would show here)."""
    return [t for t in _open_files(pid) if t.endswith(" (deleted)") and not t.startswith("/memfd:")]


def files_open_under(pid: int, root: str) -> list[str]:
    """Files under ``root`` that ``pid`` holds open (a staged upload that
    was never settled would stay open)."""
    prefix = os.path.abspath(root) + os.sep
    return [t for t in _open_files(pid) if t.startswith(prefix)]


def server_env() -> dict[str, str]:
    """This environment without PASTEFILE_* overrides: the ini is the whole configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PASTEFILE_")}


def write_ini(directory: str, port: int, app: dict[str, str], server: dict[str, str] | None = None) -> str:
    """production.ini with ``app`` overriding its ``[app:main]`` and ``server``
    its ``[server:main]`` (listening on ``port``); logs under ``directory``."""
    source = ini_config.read()
    server_section = ini_config.server_section(source, port, directory, "pastefile")
    server_section.update(server or {})
    logging = ini_config.logging_sections(source, directory, "pastefile")
    path = os.path.join(directory, "pastefile.ini")
    ini_config.write(path, ini_config.pastefile_app(source, app), server_section, logging)
    return path


class Pserve:
    """``pserve <ini>`` in its own session; ``kill()`` signals the parent and
    every worker at once, ``start()`` again serves the same ini on the same port."""

    def __init__(self, ini: str, port: int, directory: str):
        self.ini = ini
        self.port = port
        self.directory = directory
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.console = os.path.join(directory, "console.log")
        # production.ini logs to stderr, which the console file takes
        self.error_log = self.console

    def start(self, timeout: float = 60.0) -> "Pserve":
        if not os.path.exists(PSERVE):
            raise ServerError(f"{PSERVE} not found: run make install")
        with open(self.console, "ab") as console:
            self.proc = subprocess.Popen(
                [PSERVE, self.ini], stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                env=server_env(), cwd=self.directory, start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout, self.proc)
            deadline = time.monotonic() + timeout
            while True:
                status, _, _ = request("GET", self.url + "/openapi.json", timeout=10)
                if status == 200:
                    break
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise ServerError(f"pserve does not answer /openapi.json (last status {status}):\n{self.console_tail()}")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def workers(self) -> set[int]:
        return children(self.pid) if self.proc is not None else set()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait_group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not group_members(self.pid):
                return True
            time.sleep(0.02)
        return not group_members(self.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``sig`` to the parent and its workers at the same moment."""
        if self.proc is None:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(20)
        if not self._wait_group_gone(20):
            raise ServerError(f"processes of pserve {self.pid} survive signal {sig}: {group_members(self.pid)}")

    def stop(self) -> None:
        """SIGTERM (the supervisor stops its workers), SIGKILL whatever is left."""
        if self.proc is None:
            return
        pgid = self.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        if not self._wait_group_gone(10):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self._wait_group_gone(10)

    def console_tail(self, limit: int = 4000) -> str:
        try:
            with open(self.console, errors="replace") as f:
                return f.read()[-limit:]
        except OSError:
            return ""

    def unhandled_errors(self) -> list[str]:
        """Lines of the app's log that report an unhandled exception (a 500)
        or a worker that died."""
        with open(self.error_log, errors="replace") as f:
            return [line for line in f if "unhandled error" in line or "worker" in line and "failed" in line]


def run_cli(ini: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PASTEFILE, "-c", ini, *args], capture_output=True, text=True, timeout=timeout, env=server_env()
    )


# -- HTTP -----------------------------------------------------------------------


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), path


def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int | None, dict, bytes | str]:
    """(status, headers, body); (None, {}, "ExceptionName: message") when the
    connection failed."""
    try:
        conn, path = _connection(url, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return None, {}, f"{type(exc).__name__}: {exc}"


def multipart(name: str, data: bytes, boundary: str = "pastefilefaults0123456789") -> tuple[bytes, str]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(base: str, name: str, data: bytes, timeout: float = 120) -> tuple[int | None, dict | str]:
    """POST / as multipart; (status, JSON answer or error text)."""
    body, content_type = multipart(name, data)
    status, _, answer = request("POST", base + "/", body, {"Content-Type": content_type, "Accept": "application/json"},
                                timeout)
    return status, _json_or_text(answer)


def put(base: str, name: str, data: bytes, timeout: float = 120) -> tuple[int | None, dict | str]:
    status, _, answer = request("PUT", f"{base}/{name}", data, {"Accept": "application/json"}, timeout)
    return status, _json_or_text(answer)


def _json_or_text(answer: bytes | str) -> dict | str:
    if isinstance(answer, bytes):
        try:
            return json.loads(answer)
        except ValueError:
            return answer[:500].decode("utf-8", "replace")
    return answer


def download_sha256(url: str, timeout: float = 60) -> tuple[int | None, str | None]:
    """(status, SHA-256 of the body) of a GET, read in pieces."""
    try:
        conn, path = _connection(url, timeout)
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            digest = hashlib.sha256()
            while chunk := res.read(256 * KB):
                digest.update(chunk)
            return res.status, digest.hexdigest() if res.status == 200 else None
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return None, None


# -- the files ------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    index: int
    name: str
    seed: int
    size: int
    duplicate_of: int | None = None

    def content(self) -> bytes:
        """Text (libmagic: text/plain), the same bytes for the same seed and size."""
        head = f"pastefile fault test {self.seed}\n".encode()
        body = random.Random(self.seed).randbytes((self.size + 1) // 2).hex().encode()
        return (head + body)[: self.size]


class Corpus:
    """``count`` files of 1 KB..2 MB (log-uniform: about a third above the
    128 KB inline limit), ``duplicates`` of them repeating the bytes of an
    earlier one: most under a new name (a new paste of the same blob), one
    in four under the same name (the same paste again)."""

    def __init__(self, count: int, duplicates: float = 0.2, seed: int | None = None,
                 min_size: int = KB, max_size: int = 2 * MB):
        rng = random.Random(seed if seed is not None else uuid.uuid4().int)
        run = rng.getrandbits(40)
        self.items: list[Item] = []
        originals: list[Item] = []
        for index in range(count):
            if originals and rng.random() < duplicates:
                first = rng.choice(originals)
                name = first.name if rng.random() < 0.25 else f"f{run:x}-{index}.txt"
                self.items.append(Item(index, name, first.seed, first.size, duplicate_of=first.index))
            else:
                size = int(math.exp(rng.uniform(math.log(min_size), math.log(max_size))))
                item = Item(index, f"f{run:x}-{index}.txt", rng.getrandbits(62), size)
                originals.append(item)
                self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


# -- load -----------------------------------------------------------------------


@dataclass
class Result:
    item: Item
    status: int | None
    answer: dict | str
    sha256: str  # of the bytes sent
    started: float
    ended: float
    read_status: int | None = None  # GET of the link right after the upload
    read_started: float = 0.0
    read_ended: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and isinstance(self.answer, dict) and "url_i" in self.answer


@dataclass
class Load:
    """``clients`` threads take items from ``items`` and upload them (and GET
    the link each answer gives, when ``read_back``) until the items run out
    or :meth:`stop` is called."""

    base: str
    items: list[Item]
    clients: int
    read_back: bool = False
    results: list[Result] = field(default_factory=list)

    def __post_init__(self):
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, name=f"fault-client-{i}", daemon=True)
                         for i in range(self.clients)]

    def start(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float = 600) -> list[Result]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            self.stop()
            raise AssertionError(f"the load did not finish in {timeout}s ({self.done} answered)")
        return self.results

    @property
    def done(self) -> int:
        return len(self.results)

    def wait_for(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.done < count:
            if time.monotonic() > deadline or not any(t.is_alive() for t in self._threads):
                raise AssertionError(f"only {self.done} of {count} uploads answered")
            time.sleep(0.01)

    def _take(self) -> Item | None:
        with self._lock:
            if self._stop.is_set() or self._next >= len(self.items):
                return None
            item = self.items[self._next]
            self._next += 1
            return item

    def _client(self) -> None:
        while (item := self._take()) is not None:
            data = item.content()
            started = time.monotonic()
            status, answer = upload(self.base, item.name, data)
            result = Result(item, status, answer, hashlib.sha256(data).hexdigest(), started, time.monotonic())
            del data
            if self.read_back and result.ok:
                result.read_started = time.monotonic()
                result.read_status, _ = download_sha256(result.answer["url_i"])
                result.read_ended = time.monotonic()
            with self._lock:
                self.results.append(result)


def verify_links(results: list[Result], clients: int = 8) -> dict[str, int]:
    """Download every link an upload answered with and re-hash it."""
    from concurrent.futures import ThreadPoolExecutor

    linked = [r for r in results if r.ok]

    def check(result: Result) -> str:
        if result.answer.get("sha256") != result.sha256:
            return "wrong_answer"
        status, digest = download_sha256(result.answer["url_i"])
        if status is None or status in (404, 410) or status >= 500:
            return "lost" if status in (404, 410) else "failed"
        return "ok" if digest == result.sha256 else "corrupt"

    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(check, linked))
    return {key: outcomes.count(key) for key in ("ok", "lost", "corrupt", "failed", "wrong_answer")} | {
        "links": len(linked)
    }


# -- the store against the database ---------------------------------------------


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


def blob_files(root: str) -> dict[str, str]:
    """{name: path} of the files at blob addresses ``root/ab/cd/<name>``."""
    out = {}
    for top in os.listdir(root):
        if len(top) != 2 or not os.path.isdir(os.path.join(root, top)):
            continue
        for sub in os.listdir(os.path.join(root, top)):
            directory = os.path.join(root, top, sub)
            for name in os.listdir(directory):
                out[name] = os.path.join(directory, name)
    return out


def temp_files(root: str) -> list[str]:
    directory = os.path.join(root, "tmp")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def check_store(root: str, engine) -> dict:
    """Counts of everything that should be zero after any fault, and the sizes."""
    files = blob_files(root)
    with engine.connect() as conn:
        blobs = conn.execute(select(Blob.sha256, Blob.data)).all()
        pastes = conn.execute(select(PasteFile.filehash, PasteFile.blob_sha256)).all()
    file_rows = {sha.hex() for sha, data in blobs if data is None}
    inline_rows = {sha.hex(): data for sha, data in blobs if data is not None}
    known = {sha.hex() for sha, _ in blobs}
    return {
        "blob_rows": len(blobs),
        "paste_rows": len(pastes),
        "files": len(files),
        "temp_files": len(temp_files(root)),
        "misnamed_files": sum(1 for name, path in files.items() if _sha256_file(path) != name),
        "orphan_files": len(set(files) - known),
        "missing_files": len(file_rows - set(files)),
        "corrupt_inline": sum(1 for sha, data in inline_rows.items() if hashlib.sha256(data).hexdigest() != sha),
        "pastes_without_blob": sum(1 for _, sha in pastes if sha.hex() not in known),
    }


PROBLEMS = ("temp_files", "misnamed_files", "orphan_files", "missing_files", "corrupt_inline", "pastes_without_blob")


def problems(report: dict) -> dict:
    return {key: report[key] for key in PROBLEMS if report[key]}


def expected_rows(results: list[Result]) -> tuple[int, int]:
    """(distinct contents, distinct (content, name)) among the uploads that got a link."""
    ok = [r for r in results if r.ok]
    return len({r.sha256 for r in ok}), len({(r.sha256, r.item.name) for r in ok})

