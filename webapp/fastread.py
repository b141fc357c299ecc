"""Reads of content links without Pyramid's routing.

``GET /s/<link>``, ``GET|HEAD /p/<filehash>``, ``GET /j/<filehash>`` and
``GET|HEAD /i/<filehash>`` are a lookup of a cached paste and an answer
built from it; Pyramid's route matching (every route in turn), traversal,
view lookup and view derivers cost more than that.  This tween, under the
ones every answer passes through (metrics, security headers, access log,
input guard), recognises those requests by their path alone and calls the
very view functions Pyramid would (``views/files.py``), with the request
attributes routing would have set (``matchdict``, ``matched_route``,
``request_iface``); an exception goes to the app's exception views as the
excview tween would send it.  So the answer is the Pyramid path's, byte
for byte, headers included.

Anything else goes on down the tween chain to Pyramid: another method, a
query string (``/i/``'s renditions), a key with characters outside
``[A-Za-z0-9._-]``, an app whose routes do not have these shapes, event
subscribers (routing notifies them) or ``pyramid.debug_routematch`` (it logs
every match).  ``registry.pastefile_fast_reads = False`` turns it off (the
tests compare both paths); each request it answers has
``environ["pastefile.fast_read"]`` set to its route's name.
"""
from __future__ import annotations

import re
import sys

from pyramid.httpexceptions import HTTPNotFound
from pyramid.interfaces import IRequest, IRouteRequest, IRoutesMapper
from pyramid.settings import asbool
from pyramid.tweens import EXCVIEW

from pastefile.core.urls import META, PATTERNS, PREVIEW, RAW, SHORT

from .views import files

MARKER = "pastefile.fast_read"
_GET_HEAD = frozenset({"GET", "HEAD"})
# link kind: (route name, its view, the methods the view answers); the
# methods are the route's and view's predicates in routes.py and files.py
FAST_ROUTES = {
    SHORT: ("symlink", files.symlink, _GET_HEAD),
    PREVIEW: ("preview", files.preview, _GET_HEAD),
    META: ("meta", files.meta, frozenset({"GET"})),
    RAW: ("raw", files.raw, _GET_HEAD),
}
# /<kind>/<key>: keys of the characters links and filehashes are made of
# (Pyramid's {key} takes any run of characters but "/"; the rest is its to match)
_PATH = re.compile(rf"/([{''.join(FAST_ROUTES)}])/([A-Za-z0-9._-]{{1,128}})")


def _routes(registry) -> dict:
    """kind: (route, request interface, view, methods, matchdict key) for
    each fast route the app has as routes.py makes it, and that no earlier
    route shadows."""
    mapper = registry.queryUtility(IRoutesMapper)
    if mapper is None:
        return {}
    out = {}
    for kind, (name, view, methods) in FAST_ROUTES.items():
        probe = f"/{kind}/0"
        for route in mapper.get_routes():
            if route.name == name:
                if route.pattern == PATTERNS[name]:
                    iface = registry.queryUtility(IRouteRequest, name=name, default=IRequest)
                    (key,) = route.match(probe)
                    out[kind] = (route, iface, view, methods, key)
                break
            # a route before ours that may take these paths: leave them to Pyramid
            if route.match(probe) is not None and not _only_other_methods(route, methods):
                break
    return out


def _only_other_methods(route, methods) -> bool:
    """Whether ``route`` matches only methods none of which is in ``methods``
    (meta_delete before meta)."""
    for predicate in route.predicates:
        allowed = getattr(predicate, "val", None)
        if predicate.text().startswith("request_method") and allowed is not None:
            return not (set(allowed) & methods)
    return False


def _exception_response(request):
    """What the excview tween answers for the exception being handled."""
    exc_info = sys.exc_info()
    try:
        return request.invoke_exception_view(exc_info)
    except HTTPNotFound:
        # no exception view takes it: on up, as from the excview tween
        raise exc_info[1].with_traceback(exc_info[2]) from None
    finally:
        del exc_info


def fast_read_tween_factory(handler, registry):
    routes = _routes(registry)
    if not routes or asbool(registry.settings.get("pyramid.debug_routematch")):
        return handler
    registry.pastefile_fast_reads = True
    match_path = _PATH.fullmatch

    def fast_read_tween(request):
        environ = request.environ
        found = match_path(environ.get("PATH_INFO", ""))
        if found is None or environ.get("QUERY_STRING") or registry.has_listeners:
            return handler(request)
        kind, key = found.groups()
        entry = routes.get(kind)
        if entry is None or environ.get("REQUEST_METHOD") not in entry[3] or not registry.pastefile_fast_reads:
            return handler(request)
        route, iface, view, _, name = entry
        attrs = request.__dict__
        attrs["matchdict"] = {name: key}
        attrs["matched_route"] = route
        request.request_iface = iface
        environ[MARKER] = route.name
        try:
            return view(request)
        except Exception:
            return _exception_response(request)

    return fast_read_tween


def includeme(config):
    # under the tweens every answer passes (the rate limiter's uploads never
    # come here), over the transaction manager and the exception views
    config.add_tween("pastefile.webapp.fastread.fast_read_tween_factory",
                     under=("pastefile.webapp.ratelimit.rate_limit_tween_factory",
                            "pastefile.webapp.tweens.input_guard_tween_factory"),
                     over=("pyramid_tm.tm_tween_factory", EXCVIEW))
