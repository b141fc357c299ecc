"""The fast path for content links (webapp/fastread.py) answers exactly as
Pyramid's routing does: each request below is made twice on one app, with
the fast path off and on, and the answers compared whole (status, headers
in order, body) but for the request id.  The fast path marks the requests
it answers, so the comparison cannot pass by never taking it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from pastefile.core import records
from pastefile.webapp.fastread import MARKER
from pastefile.webapp.metrics import EXPORTER

from .webapp_helpers import API, BROWSER, CURL, unique_image, unique_text

ROUTES = {"s": "symlink", "p": "preview", "j": "meta", "i": "raw"}
# a small inline_max: files of a few KB are kept as blobs (files or objects);
# HTML is accepted, to be served as an attachment
SETTINGS = {"pastefile.inline_max": "2k", "pastefile.allowed_types": "text/html text/plain image/png"}


def answer(app, method: str, url: str, headers: dict, fast: bool):
    app.registry.pastefile_fast_reads = fast
    try:
        res = app.request(url, method=method, headers=headers, expect_errors=True)
    finally:
        app.registry.pastefile_fast_reads = True
    headerlist = [(name, _stable(name, value)) for name, value in res.headerlist if name != "X-Request-Id"]
    return (res.status, headerlist, res.body), res.request.environ.get(MARKER)


def _stable(name: str, value: str) -> str:
    # a presigned object-store redirect is signed at the second it is made
    return value.partition("?")[0] if name == "Location" and "X-Amz-" in value else value


def fast_expected(method: str, url: str) -> str | None:
    """The route the fast path answers this request under, else None."""
    path, _, query = url.partition("?")
    parts = path.split("/")
    if query or len(parts) != 3 or parts[1] not in ROUTES or not parts[2]:
        return None
    if any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in parts[2]):
        return None
    methods = ("GET",) if parts[1] == "j" else ("GET", "HEAD")
    return ROUTES[parts[1]] if method in methods else None


def check_same(app, method: str, url: str, headers: dict | None = None, *, fast_first: bool = False) -> str | None:
    """The request by both paths: the same answer; the route the fast path
    took (None when it passed the request on)."""
    headers = headers or {}
    order = (True, False) if fast_first else (False, True)
    results = {fast: answer(app, method, url, headers, fast) for fast in order}
    (slow, slow_marker), (quick, quick_marker) = results[False], results[True]
    assert slow_marker is None
    assert quick == slow, (method, url, headers)
    assert quick_marker == fast_expected(method, url), (method, url)
    return quick_marker


@pytest.fixture
def app(webapp_factory):
    return webapp_factory(**SETTINGS)


def uploads(app) -> list[dict]:
    return [
        app.upload_json(unique_text(1000), "small.txt"),  # inline, in its row
        app.upload_json(unique_text(3000), "big.txt"),  # a blob of its own
        app.upload_json(unique_image("PNG"), "picture.png"),
        app.upload_json(b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>\n<!-- "
                        + unique_text(60) + b" -->\n", "page.html"),  # active: an attachment
        app.upload_json(unique_text(1500), "caf\u00e9 \"quoted\".txt"),
    ]


def links(doc: dict) -> list[str]:
    key = doc["filehash"]
    return [f"/s/{doc['symlink']}", f"/p/{key}", f"/j/{key}", f"/i/{key}"]


def conditional_headers(doc: dict) -> list[dict]:
    etag = f'"{doc["sha256"]}"'
    return [
        {},
        {"If-None-Match": etag},
        {"If-None-Match": '"other"'},
        {"If-None-Match": "*"},
        {"If-None-Match": f'"other", {etag}'},
        {"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"},
        {"Range": "bytes=0-9"},
        {"Range": "bytes=-5"},
        {"Range": "bytes=5-"},
        {"Range": "bytes=0-1,3-4"},
        {"Range": "bytes=x-y"},
        {"Range": "bytes=-0"},
        {"Range": "bytes=99999999-"},
        {"Range": "items=0-9"},
        {"Range": "bytes=0-9", "If-Range": etag},
        {"Range": "bytes=0-9", "If-Range": '"other"'},
        {"Range": "bytes=99999999-", "If-None-Match": etag},
        CURL,
        API,
        BROWSER,
    ]


def test_the_same_answers_both_ways(app):
    taken = set()
    for doc in uploads(app):
        for url in links(doc):
            for headers in conditional_headers(doc):
                for method in ("GET", "HEAD"):
                    taken.add(check_same(app, method, url, headers))
    assert taken == {None, *ROUTES.values()}


def test_a_first_read_the_fast_path_makes(app):
    # nothing of these pastes in any cache yet: the fast path reads them through
    for doc in uploads(app):
        for url in links(doc):
            assert check_same(app, "GET", url, fast_first=True) is not None


@pytest.mark.parametrize("method", ["POST", "PUT", "OPTIONS"])
def test_other_methods_go_to_pyramid(app, method):
    doc = app.upload_json(unique_text(500), "m.txt")
    for url in links(doc):
        assert check_same(app, method, url) is None


def test_query_strings_and_other_shapes_go_to_pyramid(app):
    doc = app.upload_json(unique_image("PNG", (80, 60)), "q.png")
    key = doc["filehash"]
    for url in (f"/i/{key}?w=16&h=16", f"/i/{key}?download", f"/p/{key}?x=1", f"/j/{key}?a=b",
                f"/s/{doc['symlink']}?utm=1", f"/i/{key}/", f"/p/{key}/x", f"/d/{key}", "/i/", "/p/",
                "/i/caf%C3%A9", "/p/a%20b", f"/P/{key}"):
        for headers in ({}, API, BROWSER):
            assert check_same(app, "GET", url, headers) is None


@pytest.mark.parametrize("url", [
    "/p/0123456789abcdef0123456789abcdef.txt", "/i/0123456789abcdef0123456789abcdef",
    "/j/0123456789abcdef0123456789abcdef.png", "/s/zzzzzz", "/s/0", "/s/" + "a" * 100,
    "/p/not-a-filehash", "/i/..", "/j/x.y",
])
@pytest.mark.parametrize("headers", [{}, API, CURL, BROWSER])
def test_missing_pastes(app, url, headers):
    for method in ("GET", "HEAD"):
        assert check_same(app, method, url, headers) == fast_expected(method, url)


def test_deleted_and_expired_pastes(app, monkeypatch):
    deleted = app.upload_json(unique_text(3000), "gone.txt")
    inline = app.upload_json(unique_text(500), "gone-small.txt")
    for doc in (deleted, inline):
        for url in links(doc):
            check_same(app, "GET", url)  # cached now
        app.post(doc["url_delete"][doc["url_delete"].index("/x/"):], headers=API)
        for url in links(doc):
            for headers in ({}, API, BROWSER):
                assert check_same(app, "GET", url, headers) is not None
                assert app.get(url, headers=API, expect_errors=True).status_int == 404

    expiring = app.upload(unique_text(800), "soon.txt", headers=API, expires="1h").json
    for url in links(expiring):
        assert app.get(url).status_int in (200, 302)
    later = records.utcnow() + timedelta(hours=2)
    monkeypatch.setattr(records, "utcnow", lambda: later)
    for url in links(expiring):
        for method in ("GET", "HEAD"):
            check_same(app, method, url, API)
        assert app.get(url, headers=API, expect_errors=True).status_int == 404


def test_accel_redirect_both_ways(webapp_factory):
    app = webapp_factory(**SETTINGS, **{"pastefile.accel_redirect": "/_blobs"})
    for doc in uploads(app):
        for headers in conditional_headers(doc):
            for method in ("GET", "HEAD"):
                check_same(app, method, f"/i/{doc['filehash']}", headers)


def test_security_headers_off_both_ways(webapp_factory):
    app = webapp_factory(**SETTINGS, **{"pastefile.page_security_headers": "false"})
    doc = app.upload_json(unique_text(700), "plain.txt")
    for url in links(doc):
        assert check_same(app, "GET", url, BROWSER) is not None


def test_fast_reads_are_logged_and_counted_under_their_route(app):
    doc = app.upload_json(unique_text(600), "counted.txt")
    counter = EXPORTER.metrics()["requests"]
    classes = {route: "3xx" if route == "symlink" else "2xx" for route in ROUTES.values()}
    before = {route: counter.labels(route, status)._value.get() for route, status in classes.items()}
    for url in links(doc):
        res = app.get(url)
        assert res.request.environ[MARKER] in ROUTES.values()
        assert res.headers["X-Request-Id"]
    for route, status in classes.items():
        assert counter.labels(route, status)._value.get() == before[route] + 1


def test_no_fast_path_when_routes_are_logged(webapp_factory):
    app = webapp_factory(**{"pyramid.debug_routematch": "true"})
    doc = app.upload_json(unique_text(600), "logged.txt")
    res = app.get(f"/i/{doc['filehash']}")
    assert MARKER not in res.request.environ


def test_routes_shadowed_or_changed_are_left_to_pyramid():
    from pyramid.config import Configurator

    from pastefile.core.urls import PATTERNS
    from pastefile.webapp.fastread import _routes

    config = Configurator()
    config.add_route("uploads_only", "/{kind}/{key}", request_method="POST")  # other methods: no shadow
    config.add_route("raw", PATTERNS["raw"])
    config.add_route("anything", "/s/{x}")  # takes /s/ before the short links
    config.add_route("symlink", PATTERNS["symlink"])
    config.add_route("preview", "/p/{other}")  # not the shape routes.py makes
    config.commit()
    assert set(_routes(config.registry)) == {"i"}


def test_request_ids_are_new_and_well_formed():
    import re
    from concurrent.futures import ThreadPoolExecutor

    from pastefile.webapp.accesslog import new_request_id

    with ThreadPoolExecutor(4) as pool:
        ids = [i for batch in pool.map(lambda _: [new_request_id() for _ in range(5000)], range(4)) for i in batch]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_clf_time_of_each_second():
    import time

    from pastefile.webapp.accesslog import _clf_time

    for when in (0.0, 1733346000.25, 1733346000.99, 1733346001.0, 1733346001.5, 1733346000.5, 1764892799.999):
        assert _clf_time(when) == time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(int(when)))


def test_kinds_without_their_route_go_to_pyramid(app, monkeypatch):
    from pastefile.webapp import fastread

    doc = app.upload_json(unique_text(500), "partial.txt")
    # the tween of an app whose routes lack /p/ and /j/ as routes.py makes them
    only = {kind: entry for kind, entry in fastread._routes(app.registry).items() if kind in "si"}
    monkeypatch.setattr(fastread, "_routes", lambda registry: only)
    tween = fastread.fast_read_tween_factory(lambda request: "pyramid", app.registry)
    for url, fast in ((f"/p/{doc['filehash']}", False), (f"/j/{doc['filehash']}", False),
                      (f"/i/{doc['filehash']}", True)):
        request = app.app.request_factory.blank(url)
        request.registry = app.registry
        answer = tween(request)
        assert (answer != "pyramid") == fast, url
