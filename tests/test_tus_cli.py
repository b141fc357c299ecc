"""``pastefile upload --server URL``: the CLI's tus client against a live
server, whole, interrupted (SIGKILL) and resumed, and resumed across a
server restart on the same database, storage root and port."""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

import pastefile.webapp
from pastefile.core import urls
from pastefile.core.tusclient import FingerprintStore, TusClient, TusError

from .conftest import settings_for
from .servers import LiveServer, free_port

MiB = 1 << 20


class CountingApp:
    """The app, counting the PATCH body bytes that reach it; ``delay``
    slows each PATCH down, so a test can interrupt an upload midway."""

    def __init__(self, app):
        self.app = app
        self.registry = app.registry  # create_server finds the service there
        self.patched = 0
        self.delay = 0.0
        self.lock = threading.Lock()
        # statuses to answer the next PATCHes with instead of the app's
        self.failures: list[int] = []

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "PATCH":
            with self.lock:
                failure = self.failures.pop(0) if self.failures else None
                self.patched += int(environ.get("CONTENT_LENGTH") or 0)
            if failure is not None:
                # the server appends a PATCH's body while it arrives: the
                # failure is an answer lost after the bytes counted
                with contextlib.suppress(Exception):
                    environ["wsgi.input"].result()
                start_response(f"{failure} Injected", [("Content-Type", "text/plain"), ("Content-Length", "0")])
                return [b""]
            if self.delay:
                time.sleep(self.delay)
        return self.app(environ, start_response)


class PortServer(LiveServer):
    """A LiveServer on a port of our choosing: a restarted server answers
    at the same URL, so the client's fingerprint still matches."""

    def __init__(self, app, port: int, threads: int = 4):
        from pastefile.webapp.server import create_server

        self._map = {}
        self.server = create_server(app, map=self._map, host="127.0.0.1", port=port, threads=threads)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="pastefile-tus-server", daemon=True)


@pytest.fixture
def servers(tmp_path):
    """``start()`` a server (again) on one port, database and storage root;
    ``stop()`` the running one."""
    settings = settings_for("sqlite", tmp_path, **{"pastefile.allowed_types": "*"})
    port = free_port()
    running = []

    class Servers:
        def start(self) -> PortServer:
            app = CountingApp(pastefile.webapp.main({}, **settings))
            server = PortServer(app, port).__enter__()
            server.app = app
            running.append(server)
            return server

        def stop(self) -> None:
            server = running.pop()
            server.__exit__(None, None, None)
            server.app.registry.pastefile.close()

    yield Servers()
    while running:
        Servers().stop()


@pytest.fixture
def cache_home(tmp_path):
    path = tmp_path / "cache"
    path.mkdir()
    return path


def _cli_args(server: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pastefile.core.cli", "upload", "--server", server, *args]


def _env(cache_home) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASTEFILE_")}
    env["XDG_CACHE_HOME"] = str(cache_home)
    return env


def _run(server: str, cache_home, cwd, *args: str) -> subprocess.CompletedProcess:
    # cwd has no development.ini: --server must not need a config
    return subprocess.run(_cli_args(server, *args), env=_env(cache_home), cwd=cwd,
                          capture_output=True, text=True, timeout=240)


def _write(path, size: int, seed: int):
    """``size`` bytes that differ from any other test's."""
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            f.write(i.to_bytes(8, "big") + block[8:])
        f.write(os.urandom(size % MiB))
    return path


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _download_link(short: str) -> bytes:
    """The bytes behind a printed short link: it leads to the preview page
    (/p/<filehash>), the file itself is at /d/<filehash>."""
    with urllib.request.urlopen(short, timeout=60) as response:
        preview = urlsplit(response.url)
    assert preview.path.startswith(f"/{urls.PREVIEW}/"), preview
    filehash = preview.path.rsplit("/", 1)[1]
    return _download(urls.link(f"{preview.scheme}://{preview.netloc}", urls.DOWNLOAD, filehash))


def _link(stdout: str) -> str:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    return lines[0].split()[0]


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _store(cache_home) -> FingerprintStore:
    return FingerprintStore(str(cache_home / "pastefile" / "tus-uploads.json"))


def _head_offset(url: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request("HEAD", parts.path, headers={"Tus-Resumable": "1.0.0"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return int(response.headers["Upload-Offset"])
    finally:
        conn.close()


def _settled_offset(url: str) -> int:
    """The offset once the killed client's last request is done with."""
    last = _head_offset(url)
    while True:
        time.sleep(0.5)
        now = _head_offset(url)
        if now == last:
            return now
        last = now


def _interrupted_run(server, cache_home, cwd, path, size: int, chunk: str) -> str:
    """Start the CLI, SIGKILL it once the server acknowledged some (not
    all) bytes; the upload's URL."""
    server.app.delay = 0.05
    proc = subprocess.Popen(_cli_args(server.url, "-q", "--chunk-size", chunk, str(path)),
                            env=_env(cache_home), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = _store(cache_home)
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and proc.poll() is None:
            entries = store.entries()
            if entries:
                (url,) = [entry["url"] for entry in entries.values()]
                if _head_offset(url) > 0:
                    break
            time.sleep(0.01)
        else:
            pytest.fail(f"no bytes acknowledged before the CLI ended: {proc.poll()} {proc.stderr.read()!r}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    server.app.delay = 0.0
    return url


def test_upload_whole_file_in_chunks(servers, cache_home, tmp_path):
    server = servers.start()
    path = _write(tmp_path / "whole.bin", 20 * MiB + 12345, seed=1)
    result = _run(server.url, cache_home, tmp_path, "-q", "--chunk-size", "4M", str(path))
    assert result.returncode == 0, result.stderr
    link = _link(result.stdout)
    assert result.stdout.strip().endswith(str(path))
    assert hashlib.sha256(_download_link(link)).hexdigest() == _sha(path)
    # six requests of at most 4 MiB carried the file, once
    assert server.app.patched == path.stat().st_size
    assert _store(cache_home).entries() == {}


def test_json_output_has_delete_token_and_expiry(servers, cache_home, tmp_path):
    server = servers.start()
    path = tmp_path / "notes.txt"
    path.write_text("resumable hello\n" * 100)
    result = _run(server.url, cache_home, tmp_path, "-q", "--json", "--expires", "1h", str(path))
    assert result.returncode == 0, result.stderr
    paste = json.loads(result.stdout)
    assert paste["filename"] == "notes.txt"
    assert paste["sha256"] == _sha(path)
    assert paste["delete_token"] and paste["url_delete"]
    assert paste["expires"]
    assert _download(paste["url_d"]) == path.read_bytes()
    assert _store(cache_home).entries() == {}


def test_a_failed_file_exits_1_and_the_others_upload(servers, cache_home, tmp_path):
    server = servers.start()
    good = tmp_path / "good.txt"
    good.write_text("still uploaded\n")
    result = _run(server.url, cache_home, tmp_path, "-q", str(tmp_path / "missing.txt"), str(good))
    assert result.returncode == 1
    assert "missing.txt" in result.stderr
    assert _download_link(_link(result.stdout)) == good.read_bytes()


def test_interrupted_upload_resumes(servers, cache_home, tmp_path):
    server = servers.start()
    path = _write(tmp_path / "big.bin", 24 * MiB, seed=2)
    size = path.stat().st_size
    chunk = 256 << 10
    url = _interrupted_run(server, cache_home, tmp_path, path, size, "256K")
    acknowledged = _settled_offset(url)
    assert 0 < acknowledged < size
    assert acknowledged % chunk == 0  # a chunk counts whole (its checksum) or not at all

    before = server.app.patched
    result = _run(server.url, cache_home, tmp_path, "-q", "-v", "--chunk-size", "256K", str(path))
    assert result.returncode == 0, result.stderr
    assert f"resuming {url} at offset {acknowledged} of {size}" in result.stderr
    assert server.app.patched - before <= size - acknowledged + chunk
    assert hashlib.sha256(_download_link(_link(result.stdout))).hexdigest() == _sha(path)
    assert _store(cache_home).entries() == {}


def test_resumes_after_a_server_restart(servers, cache_home, tmp_path):
    server = servers.start()
    path = _write(tmp_path / "restart.bin", 24 * MiB, seed=3)
    size = path.stat().st_size
    url = _interrupted_run(server, cache_home, tmp_path, path, size, "256K")
    servers.stop()
    server = servers.start()
    acknowledged = _head_offset(url)
    assert 0 < acknowledged < size

    result = _run(server.url, cache_home, tmp_path, "-q", "-v", "--chunk-size", "1M", str(path))
    assert result.returncode == 0, result.stderr
    assert f"resuming {url} at offset {acknowledged}" in result.stderr
    assert server.app.patched <= size - acknowledged + MiB
    assert hashlib.sha256(_download_link(_link(result.stdout))).hexdigest() == _sha(path)
    assert _store(cache_home).entries() == {}


def test_an_upload_the_server_forgot_starts_over(servers, cache_home, tmp_path):
    server = servers.start()
    path = tmp_path / "forgotten.txt"
    path.write_text("start me again\n" * 1000)
    st = path.stat()
    store = _store(cache_home)
    stale = f"{server.url}/files/0123456789abcdef"
    store.put(store.key(f"{server.url}/files/", str(path), st.st_size, st.st_mtime_ns), stale)
    result = _run(server.url, cache_home, tmp_path, "-q", "-v", str(path))
    assert result.returncode == 0, result.stderr
    assert "starting over" in result.stderr
    assert _download_link(_link(result.stdout)) == path.read_bytes()
    assert store.entries() == {}


def test_client_retries_from_the_servers_offset(servers, cache_home, tmp_path):
    """5xx, 423 and 409 answers: the client asks the offset again and goes
    on from there (sending no byte twice, as the server had kept them); the
    progress callback hears of every block and ends at the size."""
    server = servers.start()
    path = _write(tmp_path / "flaky.bin", 6 * MiB + 7, seed=4)
    size = path.stat().st_size
    server.app.failures = [503, 423, 500, 409]
    seen, logged = [], []
    client = TusClient(server.url, chunk_size=MiB, fingerprints=_store(cache_home), backoff=0.01,
                       log=logged.append)
    try:
        result = client.upload(str(path), expires="1h", progress=lambda done, total: seen.append((done, total)))
    finally:
        client.close()
    assert server.app.failures == []
    assert sum("retrying" in line or "offset again" in line for line in logged) == 4
    assert seen[-1] == (size, size) and all(total == size for _, total in seen)
    assert len(seen) > size // MiB * 4  # blocks within each chunk, not only chunks
    assert result.paste["sha256"] == _sha(path) and result.delete_token
    assert server.app.patched == size
    assert _store(cache_home).entries() == {}


def test_client_gives_up_after_its_retries(cache_home, tmp_path):
    """Nothing listens: connection errors are retried, then reported."""
    path = tmp_path / "doomed.txt"
    path.write_text("never\n")
    client = TusClient(f"http://127.0.0.1:{free_port()}", fingerprints=_store(cache_home), retries=2, backoff=0.01)
    with pytest.raises(TusError, match="giving up after 2 retries"):
        client.upload(str(path))
    client.close()
    assert _store(cache_home).entries() == {}


def test_cli_reports_a_server_that_refuses(servers, cache_home, tmp_path):
    server = servers.start()
    path = tmp_path / "far.txt"
    path.write_text("too late\n")
    result = _run(server.url, cache_home, tmp_path, "-q", "--expires", "1000y", str(path))
    assert result.returncode == 1
    assert "far.txt" in result.stderr and "400" in result.stderr
    assert result.stdout == ""
    assert _store(cache_home).entries() == {}
