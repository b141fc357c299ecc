"""Streaming multipart uploads: field order, browser quoting, malformed bodies."""
from __future__ import annotations

import io
import uuid

import webob
import webtest
from PIL import Image

from .conftest import temp_files
from .webapp_helpers import API, error_of, unique_image, unique_text


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str | None = None) -> tuple[bytes, str]:
    """(name, filename or None, data) parts, encoded as a browser would."""
    boundary = boundary or uuid.uuid4().hex
    out = io.BytesIO()
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
            disposition += f'; filename="{quoted}"'
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode())
        if filename is not None:
            out.write(b"Content-Type: application/octet-stream\r\n")
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post(app, parts, status=200, **kwargs):
    body, ctype = multipart(parts, **kwargs)
    return app.post("/", body, headers={**API, "Content-Type": ctype}, status=status)


def test_size_fields_after_the_file(webapp):
    res = post(webapp, [("file", "pic.png", unique_image("PNG", (200, 100))), ("w", None, b"50"), ("h", None, b"50")])
    assert (res.json["width"], res.json["height"]) == (50, 50)
    with webapp.service.open(res.json["filehash"]) as f:
        assert Image.open(f).size == (50, 50)


def test_browser_quoting_of_filenames(webapp):
    res = post(webapp, [("file", 'say "hi"\u732b.txt', unique_text())])
    assert res.json["filename"] == 'say "hi"\u732b.txt'


def test_other_fields_are_ignored(webapp):
    res = post(webapp, [("note", None, b"hello"), ("file", "a.txt", unique_text()), ("extra", None, b"x")])
    assert res.json["filename"] == "a.txt"


def test_truncated_body_is_400_and_leaves_nothing(webapp):
    name = f"cut-{uuid.uuid4().hex}.txt"
    body, ctype = multipart([("file", name, unique_text(50_000))])
    cut = body[: len(body) // 2]
    res = webapp.post("/", cut, headers={**API, "Content-Type": ctype}, status=400)
    assert "multipart" in error_of(res)["message"]
    assert temp_files(webapp.service) == []
    assert name not in [p.filename for p in webapp.service.latest(100)]


def test_two_files_is_400(webapp):
    res = post(webapp, [("file", "a.txt", unique_text()), ("file", "b.txt", unique_text())], status=400)
    assert "one file" in error_of(res)["message"]
    assert temp_files(webapp.service) == []


def test_file_field_without_filename_is_400(webapp):
    res = post(webapp, [("file", None, b"just text")], status=400)
    assert "field named 'file'" in error_of(res)["message"]


def test_long_text_field_is_400(webapp):
    res = post(webapp, [("w", None, b"1" * 5000), ("file", "a.txt", unique_text())], status=400)
    assert "too long" in error_of(res)["message"]
    assert temp_files(webapp.service) == []


def test_not_multipart_is_400(webapp):
    res = webapp.post("/", {"file": "text"}, headers=API, status=400)
    assert "multipart" in error_of(res)["message"]


def test_body_already_read_by_a_tween_or_middleware(webapp):
    """The debug toolbar reads POST bodies before the view; the upload must
    still see the whole body."""

    def reads_body_first(environ, start_response):
        req = webob.Request(environ)
        req.make_body_seekable()
        req.body_file.read()
        return webapp.app(environ, start_response)

    data = unique_text(20_000)
    body, ctype = multipart([("file", "seen.txt", data)])
    res = webtest.TestApp(reads_body_first).post("/", body, headers={**API, "Content-Type": ctype})
    assert res.json["bytes"] == len(data)
    with webapp.service.open(res.json["filehash"]) as f:
        assert f.read() == data


def test_plain_form_post_from_browser_redirects_to_preview(webapp):
    """The page's form works without JavaScript: a browser that prefers HTML
    is sent to the preview page."""
    body, ctype = multipart([("file", "nojs.txt", unique_text())])
    res = webapp.post("/", body, headers={"Accept": "text/html,*/*;q=0.8", "Content-Type": ctype}, status=303)
    assert "/p/" in res.location
    page = res.follow(headers={"Accept": "text/html"})
    assert "nojs.txt" in page.text
