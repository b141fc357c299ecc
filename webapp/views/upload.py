"""The upload page and the two ways to upload: multipart POST / and raw PUT /{filename}."""
from __future__ import annotations

import os

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from pastefile.core import InvalidRequest, humanize_bytes
from pastefile.core.utils import parse_expiry

from ..multipart_upload import FORM_OVERHEAD, receive_multipart
from ..responses import json_response, wants_json, wants_text
from ..streaming import StreamedUpload
from .params import size_params


EXPIRY_CHOICES = ((3600, "After 1 hour"), (86400, "After 1 day"), (604800, "After 1 week"), (2592000, "After 30 days"))


@view_config(route_name="home", request_method="GET", renderer="pastefile.webapp:templates/index.jinja2")
def home(request):
    settings = request.pastefile.settings
    return {
        "max_upload_size": settings.max_upload_size,
        "max_upload_size_human": humanize_bytes(settings.max_upload_size),
        "max_side": settings.max_side,
        # only the lifetimes this server accepts (max_expiry)
        "expiry_choices": [(seconds, label) for seconds, label in EXPIRY_CHOICES if seconds <= settings.max_expiry],
        # files of this size and up go through resumable uploads (tus, /files/)
        "tus_threshold": settings.tus_page_threshold,
    }


def upload_response(request, paste) -> Response:
    """The paste as JSON (``to_json``), the short link alone for curl/text clients,
    or a redirect to the preview page for a plain form post from a browser."""
    data = paste.to_json(request.application_url)
    if wants_text(request):
        response = Response(data["url_s"] + "\n", content_type="text/plain", charset="utf-8")
    elif not wants_json(request):
        response = HTTPSeeOther(location=data["url_p"])
    else:
        response = json_response(data)
    response.cache_control = "no-store"
    # only the uploader ever sees the token: a ShareX-style client keeps the URL
    if paste.delete_token:
        response.headers["X-Delete-Token"] = paste.delete_token
        response.headers["X-Delete-Url"] = data["url_delete"]
    return response


@view_config(route_name="home", request_method="POST")
def upload(request):
    service = request.pastefile
    service.check_declared_size(request.content_length, FORM_OVERHEAD)
    body = request.environ["wsgi.input"]
    if isinstance(body, StreamedUpload):
        # the server parsed it into the store while it arrived
        received = body.result()
    else:
        received = receive_multipart(request, _body_source(request), service)
    try:
        w, h = size_params(received.fields)
        expires = parse_expiry(received.fields.get("expires"), service.settings.max_expiry)
    except InvalidRequest:
        service.discard_upload(received.staged)
        raise
    paste = service.upload_staged(received.staged, received.filename, w=w, h=h, expires_in=expires)
    return upload_response(request, paste)


def _body_source(request):
    """The request body as a file object.

    waitress spools large bodies to a temp file and hands that file over as
    ``wsgi.input``; when it holds exactly the declared body, the core copies
    from its descriptor in C.  Anything else is read through WebOb's
    length-limited wrapper.
    """
    raw = request.body_file_raw
    if request.is_body_seekable:
        # something before the view (the debug toolbar, a retry) read it
        raw.seek(0)
    if request.content_length is not None:
        try:
            fd = raw.fileno()
            if os.fstat(fd).st_size - raw.tell() == request.content_length:
                return raw
        except (AttributeError, OSError, ValueError):
            pass
    return request.body_file


@view_config(route_name="put", request_method="PUT")
def put(request):
    """``curl -T cat.jpg http://host/`` uploads the raw body as cat.jpg."""
    request.pastefile.check_declared_size(request.content_length)
    w, h = size_params(request.GET)
    expires = parse_expiry(request.GET.get("expires"), request.pastefile.settings.max_expiry)
    paste = request.pastefile.upload(
        _body_source(request), request.matchdict["filename"], w=w, h=h, expires_in=expires
    )
    return upload_response(request, paste)
