"""Content sniffing with libmagic (python-magic): the client's type is never trusted."""
from __future__ import annotations

import magic

GENERIC = frozenset({"application/octet-stream", "application/zip", "text/plain"})


def sniff(head: bytes, path: str | None = None) -> str:
    """The mimetype of content starting with ``head``.

    ``head`` (the first 4 KiB) settles most formats; for generic answers
    (zip containers such as docx/epub, long text) libmagic looks at the whole
    file when ``path`` is given.
    """
    mimetype = magic.from_buffer(head, mime=True)
    if path is not None and mimetype in GENERIC:
        mimetype = magic.from_file(path, mime=True)
    return mimetype
