"""HTTP/1.1 framing (RFC 9112) as the server reads it, over raw sockets.

A front end and the server must agree where each request ends: a request
whose framing two readers could read differently (``Content-Length`` and
``Transfer-Encoding`` together, a folded or tab-padded coding,
``Transfer-Encoding`` in HTTP/1.0) is answered 400 and the connection
closed, so a request hidden behind its body is never answered.  A request
must name its host exactly once (HTTP/1.1), and a client that asks for
``100 Continue`` learns of a 413 before it sends a body.

Each case runs against a live server with streamed uploads (pastefile's
default) and without them, and every answer is read until the server closes
the connection, so a second answer cannot go unnoticed.
"""
from __future__ import annotations

import json

import pytest

import pastefile.webapp
from pastefile.webapp.multipart_upload import FORM_OVERHEAD

from .conftest import webapp_settings
from .rawhttp import Reply, chunked, replies
from .servers import LiveServer
from .test_hostile_input import Req, form, part
from .webapp_helpers import unique_text

LIMIT = 1 << 20  # pastefile.max_upload_size of the server under test
WAITRESS_LIMIT = 8 << 20  # its waitress max_request_body_size
HOST = "127.0.0.1"
# what a front end framing by Content-Length would take for part of a body
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module", params=[
    ("sqlite", "streaming"), ("sqlite", "spooling"), ("postgresql", "streaming"), ("postgresql", "spooling"),
], ids="-".join)
def port(request, tmp_path_factory):
    """The port of a live pastefile server on each backend, with streamed uploads or without."""
    backend, mode = request.param
    tmp = tmp_path_factory.mktemp(f"framing-{backend}-{mode}")
    settings = webapp_settings(request, backend, tmp, **{"pastefile.max_upload_size": str(LIMIT)})
    app = pastefile.webapp.main({}, **settings)
    with LiveServer(app, stream_uploads=mode == "streaming", inbuf_overflow=64 * 1024,
                    max_request_body_size=WAITRESS_LIMIT) as server:
        yield int(server.url.rsplit(":", 1)[1])
    app.registry.pastefile.close()


def refused(found: list[Reply], status: int = 400) -> Reply:
    """``found`` is one answer, ``status``, that closes the connection (the
    server closed it: :func:`replies` reads until then)."""
    assert [r.status for r in found] == [status], [(r.status, r.body[:200]) for r in found]
    assert found[0].header("Connection") == "close"
    return found[0]


def smuggling(head: bytes, body: bytes) -> bytes:
    """A POST with ``head``'s framing headers and ``body``, then a request
    that a reader of the chunked coding sees after the body."""
    return b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n" + body + SMUGGLED


# -- 1. Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3) ---------------

CHUNKED_END = b"0\r\n\r\n"
CL = b"Content-Length: %d\r\n" % (len(CHUNKED_END) + len(SMUGGLED))


@pytest.mark.parametrize("length", [CL, CL.replace(b"-", b"_")], ids=["content-length", "content_length"])
def test_content_length_and_chunked_is_refused(port, length):
    # waitress drops a field named with "_"; a front end may read it as "-"
    refused(replies(port, smuggling(length + b"Transfer-Encoding: chunked\r\n", CHUNKED_END)))


@pytest.mark.parametrize("length", [CL, b""], ids=["with-content-length", "alone"])
def test_folded_transfer_encoding_is_refused(port, length):
    refused(replies(port, smuggling(length + b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_END)))


def test_tab_padded_transfer_encoding_with_content_length_is_refused(port):
    refused(replies(port, smuggling(CL + b"Transfer-Encoding:\tchunked\r\n", CHUNKED_END)))


def test_transfer_encoding_on_http_1_0_keep_alive_is_refused(port):
    # waitress frames an HTTP/1.0 request by Content-Length alone (none: no
    # body), a front end by its chunks
    data = (b"POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(chunked(SMUGGLED)) + SMUGGLED)
    refused(replies(port, data))


# -- 2. Host (RFC 9112 §3.2) -------------------------------------------------------


def test_duplicate_host_is_refused(port):
    data = Req("PUT", "/dup.txt", [("Host", f"{HOST}:{port}"), ("Host", "evil.example")], unique_text(100)).head()
    reply = refused(replies(port, data))
    assert b"evil.example" not in reply.body


def test_http_1_1_without_host_is_refused(port):
    refused(replies(port, b"GET / HTTP/1.1\r\nAccept: application/json\r\n\r\n" + SMUGGLED))


def test_http_1_0_without_host_is_served(port):
    found = replies(port, b"GET /openapi.json HTTP/1.0\r\n\r\n")
    assert [r.status for r in found] == [200]
    assert found[0].content_type == "application/json"


# -- 3. Expect: 100-continue over a limit ----------------------------------------


def expecting(method: str, target: str, length: int, headers: list | None = None) -> bytes:
    return Req(method, target, [("Expect", "100-continue"), *(headers or [])], length=str(length)).head()


FORM = [("Content-Type", "multipart/form-data; boundary=hostileboundary")]


@pytest.mark.parametrize("method,target", [("PUT", "/big.bin"), ("POST", "/"), ("POST", "/j/0123")])
def test_expect_over_the_waitress_limit_gets_413_at_once(port, method, target):
    reply = refused(replies(port, expecting(method, target, WAITRESS_LIMIT + 1, FORM), b"x" * 1000,
                            wait_for_continue=True), 413)
    assert b"max_body" in reply.body


def test_expect_multipart_over_max_upload_size_gets_413_at_once(port):
    reply = refused(replies(port, expecting("POST", "/", LIMIT + FORM_OVERHEAD + 1, FORM), b"x" * 1000,
                            wait_for_continue=True), 413)
    assert b"limit" in reply.body


def test_expect_put_over_max_upload_size_gets_413_at_once(port):
    refused(replies(port, expecting("PUT", "/big.txt", LIMIT + 1), b"x" * 1000, wait_for_continue=True), 413)


def test_expect_at_the_view_limit_is_invited(port):
    """The early 413 follows the views' rule to the byte: at the limit, the
    body is asked for (and the view then judges the file itself)."""
    data = unique_text(LIMIT)
    found = replies(port, expecting("PUT", "/limit.txt", LIMIT), data, wait_for_continue=True)
    assert [r.status for r in found] == [100, 200]
    framing = len(form([part("file", b"", "big.txt")]))
    body = form([part("file", b"x" * (LIMIT + FORM_OVERHEAD - framing), "big.txt")])
    found = replies(port, expecting("POST", "/", len(body), FORM), body, wait_for_continue=True)
    assert [r.status for r in found] == [100, 413]


def test_expect_under_the_limit_gets_100_then_the_answer(port):
    found = replies(port, Req("PUT", "/small.txt", [("Expect", "100-continue")], unique_text(5000)).head(),
                    unique_text(5000), wait_for_continue=True)
    assert [r.status for r in found] == [100, 200], found
    body = form([part("file", unique_text(3000), "small.txt")])
    found = replies(port, Req("POST", "/", [("Expect", "100-continue"), *FORM], body).head(), body,
                    wait_for_continue=True)
    assert [r.status for r in found] == [100, 200], found
    # off the upload routes only waitress's limit applies
    found = replies(port, expecting("POST", "/x/0123/token", 2 * LIMIT), b"x" * (2 * LIMIT), wait_for_continue=True)
    assert [r.status for r in found] == [100, 404], found


# -- what stays as it was ----------------------------------------------------------


def test_pipelined_keep_alive_and_chunked_uploads_still_work(port):
    text = unique_text(70_000)
    keep = [("Connection", "keep-alive")]
    data = (Req("GET", "/openapi.json", keep).head()
            + Req("PUT", "/chunked.txt", keep, chunked=True).head() + b"".join(chunked(text, 4096))
            # RFC-valid whitespace: a tab before the coding, alone, is fine
            + b"PUT /tab.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding:\tchunked\r\n\r\n"
            + b"".join(chunked(text))
            + b"GET /openapi.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            + Req("GET", "/openapi.json").head())
    found = replies(port, data)
    assert [r.status for r in found] == [200, 200, 200, 200, 200]
    assert json.loads(found[1].body)["sha256"] == json.loads(found[2].body)["sha256"]  # the same file twice


def test_a_plain_wsgi_app_gets_the_same_framing():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    with LiveServer(app) as server:
        plain = int(server.url.rsplit(":", 1)[1])
        refused(replies(plain, smuggling(CL + b"Transfer-Encoding: chunked\r\n", CHUNKED_END)))
        refused(replies(plain, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
        refused(replies(plain, expecting("PUT", "/x", 2 << 30), b"x", wait_for_continue=True), 413)
        found = replies(plain, expecting("PUT", "/x", 2 * LIMIT), b"x" * (2 * LIMIT), wait_for_continue=True)
        assert [r.status for r in found] == [100, 200]
