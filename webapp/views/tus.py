"""Resumable uploads over the tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload).

``POST /files/`` creates an upload (with its first bytes, if sent),
``HEAD /files/{id}`` tells its offset, ``PATCH /files/{id}`` appends,
``DELETE /files/{id}`` terminates; ``GET /files/{id}`` with ``Accept:
application/json`` answers the paste a complete upload became, as ``POST /``
does.  The state lives in the core (any worker or node continues any upload);
this module speaks the protocol's headers and statuses.
"""
from __future__ import annotations

from email.utils import format_datetime
from urllib.parse import urlparse

from pyramid.response import Response
from pyramid.view import view_config

from pastefile.core import InvalidRequest, PasteFileError

from ..streaming import StreamedPatch
from ..tus import (
    CHECKSUM_ALGORITHMS, EXTENSIONS, VERSION, UnsupportedMedia, check_version, checksum, int_header, is_offset_body,
    patch_arguments,
)

from .upload import upload_response

_CHUNK = 256 * 1024


def _protocol_headers(request, response) -> None:
    response.headers["Tus-Resumable"] = VERSION
    response.headers.setdefault("Cache-Control", "no-store")
    if response.status_int == 412:
        response.headers["Tus-Version"] = VERSION


def _speaks_tus(request) -> None:
    request.add_response_callback(_protocol_headers)
    check_version(request.headers.get)


def _expires(info) -> str:
    return format_datetime(info.expires, usegmt=True)


def _location(request, upload_id: str) -> str:
    return request.route_url("tus_upload", id=upload_id)


def _upload_id(request, url: str) -> str:
    """The id in an upload URL of this server (absolute or a path)."""
    path = urlparse(url.strip()).path.rstrip("/")
    prefix = urlparse(request.route_url("tus_create")).path.rstrip("/") + "/"
    if not path.startswith(prefix) or "/" in path[len(prefix):] or not path[len(prefix):]:
        raise InvalidRequest(f"{url!r} is not an upload of this server")
    return path[len(prefix):]


def _body_chunks(request):
    """The request body a block at a time; it ends early when the body was
    cut off, which keeps what came."""
    length = request.content_length or 0
    body = request.body_file_raw
    while length > 0:
        chunk = body.read(min(_CHUNK, length))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


def _answered(request, response: Response, info) -> Response:
    response.headers["Upload-Offset"] = str(info.offset)
    response.headers["Upload-Expires"] = _expires(info)
    if info.paste is not None:
        # the PATCH (or POST) that completed the upload: the links, and the
        # delete token only the uploader ever sees
        data = info.paste.to_json(request.application_url)
        response.headers["X-Paste-Url"] = data["url_p"]
        if info.paste.delete_token:
            response.headers["X-Delete-Url"] = data["url_delete"]
            response.headers["X-Delete-Token"] = info.paste.delete_token
    return response


@view_config(route_name="tus_create", request_method="OPTIONS")
@view_config(route_name="tus_upload", request_method="OPTIONS")
def options(request):
    response = Response(status=204)
    response.headers.update({
        "Tus-Resumable": VERSION,
        "Tus-Version": VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(request.pastefile.settings.max_upload_size),
        "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS,
    })
    return response


@view_config(route_name="tus_create", request_method="POST")
def create(request):
    _speaks_tus(request)
    service = request.pastefile
    concat = request.headers.get("Upload-Concat", "").strip()
    metadata = request.headers.get("Upload-Metadata", "")
    if concat.startswith("final;"):
        ids = [_upload_id(request, url) for url in concat[len("final;"):].split()]
        info = service.tus_create(None, metadata, final_of=ids)
        response = Response(status=201)
        response.headers["Location"] = _location(request, info.id)
        return _answered(request, response, info)
    if concat and concat != "partial":
        raise InvalidRequest("Upload-Concat must be 'partial' or 'final;URL URL…'")
    length = int_header(request.headers.get, "Upload-Length")
    deferred = request.headers.get("Upload-Defer-Length")
    if deferred is not None and deferred.strip() != "1":
        raise InvalidRequest("Upload-Defer-Length must be 1")
    if (length is None) == (deferred is None):
        raise InvalidRequest("send either Upload-Length or Upload-Defer-Length: 1")
    has_body = bool(request.content_length)
    if has_body and not is_offset_body(request.content_type):
        raise UnsupportedMedia("a body sent with the creation must be application/offset+octet-stream")
    if has_body and length is not None and request.content_length == length and concat != "partial":
        # all of it in the creation: made a paste like POST / in one go
        info = service.tus_create(length, metadata, body=_body_chunks(request),
                                  checksum=checksum(request.headers.get))
        response = Response(status=201)
        response.headers["Location"] = _location(request, info.id)
        return _answered(request, response, info)
    info = service.tus_create(length, metadata, partial=concat == "partial")
    response = Response(status=201)
    response.headers["Location"] = _location(request, info.id)
    if has_body:
        # creation-with-upload: the first bytes with the creation; refused,
        # the upload goes too (the client never learns its URL)
        try:
            info = service.tus_append(info.id, 0, _body_chunks(request), checksum=checksum(request.headers.get))
        except BaseException:
            try:
                service.tus_terminate(info.id)
            except PasteFileError:
                pass  # gone already (a refused type takes its upload with it)
            raise
    return _answered(request, response, info)


@view_config(route_name="tus_upload", request_method="HEAD")
def head(request):
    _speaks_tus(request)
    info = request.pastefile.tus_info(request.matchdict["id"])
    response = Response(status=200)
    if info.length is None:
        response.headers["Upload-Defer-Length"] = "1"
    else:
        response.headers["Upload-Length"] = str(info.length)
    if info.metadata:
        response.headers["Upload-Metadata"] = info.metadata
    if info.concat == "partial":
        response.headers["Upload-Concat"] = "partial"
    elif info.concat == "final":
        response.headers["Upload-Concat"] = "final;" + " ".join(_location(request, i) for i in info.concat_parts)
    response.headers["Cache-Control"] = "no-store"
    return _answered(request, response, info)


@view_config(route_name="tus_upload", request_method="PATCH")
def patch(request):
    request.add_response_callback(_protocol_headers)
    body = request.environ["wsgi.input"]
    if isinstance(body, StreamedPatch):
        # appended by the server while it arrived (its headers were in order)
        info = body.result()
    else:
        offset, length, sum_ = patch_arguments(request.headers.get)
        info = request.pastefile.tus_append(request.matchdict["id"], offset, _body_chunks(request), length=length,
                                            checksum=sum_)
    return _answered(request, Response(status=204), info)


@view_config(route_name="tus_upload", request_method="DELETE")
def terminate(request):
    _speaks_tus(request)
    request.pastefile.tus_terminate(request.matchdict["id"])
    return Response(status=204)


@view_config(route_name="tus_upload", request_method="GET")
def result(request):
    """The paste a complete upload became: its JSON, as ``POST /`` answers
    (without the delete token, which only the completing request carried)."""
    paste = request.pastefile.tus_paste(request.matchdict["id"])
    return upload_response(request, paste)

