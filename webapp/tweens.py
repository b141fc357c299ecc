"""Tweens: a guard on what reaches routing, and security headers for pages.

The guard answers requests that nothing behind it could read with a clear
4xx (a path or query string that is not UTF-8 once percent-decoded would
otherwise raise wherever ``request.path_info`` or ``request.GET`` is first
touched, error views included), and methods the app has no use for.

User content carries its own headers (``responses.content_response``:
nosniff and a sandboxing CSP); the second tween covers the pages we render.
Every answer, whatever made it (a view, an error view, the guard, the rate
limiter, a static file), leaves through the guard with
``X-Content-Type-Options: nosniff``: a browser never second-guesses a type.
"""
from __future__ import annotations

from pyramid.tweens import INGRESS

from pastefile.core.urls import TUS

from .responses import error_response
from .services import service_of

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# methods routed to views; anything else (TRACE, CONNECT, inventions) is 405;
# PATCH and OPTIONS only for resumable uploads (tus)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
TUS_METHODS = frozenset({"PATCH", "OPTIONS"})
ALLOW = "GET, HEAD, POST, PUT, DELETE"


def request_problem(request) -> tuple[int, str, str] | None:
    """(status, title, message) for a request the app cannot read, else None."""
    environ = request.environ
    for key in ("PATH_INFO", "SCRIPT_NAME"):
        value = environ.get(key, "")
        if value.isascii():  # most paths: nothing to decode
            continue
        try:
            value.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return 400, "Bad request", "The address is not valid UTF-8 once percent-decoded."
    if environ.get("QUERY_STRING"):  # an empty one parses to nothing
        try:
            request.GET
        except UnicodeError:
            return 400, "Bad request", "The query string is not valid UTF-8 once percent-decoded."
    if request.method not in METHODS and not (request.method in TUS_METHODS and request.path_info.startswith(TUS)):
        return 405, "Method not allowed", f"This server does not answer {request.method[:20]!r} requests."
    return None


def page_headers_enabled(registry) -> bool:
    return service_of(registry).settings.page_security_headers


_PAGE_HEADER_NAMES = tuple((name.lower(), name, value) for name, value in PAGE_HEADERS.items())


def _add_page_headers(response) -> None:
    # one pass over the header list: WebOb's case-insensitive lookups scan
    # it once per call
    headerlist = response.headerlist
    content_type = ""
    for name, value in headerlist:
        if name.lower() == "content-type":
            content_type = value  # the last one, as a dict of the headers would keep
    if content_type.split(";", 1)[0].strip().lower() != "text/html":
        return
    present = {name.lower() for name, _ in headerlist}
    headerlist.extend((name, value) for lower, name, value in _PAGE_HEADER_NAMES if lower not in present)


def _add_nosniff(response) -> None:
    headerlist = response.headerlist
    for name, _ in headerlist:
        if name.lower() == "x-content-type-options":
            return
    headerlist.append(("X-Content-Type-Options", "nosniff"))


def input_guard_tween_factory(handler, registry):
    secure = page_headers_enabled(registry)

    def input_guard_tween(request):
        problem = request_problem(request)
        if problem is None:
            response = handler(request)
            # outermost: whatever answered below, and whatever the settings
            _add_nosniff(response)
            return response
        status, title, message = problem
        response = error_response(request, status, title, message)
        if status == 405:
            response.headers["Allow"] = ALLOW
        if secure:
            _add_page_headers(response)
        _add_nosniff(response)
        return response

    return input_guard_tween


def security_headers_tween_factory(handler, registry):
    def security_headers_tween(request):
        response = handler(request)
        _add_page_headers(response)
        return response

    return security_headers_tween


def includeme(config):
    # outermost: before pyramid_tm's hooks or the debug toolbar read the path
    config.add_tween("pastefile.webapp.tweens.input_guard_tween_factory", under=INGRESS)
    # above the guard: every answer, the guard's own included, is logged with its id
    config.add_tween("pastefile.webapp.accesslog.access_log_tween_factory", under=INGRESS,
                     over="pastefile.webapp.tweens.input_guard_tween_factory")
    settings = service_of(config.registry).settings
    if settings.rate_limit_uploads or settings.rate_limit_bytes:
        config.add_tween("pastefile.webapp.ratelimit.rate_limit_tween_factory",
                         under="pastefile.webapp.tweens.input_guard_tween_factory")
    # the debug toolbar injects inline code into pages: development turns this off
    if page_headers_enabled(config.registry):
        config.add_tween("pastefile.webapp.tweens.security_headers_tween_factory")
