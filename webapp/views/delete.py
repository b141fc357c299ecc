"""Taking an upload back with the token its answer carried.

``/x/{filehash}/{token}`` is the delete URL handed to the uploader (and to
ShareX-style clients): GET shows a confirmation, POST deletes.  API clients
send ``DELETE /j/{filehash}`` with the token in ``X-Delete-Token``.
"""
from __future__ import annotations

from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import view_config

from pastefile.core import Forbidden, NotFound

from ..responses import json_response, wants_json, wants_text


def _deleted(request, paste) -> Response:
    if wants_text(request):
        response = Response(f"deleted {paste.filehash}\n", content_type="text/plain", charset="utf-8")
    elif wants_json(request):
        response = json_response({"deleted": paste.filehash})
    else:
        response = render_to_response(
            "pastefile.webapp:templates/delete.jinja2", {"deleted": True, "filename": paste.filename}, request=request
        )
    response.cache_control = "no-store"
    return response


@view_config(route_name="delete", request_method=("GET", "HEAD"))
def confirm(request):
    service = request.pastefile
    filehash, token = request.matchdict["filehash"], request.matchdict["token"]
    paste = service.get(filehash)
    if paste is None:
        raise NotFound("There is no file at this address; it may be deleted already.")
    if not service.can_delete(filehash, token):
        raise Forbidden("This delete link is not valid for this file.")
    response = render_to_response(
        "pastefile.webapp:templates/delete.jinja2",
        {"deleted": False, "paste": paste.to_json(request.application_url)},
        request=request,
    )
    response.cache_control = "no-store"
    # the token is in this page's address: never pass it on
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@view_config(route_name="delete", request_method="POST")
def delete(request):
    paste = request.pastefile.delete(request.matchdict["filehash"], request.matchdict["token"])
    return _deleted(request, paste)


@view_config(route_name="meta_delete", request_method="DELETE")
def delete_by_header(request):
    token = request.headers.get("X-Delete-Token") or ""
    paste = request.pastefile.delete(request.matchdict["filehash"], token)
    return _deleted(request, paste)
