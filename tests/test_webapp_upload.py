"""The upload page and the two ways to upload (POST / multipart, PUT /{filename}),
over SQLite and over PostgreSQL + memcached."""
from __future__ import annotations

import hashlib
import io
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import webob
import webtest
from PIL import Image

from .conftest import blob_copies, blob_files, temp_files
from .webapp_helpers import (
    API,
    BOOK_KEYS,
    CURL,
    CountingInput,
    error_of,
    unique_image,
    unique_text,
)

BASE = "http://localhost"


def test_upload_page(webapp):
    res = webapp.get("/", headers={"Accept": "text/html"})
    assert res.status_int == 200
    assert res.content_type == "text/html"
    form = res.html.find("form", id="upload-form")
    assert form is not None
    assert form["method"] == "post" and form["enctype"] == "multipart/form-data"
    file_input = form.find("input", attrs={"type": "file"})
    assert file_input is not None and file_input["name"] == "file"
    assert form["data-max-size"] == str(100 << 20)
    assert form["data-max-size-human"] == "100.00 MB"
    assert form.find("input", attrs={"name": "w"})["max"] == "4096"


def test_upload_page_shows_configured_limit(webapp_factory):
    app = webapp_factory(**{"pastefile.max_upload_size": "2k", "pastefile.max_side": "500"})
    form = app.get("/").html.find("form", id="upload-form")
    assert form["data-max-size"] == "2048"
    assert form["data-max-size-human"] == "2.00 kB"
    assert form.find("input", attrs={"name": "h"})["max"] == "500"


def test_upload_page_offers_only_the_expiries_the_server_accepts(webapp_factory):
    def offered(app):
        select = app.get("/").html.find("select", attrs={"name": "expires"})
        return [option["value"] for option in select.find_all("option")]

    assert offered(webapp_factory()) == ["", "3600", "86400", "604800", "2592000"]
    short = webapp_factory(**{"pastefile.max_expiry": "86400"})
    assert offered(short) == ["", "3600", "86400"]
    for value in offered(short)[1:]:
        assert short.upload_json(b"short-lived words " * 20, f"e{value}.txt", expires=value)["expires"]


def test_post_multipart_returns_book_json(webapp):
    data = unique_text(3000)
    res = webapp.upload(data, "notes.txt")
    assert res.status_int == 200
    assert res.content_type == "application/json"
    assert res.headers["Cache-Control"] == "no-store"
    doc = res.json
    assert set(doc) >= BOOK_KEYS
    fh = doc["filehash"]
    assert fh.endswith(".txt") and len(fh) == 36
    assert doc["url_d"] == f"{BASE}/d/{fh}"
    assert doc["url_i"] == f"{BASE}/i/{fh}"
    assert doc["url_p"] == f"{BASE}/p/{fh}"
    assert doc["url_s"] == f"{BASE}/s/{doc['symlink']}" and len(doc["symlink"]) == 6
    assert doc["quoteurl"] == quote(doc["url_i"], safe="")
    assert doc["filename"] == "notes.txt"
    assert doc["size"] == "2.00 kB" and doc["bytes"] == 3000
    assert doc["type"] == "text" and doc["mimetype"] == "text/plain"
    assert doc["width"] is None and doc["height"] is None
    assert len(doc["time"]) == 19 and doc["time"][4] == "-" and doc["time"][13] == ":"
    # the bytes really are stored
    assert webapp.get(f"/i/{fh}").body == data


def test_post_image_reports_dimensions(webapp):
    doc = webapp.upload_json(unique_image("PNG", (80, 60)), "cat.png")
    assert doc["type"] == "image" and doc["mimetype"] == "image/png"
    assert (doc["width"], doc["height"]) == (80, 60)


def test_post_with_w_h_stores_resized_image(webapp):
    original = unique_image("PNG", (400, 200))
    doc = webapp.upload_json(original, "wide.png", w=100, h=100)
    assert (doc["width"], doc["height"]) == (100, 100)
    raw = webapp.get(f"/i/{doc['filehash']}")
    assert Image.open(io.BytesIO(raw.body)).size == (100, 100)
    assert doc["bytes"] == len(raw.body)
    assert blob_copies(webapp.service, doc["sha256"]) == 1
    # the paste is the resized image; the original is kept once, as the
    # rendition's source, so the same request later renders nothing
    source = hashlib.sha256(original).hexdigest()
    assert blob_copies(webapp.service, source) == 1
    again = webapp.upload_json(original, "wide.png", w=100, h=100)
    assert again["sha256"] == doc["sha256"]


def test_post_with_only_w_keeps_aspect(webapp):
    doc = webapp.upload_json(unique_image("JPEG", (640, 480)), "photo.jpg", w=160)
    assert (doc["width"], doc["height"]) == (160, 120)
    assert doc["mimetype"] == "image/jpeg"


def test_post_by_curl_answers_short_link(webapp):
    res = webapp.upload(unique_text(), "curl.txt", headers=CURL)
    assert res.content_type == "text/plain"
    assert res.charset.lower() == "utf-8"
    link = res.text
    assert link.endswith("\n") and link.count("\n") == 1
    assert link.startswith(f"{BASE}/s/")
    symlink = link.strip().rsplit("/", 1)[1]
    assert len(symlink) == 6
    redirect = webapp.get(f"/s/{symlink}", status=302)
    assert redirect.location.startswith(f"{BASE}/p/")
    assert redirect.location.endswith(".txt")


def test_post_by_curl_asking_for_json_gets_json(webapp):
    res = webapp.upload(unique_text(), "c.txt", headers={**CURL, "Accept": "application/json"})
    assert res.content_type == "application/json"
    assert set(res.json) >= BOOK_KEYS


def test_post_accept_text_plain_answers_plain(webapp):
    data = unique_text()
    res = webapp.upload(data, "plain.txt", headers={"Accept": "text/plain"})
    assert res.content_type == "text/plain"
    link = res.text.strip()
    assert res.text == link + "\n"
    # the same content and name again: the same paste, by JSON this time
    doc = webapp.upload_json(data, "plain.txt")
    assert doc["url_s"] == link


def test_same_file_twice_gives_same_links(webapp):
    data = unique_image("PNG")
    first = webapp.upload_json(data, "same.png")
    second = webapp.upload_json(data, "same.png")
    for key in ("url_d", "url_i", "url_s", "url_p", "filehash", "symlink", "sha256", "time"):
        assert second[key] == first[key]
    assert blob_copies(webapp.service, first["sha256"]) == 1
    # another name: its own paste over the same bytes
    other = webapp.upload_json(data, "other.png")
    assert other["filehash"] != first["filehash"] and other["symlink"] != first["symlink"]
    assert other["sha256"] == first["sha256"]
    assert blob_copies(webapp.service, first["sha256"]) == 1


def test_repeated_upload_is_answered_without_sniffing_again(webapp, monkeypatch):
    from pastefile.core import ingest as ingest_module

    sniffed = []
    real_sniff = ingest_module.sniff
    monkeypatch.setattr(ingest_module, "sniff", lambda *a: sniffed.append(1) or real_sniff(*a))
    data = unique_text(3000)
    first = webapp.upload_json(data, "again.txt")
    assert len(sniffed) == 1
    assert webapp.upload_json(data, "again.txt")["url_s"] == first["url_s"]
    assert len(sniffed) == 1  # the type on record answered
    assert webapp.upload_json(data, "renamed.txt")["url_s"] != first["url_s"]
    assert len(sniffed) == 2  # a new paste is sniffed as ever
    assert temp_files(webapp.service) == []


def test_put_raw_body_like_curl_T(webapp):
    data = unique_text(1500)
    res = webapp.put("/report.txt", params=data, headers=CURL)
    assert res.status_int == 200
    assert res.content_type == "text/plain"
    link = res.text.strip()
    assert link.startswith(f"{BASE}/s/")
    preview = webapp.get(link[len(BASE):], status=302).location
    filehash = preview.rsplit("/", 1)[1]
    assert filehash.endswith(".txt")
    meta = webapp.get(f"/j/{filehash}").json
    assert meta["filename"] == "report.txt" and meta["bytes"] == 1500
    assert webapp.get(f"/i/{filehash}").body == data


def test_put_with_json_and_resize(webapp):
    data = unique_image("PNG", (300, 300))
    res = webapp.put("/square.png?w=30&h=20", params=data, headers={**CURL, "Accept": "application/json"})
    doc = res.json
    assert doc["filename"] == "square.png"
    assert (doc["width"], doc["height"]) == (30, 20)
    assert Image.open(io.BytesIO(webapp.get(f"/i/{doc['filehash']}").body)).size == (30, 20)


def test_put_without_content_type(webapp):
    data = unique_text(700)
    req = webtest.TestRequest.blank("/bare.txt", method="PUT", body=data, headers=API)
    req.environ.pop("CONTENT_TYPE", None)
    assert req.content_type == "" and req.content_length == 700
    res = webapp.do_request(req, status=200)
    assert res.json["filename"] == "bare.txt" and res.json["bytes"] == 700


def test_missing_file_field_is_400_json(webapp):
    res = webapp.post("/", params={"w": "10"}, status=400)
    err = error_of(res)
    assert err["status"] == 400 and err["title"] == "Bad request"
    assert "'file'" in err["message"]
    assert res.headers["Cache-Control"] == "no-store"
    # a text field named file is not a file either
    res = webapp.post("/", params={"file": "not a file"}, upload_files=[("other", "x.txt", b"x")], status=400)
    assert error_of(res)["status"] == 400


def test_bad_w_is_400(webapp):
    img = unique_image("PNG")
    for params, needle in (
        ({"w": "abc"}, "w must be an integer"),
        ({"w": "10", "h": "1.5"}, "h must be an integer"),
        ({"w": "-5"}, "w must be an integer between 0 and 4096"),
        ({"w": "5000"}, "between 0 and 4096"),
    ):
        res = webapp.upload(img, "i.png", status=400, **params)
        err = error_of(res)
        assert err["status"] == 400
        assert needle in err["message"]
    assert blob_files(webapp.service) == [] and temp_files(webapp.service) == []


def test_w_on_non_image_is_415(webapp):
    res = webapp.upload(unique_text(), "t.txt", w=10, status=415)
    assert error_of(res)["status"] == 415
    assert blob_files(webapp.service) == [] and temp_files(webapp.service) == []


def test_disallowed_types_are_415_and_store_nothing(webapp):
    before = webapp.service.count()
    html = b"<!DOCTYPE html><html><head><title>x</title></head><body><script>alert(1)</script></body></html>"
    html += unique_text(200)
    res = webapp.upload(html, "x.html", status=415)
    err = error_of(res)
    assert err["status"] == 415 and err["title"] == "Unsupported file type"
    assert "text/html" in err["message"]
    # seeded: a few random byte strings sniff as something (b"MZ" is a DOS executable)
    res = webapp.upload(random.Random(415).randbytes(5000), "random.bin", status=415)
    assert "application/octet-stream" in error_of(res)["message"]
    res = webapp.put("/x.html", params=html, headers=CURL, status=415)
    assert res.content_type == "text/plain" and "text/html" in res.text and res.text.count("\n") == 1
    assert webapp.service.count() == before
    assert blob_files(webapp.service) == [] and temp_files(webapp.service) == []


def test_empty_file_is_400(webapp):
    res = webapp.upload(b"", "empty.txt", status=400)
    assert "empty" in error_of(res)["message"]
    res = webapp.put("/empty.txt", params=b"", status=400)
    assert "empty" in error_of(res)["message"]
    assert temp_files(webapp.service) == []


class TestTooLarge:
    LIMIT = 2048

    def _app(self, webapp_factory):
        return webapp_factory(**{"pastefile.max_upload_size": "2k"})

    def _nothing_stored(self, app, before):
        assert app.service.count() == before
        assert blob_files(app.service) == [] and temp_files(app.service) == []

    def test_exact_limit_is_accepted(self, webapp_factory):
        app = self._app(webapp_factory)
        doc = app.upload_json(unique_text(self.LIMIT), "limit.txt")
        assert doc["bytes"] == self.LIMIT
        res = app.put("/limit2.txt", params=unique_text(self.LIMIT), headers=API)
        assert res.json["bytes"] == self.LIMIT

    def test_multipart_refused_by_content_length(self, webapp_factory):
        app = self._app(webapp_factory)
        before = app.service.count()
        # beyond the limit plus the multipart allowance: refused before reading
        res = app.upload(unique_text(70 * 1024), "big.txt", status=413)
        err = error_of(res)
        assert err["status"] == 413 and err["title"] == "File too large"
        assert "2.00 kB" in err["message"]
        self._nothing_stored(app, before)

    def test_multipart_refused_while_streaming(self, webapp_factory):
        app = self._app(webapp_factory)
        before = app.service.count()
        # the request fits the Content-Length allowance; the file itself does not
        res = app.upload(unique_text(self.LIMIT + 1), "big.txt", status=413)
        assert error_of(res)["status"] == 413
        self._nothing_stored(app, before)

    def test_put_refused_by_content_length(self, webapp_factory):
        app = self._app(webapp_factory)
        before = app.service.count()
        res = app.put("/big.txt", params=unique_text(self.LIMIT + 1), headers=CURL, status=413)
        assert res.content_type == "text/plain" and res.text.startswith("the file exceeds the limit")
        self._nothing_stored(app, before)

    def test_put_refused_while_streaming(self, webapp_factory):
        app = self._app(webapp_factory)
        before = app.service.count()
        # chunked: no Content-Length, the size shows only while copying
        req = webtest.TestRequest.blank(
            "/big.txt",
            method="PUT",
            headers={**API, "Transfer-Encoding": "chunked"},
            environ={"wsgi.input": io.BytesIO(unique_text(3 * self.LIMIT)), "wsgi.input_terminated": True},
        )
        req.environ.pop("CONTENT_LENGTH", None)
        assert req.content_length is None
        res = app.do_request(req, status=413)
        assert error_of(res)["status"] == 413
        self._nothing_stored(app, before)

    def test_put_chunked_within_limit_is_accepted(self, webapp_factory):
        app = self._app(webapp_factory)
        data = unique_text(1000)
        req = webtest.TestRequest.blank(
            "/small.txt",
            method="PUT",
            headers={**API, "Transfer-Encoding": "chunked"},
            environ={"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True},
        )
        req.environ.pop("CONTENT_LENGTH", None)
        res = app.do_request(req, status=200)
        assert res.json["bytes"] == 1000
        assert app.get(f"/i/{res.json['filehash']}").body == data

    # A client announcing or streaming far more than the limit must be cut off
    # early: the server should not read (and spool to disk) the whole body
    # before answering 413.
    HUGE = 20 << 20
    READ_ALLOWANCE = 1 << 20

    def test_oversized_put_body_is_not_read(self, webapp_factory):
        app = self._app(webapp_factory)
        stream = CountingInput(self.HUGE)
        req = webtest.TestRequest.blank(
            "/huge.txt", method="PUT", headers=API, environ={"wsgi.input": stream, "CONTENT_LENGTH": str(self.HUGE)}
        )
        res = app.do_request(req, status=413)
        assert error_of(res)["status"] == 413
        assert stream.read_bytes <= self.READ_ALLOWANCE, f"read {stream.read_bytes} bytes before refusing"

    def test_oversized_multipart_body_is_not_read(self, webapp_factory):
        app = self._app(webapp_factory)
        stream = CountingInput(self.HUGE)
        req = webtest.TestRequest.blank(
            "/",
            method="POST",
            headers={**API, "Content-Type": "multipart/form-data; boundary=xyz"},
            environ={"wsgi.input": stream, "CONTENT_LENGTH": str(self.HUGE)},
        )
        res = app.do_request(req, status=413)
        assert error_of(res)["status"] == 413
        assert stream.read_bytes <= self.READ_ALLOWANCE, f"read {stream.read_bytes} bytes before refusing"

    def test_oversized_chunked_put_stops_reading_at_limit(self, webapp_factory):
        app = self._app(webapp_factory)
        stream = CountingInput(self.HUGE)
        req = webtest.TestRequest.blank(
            "/huge.txt",
            method="PUT",
            headers={**API, "Transfer-Encoding": "chunked"},
            environ={"wsgi.input": stream, "wsgi.input_terminated": True},
        )
        req.environ.pop("CONTENT_LENGTH", None)
        res = app.do_request(req, status=413)
        assert error_of(res)["status"] == 413
        assert stream.read_bytes <= self.READ_ALLOWANCE, f"read {stream.read_bytes} bytes before refusing"


def _put(router, path: str, data: bytes):
    req = webob.Request.blank(path, method="PUT", body=data, headers=API)
    res = req.get_response(router)
    return res.status_int, res.json_body if res.content_type == "application/json" else res.text


def test_concurrent_identical_uploads_give_one_paste(webapp):
    data = unique_text(4000)
    barrier = threading.Barrier(8)

    def go(_):
        barrier.wait(5)
        return _put(webapp.app, "/race.txt", data)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(go, range(8)))
    assert [status for status, _ in results] == [200] * 8, results
    assert len({body["filehash"] for _, body in results}) == 1
    assert blob_copies(webapp.service, results[0][1]["sha256"]) == 1 and temp_files(webapp.service) == []
    assert webapp.get(f"/i/{results[0][1]['filehash']}").body == data


def test_concurrent_distinct_uploads_all_stored(webapp):
    datas = [unique_text(1500) for _ in range(8)]
    barrier = threading.Barrier(8)

    def go(i):
        barrier.wait(5)
        return _put(webapp.app, f"/many{i}.txt", datas[i])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(go, range(8)))
    assert [status for status, _ in results] == [200] * 8, results
    docs = [body for _, body in results]
    assert len({d["filehash"] for d in docs}) == 8 and len({d["symlink"] for d in docs}) == 8
    for i, doc in enumerate(docs):
        assert doc["filename"] == f"many{i}.txt"
        assert webapp.get(f"/i/{doc['filehash']}").body == datas[i]
    assert {p.filehash for p in webapp.service.latest(8)} == {d["filehash"] for d in docs}
