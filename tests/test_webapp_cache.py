"""The web app and its cache: warm lookups issue no SQL, a dead memcached is
only slower, and errors never show a traceback."""
from __future__ import annotations

import io
import logging
import os

import pytest
from PIL import Image

from .conftest import drop_blob
from .servers import free_port
from .webapp_helpers import (
    public,
    API,
    BROWSER,
    CURL,
    assert_no_traceback,
    error_of,
    unique_image,
    unique_text,
)

BASE = "http://localhost"

# each lookup route and what a good answer looks like
ROUTES = {
    "p": ("/p/{filehash}", 200),
    "s": ("/s/{symlink}", 302),
    "j": ("/j/{filehash}", 200),
    "i": ("/i/{filehash}", 200),
}


def _url(route: str, doc: dict) -> str:
    return ROUTES[route][0].format(**doc)


@pytest.mark.parametrize("route", list(ROUTES))
def test_warm_lookup_issues_no_sql(webapp_factory, route):
    uploader = webapp_factory()
    data = unique_image("PNG", (40, 30))
    doc = uploader.upload_json(data, "warm.png")
    # a second app on the same database and files, with an empty cache
    app = webapp_factory()
    url, status = _url(route, doc), ROUTES[route][1]
    with app.count_sql() as cold:
        first = app.get(url, headers=BROWSER, status=status)
    assert cold.count > 0, "the cold lookup should have read the database"
    with app.count_sql() as warm:
        second = app.get(url, headers=BROWSER, status=status)
    assert warm.count == 0, warm.statements
    assert second.body == first.body
    if route == "i":
        assert second.body == data
    if route == "s":
        assert second.location == doc["url_p"]
    if route == "j":
        meta = second.json
        assert meta.pop("similar") == [] and meta == public(doc)


def test_lookups_after_upload_issue_no_sql(webapp):
    """The upload fills the cache once its transaction commits."""
    data = unique_text(1800)
    doc = webapp.upload_json(data, "fresh.txt")
    with webapp.count_sql() as sql:
        assert webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).status_int == 200
        assert webapp.get(f"/s/{doc['symlink']}", status=302).location == doc["url_p"]
        assert webapp.get(f"/j/{doc['filehash']}").json == public(doc)
        assert webapp.get(f"/i/{doc['filehash']}").body == data
        assert webapp.get(f"/d/{doc['filehash']}").body == data
    assert sql.count == 0, sql.statements


def test_repeated_upload_of_known_content_is_cheap(webapp):
    data = unique_text(1000)
    doc = webapp.upload_json(data, "again.txt")
    rows = webapp.service.count()
    with webapp.count_sql() as sql:
        assert webapp.upload_json(data, "again.txt")["filehash"] == doc["filehash"]
    # the database settles it (never the cache): two inserts that conflict
    # and write nothing, and the two rows they found
    assert 0 < sql.count <= 4, sql.statements
    assert webapp.service.count() == rows


def test_variant_second_time_issues_no_sql_and_no_work(webapp):
    doc = webapp.upload_json(unique_image("PNG", (200, 200)), "v.png")
    url = f"/i/{doc['filehash']}?w=50&h=50"
    first = webapp.get(url)
    with webapp.count_sql() as sql:
        second = webapp.get(url)
    assert sql.count == 0
    assert second.body == first.body and second.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("servers", ["dead", "one dead"])
def test_cache_down_still_serves(webapp_factory, memcached_nodes, servers, caplog):
    dead = f"127.0.0.1:{free_port()}"
    spec = dead if servers == "dead" else f"{memcached_nodes[0].address} {dead}"
    app = webapp_factory(**{"pastefile.cache.servers": spec})
    caplog.set_level(logging.WARNING, logger="pastefile")
    assert app.get("/").status_int == 200
    data = unique_image("PNG", (120, 90))
    doc = app.upload_json(data, "nocache.png")
    assert (doc["width"], doc["height"]) == (120, 90)
    # the same content again still dedupes through the database
    assert app.upload_json(data, "nocache.png")["filehash"] == doc["filehash"]
    link = app.upload(unique_text(), "c.txt", headers=CURL).text.strip()
    assert link.startswith(f"{BASE}/s/")
    fh = doc["filehash"]
    assert app.get(f"/p/{fh}", headers=BROWSER).status_int == 200
    meta = app.get(f"/j/{fh}").json
    assert meta.pop("similar") == [] and meta == public(doc)
    assert app.get(f"/s/{doc['symlink']}", status=302).location == doc["url_p"]
    assert app.get(f"/i/{fh}").body == data
    assert app.get(f"/d/{fh}").body == data
    variant = app.get(f"/i/{fh}?w=30&h=30")
    assert Image.open(io.BytesIO(variant.body)).size == (30, 30)
    resized = app.get(f"/r/{fh}?w=60").text
    assert app.get(f"/j/{resized.rsplit('/', 1)[1]}").json["width"] == 60
    assert app.service.latest(3)[0].url_i(BASE) == resized
    assert error_of(app.get(f"/p/{'f' * 32}.png", status=404))["status"] == 404
    if servers == "dead":
        assert any("memcached" in r.getMessage() for r in caplog.records)


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/nowhere"),
        ("GET", "/p/"),
        ("GET", "/x/y/z"),
        ("GET", "/static/missing.css"),
        ("DELETE", "/"),
        ("PUT", "/"),
        ("POST", "/p/0123456789abcdef0123456789abcdef"),
        ("DELETE", "/i/0123456789abcdef0123456789abcdef"),
        ("POST", "/latest"),
    ],
)
def test_not_found_and_not_allowed_never_leak_tracebacks(webapp, method, path):
    for headers in (BROWSER, API, CURL):
        res = webapp.request(path, method=method, headers=headers, expect_errors=True)
        assert res.status_int in (404, 405), (method, path, res.status)
        assert_no_traceback(res)
        if headers is BROWSER:
            assert res.content_type == "text/html"
            assert res.html.select_one(".error-page__status").text == str(res.status_int)
        elif headers is CURL:
            assert res.content_type == "text/plain" and res.text.count("\n") == 1
        else:
            assert error_of(res)["status"] == res.status_int


def test_server_error_is_clean(webapp_factory, caplog):
    """A blob gone from disk is a 500 with a clear message, logged, not shown."""
    webapp = webapp_factory(**{"pastefile.inline_max": "0"})
    data = unique_text(800)
    doc = webapp.upload_json(data, "lost.txt")
    sha = doc["sha256"]
    drop_blob(webapp.service, sha)
    caplog.set_level(logging.ERROR, logger="pastefile")
    page = webapp.get(f"/i/{doc['filehash']}", headers=BROWSER, status=500)
    assert page.content_type == "text/html"
    assert page.html.select_one(".error-page__title").text == "Server error"
    assert_no_traceback(page)
    api = webapp.get(f"/d/{doc['filehash']}", headers=API, status=500)
    err = error_of(api)
    assert err["status"] == 500 and "nothing was stored" in err["message"]
    assert sha not in api.text and "FileNotFoundError" not in api.text
    assert_no_traceback(api)
    assert api.headers["Cache-Control"] == "no-store"
    assert any(r.exc_info for r in caplog.records), "the traceback belongs in the log"
