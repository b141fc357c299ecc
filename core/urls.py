"""The shapes of pastefile's links, in one place.

A paste is reached under ``/<kind>/<key>``: its public filehash for the
preview, download, raw, resize and JSON links, its short-link id for
``/s/``, and its filehash plus the delete token for ``/x/``.  Links the core
hands out (``PasteInfo.url_*``) and the web app's route patterns are built
from these, so the two cannot drift apart.
"""
from __future__ import annotations

from urllib.parse import urlsplit

# POST a multipart upload here; GET it for the upload page
# resumable uploads (the tus protocol's creation endpoint)
TUS = "/files/"
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


# the kinds of link that name a paste by its filehash (/x/ also carries a token)
_FILEHASH_KINDS = frozenset({PREVIEW, DOWNLOAD, RAW, RESIZE, META, DELETE})


def key_of(text: str) -> tuple[str | None, str]:
    """The kind and key a link names: ``https://host/s/AbC123`` ->
    ("s", "AbC123"), ``/i/<filehash>?w=80`` -> ("i", filehash).  Text that
    is no such link (a bare filehash or short id) comes back as (None, text)."""
    path = urlsplit(text.strip()).path
    parts = [part for part in path.split("/") if part]
    # the last /kind/key pair, so a base URL with a path of its own still works
    for i in range(len(parts) - 2, -1, -1):
        kind = parts[i]
        if kind == SHORT or kind in _FILEHASH_KINDS:
            if kind != DELETE and i != len(parts) - 2:
                continue
            return kind, parts[i + 1]
    return None, text.strip()
