"""A small tus 1.0.0 client for a pastefile server's ``/files/``.

It creates an upload, sends the file in chunks (each PATCH carries the
SHA-256 of its chunk, so a body cut off in flight is never half kept),
retries with backoff by asking the server for its offset again, and keeps
the upload's URL in a fingerprint file so that an interrupted upload goes on
from what the server acknowledged when the command runs again.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

TUS_VERSION = "1.0.0"
OFFSET_TYPE = "application/offset+octet-stream"
DEFAULT_CHUNK_SIZE = 8 << 20
# how much is read and sent at a time within a chunk (and reported to progress)
BLOCK_SIZE = 256 << 10
# statuses worth asking the offset again and going on: the server's own
# trouble, another request still holding the upload (423), an offset that is
# not the server's (409), a body that arrived damaged (460)
RETRY_STATUSES = {409, 423, 460}

# fingerprints older than this are dropped (a server keeps an unfinished upload a day by default)
STALE_AFTER = 30 * 24 * 3600

Progress = Callable[[int, int], None]


class TusError(Exception):
    """An upload that cannot go on (the message says why)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """A failure worth a retry after asking the offset again."""


class _UploadGone(Exception):
    """The server no longer knows the upload (404/410): start over."""


def cache_path(environ=os.environ) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pastefile", "tus-uploads.json")


class FingerprintStore:
    """Upload URLs of unfinished uploads, by (server, absolute path, size,
    mtime), in one JSON file; read-modify-write under a lock file, replaced
    atomically, so concurrent commands do not lose each other's entries."""

    def __init__(self, path: str | None = None):
        self.path = path or cache_path()

    @staticmethod
    def key(server: str, path: str, size: int, mtime_ns: int) -> str:
        return json.dumps([server, os.path.abspath(path), size, mtime_ns])

    def _load(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".lock", "a") as lock:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # no flock: last writer wins
                pass
            data = self._load()
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".tus-uploads.")
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        json.dump(data, f, indent=1, sort_keys=True)
                    os.replace(tmp, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise

    def get(self, key: str) -> str | None:
        entry = self._load().get(key)
        return entry.get("url") if isinstance(entry, dict) else None

    def put(self, key: str, url: str) -> None:
        now = int(time.time())
        with self._locked() as data:
            # entries of files changed or abandoned since: long expired on any server
            for stale in [k for k, v in data.items() if not isinstance(v, dict) or v.get("created", 0) < now - STALE_AFTER]:
                del data[stale]
            data[key] = {"url": url, "created": now}

    def remove(self, key: str) -> None:
        with self._locked() as data:
            data.pop(key, None)

    def entries(self) -> dict:
        return self._load()


@dataclass
class UploadResult:
    paste: dict  # the paste's JSON, as the server answers it
    upload_url: str
    delete_token: str | None
    delete_url: str | None
    resumed_from: int | None  # the offset an earlier run had reached, if any


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _message(status: int, body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return f"{status} {error['title']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = " ".join(body.decode("utf-8", "replace").split())[:200]
        return f"{status} {text}".strip()


class TusClient:
    """Uploads files to ``server`` (the site's base URL, or its tus
    endpoint ending in ``/files/``)."""

    def __init__(self, server: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, fingerprints: FingerprintStore | None = None,
                 retries: int = 8, backoff: float = 0.5, max_backoff: float = 15.0, timeout: float = 120.0,
                 log: Callable[[str], None] | None = None):
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TusError(f"{server!r} is not an http(s) URL")
        path = parts.path if parts.path.rstrip("/").endswith("/files") else parts.path.rstrip("/") + "/files/"
        self.endpoint = urljoin(f"{parts.scheme}://{parts.netloc}", path.rstrip("/") + "/")
        self.chunk_size = chunk_size
        self.fingerprints = fingerprints if fingerprints is not None else FingerprintStore()
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.log = log or (lambda message: None)
        self._conn: http.client.HTTPConnection | None = None
        self._conn_key: tuple[str, str] | None = None

    # -- HTTP -------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if self._conn is None or self._conn_key != key:
            self.close()
            cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(parts.netloc, timeout=self.timeout)
            self._conn_key = key
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return self._conn, target

    def _request(self, method: str, url: str, headers: dict[str, str],
                 body: Iterator[bytes] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request (the body sent as it is produced); a connection
        failure or a retryable status raises _Transient."""
        conn, target = self._connection(url)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in {"Tus-Resumable": TUS_VERSION, "Accept": "application/json", **headers}.items():
                conn.putheader(name, value)
            conn.endheaders()
            if body is not None:
                for block in body:
                    conn.send(block)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise _Transient(f"{method} {url}: {exc or type(exc).__name__}") from exc
        if response.will_close:
            self.close()
        status = response.status
        if status >= 500 or status in RETRY_STATUSES:
            raise _Transient(f"{method} {url}: {_message(status, data)}")
        return status, response.headers, data

    # -- the protocol ---------------------------------------------------------------

    def _create(self, size: int, filename: str, extra: dict[str, str]) -> str:
        metadata = ",".join([f"filename {_b64(filename)}", *(f"{k} {_b64(v)}" for k, v in extra.items() if v)])
        status, headers, data = self._request(
            "POST", self.endpoint, {"Upload-Length": str(size), "Upload-Metadata": metadata, "Content-Length": "0"}
        )
        if status != 201 or not headers.get("Location"):
            raise TusError(f"creating the upload: {_message(status, data)}", status)
        return urljoin(self.endpoint, headers["Location"])

    def _offset(self, url: str, size: int) -> int:
        """The server's offset of the upload; _UploadGone when it no longer
        knows it (or it is not this file's)."""
        status, headers, data = self._request("HEAD", url, {})
        if status in (404, 410, 403):
            raise _UploadGone(_message(status, data))
        if status != 200:
            raise TusError(f"HEAD {url}: {_message(status, data)}", status)
        try:
            offset = int(headers["Upload-Offset"])
        except (KeyError, ValueError):
            raise TusError(f"HEAD {url}: no Upload-Offset in the answer") from None
        length = headers.get("Upload-Length")
        if length is not None and length.strip() != str(size):
            raise _UploadGone(f"the upload is {length} bytes, the file {size}")
        if not 0 <= offset <= size:
            raise _UploadGone(f"the upload's offset {offset} is past the file's size")
        return offset

    @staticmethod
    def _blocks(f, offset: int, length: int) -> Iterator[bytes]:
        f.seek(offset)
        while length > 0:
            block = f.read(min(BLOCK_SIZE, length))
            if not block:
                raise TusError("the file got shorter while it was being uploaded")
            length -= len(block)
            yield block

    def _patch(self, url: str, f, offset: int, length: int, size: int,
               progress: Progress | None) -> tuple[int, http.client.HTTPMessage]:
        digest = hashlib.sha256()
        for block in self._blocks(f, offset, length):
            digest.update(block)

        def body() -> Iterator[bytes]:
            sent = offset
            for block in self._blocks(f, offset, length):
                yield block
                sent += len(block)
                if progress is not None:
                    progress(sent, size)

        headers = {
            "Content-Type": OFFSET_TYPE,
            "Content-Length": str(length),
            "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 " + base64.b64encode(digest.digest()).decode("ascii"),
        }
        status, answer, data = self._request("PATCH", url, headers, body())
        if status in (404, 410):
            raise _UploadGone(_message(status, data))
        if status != 204:
            raise TusError(f"PATCH {url}: {_message(status, data)}", status)
        try:
            new_offset = int(answer["Upload-Offset"])
        except (KeyError, ValueError):
            raise TusError(f"PATCH {url}: no Upload-Offset in the answer") from None
        return new_offset, answer

    def _retrying(self, what: Callable[[], object]):
        """``what()`` again after connection failures and retryable statuses,
        with a growing pause, ``retries`` times."""
        for attempt in range(self.retries + 1):
            try:
                return what()
            except _Transient as exc:
                if attempt == self.retries:
                    raise TusError(f"giving up after {self.retries} retries: {exc}") from None
                pause = min(self.max_backoff, self.backoff * 2 ** attempt)
                self.log(f"{exc}; retrying in {pause:.1f}s")
                time.sleep(pause)

    # -- uploads ------------------------------------------------------------------

    def upload(self, path: str, *, filename: str | None = None, expires: str | None = None,
               width: int | None = None, height: int | None = None,
               progress: Progress | None = None) -> UploadResult:
        """Upload the file at ``path`` (resuming an earlier run's upload of
        the same unchanged file) and return the paste it became; ``expires``
        is a duration as the server takes it (3600, 30m, 7d), ``width`` and
        ``height`` crop-resize an image."""
        extra = {"expires": expires or "", "w": str(width or ""), "h": str(height or "")}
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            key = self.fingerprints.key(self.endpoint, path, size, st.st_mtime_ns)
            url, offset, resumed_from = self.fingerprints.get(key), 0, None
            if url:
                try:
                    offset = self._retrying(lambda: self._offset(url, size))
                    resumed_from = offset
                    self.log(f"{path}: resuming {url} at offset {offset} of {size}")
                except _UploadGone as exc:
                    self.log(f"{path}: the earlier upload {url} is gone ({exc}); starting over")
                    url = None
            if not url:
                url = self._retrying(lambda: self._create(size, filename or os.path.basename(path), extra))
                self.fingerprints.put(key, url)
                offset = 0
                self.log(f"{path}: created {url} for {size} bytes")
            if progress is not None:
                progress(offset, size)

            completed = None  # the completing PATCH's headers
            failures = 0
            while offset < size:
                try:
                    offset, completed = self._patch(url, f, offset, min(self.chunk_size, size - offset), size, progress)
                    failures = 0
                except _UploadGone as exc:
                    self.fingerprints.remove(key)
                    raise TusError(f"the server dropped the upload: {exc}") from None
                except _Transient as exc:
                    failures += 1
                    if failures > self.retries:
                        raise TusError(f"giving up after {self.retries} retries: {exc}") from None
                    pause = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
                    self.log(f"{exc}; asking the offset again in {pause:.1f}s")
                    time.sleep(pause)
                    try:
                        offset = self._retrying(lambda: self._offset(url, size))
                    except _UploadGone as gone:
                        self.fingerprints.remove(key)
                        raise TusError(f"the server dropped the upload: {gone}") from None
                    self.log(f"{path}: going on at offset {offset}")
                    completed = None
                    if progress is not None:
                        progress(offset, size)

        paste = self._retrying(lambda: self._result(url))
        self.fingerprints.remove(key)
        token = completed.get("X-Delete-Token") if completed is not None else None
        delete_url = completed.get("X-Delete-Url") if completed is not None else None
        if not token:
            # only the completing PATCH's answer carries it; the server never tells it again
            self.log(f"{path}: the answer with the delete token was lost; the paste has no token here")
        if token:
            paste = {**paste, "delete_token": token}
            if delete_url:
                paste.setdefault("url_delete", delete_url)
        return UploadResult(paste, url, token, delete_url, resumed_from)

    def _result(self, url: str) -> dict:
        status, _, data = self._request("GET", url, {})
        if status != 200:
            raise TusError(f"GET {url}: {_message(status, data)}", status)
        try:
            return json.loads(data)
        except ValueError:
            raise TusError(f"GET {url}: the answer is not JSON") from None
