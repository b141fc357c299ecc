"""``egg:pastefile#main``: pserve with several waitress workers on one socket."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.request import Request, urlopen

import pytest

from .servers import children, free_port, wait_for_port
from .webapp_helpers import unique_text

PSERVE = os.path.join(os.path.dirname(sys.executable), "pserve")


def _wait_for_workers(pid: int, count: int, replacing: set[int] = frozenset(), seconds: float = 20) -> set[int]:
    """The socket is bound before the workers are forked, so an open port does
    not yet mean the workers exist."""
    deadline = time.monotonic() + seconds
    while True:
        found = children(pid)
        if (len(found) == count and not found & replacing) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _upload(base: str, data: bytes, name: str) -> dict:
    boundary = "pastefileworkers"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = Request(base + "/", data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"})
    with urlopen(req, timeout=30) as res:
        return json.load(res)


@pytest.fixture
def served(tmp_path):
    port = free_port()
    ini = tmp_path / "app.ini"
    ini.write_text(f"""
[app:main]
use = egg:pastefile
pastefile.db_url = sqlite:///{tmp_path}/db.sqlite
pastefile.storage_root = {tmp_path}/files
pastefile.auto_migrate = true
pastefile.symlink_key = workers-test
pastefile.base_url = http://127.0.0.1:{port}

[server:main]
use = egg:pastefile#main
workers = 2
listen = 127.0.0.1:{port}
threads = 4
""")
    proc = subprocess.Popen([PSERVE, str(ini)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 60, proc)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)


def test_workers_share_the_socket_and_stop_together(served):
    proc, base = served
    workers = _wait_for_workers(proc.pid, 2)
    assert len(workers) == 2
    texts = [unique_text(2000) for _ in range(24)]
    with ThreadPoolExecutor(8) as pool:
        docs = list(pool.map(lambda i: _upload(base, texts[i], f"w{i}.txt"), range(len(texts))))
    assert len({d["filehash"] for d in docs}) == len(texts)
    # every upload is readable from whichever worker answers
    for doc, data in zip(docs, texts):
        with urlopen(f"{base}/i/{doc['filehash']}", timeout=30) as res:
            assert res.read() == data
    # a worker that dies is replaced
    killed = next(iter(workers))
    os.kill(killed, signal.SIGKILL)
    replaced = _wait_for_workers(proc.pid, 2, replacing={killed})
    assert len(replaced) == 2 and killed not in replaced
    assert _upload(base, unique_text(500), "after.txt")["filename"] == "after.txt"
    current = children(proc.pid)
    proc.terminate()
    assert proc.wait(20) == 0
    for pid in current:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()


def _connections(pid: int, port: int) -> int:
    """Established TCP connections to ``port`` that process ``pid`` holds.

    Only established ones: the readiness probe's connection, closed by the
    client, may linger in CLOSE_WAIT until the worker notices.
    """
    inodes = set()
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(f"{fds}/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    count += 1
    return count


def test_workers_share_keep_alive_connections_evenly(served):
    """A few keep-alive clients must not all land on one worker: each worker
    listens only while it has no more connections than the others."""
    proc, base = served
    workers = sorted(_wait_for_workers(proc.pid, 2))
    port = int(base.rsplit(":", 1)[1])
    clients = []
    try:
        # connected all at once, as a load generator starts: the workers
        # find them waiting together
        for _ in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.connect()
            clients.append(conn)  # kept open: a keep-alive client
        for conn in clients:
            conn.request("GET", "/")
        for conn in clients:
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        deadline = time.monotonic() + 10
        while True:
            added = sorted(_connections(pid, port) for pid in workers)
            if sum(added) == 8 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert added == [4, 4]
    finally:
        for conn in clients:
            conn.close()
