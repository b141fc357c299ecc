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


def _upload_on(conn: http.client.HTTPConnection, data: bytes, name: str) -> dict:
    """An upload on a kept-alive connection (so on the worker holding it)."""
    boundary = "pastefileworkers"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn.request("POST", "/", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    assert response.status == 200, answer[:300]
    return json.loads(answer)


def _read_on(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200
    return body


def test_workers_share_the_socket_and_stop_together(served):
    proc, base = served
    workers = _wait_for_workers(proc.pid, 2)
    assert len(workers) == 2
    port = int(base.rsplit(":", 1)[1])
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(8)]
    try:
        for conn in clients:
            conn.connect()
        for conn in clients:
            assert _read_on(conn, "/")
        # each kept-alive connection, answered, is held by one worker; both hold some
        holders = [_holder(workers, port, conn) for conn in clients]
        assert set(holders) == workers, holders
        ports = [conn.sock.getsockname()[1] for conn in clients]
        texts = [unique_text(2000) for _ in range(24)]

        def upload_on(k):
            return [(i, _upload_on(clients[k], texts[i], f"w{i}.txt")) for i in range(k, len(texts), len(clients))]

        with ThreadPoolExecutor(len(clients)) as pool:
            docs = dict(pair for pairs in pool.map(upload_on, range(len(clients))) for pair in pairs)
        assert len({d["filehash"] for d in docs.values()}) == len(texts)
        # both workers stored uploads; each one is read back from the other worker
        stored_by = {i: holders[i % len(clients)] for i in docs}
        assert set(stored_by.values()) == workers
        for i, doc in docs.items():
            other = next(conn for conn, pid in zip(clients, holders) if pid != stored_by[i])
            assert _read_on(other, f"/i/{doc['filehash']}") == texts[i]
        # on the same connections throughout (none closed and opened again elsewhere)
        assert [conn.sock.getsockname()[1] for conn in clients] == ports
    finally:
        for conn in clients:
            conn.close()
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


def _holder(workers: set[int], port: int, conn: http.client.HTTPConnection) -> int:
    """The worker holding the server end of an established client connection."""
    client_port = conn.sock.getsockname()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if (state == "01" and int(local.rsplit(":", 1)[1], 16) == port
                        and int(remote.rsplit(":", 1)[1], 16) == client_port):
                    inodes.add(inode)
    assert len(inodes) == 1, f"no single server end for client port {client_port}: {inodes}"
    wanted = f"socket:[{inodes.pop()}]"
    held = [pid for pid in workers if wanted in _sockets(pid)]
    assert len(held) == 1, f"connection from port {client_port} held by {held}"
    return held[0]


def _sockets(pid: int) -> set[str]:
    found = set()
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            found.add(os.readlink(f"{fds}/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return found


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
        # every client has its answer, so a worker accepted and holds each
        # connection (kept alive): the split is final, nothing to wait for
        holders = [_holder(set(workers), port, conn) for conn in clients]
        assert sorted(holders.count(pid) for pid in workers) == [4, 4]
        assert sorted(_connections(pid, port) for pid in workers) == [4, 4]
    finally:
        for conn in clients:
            conn.close()
