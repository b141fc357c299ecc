"""Reading pastes over HTTP: /p/ /d/ /i/ /r/ /s/ /j/ /latest, over SQLite and
over PostgreSQL + memcached."""
from __future__ import annotations

import hashlib
import io
import os
import random
import string
from urllib.parse import quote

import pytest
from PIL import Image

from pastefile.core.shortlink import ShortLinks
from pastefile.webapp.responses import content_disposition

from .conftest import only_file_stores
from .webapp_helpers import (
    public,
    API,
    BOOK_KEYS,
    BROWSER,
    CURL,
    IMMUTABLE,
    error_of,
    unique_image,
    unique_text,
)

BASE = "http://localhost"
MISSING = "0123456789abcdef0123456789abcdef.txt"


def header_lines(res) -> list[tuple[str, str]]:
    return list(res.headerlist)


def assert_header_safe(res) -> None:
    for name, value in header_lines(res):
        assert "\r" not in name and "\n" not in name
        assert "\r" not in value and "\n" not in value, (name, value)
    names = {name.lower() for name, _ in header_lines(res)}
    assert "x-injected" not in names


def disposition_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Disposition value whose quoted strings hold no quotes."""
    kind, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        key, _, val = part.strip().partition("=")
        params[key] = val
    return kind, params


# -- /p/ ----------------------------------------------------------------------


def test_preview_page(webapp):
    data = unique_text(3000)
    doc = webapp.upload_json(data, "notes.txt")
    res = webapp.get(f"/p/{doc['filehash']}", headers=BROWSER)
    assert res.status_int == 200 and res.content_type == "text/html"
    html = res.html
    card = html.find("article", class_="result-card")
    assert card["data-filehash"] == doc["filehash"] and card["data-kind"] == "other"
    assert html.select_one(".meta--size dd").text == "2.00 kB"
    assert html.select_one(".meta--type dd").text == "text/plain"
    assert html.select_one(".meta--time dd").text == doc["time"]
    assert html.select_one(".filename").text == "notes.txt"
    for key in ("d", "i", "p", "s"):
        row = html.select_one(f".link-row--{key}")
        assert row.select_one(f"a.link-{key}")["href"] == doc[f"url_{key}"]
        assert row.select_one("[data-copy]")["data-copy"] == doc[f"url_{key}"]
    assert doc["url_s"] == f"{BASE}/s/{doc['symlink']}"


def test_preview_of_image(webapp):
    doc = webapp.upload_json(unique_image("PNG", (80, 60)), "cat.png")
    html = webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).html
    img = html.select_one("img.card__image")
    assert img["src"] == doc["url_i"]
    assert (img["width"], img["height"]) == ("80", "60")
    assert html.select_one(".meta--dims dd").text == "80 \u00d7 60 px"
    assert html.find("meta", property="og:image")["content"] == doc["url_i"]


def test_preview_escapes_filename(webapp):
    doc = webapp.upload_json(unique_text(), "<img src=x onerror=alert(1)>.txt")
    res = webapp.get(f"/p/{doc['filehash']}", headers=BROWSER)
    assert "<img src=x onerror" not in res.text
    assert "&lt;img src=x onerror=" in res.text
    assert res.html.select_one(".filename").text == "<img src=x onerror=alert(1)>.txt"


@pytest.mark.parametrize("path", [f"/p/{MISSING}", "/p/not-a-filehash", "/p/..%2F..%2Fetc%2Fpasswd"])
def test_preview_not_found(webapp, path):
    page = webapp.get(path, headers=BROWSER, status=404)
    assert page.content_type == "text/html"
    assert page.html.select_one(".error-page__status").text == "404"
    assert page.html.select_one(".error-page__title").text == "Not found"
    assert page.headers["Cache-Control"] == "no-store"
    api = webapp.get(path, headers=API, status=404)
    err = error_of(api)
    assert err == {"status": 404, "title": "Not found", "message": "There is no file at this address."}
    # curl (Accept: */*) gets the message as one line of text, as its upload answers
    text = webapp.get(path, headers=CURL, status=404)
    assert text.content_type == "text/plain" and text.text == "There is no file at this address.\n"
    assert text.headers["Cache-Control"] == "no-store"
    assert error_of(webapp.get(path, headers={**CURL, "Accept": "application/json"}, status=404))["status"] == 404


# -- /d/ ----------------------------------------------------------------------


def test_download_is_attachment_with_original_name(webapp):
    data = unique_text(1200)
    doc = webapp.upload_json(data, "report 2024.txt")
    res = webapp.get(f"/d/{doc['filehash']}")
    assert res.status_int == 200
    assert res.headers["Content-Disposition"] == 'attachment; filename="report 2024.txt"'
    # text keeps its type and charset; other types go down as octet-stream
    assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert res.body == data
    assert res.content_length == 1200
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["ETag"] == f'"{doc["sha256"]}"'


def test_download_non_ascii_name(webapp):
    name = "\u732b\u732b \u00e9t\u00e9.txt"
    doc = webapp.upload_json(unique_text(), name)
    assert doc["filename"] == name
    value = webapp.get(f"/d/{doc['filehash']}").headers["Content-Disposition"]
    value.encode("latin-1")  # a WSGI header must be latin-1; ours is ASCII
    assert value.isascii()
    kind, params = disposition_params(value)
    assert kind == "attachment"
    assert params["filename"] == '"__ _t_.txt"'
    assert params["filename*"] == "UTF-8''" + quote(name, safe="")
    assert params["filename*"] == "UTF-8''%E7%8C%AB%E7%8C%AB%20%C3%A9t%C3%A9.txt"


def test_put_non_ascii_name_from_url(webapp):
    data = unique_text()
    doc = webapp.put("/%E7%8C%AB%20cat.txt", params=data, headers=API).json
    assert doc["filename"] == "\u732b cat.txt"
    value = webapp.get(f"/d/{doc['filehash']}").headers["Content-Disposition"]
    assert value == "attachment; filename=\"_ cat.txt\"; filename*=UTF-8''%E7%8C%AB%20cat.txt"


def test_download_name_cannot_inject_headers(webapp):
    data = unique_text()
    # curl -T with a crafted name: CR LF and quotes reach the app percent-decoded
    res = webapp.put("/evil%22%0D%0AX-Injected%3A%201%0D%0A%22.txt", params=data, headers=API)
    doc = res.json
    assert "\r" not in doc["filename"] and "\n" not in doc["filename"]
    for route in ("d", "i"):
        got = webapp.get(f"/{route}/{doc['filehash']}")
        assert got.body == data
        assert_header_safe(got)
        value = got.headers["Content-Disposition"]
        kind, params = disposition_params(value)
        assert kind == ("attachment" if route == "d" else "inline")
        fallback = params["filename"]
        # one quoted string, nothing inside that could close it
        assert fallback.startswith('"') and fallback.endswith('"') and fallback.count('"') == 2
        assert "\\" not in fallback
        assert params["filename*"] == "UTF-8''" + quote(doc["filename"], safe="")


@pytest.mark.parametrize(
    "name",
    ['a"b.txt', "a\r\nSet-Cookie: x=1.txt", "back\\slash.txt", "tab\there.txt", "\x00\x7f.txt", "\u202eevil.txt"],
)
def test_content_disposition_never_breaks_header(name):
    for kind in ("attachment", "inline"):
        value = content_disposition(kind, name)
        assert value.isascii()
        assert not any(c < " " or c == "\x7f" for c in value)
        kind_got, params = disposition_params(value)
        assert kind_got == kind
        assert params["filename"].count('"') == 2 and "\\" not in params["filename"]


# -- /i/ ----------------------------------------------------------------------


def test_raw_serves_bytes_inline(webapp):
    data = unique_text(3000)
    doc = webapp.upload_json(data, "raw.txt")
    res = webapp.get(f"/i/{doc['filehash']}")
    assert res.status_int == 200
    assert res.body == data
    assert res.headers["Content-Type"].split(";")[0] == "text/plain"
    assert res.headers["Content-Length"] == "3000"
    assert res.headers["ETag"] == f'"{doc["sha256"]}"'
    assert res.headers["Cache-Control"] == IMMUTABLE
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["Content-Security-Policy"] == "sandbox"
    assert res.headers["Accept-Ranges"] == "bytes"
    assert res.headers["Content-Disposition"] == 'inline; filename="raw.txt"'


def test_raw_image_mimetype_sniffed_not_from_name(webapp):
    data = unique_image("JPEG", (50, 40))
    doc = webapp.upload_json(data, "photo.txt")
    res = webapp.get(f"/i/{doc['filehash']}")
    assert res.content_type == "image/jpeg"
    assert res.body == data


def test_raw_conditional_get(webapp):
    data = unique_image("PNG")
    doc = webapp.upload_json(data, "c.png")
    url = f"/i/{doc['filehash']}"
    etag = f'"{doc["sha256"]}"'
    res = webapp.get(url, headers={"If-None-Match": etag}, status=304)
    assert res.body == b""
    assert res.headers["ETag"] == etag
    assert webapp.get(url, headers={"If-None-Match": '"other"'}, status=200).body == data
    assert webapp.get(url, headers={"If-None-Match": f'"x", {etag}'}, status=304).body == b""
    assert webapp.get(f"/d/{doc['filehash']}", headers={"If-None-Match": etag}, status=304).body == b""


def test_raw_range(webapp):
    data = unique_text(3000)
    doc = webapp.upload_json(data, "range.txt")
    url = f"/i/{doc['filehash']}"
    res = webapp.get(url, headers={"Range": "bytes=10-19"}, status=206)
    assert res.headers["Content-Range"] == "bytes 10-19/3000"
    assert res.headers["Content-Length"] == "10"
    assert res.body == data[10:20]
    tail = webapp.get(url, headers={"Range": "bytes=-5"}, status=206)
    assert tail.body == data[-5:] and tail.headers["Content-Range"] == "bytes 2995-2999/3000"
    opened = webapp.get(url, headers={"Range": "bytes=2990-"}, status=206)
    assert opened.body == data[2990:]
    bad = webapp.get(url, headers={"Range": "bytes=5000-6000"}, status=416)
    assert bad.headers["Content-Range"] == "bytes */3000"


def test_raw_head(webapp):
    data = unique_text(900)
    doc = webapp.upload_json(data, "head.txt")
    res = webapp.head(f"/i/{doc['filehash']}")
    assert res.status_int == 200
    assert res.body == b""
    assert res.headers["Content-Length"] == "900"
    assert res.headers["ETag"] == f'"{doc["sha256"]}"'


def test_raw_variant(webapp):
    doc = webapp.upload_json(unique_image("PNG", (300, 200)), "v.png")
    url = f"/i/{doc['filehash']}?w=60&h=40"
    first = webapp.get(url)
    assert first.content_type == "image/png"
    assert Image.open(io.BytesIO(first.body)).size == (60, 40)
    assert first.headers["Cache-Control"] == IMMUTABLE
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    etag = first.headers["ETag"]
    # a strong ETag of the rendition's own bytes
    assert etag == f'"{hashlib.sha256(first.body).hexdigest()}"'
    second = webapp.get(url)
    assert second.body == first.body and second.headers["ETag"] == etag
    assert webapp.get(url, headers={"If-None-Match": etag}, status=304).body == b""
    only_w = webapp.get(f"/i/{doc['filehash']}?w=150")
    assert Image.open(io.BytesIO(only_w.body)).size == (150, 100)
    # renditions are blobs, not pastes
    assert webapp.service.count()[0] >= 1
    assert webapp.get(f"/j/{doc['filehash']}").json["width"] == 300


def test_raw_rendition_stored_as_a_file_blob(webapp_factory):
    app = webapp_factory(**{"pastefile.inline_max": "0"})
    data = unique_image("PNG", (200, 100))
    doc = app.upload_json(data, "disk.png")
    url = f"/i/{doc['filehash']}?w=100&h=100"
    first = app.get(url)
    tag = first.headers["ETag"].strip('"')
    assert tag == hashlib.sha256(first.body).hexdigest()
    # content-addressed like any blob, not in a side directory
    with app.service.store.open(bytes.fromhex(tag)) as f:
        assert f.read() == first.body
    second = app.get(url)
    assert second.body == first.body and second.headers["ETag"] == first.headers["ETag"]
    assert second.content_type == "image/png"
    assert Image.open(io.BytesIO(second.body)).size == (100, 100)
    part = app.get(url, headers={"Range": "bytes=0-7"}, status=206)
    assert part.body == first.body[:8] == b"\x89PNG\r\n\x1a\n"


def test_raw_variant_errors(webapp_factory):
    app = webapp_factory(**{"pastefile.max_side": "500"})
    img = app.upload_json(unique_image("PNG", (100, 100)), "i.png")
    err = error_of(app.get(f"/i/{img['filehash']}?w=501&h=10", status=400))
    assert err["status"] == 400 and "between 0 and 500" in err["message"]
    assert "integer" in error_of(app.get(f"/i/{img['filehash']}?w=big", status=400))["message"]
    text = app.upload_json(unique_text(), "t.txt")
    err = error_of(app.get(f"/i/{text['filehash']}?w=10&h=10", status=415))
    assert err["status"] == 415 and "text/plain" in err["message"]
    assert error_of(app.get(f"/i/{MISSING}?w=10", status=404))["status"] == 404


@pytest.mark.parametrize(
    "name, body, mimetype",
    [
        ("page.html", b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n", "text/html"),
        (
            "pic.svg",
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b"<script>alert(1)</script><rect width='10' height='10'/></svg>\n",
            "image/svg+xml",
        ),
    ],
)
def test_active_types_served_as_attachments(webapp_factory, name, body, mimetype):
    app = webapp_factory(**{"pastefile.allowed_types": "text/html image/svg+xml text/plain image/png"})
    body = body + f"<!-- {unique_text(60).decode()} -->\n".encode()
    doc = app.upload_json(body, name)
    assert doc["mimetype"] == mimetype
    for route in ("i", "d"):
        res = app.get(f"/{route}/{doc['filehash']}")
        assert res.body == body
        assert res.content_type == "application/octet-stream"
        assert res.headers["Content-Disposition"].startswith("attachment;")
        assert res.headers["Content-Security-Policy"] == "sandbox"
        assert res.headers["X-Content-Type-Options"] == "nosniff"
    # the preview page offers it as a download, never inline
    page = app.get(f"/p/{doc['filehash']}", headers=BROWSER).html
    assert page.find("article", class_="result-card")["data-kind"] == "other"
    assert not page.find(["img", "iframe", "object", "embed"], src=doc["url_i"])
    assert not page.find("meta", property="og:image")


@only_file_stores
def test_accel_redirect(webapp_factory):
    app = webapp_factory(**{"pastefile.accel_redirect": "/_blobs/", "pastefile.inline_max": "2k"})
    small = unique_text(2000)
    inline = app.upload_json(small, "small.txt")
    # a blob kept in its row has no file for nginx: the app sends it
    res = app.get(f"/i/{inline['filehash']}")
    assert "X-Accel-Redirect" not in res.headers and res.body == small
    data = unique_text(2500)
    doc = app.upload_json(data, "big.txt")
    sha = doc["sha256"]
    expected = f"/_blobs/{sha[:2]}/{sha[2:4]}/{sha}"
    for route, disposition in (("i", "inline"), ("d", "attachment")):
        res = app.get(f"/{route}/{doc['filehash']}")
        assert res.status_int == 200
        assert res.headers["X-Accel-Redirect"] == expected
        assert res.body == b""
        assert res.headers["Content-Length"] == "0"
        assert res.headers["Content-Disposition"].startswith(disposition + ";")
        assert res.headers["ETag"] == f'"{sha}"'
        assert res.headers["Cache-Control"] == IMMUTABLE
        # the charset comes from the file's head, read by the app itself
        assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    # the location maps onto the file nginx would send
    path = os.path.join(app.service.store.root, *expected.split("/")[2:])
    with open(path, "rb") as f:
        assert f.read() == data


@only_file_stores
def test_accel_redirect_keeps_header_on_conditional_and_head(webapp_factory):
    app = webapp_factory(**{"pastefile.accel_redirect": "/_blobs", "pastefile.inline_max": "0"})
    doc = app.upload_json(unique_image("PNG"), "a.png")
    sha = doc["sha256"]
    expected = f"/_blobs/{sha[:2]}/{sha[2:4]}/{sha}"
    url = f"/i/{doc['filehash']}"
    head = app.head(url)
    assert head.headers["X-Accel-Redirect"] == expected and head.body == b""
    # the app answers 304 itself; nginx would follow a redirect on any status
    not_modified = app.get(url, headers={"If-None-Match": f'"{sha}"'}, status=304)
    assert "X-Accel-Redirect" not in not_modified.headers
    assert not_modified.headers["ETag"] == f'"{sha}"'
    # nginx answers ranges from the file; the app passes the request on whole
    ranged = app.get(url, headers={"Range": "bytes=10-19"}, status=200)
    assert ranged.headers["X-Accel-Redirect"] == expected and ranged.body == b""
    # a rendition is a blob on disk too: nginx sends it
    made = app.service.rendition(doc["filehash"], 16, 16)
    resized = app.get(f"{url}?w=16&h=16")
    made_path = f"/_blobs/{made.sha256[:2]}/{made.sha256[2:4]}/{made.sha256}"
    assert resized.headers["X-Accel-Redirect"] == made_path and resized.body == b""
    assert resized.headers["ETag"] == f'"{made.sha256}"'
    assert resized.content_type == "image/png"


# -- /r/ ----------------------------------------------------------------------


def test_resize_route_makes_resized_paste(webapp):
    src = webapp.upload_json(unique_image("JPEG", (640, 480)), "big.jpg")
    res = webapp.get(f"/r/{src['filehash']}?w=160&h=90")
    assert res.content_type == "text/plain"
    url_i = res.text
    assert url_i.startswith(f"{BASE}/i/") and url_i.endswith(".jpg")
    new_fh = url_i.rsplit("/", 1)[1]
    assert new_fh != src["filehash"]
    again = webapp.get(f"/r/{src['filehash']}?w=160&h=90")
    assert again.text == url_i
    meta = webapp.get(f"/j/{new_fh}").json
    assert (meta["width"], meta["height"]) == (160, 90)
    assert meta["filename"] == "big.jpg" and meta["mimetype"] == "image/jpeg"
    assert Image.open(io.BytesIO(webapp.get(f"/i/{new_fh}").body)).size == (160, 90)
    as_json = webapp.get(f"/r/{src['filehash']}?w=160&h=90", headers=API).json
    assert as_json["url_i"] == url_i and set(as_json) >= BOOK_KEYS
    # the source is untouched
    assert webapp.get(f"/j/{src['filehash']}").json["width"] == 640


def test_resize_route_errors(webapp):
    text = webapp.upload_json(unique_text(), "t.txt")
    assert error_of(webapp.get(f"/r/{text['filehash']}?w=10", status=415))["status"] == 415
    img = webapp.upload_json(unique_image(), "i.png")
    assert error_of(webapp.get(f"/r/{img['filehash']}", status=400))["status"] == 400
    assert error_of(webapp.get(f"/r/{img['filehash']}?w=-1", status=400))["status"] == 400
    assert error_of(webapp.get(f"/r/{img['filehash']}?w=99999", status=400))["status"] == 400
    assert error_of(webapp.get(f"/r/{MISSING}?w=10", status=404))["status"] == 404


# -- /s/ ----------------------------------------------------------------------


def test_symlink_redirects_to_preview(webapp):
    doc = webapp.upload_json(unique_text(), "s.txt")
    res = webapp.get(f"/s/{doc['symlink']}", status=302)
    assert res.location == doc["url_p"]
    assert webapp.get(res.location[len(BASE):], headers=BROWSER).status_int == 200


@pytest.mark.parametrize(
    "symlink",
    [
        "zzzzzz",
        "abc",
        "!!!!!!",
        "0000000",
        "zzzzzzzzzzz",
        "a" * 100,
        # well-formed links to ids that do not exist, up to the top of the 64-bit domain
        pytest.param(ShortLinks("test-key").encode(2**31 - 7), id="id-2^31-7"),
        pytest.param(ShortLinks("test-key").encode(2**40 + 3), id="id-2^40+3"),
        pytest.param(ShortLinks("test-key").encode(2**63 - 1), id="id-2^63-1"),
    ],
)
def test_unknown_symlink_404(webapp, symlink):
    err = error_of(webapp.get(f"/s/{quote(symlink)}", headers=API, status=404))
    assert err["status"] == 404 and err["message"] == "This short link leads nowhere."
    page = webapp.get(f"/s/{quote(symlink)}", headers=BROWSER, status=404)
    assert page.content_type == "text/html"


def test_random_long_symlinks_404(webapp):
    """11-character links decode to 64-bit numbers; about a third of random
    ones fall in the 64-bit domain, and half of those above the largest
    BIGINT id.  None of them may turn into a server error."""
    rng = random.Random(20240611)
    alphabet = string.digits + string.ascii_letters
    for _ in range(64):
        link = "".join(rng.choice(alphabet) for _ in range(11))
        res = webapp.get(f"/s/{link}", headers=API, expect_errors=True)
        assert res.status_int == 404, (link, res.status, res.text)
        assert error_of(res)["message"] == "This short link leads nowhere."


# -- /j/ and /latest ------------------------------------------------------------


def test_meta_json(webapp):
    data = unique_image("PNG", (33, 22))
    doc = webapp.upload_json(data, "m.png")
    meta = webapp.get(f"/j/{doc['filehash']}")
    assert meta.content_type == "application/json"
    # an image's metadata also lists its near duplicates
    body = meta.json
    assert body.pop("similar") == [] and body == public(doc)
    assert meta.json["bytes"] == len(data) and (meta.json["width"], meta.json["height"]) == (33, 22)
    assert error_of(webapp.get(f"/j/{MISSING}", status=404))["status"] == 404


@pytest.fixture
def listing(webapp_factory):
    """The app with /latest made public by the operator (it is off by default)."""
    return webapp_factory(**{"pastefile.public_latest": "true"})


def test_latest_newest_first(listing):
    webapp = listing
    docs = [webapp.upload_json(unique_text(500 + i), f"l{i}.txt") for i in range(4)]
    res = webapp.get("/latest?limit=4")
    assert res.content_type == "application/json"
    body = res.json
    assert body["limit"] == 4 and body["offset"] == 0
    assert [f["filehash"] for f in body["files"]] == [d["filehash"] for d in reversed(docs)]
    assert body["files"][0] == public(docs[-1])
    page = webapp.get("/latest?limit=2&offset=1").json
    assert page["offset"] == 1
    assert [f["filehash"] for f in page["files"]] == [docs[2]["filehash"], docs[1]["filehash"]]
    default = webapp.get("/latest").json
    assert default["limit"] == 20 and default["files"][0]["filehash"] == docs[-1]["filehash"]


def test_error_page_escapes_user_input(listing):
    webapp = listing
    page = webapp.get("/latest?limit=%3Cscript%3Ealert(1)%3C/script%3E", headers=BROWSER, status=400)
    assert "<script>alert(1)" not in page.text
    message = page.html.select_one(".error-page__message").text
    assert message == "limit must be an integer, got '<script>alert(1)</script>'"


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=101", "limit=-3", "offset=-1", "offset=x"])
def test_latest_bad_params(listing, query):
    webapp = listing
    err = error_of(webapp.get(f"/latest?{query}", status=400))
    assert err["status"] == 400 and err["title"] == "Bad request"


def test_pages_carry_security_headers(webapp):
    doc = webapp.upload_json(unique_text(), "page.txt")
    for url in ("/", f"/p/{doc['filehash']}", f"/p/{MISSING}"):
        res = webapp.get(url, headers=BROWSER, expect_errors=True)
        assert res.content_type == "text/html"
        assert "script-src 'self'" in res.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in res.headers["Content-Security-Policy"]
        assert res.headers["X-Frame-Options"] == "DENY"
    # user content keeps its own sandbox
    raw = webapp.get(f"/i/{doc['filehash']}")
    assert raw.headers["Content-Security-Policy"] == "sandbox"


def test_page_security_headers_can_be_turned_off(webapp_factory):
    app = webapp_factory(**{"pastefile.page_security_headers": "false"})
    assert "Content-Security-Policy" not in app.get("/", headers=BROWSER).headers
