"""The upload limits at the door: which requests count as uploads, and the
answers for one over the limit.  The counting itself is the core's
(:mod:`pastefile.core.ratelimit`, behind ``service.admit_upload``).
"""
from __future__ import annotations

from pastefile.core.urls import RESIZE, TUS, UPLOAD

from .responses import error_response
from .tus import VERSION as TUS_VERSION
from .services import service_of


def is_upload(request) -> bool:
    """Requests that store something: POST /, PUT, GET /r/ (a resized
    paste), and the creation of a resumable upload (POST /files/)."""
    method = request.method
    return method == "PUT" or (method == "POST" and request.path_info in (UPLOAD, TUS)) or (
        method == "GET" and request.path_info.startswith(_RESIZE_PREFIX)
    )


_RESIZE_PREFIX = f"/{RESIZE}/"


def rate_limit_tween_factory(handler, registry):
    service = service_of(registry)
    settings = service.settings

    def rate_limit_tween(request):
        if not is_upload(request):
            return handler(request)
        declared = request.content_length
        tus = request.path_info == TUS
        if tus:  # the bytes a resumable upload will send
            length = request.headers.get("Upload-Length", "")
            declared = int(length) if length.isdigit() and len(length) < 20 else None
        verdict = service.admit_upload(request.remote_addr or "", declared)
        if verdict.status == 413:
            return _refused(tus, error_response(
                request, 413, "File too large",
                f"An upload from one address may be at most {settings.rate_limit_bytes} bytes "
                f"per {settings.rate_limit_window:g} seconds.",
            ))
        if verdict.status == 429:
            response = error_response(
                request, 429, "Too many requests",
                f"Too many uploads from this address; try again in {verdict.retry_after} seconds.",
            )
            response.headers["Retry-After"] = str(verdict.retry_after)
            return _refused(tus, response)
        return handler(request)

    return rate_limit_tween


def _refused(tus: bool, response):
    """A refusal of a resumable upload's creation still speaks tus."""
    if tus:
        response.headers["Tus-Resumable"] = TUS_VERSION
    return response
