"""Errors as clear HTML pages for browsers and JSON for API clients, never a traceback."""
from __future__ import annotations

import logging

from pyramid.httpexceptions import HTTPException
from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import exception_view_config

from pastefile.core import PasteFileError

from ..responses import wants_json

log = logging.getLogger(__name__)


def error_response(request, status: int, title: str, message: str) -> Response:
    if wants_json(request):
        response = Response(json_body={"error": {"status": status, "title": title, "message": message}})
    else:
        response = render_to_response(
            "pastefile.webapp:templates/error.jinja2",
            {"status": status, "title": title, "message": message},
            request=request,
        )
    response.status_int = status
    response.cache_control = "no-store"
    return response


def not_found(request):
    return error_response(request, 404, "Not found", "There is no file at this address.")


@exception_view_config(PasteFileError)
def core_error(exc, request):
    return error_response(request, exc.status, exc.title, exc.message)


@exception_view_config(HTTPException)
def http_error(exc, request):
    if exc.code < 400:
        return exc  # redirects and 304s pass through
    return error_response(request, exc.code, exc.title, exc.detail or exc.explanation)


@exception_view_config(Exception)
def server_error(exc, request):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(request, 500, "Server error", "Something went wrong on our side; nothing was stored.")
