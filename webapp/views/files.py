"""Reading pastes: preview, download, raw (and resized variants), short links, JSON."""
from __future__ import annotations

import codecs

from pyramid.renderers import render
from pyramid.response import Response
from pyramid.view import view_config

from pastefile.core import NotFound, mimes

from ..localcache import LocalLRU
from ..responses import (
    accel_path, content_response, json_body, json_body_response, json_response, redirect_response, served_type,
)
from .params import choice_param, int_param, signature_param, size_params


def _paste(request, key: str = "filehash"):
    paste = request.pastefile.get(request.matchdict[key])
    if paste is None:
        raise NotFound("There is no file at this address.")
    return paste


# Rendered answers (preview pages, JSON), per process.  A paste's page
# depends only on the paste (its expiry is part of the key) and the host it
# is seen from; the paste itself is still looked up (shared cache or
# database) on every request, so a removed paste is never shown from here.
# Bounded by bytes too: text previews make pages of a few hundred KB.  (Not
# core.cache.MemoryCache: string keys only, checked on every get, expiry
# times and a per-entry overhead in its weight.)
PAGES_MAX_ENTRIES = 2048
PAGES_MAX_BYTES = 64 << 20
_previews = LocalLRU(PAGES_MAX_ENTRIES, PAGES_MAX_BYTES)
_metas = LocalLRU(PAGES_MAX_ENTRIES, PAGES_MAX_BYTES)


def _similar(request, paste) -> list[dict]:
    """Near-duplicate images of ``paste`` with their links and distance;
    none unless the operator made them public (they are other people's
    uploads, which their unguessable links keep private otherwise)."""
    service = request.pastefile
    if paste.phash is None or not service.settings.public_similar:
        return []
    base = request.application_url
    return [
        {"distance": distance, "thumbnail": _thumbnail(service, other, base), **other.to_json(base)}
        for other, distance in service.similar(paste)
    ]


THUMBNAIL = (160, 120)


def _thumbnail(service, paste, base: str) -> str:
    """A small rendition's link when the service offers that size, else the image itself."""
    if not service.offers_size(*THUMBNAIL):
        return paste.url_i(base)
    # on the host this page is seen from, not the configured one
    return service.rendition_url(paste, *THUMBNAIL, base_url=base)


# text shown on the preview page: its head, the rest behind the raw link
TEXT_PREVIEW = 256 * 1024


def _text_preview(service, paste) -> dict:
    """The head of a text paste, decoded for the preview page (the template
    escapes it); nothing for other types."""
    if not paste.mimetype.startswith("text/") or mimes.is_active(paste.mimetype):
        return {}
    with service.open_blob(paste) as fileobj:
        head = fileobj.read(TEXT_PREVIEW)
    truncated = paste.size > TEXT_PREVIEW
    # bytes that are not UTF-8 show as U+FFFD rather than as a guessed
    # encoding; a character cut by the bound is left out
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=not truncated)
    return {"text": text, "text_truncated": truncated}


@view_config(route_name="preview")
def preview(request):
    paste = _paste(request)
    similar = _similar(request, paste)
    key = (paste.id, paste.filehash, paste.expires, request.application_url, tuple(s["filehash"] for s in similar))
    page = _previews.get(key)
    if page is None:
        # active types (SVG, HTML) are only ever downloads, never shown inline
        inline = paste.type in ("image", "audio", "video") and not mimes.is_active(paste.mimetype)
        kind = paste.type if inline else "other"
        text = _text_preview(request.pastefile, paste)
        values = {"paste": paste.to_json(request.application_url), "kind": kind, "similar": similar, **text}
        page = render("pastefile.webapp:templates/preview.jinja2", values, request=request).encode()
        _previews.put(key, page)
    return Response(page, content_type="text/html", charset="utf-8")


def _serve_blob(request, blob, *, filename: str, attachment: bool) -> Response:
    """A paste's bytes or a rendition's: the same ranges, ETag and sendfile."""
    content = request.pastefile.content(blob)
    data = content.data
    if content.presign is not None:  # an object store that serves by redirect
        if attachment and not blob.mimetype.startswith("text/"):
            mimetype = "application/octet-stream"
        else:
            mimetype = served_type(blob, content)
        return redirect_response(request, content, mimetype=mimetype, etag=blob.etag, filename=filename,
                                 attachment=attachment)
    if data is not None:  # bytes kept in the row: from the cache, else the database
        fileobj = accel = None
    else:
        accel = accel_path(request, content)
        fileobj = None if accel else content.open()
    # a download keeps the type of text and its charset, so a client that
    # shows it decodes it right; anything else goes down as opaque bytes
    if attachment and not blob.mimetype.startswith("text/"):
        mimetype = "application/octet-stream"
    else:
        mimetype = served_type(blob, content)
    return content_response(
        request,
        fileobj=fileobj,
        data=data,
        size=blob.size,
        mimetype=mimetype,
        etag=blob.etag,
        filename=filename,
        attachment=attachment,
        accel_path=accel,
    )


@view_config(route_name="download", request_method=("GET", "HEAD"))
def download(request):
    paste = _paste(request)
    return _serve_blob(request, paste, filename=paste.filename, attachment=True)


@view_config(route_name="raw", request_method=("GET", "HEAD"))
def raw(request):
    paste = _paste(request)
    # most reads carry no query string: nothing to parse
    blob = _asked_rendition(request, paste) if request.environ.get("QUERY_STRING") else paste
    return _serve_blob(request, blob, filename=paste.filename, attachment=False)


def _asked_rendition(request, paste):
    """The rendition the query asks for (made if need be), else the paste."""
    params = request.GET
    w, h = size_params(params)
    fit, fmt, quality = choice_param(params, "fit"), choice_param(params, "format"), int_param(params, "q")
    if not (w or h or fit or fmt or quality):
        return paste
    return request.pastefile.rendition(
        paste, w, h, fit=fit or "crop", format=fmt, quality=quality, public=True, signature=signature_param(params)
    )


@view_config(route_name="resize", request_method="GET")
def resize(request):
    """Book semantics: make a resized paste, answer with its raw URL."""
    paste = _paste(request)
    w, h = size_params(request.GET)
    resized = request.pastefile.resize(paste.filehash, w, h, public=True, signature=signature_param(request.GET))
    data = resized.to_json(request.application_url)
    if "application/json" in (request.headers.get("Accept") or ""):
        return json_response(data)
    return Response(data["url_i"], content_type="text/plain", charset="utf-8")


@view_config(route_name="symlink", request_method=("GET", "HEAD"))
def symlink(request):
    paste = request.pastefile.get_by_symlink(request.matchdict["symlink"])
    if paste is None:
        raise NotFound("This short link leads nowhere.")
    # a bare redirect: HTTPFound would render an HTML body nobody reads
    return Response(status=302, location=paste.url_p(request.application_url))


@view_config(route_name="meta", request_method="GET")
def meta(request):
    paste = _paste(request)
    if paste.phash is not None:  # images list their near duplicates: not kept
        data = paste.to_json(request.application_url)
        data["similar"] = _similar(request, paste)
        return json_response(data)
    key = (paste.id, paste.filehash, paste.expires, request.application_url)
    body = _metas.get(key)
    if body is None:
        body = json_body(paste.to_json(request.application_url))
        _metas.put(key, body)
    return json_body_response(body)


@view_config(route_name="latest", request_method="GET", renderer="json")
def latest(request):
    if not request.pastefile.settings.public_latest:
        # a list of everyone's uploads defeats their unguessable links;
        # the operator has `pastefile latest`
        raise NotFound("There is nothing here.")
    limit = int_param(request.GET, "limit", 20)
    offset = int_param(request.GET, "offset", 0)
    pastes = request.pastefile.latest(limit, offset)
    base = request.application_url
    return {"limit": limit, "offset": offset, "files": [p.to_json(base) for p in pastes]}

