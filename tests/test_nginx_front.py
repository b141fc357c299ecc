"""pastefile behind nginx, as README's "nginx in front" sets it up.

``pserve`` of production.ini's ``[server:main]`` (waitress trusting
127.0.0.1's X-Forwarded-* headers), on SQLite, behind a throwaway nginx
(tests/nginx.py) whose ``client_max_body_size`` is 16m while the app takes
up to 300M.  A 200 MiB file then cannot go up as one multipart POST (nginx
answers 413 and the app never sees it) but goes up over tus in 8 MiB
PATCHes, each under nginx's limit, and comes back intact through nginx.

The 200 MiB come from a seeded generator a block at a time, hashed while
they are sent; no copy of the whole file is ever held.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import select
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import sqlalchemy
from sqlalchemy import func, select as sql_select

from pastefile.core.models import Blob, PasteFile, TusUpload

from .fault_harness import Pserve, write_ini
from .nginx import Nginx, blocks
from .servers import free_port

MiB = 1024 * 1024
SIZE = 200 * MiB
BLOCK = 1 * MiB
PATCH_SIZE = 8 * MiB
TIMEOUT = 120


class Hashing:
    """An iterator over ``source`` that hashes and counts what it yields."""

    def __init__(self, source):
        self.source = iter(source)
        self.sha256 = hashlib.sha256()
        self.sent = 0

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        chunk = next(self.source)
        self.sha256.update(chunk)
        self.sent += len(chunk)
        return chunk

    def take(self, size: int):
        """The next ``size`` bytes (fewer at the end), as whole blocks."""
        taken = 0
        while taken < size:
            try:
                chunk = next(self)
            except StopIteration:
                return
            taken += len(chunk)
            yield chunk


def connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    assert parts.scheme == "http", url
    path = parts.path + ("?" + parts.query if parts.query else "")
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT), path or "/"


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn, path = connect(url)
    try:
        conn.request("GET", path, headers=headers or {})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def download_sha256(url: str) -> tuple[int, int, str]:
    """(status, bytes, SHA-256) of a GET, read in pieces."""
    conn, path = connect(url)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        digest, count = hashlib.sha256(), 0
        while chunk := res.read(BLOCK):
            digest.update(chunk)
            count += len(chunk)
        return res.status, count, digest.hexdigest()
    finally:
        conn.close()


class Stack:
    def __init__(self, server: Pserve, front: Nginx, engine, storage: str):
        self.server = server
        self.front = front
        self.engine = engine
        self.storage = storage

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {model.__tablename__: conn.execute(sql_select(func.count()).select_from(model)).scalar_one()
                    for model in (PasteFile, Blob, TusUpload)}

    def stored_files(self) -> list[str]:
        return [os.path.join(d, f) for d, _, files in os.walk(self.storage) for f in files]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """pserve (production.ini's server section, one worker, SQLite) behind
    nginx with client_max_body_size 16m."""
    directory = tmp_path_factory.mktemp("nginx-front")
    storage = str(directory / "files")
    database = str(directory / "pastefile.sqlite")
    port = free_port()
    settings = {
        "pastefile.db_url": f"sqlite:///{database}",
        "pastefile.storage_root": storage,
        "pastefile.auto_migrate": "true",
        "pastefile.cache.backend": "memory",
        "pastefile.base_url": f"http://127.0.0.1:{port}",
        "pastefile.symlink_key": "nginx-front-test-key",
        "pastefile.allowed_types": "*",
        "pastefile.max_upload_size": "300M",
    }
    server = Pserve(write_ini(str(directory), port, settings, {"workers": "1"}), port, str(directory))
    server.start()
    front = Nginx(server.url, client_max_body_size="16m")
    engine = None
    try:
        front.start()
        engine = sqlalchemy.create_engine(f"sqlite:///{database}")
        yield Stack(server, front, engine, storage)
    finally:
        if engine is not None:
            engine.dispose()
        front.stop()
        server.stop()


def post_streaming(url: str, head: bytes, body, tail: bytes, content_type: str, length: int):
    """POST ``head``, ``body``'s blocks and ``tail`` (``length`` bytes in all)
    on a raw socket, stopping as soon as an answer arrives; (response, bytes sent)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
    sent = 0
    try:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nAccept: application/json\r\n\r\n".encode()
        )

        def pieces():
            yield head
            yield from body
            yield tail

        try:
            for piece in pieces():
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the answer may still be there to read
        res = http.client.HTTPResponse(sock)
        res.begin()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read(), sent
    finally:
        sock.close()


def test_multipart_post_over_nginx_limit_gets_413_from_nginx(stack):
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = Hashing(blocks(seed=413, size=SIZE))
    status, headers, answer, sent = post_streaming(
        stack.front.url, head, body, tail, f"multipart/form-data; boundary={boundary}", len(head) + SIZE + len(tail))

    assert status == 413, (status, answer[:500])
    # nginx's own page, not the app's JSON error
    assert headers.get("server", "").startswith("nginx"), headers
    assert b"413 Request Entity Too Large" in answer
    assert sent < SIZE, f"the whole body went out ({sent} bytes) before the answer"
    # the app never saw the request, and nothing was stored
    lines = [line for line in stack.front.access_lines() if '"POST / HTTP/1.1" 413' in line]
    assert lines and all("upstream=- " in line for line in lines), stack.front.access_lines()
    assert stack.counts() == {"paste_file": 0, "blob": 0, "tus_upload": 0}
    assert stack.stored_files() == []
    assert stack.server.alive()


def test_tus_upload_in_8mib_patches_through_nginx(stack):
    front = stack.front
    conn, path = connect(front.url + "/files/")
    try:
        conn.request("POST", path, headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(SIZE),
            "Upload-Metadata": "filename " + base64.b64encode(b"big.bin").decode(),
            "Content-Length": "0",
        })
        res = conn.getresponse()
        res.read()
    finally:
        conn.close()
    assert res.status == 201, res.status
    location = res.getheader("Location")
    # absolute, naming nginx (the Host the client used), not waitress behind it
    assert urlsplit(location).scheme == "http"
    assert urlsplit(location).netloc == f"127.0.0.1:{front.port}", location
    assert urlsplit(location).path.startswith("/files/")

    # the client follows the Location as given: one keep-alive connection there
    body = Hashing(blocks(seed=200, size=SIZE))
    conn, path = connect(location)
    offset, patches, paste_url = 0, 0, None
    try:
        while offset < SIZE:
            length = min(PATCH_SIZE, SIZE - offset)
            conn.request("PATCH", path, body=body.take(length), headers={
                "Tus-Resumable": "1.0.0",
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Content-Length": str(length),
            })
            res = conn.getresponse()
            answer = res.read()
            assert res.status == 204, (offset, res.status, answer[:500], front.log_tail())
            assert res.getheader("Tus-Resumable") == "1.0.0"
            assert int(res.getheader("Upload-Offset")) == offset + length
            offset += length
            patches += 1
            paste_url = res.getheader("X-Paste-Url")
            if offset < SIZE:
                assert paste_url is None, (offset, paste_url)
    finally:
        conn.close()
    assert body.sent == SIZE and patches == SIZE // PATCH_SIZE
    digest = body.sha256.hexdigest()

    # the completing PATCH's link names nginx and serves the preview page through it
    assert paste_url and urlsplit(paste_url).netloc == f"127.0.0.1:{front.port}", paste_url
    status, _, page = fetch(paste_url)
    assert status == 200, (status, page[:500])

    status, _, answer = fetch(location, {"Accept": "application/json"})
    assert status == 200, (status, answer[:500])
    paste = json.loads(answer)
    assert paste["sha256"] == digest
    assert paste["bytes"] == SIZE
    assert paste["url_p"] == paste_url
    for key in ("url_d", "url_i", "url_s", "url_p"):
        assert urlsplit(paste[key]).netloc == f"127.0.0.1:{front.port}", (key, paste[key])

    status, count, served = download_sha256(paste["url_d"])
    assert (status, count) == (200, SIZE)
    assert served == digest

    # each PATCH went to the app as it came (nginx forwarded, did not answer itself)
    patch_lines = [line for line in front.access_lines() if '"PATCH /files/' in line]
    assert len(patch_lines) == patches and all("upstream_status=204" in line for line in patch_lines), patch_lines
    assert stack.counts()["paste_file"] == 1
    assert stack.server.alive()
