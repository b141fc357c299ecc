"""What the web front serves for a paste or a rendition, without knowing
where blobs live: the bytes themselves, or a file it may send."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

_new = object.__new__


@dataclass(frozen=True)
class Content:
    """Exactly one of ``data`` (bytes kept in the row, read from a cache or
    the database) and ``path`` (a file on this host).  ``relative`` is that
    file's '/'-separated path under the store's root, what an nginx internal
    location mapped onto the root needs for ``X-Accel-Redirect``.  An object
    store would add a ``url`` to redirect to."""

    data: bytes | None = None
    path: str | None = None
    relative: str | None = None

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
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")
