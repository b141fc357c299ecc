"""Multipart uploads staged while the body arrives (``pastefile.webapp.streaming``).

A live waitress with the streaming channel and a small ``inbuf_overflow``, so
bodies of a few hundred KB take the streamed path.  Each test checks what a
client and the store see: the bytes and fields that arrive, the errors, and
that nothing staged is left behind by a body that fails or is cut off.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
import urllib.request

import pytest

import pastefile.webapp
from pastefile.core.blobstore import StagingWriter
from pastefile.webapp import streaming
from pastefile.webapp.streaming import StreamedUpload

from .conftest import blob_files, random_text, temp_files, webapp_settings
from .servers import LiveServer

THRESHOLD = 64 * 1024
BOUNDARY = "pastefilestreamtest"


def _app(request, backend, tmp_path, **extra):
    return pastefile.webapp.main({}, **webapp_settings(request, backend, tmp_path, **extra))


@pytest.fixture
def live(backend, request, tmp_path):
    app = _app(request, backend, tmp_path, **{"pastefile.max_upload_size": "4M"})
    with LiveServer(app, inbuf_overflow=THRESHOLD) as server:
        server.service = app.registry.pastefile
        yield server
    app.registry.pastefile.close()


def _form(data: bytes, name: str = "big.bin", fields: dict | None = None, file_first: bool = True) -> bytes:
    parts = []
    file_part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + b"\r\n"
    field_parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (fields or {}).items()
    ]
    parts = [file_part, *field_parts] if file_first else [*field_parts, file_part]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _post(url: str, body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}"):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/", body=body, headers={"Content-Type": content_type, "Accept": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def _wait_until(check, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("size", [THRESHOLD + 1, 300 * 1024 + 7, 3 * 1024 * 1024 + 5])
def test_a_streamed_upload_arrives_intact(live, size):
    data = random_text(size, size)
    status, body = _post(live.url, _form(data, f"s{size}.txt"))
    assert status == 200, body
    doc = json.loads(body)
    assert doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["bytes"] == size
    assert doc["filename"] == f"s{size}.txt"
    with urllib.request.urlopen(f"{live.url}/d/{doc['filehash']}", timeout=30) as res:
        assert res.read() == data
    assert temp_files(live.service) == []


def test_fields_before_and_after_the_file_are_read(live):
    data = random_text(5, 200 * 1024)
    status, body = _post(live.url, _form(data, "late.txt", {"expires": "3600"}, file_first=True))
    assert status == 200, body
    assert json.loads(body)["expires"] is not None
    status, body = _post(live.url, _form(data, "early.txt", {"expires": "3600"}, file_first=False))
    assert status == 200, body
    assert json.loads(body)["expires"] is not None


def test_the_boundary_may_fall_across_blocks(live):
    """The file part ends exactly where a block of the stream does."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="edge.bin"\r\n\r\n'
    ).encode()
    for shift in (-3, 0, 5):
        data = random_text(shift + 10, streaming.BLOCK - len(head) + shift)
        status, body = _post(live.url, _form(data, "edge.bin"))
        assert status == 200, body
        assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("body, message", [
    (b"x" * (200 * 1024), "malformed multipart body"),
    (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="other"; filename="a"\r\n\r\n'.encode()
        + b"y" * (200 * 1024) + f"\r\n--{BOUNDARY}--\r\n".encode(),
        "form field 'other' is too long",
    ),
    (
        b"p" * (200 * 1024)  # a preamble, then a form without a file
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="w"\r\n\r\n80\r\n--{BOUNDARY}--\r\n'.encode(),
        "form field named 'file'",
    ),
    (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'.encode()
        + b"z" * (200 * 1024),  # no closing boundary
        "malformed multipart body",
    ),
])
def test_a_bad_streamed_body_is_a_400_and_leaves_nothing(live, body, message):
    status, reply = _post(live.url, body)
    assert status == 400, reply
    assert message in json.loads(reply)["error"]["message"]
    assert temp_files(live.service) == [] and blob_files(live.service) == []


def test_a_file_over_the_limit_is_a_413_and_leaves_nothing(live):
    # 4M + 60K: inside the framing allowance, so it streams, and the writer stops it
    data = b"q" * (4 * 1024 * 1024 + 60 * 1024)
    status, reply = _post(live.url, _form(data))
    assert status == 413, reply
    assert temp_files(live.service) == [] and blob_files(live.service) == []


def test_a_client_that_hangs_up_mid_body_leaves_nothing(live):
    data = random_text(9, 2 * 1024 * 1024)
    form = _form(data, "cut.bin")
    host, port = live.url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + BOUNDARY.encode()
        + b"\r\nContent-Length: " + str(len(form)).encode() + b"\r\n\r\n" + form[: len(form) // 2]
    )
    # the streamed half reaches the store's temp dir, then the client goes
    assert _wait_until(lambda: temp_files(live.service) != [])
    sock.close()
    assert _wait_until(lambda: temp_files(live.service) == []), temp_files(live.service)
    assert blob_files(live.service) == []
    # and the server still serves
    status, body = _post(live.url, _form(random_text(10, 100 * 1024)))
    assert status == 200, body


def test_concurrent_streamed_uploads(live):
    datas = [random_text(100 + i, 150 * 1024 + i) for i in range(12)]
    results: list = [None] * len(datas)

    def send(i):
        results[i] = _post(live.url, _form(datas[i], f"c{i}.bin"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for data, (status, body) in zip(datas, results):
        assert status == 200, body
        assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_streaming_off_spools_as_waitress_does(backend, request, tmp_path):
    app = _app(request, backend, tmp_path)
    with LiveServer(app, inbuf_overflow=THRESHOLD, stream_uploads=False) as server:
        data = random_text(3, 200 * 1024)
        status, body = _post(server.url, _form(data))
        assert status == 200, body
        assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()
    app.registry.pastefile.close()


class _Store:
    def __init__(self, tmp_path):
        self.discarded = []
        self.tmp_path = tmp_path

    def discard(self, staged):
        self.discarded.append(staged)


class _SlowService:
    """A service whose writer blocks until released: the stream backs up."""

    def __init__(self, tmp_path):
        self.release = threading.Event()
        self.store = _Store(tmp_path)
        self.tmp_path = tmp_path

    def receive(self):
        service = self

        class _Writer(StagingWriter):
            def write(self, chunk):
                service.release.wait(30)
                return super().write(chunk)

        import contextlib

        @contextlib.contextmanager
        def cm():
            with _Writer(str(service.tmp_path), None) as writer:
                yield writer

        return cm()


def test_a_backed_up_stream_asks_the_loop_to_stop_reading_then_wakes_it(tmp_path):
    wakes = []
    service = _SlowService(tmp_path)
    data = b"w" * (streaming.HIGH_WATER + 4 * streaming.BLOCK)
    form = _form(data)
    body = StreamedUpload(service, BOUNDARY, len(form), lambda: wakes.append(1), lambda: None)
    for i in range(0, len(form), 8192):
        body.append(form[i : i + 8192])
    assert body.backlogged  # the parsing thread is stuck in its first write
    service.release.set()
    body.getfile()
    upload = body.result()
    assert not body.backlogged and wakes  # the loop was woken to read again
    assert upload.staged.sha256 == hashlib.sha256(data).digest()
    body.close()
    assert service.store.discarded == []  # taken by the view: not discarded
    import os

    os.close(upload.staged.fd)
