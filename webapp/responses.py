"""HTTP details of serving user content (caching, ranges, disposition,
sandboxing) and the answers every part of the app builds: JSON and errors."""
from __future__ import annotations

import functools
import json
import re
from typing import BinaryIO
from urllib.parse import quote

from pyramid.renderers import render_to_response
from pyramid.response import Response
from webob.acceptparse import create_accept_header
from webob.util import status_reasons

from pastefile.core import Content, mimes

from .localcache import LocalLRU

IMMUTABLE = "public, max-age=31536000, immutable"
_CHUNK = 64 * 1024
_UNSAFE_ASCII = re.compile(r'[^\x20-\x7e]|["\\]')


def _preferred(request, offers: tuple[str, ...]) -> str | None:
    """The offer the client ranks highest (ties go to the earlier offer)."""
    accept = request.headers.get("Accept")
    if accept is None:
        return offers[0]
    return _negotiate(accept, offers)


@functools.lru_cache(maxsize=512)
def _negotiate(accept: str, offers: tuple[str, ...]) -> str | None:
    # clients send a handful of distinct Accept values; parsing one costs
    # more than the rest of a small upload's response
    acceptable = create_accept_header(accept).acceptable_offers(offers)
    return acceptable[0][0] if acceptable else None


def json_response(data) -> Response:
    """``data`` as a JSON body (ASCII, so no charset), its headers set as
    one list: the JSON renderer's machinery cost more than the lookup."""
    return json_body_response(json_body(data))


def json_body_response(body: bytes) -> Response:
    """An encoded JSON body as a response."""
    return Response(body=body, headerlist=[
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
    ])


def json_body(data) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("ascii")


def error_response(request, status: int, title: str, message: str) -> Response:
    """An error as one line of text for curl and text/plain clients (the
    rule upload answers follow), JSON for other API clients, else the HTML
    error page; here, not among the views, so tweens and the content
    helpers import it at top level."""
    if wants_text(request):
        # one line: a shell script reads it with `read` or prints it as is
        response = Response(" ".join(message.split()) + "\n", content_type="text/plain", charset="utf-8")
        response.headers["X-Content-Type-Options"] = "nosniff"
    elif wants_json(request):
        response = json_response({"error": {"status": status, "title": title, "message": message}})
    else:
        response = render_to_response(
            "pastefile.webapp:templates/error.jinja2",
            {"status": status, "title": title, "message": message},
            request=request,
        )
    if status in status_reasons:
        response.status_int = status
    else:  # the protocols' own (tus's 460): their title as the reason
        response.status = f"{status} {title}"
    response.cache_control = "no-store"
    return response


def wants_json(request) -> bool:
    """JSON for API clients (Accept: application/json, */*, curl); HTML only
    when the client prefers it, as browsers do."""
    return _preferred(request, ("application/json", "text/html")) != "text/html"


def wants_text(request) -> bool:
    """Plain text for curl or a client asking for text/plain first."""
    if _preferred(request, ("application/json", "text/plain", "text/html")) == "text/plain":
        return True
    explicit = "application/json" in (request.headers.get("Accept") or "")
    return not explicit and (request.user_agent or "").lower().startswith("curl/")


@functools.lru_cache(maxsize=4096)
def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266 with an ASCII fallback and an RFC 5987 ``filename*``.

    Control characters, quotes and backslashes never reach the header.
    """
    clean = "".join(c for c in filename if c >= " " and c != "\x7f")
    fallback = _UNSAFE_ASCII.sub("_", clean) or "file"
    value = f'{kind}; filename="{fallback}"'
    if fallback != clean:
        value += f"; filename*=UTF-8''{quote(clean, safe='')}"
    return value


# how much of a text file decides its charset: all of a small one, the head
# of a large one (the rest is not read on a request's path)
CHARSET_HEAD = 64 * 1024


_UNKNOWN = object()
# charset of each text blob, decided once per process: the bytes under a
# content hash never change, so an entry never goes stale
_charsets = LocalLRU(16384)


def served_type(blob, content: Content) -> str:
    """The Content-Type of a blob: its sniffed type, with ``charset=utf-8``
    for text whose bytes are UTF-8 (browsers otherwise guess Latin-1 and
    show ``hÃ©llo``).  ``content``: what the service serves for it."""
    mimetype = blob.mimetype
    if not mimetype.startswith("text/") or mimes.is_active(mimetype):
        return mimetype
    charset = _charsets.get(blob.sha256, _UNKNOWN)
    if charset is _UNKNOWN:
        data = content.data
        if data is None:
            with content.open() as fileobj:
                data = fileobj.read(CHARSET_HEAD)
        charset = mimes.utf8_charset(data[:CHARSET_HEAD], complete=blob.size <= CHARSET_HEAD)
        _charsets.put(blob.sha256, charset)
    return f"{mimetype}; charset={charset}" if charset else mimetype


_RANGE_SPEC = re.compile(r"([0-9]*)[ \t]*-[ \t]*([0-9]*)")


def single_range(header: str, size: int) -> str | None:
    """``Range`` reduced to one well-formed byte range WebOb answers
    correctly, or None to ignore it (RFC 9110 lets a server ignore any Range).

    WebOb alone raises on ``bytes=-`` or ``bytes=--1`` (a 500, outside the
    error views), serves ``bytes=-0`` and ``bytes=0--1`` as 206 with every
    byte, and answers ``bytes=0-1,3-4`` with its first range only.  Here:
    other units, malformed or reversed specs and several ranges are ignored
    (200 with the whole body); a zero-length suffix is unsatisfiable (416);
    a suffix longer than the file is all of it (206, where WebOb says 416).
    """
    unit, eq, ranges = header.partition("=")
    if not eq or unit.strip().lower() != "bytes" or len(header) > 200:
        return None
    specs = [spec.strip() for spec in ranges.split(",") if spec.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if first and last:
        return f"bytes={first}-{last}" if int(last) >= int(first) else None
    if first:
        return f"bytes={first}-"
    if last:
        suffix = int(last)
        if suffix == 0:
            return f"bytes={size}-"
        # a suffix longer than the file is the whole file (WebOb would say 416)
        return f"bytes=-{suffix}" if suffix < size else "bytes=0-"
    return None


def _normalize_range(request, size: int, etag: str) -> bool:
    """Leave in the environ only a Range that is to be honoured (one range,
    and an ``If-Range`` naming this ETag if any); True when it is not
    satisfiable."""
    environ = request.environ
    header = environ.get("HTTP_RANGE")
    if header is None:
        return False
    spec = single_range(header, size)
    if_range = environ.get("HTTP_IF_RANGE")
    # no Last-Modified here, so only the strong ETag itself can match If-Range
    if spec is None or (if_range is not None and if_range.strip() != f'"{etag}"'):
        del environ["HTTP_RANGE"]
        return False
    environ["HTTP_RANGE"] = spec
    first = spec[len("bytes="):].partition("-")[0]
    return bool(first) and int(first) >= size


def range_not_satisfiable(request, size: int) -> Response:
    """416 with ``Content-Range: bytes */size``, its body an error like any other."""
    response = error_response(
        request, 416, "Range not satisfiable", f"The range asked for starts at or after the end of the {size} bytes."
    )
    response.headers["Content-Range"] = f"bytes */{size}"
    return response


class RangeFileIter:
    """Iterates a file in chunks; WebOb calls ``app_iter_range`` for 206 replies."""

    def __init__(self, fileobj: BinaryIO, start: int = 0, stop: int | None = None):
        self.file = fileobj
        self.start = start
        self.stop = stop
        fileobj.seek(start)

    def app_iter_range(self, start, stop):
        return RangeFileIter(self.file, start, stop)

    def __iter__(self):
        remaining = None if self.stop is None else self.stop - self.start
        while remaining is None or remaining > 0:
            chunk = self.file.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

    def close(self):
        self.file.close()


_CONDITIONAL_HEADERS = (
    "HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE",
)


def content_response(
    request,
    *,
    fileobj: BinaryIO | None,
    data: bytes | None = None,
    size: int,
    mimetype: str,
    etag: str,
    filename: str,
    attachment: bool,
    accel_path: str | None = None,
) -> Response:
    """User content with a strong ETag, immutable caching, 304 and 206;
    the bytes come from ``data`` or the open file ``fileobj``."""
    environ = request.environ
    # WebOb's conditional machinery (304, 206, 412) only for a request that
    # asks for it: most reads send no Range and no If-* header
    conditional = any(key in environ for key in _CONDITIONAL_HEADERS)
    if conditional and _normalize_range(request, size, etag) and etag not in request.if_none_match:
        if fileobj is not None:
            fileobj.close()
        return range_not_satisfiable(request, size)
    if mimes.is_active(mimetype.partition(";")[0].strip()):
        attachment = True  # HTML, SVG, XML would run in our origin
        mimetype = "application/octet-stream"
    # the header list in one go: WebOb's property setters, one by one, cost
    # more than the rest of a cached read
    headerlist = [
        ("Content-Type", mimetype),  # as sniffed (text: see served_type)
        ("Content-Disposition", content_disposition("attachment" if attachment else "inline", filename)),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "sandbox"),
        ("Cache-Control", IMMUTABLE),
        ("ETag", f'"{etag}"'),
        ("Accept-Ranges", "bytes"),
    ]
    if data is not None and accel_path is None:
        headerlist.append(("Content-Length", str(len(data))))
        return Response(app_iter=[data], headerlist=headerlist, conditional_response=conditional)
    response = Response(headerlist=headerlist, conditional_response=conditional)
    if accel_path is not None:
        # nginx follows X-Accel-Redirect whatever the status, so a 304 must
        # not carry it; ranges are nginx's to answer from the file itself
        response.conditional_response = False
        if etag in request.if_none_match:
            response.status_int = 304
            for header in ("Content-Type", "Content-Disposition", "Content-Length"):
                response.headers.pop(header, None)
            if fileobj is not None:
                fileobj.close()
            return response
        response.headers["X-Accel-Redirect"] = accel_path
        response.content_length = 0
        if fileobj is not None:
            fileobj.close()
        return response
    file_wrapper = request.environ.get("wsgi.file_wrapper")
    if file_wrapper is not None and "Range" not in request.headers and request.method == "GET":
        # the server streams the file itself (waitress: from its main loop)
        response.app_iter = file_wrapper(fileobj, _CHUNK)
    else:
        # app_iter first: assigning it resets Content-Length
        response.app_iter = RangeFileIter(fileobj)
    response.content_length = size
    return response


def redirect_response(request, content: Content, *, mimetype: str, etag: str, filename: str,
                      attachment: bool) -> Response:
    """A 302 to a presigned GET of the object, which answers with the
    headers the app would send (type, disposition); a 304 for a matching
    If-None-Match, without going to the store.  The redirect itself is not
    cached: its URL expires."""
    if mimes.is_active(mimetype.partition(";")[0].strip()):
        attachment = True
        mimetype = "application/octet-stream"
    headerlist = [("ETag", f'"{etag}"'), ("X-Content-Type-Options", "nosniff")]
    if etag in request.if_none_match:
        headerlist.append(("Cache-Control", IMMUTABLE))
        return Response(status=304, headerlist=headerlist)
    disposition = content_disposition("attachment" if attachment else "inline", filename)
    headerlist += [("Location", content.presign(mimetype, disposition)), ("Cache-Control", "no-store"),
                   ("Content-Length", "0")]
    return Response(status=302, headerlist=headerlist)


def accel_path(request, content: Content) -> str | None:
    """``X-Accel-Redirect`` target for a file when ``pastefile.accel_redirect``
    names the nginx internal location that maps onto the storage root."""
    location = request.pastefile.settings.accel_redirect
    if not location or content.relative is None:
        return None
    return location.rstrip("/") + "/" + content.relative
