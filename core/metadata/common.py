"""What the container rewrites share: the output being built and the unparsable-block signal."""
from __future__ import annotations

_EXIF_HEADER = b"Exif\0\0"


class _Unparsable(Exception):
    """A metadata block whose structure cannot be walked safely."""


class _Output:
    """The rewritten file as pieces: slices of the source and new bytes."""

    def __init__(self, source: memoryview) -> None:
        self.source = source
        self.parts: list[memoryview | bytes | bytearray] = []
        self.size = 0
        self.changed = False

    def copy(self, start: int, stop: int) -> None:
        if stop > start:
            self.parts.append(self.source[start:stop])
            self.size += stop - start

    def add(self, data: bytes | bytearray, changed: bool = True) -> None:
        self.parts.append(data)
        self.size += len(data)
        self.changed = self.changed or changed

    def drop(self) -> None:
        self.changed = True

    def result(self) -> bytes | None:
        return b"".join(self.parts) if self.changed else None
