"""``/sharex.sxcu``: a ShareX custom uploader for this server.

ShareX imports the file and uploads images, text and files as ``POST /``
does for API clients: multipart, the file in the ``file`` field, with
``Accept: application/json``.  The answer's keys name the links (ShareX 14's
``{json:key}`` syntax): the preview page to copy, the raw image as the
thumbnail, the delete URL (a confirmation page, then a POST; absent when the
upload repeats someone else's paste), and an error's message.  The address
is the one the file is asked from, as for every link the app builds.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from pyramid.view import view_config

from ..responses import json_response

# the ShareX version whose custom uploader syntax the file uses ({json:...})
SXCU_VERSION = "14.0.0"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def uploader(application_url: str) -> dict:
    """The custom uploader for a server answering at ``application_url``."""
    host = urlsplit(application_url).netloc or "pastefile"
    return {
        "Version": SXCU_VERSION,
        "Name": f"pastefile ({host})",
        "DestinationType": "ImageUploader, TextUploader, FileUploader",
        "RequestMethod": "POST",
        "RequestURL": application_url.rstrip("/") + "/",
        "Headers": {"Accept": "application/json"},
        "Body": "MultipartFormData",
        "FileFormName": "file",
        "URL": "{json:url_p}",
        "ThumbnailURL": "{json:url_i}",
        "DeletionURL": "{json:url_delete}",
        "ErrorMessage": "{json:error.message}",
    }


def sxcu_filename(application_url: str) -> str:
    """``<host>.sxcu``, the port after an underscore (a colon is no part of
    a Windows file name)."""
    host = _FILENAME_UNSAFE.sub("_", urlsplit(application_url).netloc).strip("._") or "pastefile"
    return f"{host}.sxcu"


@view_config(route_name="sharex")
def sharex(request):
    response = json_response(uploader(request.application_url))
    response.headers["Content-Disposition"] = f'attachment; filename="{sxcu_filename(request.application_url)}"'
    # built from the address asked: a cache keyed on the URL alone must not keep it
    response.cache_control = "no-cache"
    response.vary = ("Host",)
    return response
