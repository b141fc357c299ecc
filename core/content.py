"""What the web front serves for a paste or a rendition, without knowing
where blobs live: the bytes themselves, or a file it may send."""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

_new = object.__new__


@dataclass(frozen=True)
class Content:
    """Exactly one of ``data`` (bytes kept in the row, read from a cache or
    the database), ``path`` (a file on this host) and ``opener`` (an object
    in an object store, opened as a seekable stream).  ``relative`` is the
    file's '/'-separated path under the store's root, what an nginx internal
    location mapped onto the root needs for ``X-Accel-Redirect``.
    ``presign(content_type, content_disposition)``, when the store serves
    by redirect, gives a short-lived URL that answers with those headers."""

    data: bytes | None = None
    path: str | None = None
    relative: str | None = None
    opener: Callable[[], BinaryIO] | None = None
    presign: Callable[[str, str], str] | None = None

    @classmethod
    def of_bytes(cls, data: bytes) -> "Content":
        """``Content(data=data)`` at a third of the cost: every cached read
        of a small paste makes one, and a frozen dataclass's ``__init__``
        sets each field through ``object.__setattr__``.  The other fields
        keep their class defaults."""
        content = _new(cls)
        content.__dict__["data"] = data
        return content

    def open(self) -> BinaryIO:
        """The bytes as a binary file object (the caller closes it)."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.opener is not None:
            return self.opener()
        return open(self.path, "rb")
