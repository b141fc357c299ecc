"""Content-addressed blob storage.

Bytes are staged in a temp file inside the store (same filesystem), hashed in
the same pass, fsync'ed, then atomically renamed to ``root/ab/cd/<sha256>``.
A reader either sees the whole file or none; a crash leaves at most a temp
file, which :meth:`FileSystemBlobStore.remove_stale_temp` clears.
"""
from __future__ import annotations

import abc
import io
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pastefile.ext.hashing import CopyResult, HashingWriter, copy_and_hash

TEMP_DIR = "tmp"
TEMP_PREFIX = "upload-"


@dataclass
class StagedBlob:
    """Bytes written and hashed but not yet visible under their address."""

    path: str
    sha256: bytes
    size: int
    head: bytes

    @property
    def hexdigest(self) -> str:
        return self.sha256.hex()


class StagingWriter:
    """A temp file in the store that becomes a :class:`StagedBlob`.

    Bytes arrive either pushed chunk by chunk (:meth:`write`, streaming
    uploads, then :meth:`finish`) or pulled from a file object in one C pass
    (:meth:`copy_from`).  Use as a context manager: an exception inside
    discards the temp file.  The result is fsync'ed, not yet visible under
    its address.
    """

    def __init__(self, temp_dir: str, limit: int | None):
        self.limit = limit
        self._fd, self.path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=temp_dir)
        self._writer: HashingWriter | None = None

    @property
    def size(self) -> int:
        return self._writer.size if self._writer is not None else 0

    def write(self, chunk) -> int:
        if self._writer is None:
            self._writer = HashingWriter(self._fd, self.limit)
        return self._writer.write(chunk)

    def finish(self) -> StagedBlob:
        writer = self._writer if self._writer is not None else HashingWriter(self._fd, self.limit)
        return self._seal(writer.result())

    def copy_from(self, fileobj: BinaryIO) -> StagedBlob:
        return self._seal(copy_and_hash(fileobj, self._fd, self.limit))

    def _seal(self, result: CopyResult) -> StagedBlob:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return StagedBlob(self.path, result.digest, result.size, result.head)

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        _unlink(self.path)

    def __enter__(self) -> "StagingWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class BlobStore(abc.ABC):
    """Where blob bytes live.  A filesystem store now; an object store can follow."""

    @abc.abstractmethod
    def stage(self, fileobj: BinaryIO, limit: int | None = None) -> StagedBlob:
        """Copy ``fileobj`` into a private temp object while hashing it."""

    def stage_bytes(self, data: bytes) -> StagedBlob:
        return self.stage(io.BytesIO(data))

    @abc.abstractmethod
    def writer(self, limit: int | None = None) -> StagingWriter:
        """A writer that stages bytes pushed to it chunk by chunk."""

    @abc.abstractmethod
    def commit(self, staged: StagedBlob) -> bool:
        """Make staged bytes durable under their hash; False if already there."""

    @abc.abstractmethod
    def discard(self, staged: StagedBlob) -> None:
        """Drop staged bytes that will not be committed."""

    @abc.abstractmethod
    def exists(self, sha256: bytes) -> bool: ...

    @abc.abstractmethod
    def open(self, sha256: bytes) -> BinaryIO: ...

    @abc.abstractmethod
    def delete(self, sha256: bytes) -> None: ...

    @abc.abstractmethod
    def iter_hashes(self) -> Iterator[bytes]: ...

    @abc.abstractmethod
    def mtime(self, sha256: bytes) -> float:
        """When the blob was stored (seconds since the epoch)."""


class FileSystemBlobStore(BlobStore):
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.temp_dir = os.path.join(self.root, TEMP_DIR)
        os.makedirs(self.temp_dir, exist_ok=True)

    def path(self, sha256: bytes) -> str:
        hexd = sha256.hex()
        return os.path.join(self.root, hexd[:2], hexd[2:4], hexd)

    def stage(self, fileobj: BinaryIO, limit: int | None = None) -> StagedBlob:
        with self.writer(limit) as writer:
            return writer.copy_from(fileobj)

    def writer(self, limit: int | None = None) -> StagingWriter:
        return StagingWriter(self.temp_dir, limit)

    def commit(self, staged: StagedBlob) -> bool:
        final = self.path(staged.sha256)
        if os.path.exists(final):
            _unlink(staged.path)
            return False
        directory = os.path.dirname(final)
        os.makedirs(directory, exist_ok=True)
        os.chmod(staged.path, 0o644)
        # rename is atomic; a concurrent writer of the same bytes is harmless
        os.replace(staged.path, final)
        _fsync_dir(directory)
        return True

    def discard(self, staged: StagedBlob) -> None:
        _unlink(staged.path)

    def exists(self, sha256: bytes) -> bool:
        return os.path.exists(self.path(sha256))

    def open(self, sha256: bytes) -> BinaryIO:
        return open(self.path(sha256), "rb")

    def delete(self, sha256: bytes) -> None:
        _unlink(self.path(sha256))

    def mtime(self, sha256: bytes) -> float:
        return os.stat(self.path(sha256)).st_mtime

    def iter_hashes(self) -> Iterator[bytes]:
        for top in sorted(os.listdir(self.root)):
            if len(top) != 2:
                continue
            for sub in sorted(os.listdir(os.path.join(self.root, top))):
                for name in sorted(os.listdir(os.path.join(self.root, top, sub))):
                    if len(name) == 64:
                        yield bytes.fromhex(name)

    def remove_stale_temp(self, older_than: float = 3600.0) -> int:
        """Delete temp files left by crashed uploads; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self.temp_dir):
            if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                _unlink(entry.path)
                removed += 1
        return removed


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
