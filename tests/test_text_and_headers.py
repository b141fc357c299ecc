"""Text served with an honest charset, text shown on the preview page, and
``X-Content-Type-Options: nosniff`` on every answer."""
from __future__ import annotations

import uuid

import pytest

from .webapp_helpers import API, BROWSER, CURL, unique_text

UTF8 = "text/plain; charset=utf-8"
KIB = 1024


def utf8_text(size: int = 2000, char: str = "h\u00e9llo w\u00f6rld \u2713 ") -> bytes:
    """UTF-8 prose with non-ASCII characters that no other test uploads."""
    head = f"{uuid.uuid4().hex} ".encode()
    body = (char * (size // len(char.encode()) + 1)).encode()
    return head + body


def latin1_text() -> bytes:
    """ISO-8859-1 prose (no commas: libmagic would call it CSV)."""
    return f"{uuid.uuid4().hex}\n".encode() + b"caf\xe9 cr\xe8me br\xfbl\xe9e au go\xfbt du jour\n" * 40


def charset_of(res) -> str | None:
    params = dict(
        part.strip().split("=", 1) for part in res.headers["Content-Type"].split(";")[1:] if "=" in part
    )
    return params.get("charset")


# -- charset on /i/ and /d/ -----------------------------------------------------


def test_utf8_charset_helper():
    from pastefile.core.mimes import utf8_charset

    euro = "\u20ac".encode()
    assert utf8_charset(b"plain ascii", complete=True) == "utf-8"
    assert utf8_charset("h\u00e9llo".encode(), complete=True) == "utf-8"
    # a head cut inside a character is fine; a whole file ending so is not
    assert utf8_charset(b"abc" + euro[:2], complete=False) == "utf-8"
    assert utf8_charset(b"abc" + euro[:2], complete=True) is None
    assert utf8_charset(b"caf\xe9 au lait", complete=False) is None
    assert utf8_charset(b"\xff\xfeh\x00i\x00", complete=True) is None


@pytest.mark.parametrize("stored", ["row", "file"])
def test_utf8_text_is_served_with_its_charset(webapp_factory, stored):
    # inline_max 0 keeps every blob in a file: the sendfile path, not the row's bytes
    app = webapp_factory(**({"pastefile.inline_max": "0"} if stored == "file" else {}))
    data = utf8_text()
    doc = app.upload_json(data, "hello.txt")
    assert doc["mimetype"] == "text/plain"
    raw = app.get(f"/i/{doc['filehash']}")
    assert raw.headers["Content-Type"] == UTF8
    assert raw.body == data
    assert raw.text.endswith("w\u00f6rld \u2713 ")
    assert raw.headers["Content-Disposition"] == 'inline; filename="hello.txt"'
    download = app.get(f"/d/{doc['filehash']}")
    assert download.headers["Content-Type"] == UTF8
    assert download.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
    assert download.body == data
    # asked again (the decision is kept per blob), and with a range
    assert app.get(f"/i/{doc['filehash']}").headers["Content-Type"] == UTF8
    part = app.get(f"/i/{doc['filehash']}", headers={"Range": "bytes=0-9"}, status=206)
    assert part.headers["Content-Type"] == UTF8 and part.body == data[:10]


def test_ascii_text_is_utf8_too(webapp):
    doc = webapp.upload_json(unique_text(1500), "plain.txt")
    assert webapp.get(f"/i/{doc['filehash']}").headers["Content-Type"] == UTF8


def test_latin1_text_is_not_labelled_utf8(webapp):
    data = latin1_text()
    doc = webapp.upload_json(data, "latin1.txt")
    assert doc["mimetype"] == "text/plain"
    for route in ("i", "d"):
        res = webapp.get(f"/{route}/{doc['filehash']}")
        assert res.headers["Content-Type"] == "text/plain", route
        assert charset_of(res) is None
        assert res.body == data


def test_large_text_charset_from_its_head(webapp):
    # 3-byte characters: the 64 KiB head ends inside one, which is not an error
    data = utf8_text(200 * KIB, char="\u20ac")
    assert len(data) > 64 * KIB
    doc = webapp.upload_json(data, "euros.txt")
    res = webapp.get(f"/i/{doc['filehash']}")
    assert res.headers["Content-Type"] == UTF8
    assert res.body == data


def test_binary_download_stays_opaque(webapp):
    from .webapp_helpers import unique_image

    doc = webapp.upload_json(unique_image(), "pic.png")
    assert webapp.get(f"/i/{doc['filehash']}").headers["Content-Type"] == "image/png"
    assert webapp.get(f"/d/{doc['filehash']}").headers["Content-Type"] == "application/octet-stream"


def test_active_text_gets_no_charset_and_stays_an_attachment(webapp_factory):
    app = webapp_factory(**{"pastefile.allowed_types": "text/html text/plain"})
    body = f"<!DOCTYPE html><html><body><p>h\u00e9llo {uuid.uuid4().hex}</p></body></html>\n".encode()
    doc = app.upload_json(body, "page.html")
    assert doc["mimetype"] == "text/html"
    for route in ("i", "d"):
        res = app.get(f"/{route}/{doc['filehash']}")
        assert res.headers["Content-Type"] == "application/octet-stream"
        assert res.headers["Content-Disposition"].startswith("attachment;")


# -- the preview page shows text ----------------------------------------------


def test_preview_shows_text_escaped(webapp):
    marker = uuid.uuid4().hex
    # markup past the 4 KiB libmagic reads, or the upload would be HTML (refused)
    data = unique_text(5000) + f"\ncaf\u00e9 {marker}\n<script>alert('x')</script>\n& <b>bold</b>\n".encode()
    doc = webapp.upload_json(data, "notes.txt")
    res = webapp.get(f"/p/{doc['filehash']}", headers=BROWSER)
    assert res.content_type == "text/html"
    page = res.text
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert(" not in page
    assert "&amp; &lt;b&gt;bold&lt;/b&gt;" in page
    shown = res.html.select_one(".text-preview pre")
    assert shown.text == data.decode()
    assert f"caf\u00e9 {marker}" in shown.text
    assert res.html.select_one(".text-preview__more") is None
    # the same page from the page cache
    assert webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).text == page


def test_preview_of_long_text_is_cut_with_a_link(webapp):
    data = utf8_text(300 * KIB)
    doc = webapp.upload_json(data, "long.txt")
    res = webapp.get(f"/p/{doc['filehash']}", headers=BROWSER)
    shown = res.html.select_one(".text-preview pre").text
    assert data.decode().startswith(shown)
    assert 256 * KIB - 4 < len(shown.encode()) <= 256 * KIB
    more = res.html.select_one(".text-preview__more a")
    assert more["href"] == doc["url_i"]
    # rendered again, the same
    assert webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).html.select_one(".text-preview pre").text == shown


def test_preview_of_non_utf8_text_shows_replacement_characters(webapp):
    data = latin1_text()
    doc = webapp.upload_json(data, "latin1.txt")
    shown = webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).html.select_one(".text-preview pre").text
    assert "caf\ufffd cr\ufffdme" in shown


def test_preview_of_an_image_shows_no_text(webapp):
    from .webapp_helpers import unique_image

    doc = webapp.upload_json(unique_image(), "pic.png")
    assert webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).html.select_one(".text-preview") is None


# -- nosniff everywhere -------------------------------------------------------


def nosniff(res) -> bool:
    return res.headers.getall("X-Content-Type-Options") == ["nosniff"]


@pytest.mark.parametrize("page_headers", ["true", "false"])
def test_every_answer_is_nosniff(webapp_factory, page_headers):
    app = webapp_factory(**{
        "pastefile.page_security_headers": page_headers,
        "pastefile.public_latest": "true",
    })
    posted = app.upload(unique_text(900), "n.txt", headers=API)
    assert posted.content_type == "application/json" and nosniff(posted)
    doc = posted.json
    text_answer = app.upload(unique_text(900), "n2.txt", headers=CURL)
    assert text_answer.content_type == "text/plain" and nosniff(text_answer)
    meta = app.get(f"/j/{doc['filehash']}", headers=API)
    assert meta.content_type == "application/json" and nosniff(meta)
    # twice: the second answer comes from the kept JSON body
    assert nosniff(app.get(f"/j/{doc['filehash']}", headers=API))
    latest = app.get("/latest", headers=API, expect_errors=True)
    assert latest.content_type == "application/json" and nosniff(latest)
    home = app.get("/", headers=BROWSER)
    assert home.content_type == "text/html" and nosniff(home)
    assert nosniff(app.get(f"/p/{doc['filehash']}", headers=BROWSER))
    assert nosniff(app.get("/static/app.js"))
    assert nosniff(app.get("/static/app.css"))
    missing = "/j/" + "0" * 20
    assert nosniff(app.get(missing, headers=API, status=404))
    assert app.get(missing, headers=API, status=404).json["error"]["status"] == 404
    html_404 = app.get("/p/" + "0" * 20, headers=BROWSER, status=404)
    assert html_404.content_type == "text/html" and nosniff(html_404)
    # the guard's own answers (a bad method, a path that is not UTF-8)
    assert nosniff(app.request("/", method="OPTIONS", status=405))
    assert nosniff(app.get("/p/%ff", headers=API, status=400))
    # a redirect and the delete answer
    assert nosniff(app.get(f"/s/{doc['symlink']}", status=302))
    deleted = app.post(doc["url_delete"].replace("http://files.test", ""), headers=API)
    assert deleted.json == {"deleted": doc["filehash"]} and nosniff(deleted)


def test_page_cache_is_bounded_by_bytes_too():
    """Preview pages of long texts are kept, but never more bytes than allowed."""
    from pastefile.webapp.localcache import LocalLRU

    cache = LocalLRU(max_entries=100, max_bytes=1000)
    for i in range(5):
        cache.put(("p", i), bytes(300))
    assert [cache.get(("p", i)) is not None for i in range(5)] == [False, False, True, True, True]
    cache.put(("p", 4), bytes(100))  # replacing a page counts its new size only
    cache.put(("p", 5), bytes(300))
    assert cache.get(("p", 2)) is not None and cache.get(("p", 5)) is not None
    cache.put(("big",), bytes(5000))  # larger than the whole bound: not kept
    assert cache.get(("big",)) is None


def test_errors_as_plain_text_for_curl_and_text_clients(webapp_factory):
    """The rule upload answers follow: curl and Accept: text/plain get the
    error's message as one line, with the status and headers of the JSON
    and HTML errors; browsers keep the page, JSON clients the JSON."""
    app = webapp_factory(**{"pastefile.rate_limit.uploads": "1"})
    one = {"REMOTE_ADDR": "192.0.2.7"}
    for headers in (CURL, {"Accept": "text/plain"}):
        res = app.get("/p/0123456789abcdef0123456789abcdef.txt", headers=headers, status=404)
        assert res.content_type == "text/plain" and res.text == "There is no file at this address.\n"
        assert res.headers["Cache-Control"] == "no-store" and nosniff(res)
    assert app.get("/p/nothing", headers={**CURL, "Accept": "application/json"}, status=404).json["error"]["status"] == 404
    assert app.get("/p/nothing", headers=BROWSER, status=404).content_type == "text/html"
    bad = app.put("/a.txt?expires=soon", unique_text(300), headers=CURL, status=400)
    assert bad.text == "expires must be a number of seconds or a duration like 30m, 1h, 7d, 2w, got 'soon'\n"
    app.put("/first.txt", unique_text(300), headers=CURL, extra_environ=one)
    over = app.put("/second.txt", unique_text(300), headers=CURL, extra_environ=one, status=429)
    assert over.content_type == "text/plain" and over.text.count("\n") == 1 and over.text.endswith("\n")
    assert int(over.headers["Retry-After"]) >= 1
    doc = app.put("/r.txt", unique_text(300), headers=API, extra_environ={"REMOTE_ADDR": "192.0.2.8"}).json
    ranged = app.get(f"/i/{doc['filehash']}", headers={**CURL, "Range": "bytes=5000-"}, status=416)
    assert ranged.content_type == "text/plain" and ranged.headers["Content-Range"] == "bytes */300"
