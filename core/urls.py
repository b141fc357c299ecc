"""The shapes of pastefile's links, in one place.

A paste is reached under ``/<kind>/<key>``: its public filehash for the
preview, download, raw, resize and JSON links, its short-link id for
``/s/``, and its filehash plus the delete token for ``/x/``.  Links the core
hands out (``PasteInfo.url_*``) and the web app's route patterns are built
from these, so the two cannot drift apart.
"""
from __future__ import annotations

# POST a multipart upload here; GET it for the upload page
UPLOAD = "/"

PREVIEW = "p"
DOWNLOAD = "d"
RAW = "i"
RESIZE = "r"
SHORT = "s"
META = "j"
DELETE = "x"

# route name -> pattern, for the routes that carry a paste's key
PATTERNS = {
    "preview": f"/{PREVIEW}/{{filehash}}",
    "download": f"/{DOWNLOAD}/{{filehash}}",
    "raw": f"/{RAW}/{{filehash}}",
    "resize": f"/{RESIZE}/{{filehash}}",
    "symlink": f"/{SHORT}/{{symlink}}",
    "meta": f"/{META}/{{filehash}}",
    "delete": f"/{DELETE}/{{filehash}}/{{token}}",
}


def link(base_url: str, kind: str, key: str) -> str:
    """``base_url/kind/key``; a trailing slash on ``base_url`` is not doubled."""
    return f"{base_url.rstrip('/')}/{kind}/{key}"


def delete_link(base_url: str, filehash: str, token: str) -> str:
    """Where the uploader removes a paste (GET confirms, POST deletes)."""
    return f"{link(base_url, DELETE, filehash)}/{token}"


def with_query(url: str, params: list[str]) -> str:
    return f"{url}?{'&'.join(params)}"
