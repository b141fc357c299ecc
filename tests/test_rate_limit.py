"""Per-client upload limits (``pastefile.rate_limit.*``): 429 with
Retry-After while a client is over its rate, 413 for more bytes than a
window allows, nothing stored for a refused upload."""
from __future__ import annotations

import json

import pytest

import pastefile.webapp
from pastefile.core import Settings
from pastefile.core.ratelimit import UploadLimiter

from .conftest import blob_files, settings_for, temp_files
from .rawhttp import exchange, request_bytes
from .servers import LiveServer
from .webapp_helpers import API, error_of, unique_image, unique_text


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_uploads_per_window_refill_evenly():
    clock = Clock()
    limiter = UploadLimiter(3, 0, 60, clock=clock)
    assert [limiter.admit("a", 10).status for _ in range(3)] == [0, 0, 0]
    refused = limiter.admit("a", 10)
    assert refused.status == 429 and refused.retry_after == 20  # one upload every 20 s
    assert limiter.admit("b", 10).status == 0  # another client has its own bucket
    clock.now += 19
    assert limiter.admit("a", 10).retry_after == 1
    clock.now += 1
    assert limiter.admit("a", 10).status == 0
    assert limiter.admit("a", 10).status == 429


def test_bytes_per_window():
    clock = Clock()
    limiter = UploadLimiter(0, 1000, 10, clock=clock)
    assert limiter.admit("a", 1001).status == 413  # never fits, waiting does not help
    assert limiter.admit("a", 600).status == 0
    refused = limiter.admit("a", 600)
    assert refused.status == 429 and refused.retry_after == 2  # 200 bytes missing, 100 bytes/s
    assert limiter.admit("a", 400).status == 0  # a refused request took nothing
    clock.now += 6
    assert limiter.admit("a", 600).status == 0


def test_idle_clients_are_forgotten():
    limiter = UploadLimiter(1, 0, 60, max_clients=2, clock=Clock())
    for client in ("a", "b", "c"):
        assert limiter.admit(client, 1).status == 0
    assert limiter.admit("a", 1).status == 0  # evicted: a full bucket again
    assert limiter.admit("c", 1).status == 429


def test_settings_and_environment():
    s = Settings.from_dict({"pastefile.rate_limit.uploads": "30", "pastefile.rate_limit.bytes": "10M"}, environ={})
    assert (s.rate_limit_uploads, s.rate_limit_bytes, s.rate_limit_window) == (30, 10 << 20, 60)
    s = Settings.from_dict({}, environ={"PASTEFILE_RATE_LIMIT_UPLOADS": "5", "PASTEFILE_RATE_LIMIT_WINDOW": "3600"})
    assert (s.rate_limit_uploads, s.rate_limit_bytes, s.rate_limit_window) == (5, 0, 3600)


def test_off_by_default(webapp):
    for i in range(12):
        webapp.upload(unique_text(200), f"free{i}.txt")


def test_upload_rate_per_client(webapp_factory):
    app = webapp_factory(**{"pastefile.rate_limit.uploads": "3"})
    one = {"REMOTE_ADDR": "192.0.2.1"}
    for i in range(2):
        app.post("/", upload_files=[("file", f"a{i}.txt", unique_text(300))], headers=API, extra_environ=one)
    app.put("/put.txt", params=unique_text(300), headers=API, extra_environ=one)  # PUT counts too
    before = app.service.count()
    res = app.post("/", upload_files=[("file", "over.txt", unique_text(300))], headers=API, extra_environ=one,
                   status=429)
    err = error_of(res)
    assert err["status"] == 429 and err["title"] == "Too many requests"
    assert 1 <= int(res.headers["Retry-After"]) <= 60  # at most the window
    assert app.service.count() == before and temp_files(app.service) == []
    # reads are never limited; another address has its own allowance
    app.get("/openapi.json", headers=API, extra_environ=one)
    app.post("/", upload_files=[("file", "other.txt", unique_text(300))], headers=API,
             extra_environ={"REMOTE_ADDR": "192.0.2.2"})


def test_resized_pastes_count_as_uploads(webapp_factory):
    """GET /r/ stores a paste: it draws on the same allowance as POST /."""
    app = webapp_factory(**{"pastefile.rate_limit.uploads": "3"})
    one = {"REMOTE_ADDR": "192.0.2.9"}
    src = app.post("/", upload_files=[("file", "src.png", unique_image("PNG", (60, 40)))], headers=API,
                   extra_environ=one).json
    app.get(f"/r/{src['filehash']}?w=20&h=20", headers=API, extra_environ=one)
    app.get(f"/r/{src['filehash']}?w=30&h=20", headers=API, extra_environ=one)
    before = app.service.count()
    res = app.get(f"/r/{src['filehash']}?w=40&h=20", headers=API, extra_environ=one, status=429)
    assert int(res.headers["Retry-After"]) >= 1 and app.service.count() == before
    # reading what was made is never limited
    app.get(f"/i/{src['filehash']}", extra_environ=one)


def test_bytes_per_client(webapp_factory):
    app = webapp_factory(**{"pastefile.rate_limit.bytes": "8k"})
    env = {"REMOTE_ADDR": "198.51.100.7"}
    blobs = blob_files(app.service)
    err = error_of(app.put("/big.txt", params=unique_text(9000), headers=API, extra_environ=env, status=413))
    assert err["status"] == 413 and "8192 bytes" in err["message"]
    app.put("/a.txt", params=unique_text(5000), headers=API, extra_environ=env)
    res = app.put("/b.txt", params=unique_text(5000), headers=API, extra_environ=env, status=429)
    assert int(res.headers["Retry-After"]) >= 1
    assert blob_files(app.service) == blobs and temp_files(app.service) == []


@pytest.mark.parametrize("chunked", [False, True])
def test_live_server_answers_429_whatever_x_forwarded_for_says(tmp_path, chunked):
    app = pastefile.webapp.main({}, **settings_for("sqlite", tmp_path, **{"pastefile.rate_limit.uploads": "2"}))
    try:
        with LiveServer(app) as server:
            port = int(server.url.rsplit(":", 1)[1])
            statuses = []
            for i in range(3):
                body = unique_text(500)
                headers = [("Host", "x"), ("Accept", "application/json"), ("Connection", "close"),
                           ("X-Forwarded-For", f"203.0.113.{i}")]
                if chunked:
                    headers.append(("Transfer-Encoding", "chunked"))
                    pieces = [b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"]
                else:
                    headers.append(("Content-Length", str(len(body))))
                    pieces = [body]
                reply = exchange(port, request_bytes("PUT", f"/x{i}.txt", headers), pieces)
                statuses.append(reply.status)
            assert statuses == [200, 200, 429]
            assert int(reply.header("Retry-After")) >= 1
            assert json.loads(reply.body)["error"]["status"] == 429
    finally:
        app.registry.pastefile.close()
