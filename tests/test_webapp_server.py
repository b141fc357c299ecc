"""The app behind a real waitress server: large and chunked raw uploads.

waitress spools bodies over its in-memory threshold to a temp file; PUT then
copies from that file's descriptor in C.  These tests check the bytes that
arrive, whichever path they take.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import urllib.request
from urllib.parse import urlsplit

import pytest

import pastefile.webapp

from .conftest import random_text, webapp_settings
from .servers import LiveServer


@pytest.fixture
def server(backend, request, tmp_path):
    app = pastefile.webapp.main({}, **webapp_settings(request, backend, tmp_path))
    with LiveServer(app) as live:
        yield live
    app.registry.pastefile.close()


def _put(url: str, path: str, body, headers: dict, chunked: bool = False) -> dict:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("PUT", path, body=body, headers={"Accept": "application/json", **headers}, encode_chunked=chunked)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    assert response.status == 200, data
    return json.loads(data)


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


@pytest.mark.parametrize("size", [100, 600 * 1024, 6 * 1024 * 1024 + 13])
def test_put_bytes_arrive_intact(server, size):
    body = random_text(size, size)
    doc = _put(server.url, f"/big{size}.txt", body, {"Content-Length": str(len(body))})
    assert doc["bytes"] == size and doc["sha256"] == hashlib.sha256(body).hexdigest()
    assert _download(f"{server.url}/d/{doc['filehash']}") == body


def test_chunked_put(server):
    body = random_text(77, 3 * 1024 * 1024)
    chunks = (body[i : i + 100_000] for i in range(0, len(body), 100_000))
    doc = _put(server.url, "/chunked.txt", chunks, {"Transfer-Encoding": "chunked"}, chunked=True)
    assert doc["sha256"] == hashlib.sha256(body).hexdigest()
    assert _download(f"{server.url}/i/{doc['filehash']}") == body
