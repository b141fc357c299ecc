"""Content-addressed blob storage.

Small blobs (up to ``inline_max`` bytes) are staged in memory and stored in
their database row, so the one commit that records the upload also makes its
bytes durable: no file, no fsync of a file and its directory, nothing to
sweep after a crash.  Larger ones are staged in a temp file inside the store
(same filesystem), hashed in the same pass, fsync'ed, then atomically renamed
to ``root/ab/cd/<sha256>``.  A reader either sees the whole file or none; a
crash leaves at most a temp file, which
:meth:`FileSystemBlobStore.remove_stale_temp` clears.
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

from pastefile.ext.hashing import HEAD_SIZE, CopyResult, Hasher, HashingWriter, SizeLimitExceeded, copy_and_hash

TEMP_DIR = "tmp"
TEMP_PREFIX = "upload-"
# files of blobs being removed: renamed here inside the removing transaction,
# unlinked after it commits, renamed back if it does not
TRASH_DIR = "trash"
_READ = 256 * 1024


@dataclass
class StagedBlob:
    """Bytes written and hashed but not yet visible under their address:
    ``data`` for a blob kept in its row, ``path`` (a temp file) otherwise."""

    sha256: bytes
    size: int
    head: bytes
    path: str | None = None
    data: bytes | None = None

    @property
    def hexdigest(self) -> str:
        return self.sha256.hex()

    @property
    def inline(self) -> bool:
        return self.data is not None

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")


class StagingWriter:
    """Stages an upload: in memory while it fits ``inline_max``, then in a
    temp file in the store.

    Bytes arrive either pushed chunk by chunk (:meth:`write`, streaming
    uploads, then :meth:`finish`) or pulled from a file object
    (:meth:`copy_from`, one C pass for a file on disk).  Use as a context
    manager: an exception inside discards what was written.  A file result
    is fsync'ed, not yet visible under its address.
    """

    def __init__(self, temp_dir: str, limit: int | None, inline_max: int = 0):
        self.temp_dir = temp_dir
        self.limit = limit
        self.inline_max = inline_max
        self.path: str | None = None
        self._fd = -1
        self._writer: HashingWriter | None = None
        self._buffer = bytearray()
        self._hasher: Hasher | None = Hasher("sha256") if inline_max > 0 else None
        if self._hasher is None:
            self._spill()

    @property
    def size(self) -> int:
        return self._writer.size if self._writer is not None else len(self._buffer)

    def _spill(self) -> None:
        """From memory to a temp file: the file's writer re-hashes the buffer."""
        self._fd, self.path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.temp_dir)
        self._writer = HashingWriter(self._fd, self.limit)
        self._hasher = None
        if self._buffer:
            self._writer.write(self._buffer)
        self._buffer = bytearray()

    def write(self, chunk) -> int:
        if self._writer is None:
            n = len(chunk)
            if len(self._buffer) + n <= self.inline_max:
                if self.limit is not None and len(self._buffer) + n > self.limit:
                    raise SizeLimitExceeded(self.limit, len(self._buffer))
                self._buffer += chunk
                self._hasher.update(chunk)
                return n
            self._spill()
        return self._writer.write(chunk)

    def finish(self) -> StagedBlob:
        if self._writer is None:
            data = bytes(self._buffer)
            self._buffer = bytearray()
            return StagedBlob(self._hasher.digest(), len(data), data[:HEAD_SIZE], data=data)
        return self._seal(self._writer.result())

    def copy_from(self, fileobj: BinaryIO) -> StagedBlob:
        if self._writer is None:
            # small bodies stay in memory; a larger one on disk is copied by C
            start = _tell(fileobj)
            first = fileobj.read(self.inline_max + 1)
            if len(first) <= self.inline_max:
                self.write(first)
                return self.finish()
            if start is not None and _has_fd(fileobj):
                fileobj.seek(start)
                self._spill()
                return self._seal(copy_and_hash(fileobj, self._fd, self.limit))
            self.write(first)
            while chunk := fileobj.read(_READ):
                self.write(chunk)
            return self.finish()
        return self._seal(copy_and_hash(fileobj, self._fd, self.limit))

    def _seal(self, result: CopyResult) -> StagedBlob:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return StagedBlob(result.digest, result.size, result.head, path=self.path)

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.path is not None:
            _unlink(self.path)

    def __enter__(self) -> "StagingWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def _tell(fileobj) -> int | None:
    try:
        return fileobj.tell() if fileobj.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _has_fd(fileobj) -> bool:
    try:
        fileobj.fileno()
        return True
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


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
        """Make staged file bytes durable under their hash; False if already
        there.  Inline blobs are made durable by their row instead."""

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
    def __init__(self, root: str, inline_max: int = 0):
        self.root = os.path.abspath(root)
        self.inline_max = inline_max
        self.temp_dir = os.path.join(self.root, TEMP_DIR)
        os.makedirs(self.temp_dir, exist_ok=True)

    def path(self, sha256: bytes) -> str:
        hexd = sha256.hex()
        return os.path.join(self.root, hexd[:2], hexd[2:4], hexd)

    def stage(self, fileobj: BinaryIO, limit: int | None = None) -> StagedBlob:
        with self.writer(limit) as writer:
            return writer.copy_from(fileobj)

    def writer(self, limit: int | None = None) -> StagingWriter:
        return StagingWriter(self.temp_dir, limit, self.inline_max)

    def commit(self, staged: StagedBlob) -> bool:
        """Rename staged bytes into place; False (and the staged copy kept,
        for :meth:`restore`) when the same bytes are already there."""
        if staged.inline:
            return False
        final = self.path(staged.sha256)
        if os.path.exists(final):
            return False
        self._place(staged, final)
        return True

    def restore(self, staged: StagedBlob) -> bool:
        """Put the staged copy in place if the blob's file has gone since
        :meth:`commit` found it (removed by a concurrent delete or repair);
        True if it had to.  Called under the blob's lock, before the commit
        that makes a row point at the file."""
        if staged.inline or staged.path is None:
            return False
        final = self.path(staged.sha256)
        if os.path.exists(final) or not os.path.exists(staged.path):
            return False
        self._place(staged, final)
        return True

    def _place(self, staged: StagedBlob, final: str) -> None:
        directory = os.path.dirname(final)
        os.makedirs(directory, exist_ok=True)
        os.chmod(staged.path, 0o644)
        # rename is atomic; a concurrent writer of the same bytes is harmless
        os.replace(staged.path, final)
        staged.path = None  # the temp name is free again: never unlink it later
        _fsync_dir(directory)

    def discard(self, staged: StagedBlob) -> None:
        if staged.path is not None:
            _unlink(staged.path)

    def exists(self, sha256: bytes) -> bool:
        return os.path.exists(self.path(sha256))

    def open(self, sha256: bytes) -> BinaryIO:
        return open(self.path(sha256), "rb")

    def delete(self, sha256: bytes) -> None:
        _unlink(self.path(sha256))

    def trash(self, sha256: bytes) -> str | None:
        """Move a blob's file out of its address (a rename, undone by
        :meth:`untrash`); None if there was no file."""
        trash_dir = os.path.join(self.root, TRASH_DIR)
        os.makedirs(trash_dir, exist_ok=True)
        target = os.path.join(trash_dir, f"{sha256.hex()}.{os.urandom(6).hex()}")
        try:
            os.replace(self.path(sha256), target)
        except FileNotFoundError:
            return None
        return target

    def purge(self, trashed: str) -> None:
        _unlink(trashed)

    def untrash(self, trashed: str, sha256: bytes) -> None:
        final = self.path(sha256)
        if not os.path.exists(final):
            os.replace(trashed, final)
        else:
            _unlink(trashed)

    def trashed(self) -> list[tuple[str, bytes]]:
        """(path, sha256) of every file in the trash (a crash between the
        rename and the commit leaves them; fsck puts back those with a row)."""
        trash_dir = os.path.join(self.root, TRASH_DIR)
        if not os.path.isdir(trash_dir):
            return []
        out = []
        for entry in os.scandir(trash_dir):
            name = entry.name.split(".", 1)[0]
            if len(name) == 64:
                out.append((entry.path, bytes.fromhex(name)))
        return out

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

    def _stale_temp(self, older_than: float) -> list[str]:
        cutoff = time.time() - older_than
        return [
            entry.path for entry in os.scandir(self.temp_dir)
            if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff
        ]

    def count_stale_temp(self, older_than: float = 3600.0) -> int:
        return len(self._stale_temp(older_than))

    def remove_stale_temp(self, older_than: float = 3600.0) -> int:
        """Delete temp files left by crashed uploads; returns how many."""
        stale = self._stale_temp(older_than)
        for path in stale:
            _unlink(path)
        return len(stale)


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
