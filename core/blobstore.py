"""Content-addressed blob storage.

Small blobs (up to ``inline_max`` bytes) are staged in memory and stored in
their database row, so the one commit that records the upload also makes its
bytes durable: no file, no fsync of a file and its directory, nothing to
sweep after a crash.  Larger ones are staged in a temp file inside the store
(same filesystem), hashed in the same pass, fsync'ed, then atomically renamed
to ``root/ab/cd/<sha256>``.  A reader either sees the whole file or none.

The writer holds ``flock(LOCK_EX)`` on its staged file from creation until
the upload is settled (its row committed, or given up), and a file placed
at its address keeps a second name in ``tmp/`` (``placed-*``) until then.
A crash releases the lock, so :meth:`FileSystemBlobStore.sweep_temp` can
tell what is left by a dead writer from an upload in flight, at any age,
and what it left at a blob address, without scanning the store.
"""
from __future__ import annotations

import abc
import fcntl
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pastefile.ext.hashing import HEAD_SIZE, CopyResult, Hasher, HashingWriter, SizeLimitExceeded, copy_and_hash

from .content import Content

TEMP_DIR = "tmp"
TEMP_PREFIX = "upload-"
# the second name of a file placed at its address whose row is not committed yet
PLACED_PREFIX = "placed-"
# readiness's probe of the temp dir
PROBE_PREFIX = "probe-"
# files of blobs being removed: renamed here inside the removing transaction,
# unlinked after it commits, renamed back if it does not
TRASH_DIR = "trash"
_READ = 256 * 1024
# a streamed file starts its writeback every this many bytes, so the disk
# works while the body still arrives and the final fsync only waits for the tail
WRITEBACK_EVERY = 8 * 1024 * 1024


@dataclass
class StagedBlob:
    """Bytes written and hashed but not yet visible under their address:
    ``data`` for a blob kept in its row, ``path`` (a temp file) otherwise."""

    sha256: bytes
    size: int
    head: bytes
    path: str | None = None
    data: bytes | None = None
    # an open descriptor of the staged file holding its writer's flock until
    # the upload is settled (FileSystemBlobStore.settle or discard)
    fd: int = -1
    # tmp/placed-*: the file's second name once it is placed at its address
    marker: str | None = None
    # an object store's staging object holding the bytes (a multipart upload
    # streamed while they arrived), copied to the address on commit
    key: str | None = None
    # how to read bytes kept neither in memory nor in a local file
    reader: Callable[[], BinaryIO] | None = None
    # False: the staged file or object belongs to someone else (a resumable
    # upload, which outlives a failed attempt to store it): never removed here
    owned: bool = True

    @property
    def hexdigest(self) -> str:
        return self.sha256.hex()

    @property
    def inline(self) -> bool:
        return self.data is not None

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is None and self.reader is not None:
            return self.reader()
        return open(self.path, "rb")


@dataclass
class Resumable:
    """Where a resumable upload's acknowledged bytes are, as its row keeps
    it: ``offset`` bytes; on an object store, the parts of a multipart
    upload at ``key`` plus the ``tail`` past the last whole part."""

    id: str
    offset: int = 0
    key: str | None = None
    upload_id: str | None = None
    parts: list[str] | None = None  # ETags, part 1 first
    tail: bytes = b""


RESUMABLE_PREFIX = "tus-"
# a resumable upload fsyncs at the end of every PATCH: a shorter window
# leaves less for each of those fsyncs to wait for
RESUMABLE_WRITEBACK_EVERY = 2 * 1024 * 1024


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
        self._sealed_fd = -1
        self._writer: HashingWriter | None = None
        self._written_back = 0
        self._buffer = bytearray()
        self._hasher: Hasher | None = Hasher("sha256") if inline_max > 0 else None
        if self._hasher is None:
            self._spill()

    @property
    def size(self) -> int:
        return self._writer.size if self._writer is not None else len(self._buffer)

    def _spill(self) -> None:
        """From memory to a temp file: the file's writer re-hashes the buffer."""
        while True:
            self._fd, self.path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.temp_dir)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if os.fstat(self._fd).st_nlink:
                break
            # a sweeper took it between mkstemp and flock: it is gone
            os.close(self._fd)
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
        n = self._writer.write(chunk)
        if self._writer.size - self._written_back >= WRITEBACK_EVERY:
            self._start_writeback()
        return n

    def _start_writeback(self) -> None:
        """Have the kernel start writing what is staged so far, without
        waiting for it (``POSIX_FADV_DONTNEED`` starts the writeback of dirty
        pages, then drops the ones already clean: a large upload does not
        crowd the page cache either)."""
        end = self._writer.size
        start_writeback(self._fd, self._written_back, end, WRITEBACK_EVERY)
        self._written_back = end

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
        # the descriptor, and the lock on it, go with the staged blob
        self._sealed_fd, self._fd = self._fd, -1
        return StagedBlob(result.digest, result.size, result.head, path=self.path, fd=self._sealed_fd)

    def abort(self) -> None:
        self._buffer = bytearray()
        for fd in (self._fd, self._sealed_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._sealed_fd = -1
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
    """Where blob bytes live: every method the core calls on a store, and
    nothing else.  The file store below now; an object store can follow.

    Lifecycle of an upload's bytes: ``stage``/``writer`` (hashed while
    written, private) -> ``commit`` (durable under its address, before any
    row points at it) -> ``restore`` (under the blob's lock, put back if a
    removal took it meanwhile) -> ``settle`` once the rows are committed, or
    ``discard``.  Removal: ``trash`` inside the removing transaction, then
    ``purge`` after its commit or ``untrash`` after a rollback."""

    # -- staging and committing -------------------------------------------------

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
    def restore(self, staged: StagedBlob) -> bool:
        """Put ``staged`` in place again if its blob went since :meth:`commit`;
        True if it had to."""

    @abc.abstractmethod
    def discard(self, staged: StagedBlob) -> None:
        """Drop staged bytes that will not be committed."""

    def settle(self, staged: StagedBlob) -> None:
        """The rows of ``staged`` are committed: release what stayed staged."""
        self.discard(staged)

    # -- resumable uploads (tus) ------------------------------------------------------

    @abc.abstractmethod
    def resumable_begin(self, upload_id: str) -> Resumable:
        """Make room for a resumable upload's bytes."""

    @abc.abstractmethod
    def resumable_append(self, state: Resumable, chunks: Iterator[bytes], on_chunk=None) -> Resumable:
        """Append ``chunks`` after the acknowledged bytes (anything past them,
        a crashed writer's, is dropped first) and make them durable; returns
        the new state.  ``on_chunk(chunk)`` sees each chunk before it is
        written (hashing, limits).  The chunks of a body cut off end early:
        what came is kept.  An exception (from ``on_chunk``, or the store)
        counts nothing of this call: the state before it stands."""

    @abc.abstractmethod
    def resumable_staged(self, state: Resumable, sha256: bytes, head: bytes) -> StagedBlob:
        """The complete upload as a staged blob, for ingest (assembled where
        the bytes are, never read back)."""

    @abc.abstractmethod
    def resumable_open(self, state: Resumable) -> BinaryIO:
        """The acknowledged bytes of a complete upload (a partial one of a
        concatenation), to read."""

    @abc.abstractmethod
    def resumable_drop(self, state: Resumable) -> None:
        """Remove a terminated or expired upload's bytes."""

    # -- reading -------------------------------------------------------------------

    @abc.abstractmethod
    def content(self, sha256_hex: str) -> Content:
        """How a reader gets a stored blob (a file to send, later a URL)."""

    @abc.abstractmethod
    def open(self, sha256: bytes) -> BinaryIO: ...

    @abc.abstractmethod
    def path(self, sha256: bytes) -> str | None:
        """A local file holding the blob, or None where the store has none."""

    @abc.abstractmethod
    def exists(self, sha256: bytes) -> bool: ...

    @abc.abstractmethod
    def size(self, sha256: bytes) -> int | None:
        """The stored blob's size; None when it is not there."""

    def hash(self, sha256: bytes) -> CopyResult | None:
        """SHA-256 and size of the stored bytes, re-read through the C
        hasher (from the descriptor of a file, else as the store streams
        them); None when the blob is not there."""
        try:
            src = self.open(sha256)
        except FileNotFoundError:
            return None
        with src, open(os.devnull, "wb") as sink:
            return copy_and_hash(src, sink)

    def ensure_bucket(self) -> bool:
        """Create what the store needs before the first upload (an object
        store's bucket); False when there was nothing to create."""
        return False

    def after_fork(self) -> None:
        """Drop what a forked child must not share with its parent (sockets)."""

    # -- removal ---------------------------------------------------------------------

    @abc.abstractmethod
    def trash(self, sha256: bytes) -> str | None:
        """Take the blob away from its address, undoably; None if it was not there."""

    @abc.abstractmethod
    def untrash(self, trashed: str, sha256: bytes) -> None:
        """Undo :meth:`trash` (the removing transaction rolled back)."""

    @abc.abstractmethod
    def purge(self, trashed: str) -> None:
        """Remove for good what :meth:`trash` took."""

    # -- maintenance (fsck, sweep, repair) -------------------------------------------

    @abc.abstractmethod
    def iter_hashes(self) -> Iterator[bytes]: ...

    @abc.abstractmethod
    def mtime(self, sha256: bytes) -> float:
        """When the blob was stored (seconds since the epoch)."""

    @abc.abstractmethod
    def trashed(self) -> list[tuple[str, bytes]]:
        """What a crash left trashed but neither purged nor put back."""

    @abc.abstractmethod
    def sweep_temp(self, grace: float | None = None) -> tuple[int, list[tuple[str, int]]]:
        """Remove staged bytes no live upload holds; the blobs a crash left
        placed without their rows, for the caller to check against the
        database.  A store that cannot tell a live upload's staged bytes
        from a dead one's judges them by age: older than ``grace`` seconds
        (None: its own defaults)."""

    @abc.abstractmethod
    def unplace(self, sha256: bytes, fd: int) -> bool:
        """Take back a blob a crashed upload placed (its rows never came)."""

    @abc.abstractmethod
    def count_stale_temp(self, older_than: float = 3600.0) -> int: ...

    @abc.abstractmethod
    def probe_writable(self) -> None:
        """Create and remove a tiny staging object; raises OSError when uploads could not be staged."""


class FileSystemBlobStore(BlobStore):
    def __init__(self, root: str, inline_max: int = 0):
        self.root = os.path.abspath(root)
        self.inline_max = inline_max
        self.temp_dir = os.path.join(self.root, TEMP_DIR)
        os.makedirs(self.temp_dir, exist_ok=True)

    def path(self, sha256: bytes) -> str:
        return os.path.join(self.root, self.relative_path(sha256.hex()))

    @staticmethod
    def relative_path(sha256_hex: str) -> str:
        """A blob's file under the root, '/'-separated (X-Accel-Redirect
        targets are built from it): the one place the layout is spelled."""
        return f"{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}"

    def content(self, sha256_hex: str) -> Content:
        """How a reader gets a stored blob: its file (no syscall here)."""
        relative = self.relative_path(sha256_hex)
        return Content(path=os.path.join(self.root, relative), relative=relative)

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
        if staged.inline:
            return False
        final = self.path(staged.sha256)
        if os.path.exists(final):
            return False
        if staged.path is not None and os.path.exists(staged.path):
            self._place(staged, final)
            return True
        if staged.marker is not None and os.path.exists(staged.marker):
            # placed by this upload, taken since: its second name puts it back
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.link(staged.marker, final)
            _fsync_dir(os.path.dirname(final))
            return True
        return False

    def _place(self, staged: StagedBlob, final: str) -> None:
        directory = os.path.dirname(final)
        os.makedirs(directory, exist_ok=True)
        os.chmod(staged.path, 0o644)
        if staged.fd >= 0 and staged.marker is None:
            # a second name that outlives the rename until the row commits:
            # sweep_temp() finds what a crash left at the address from it
            marker = os.path.join(self.temp_dir, PLACED_PREFIX + os.path.basename(staged.path))
            os.link(staged.path, marker)
            staged.marker = marker
        if not staged.owned:
            # someone else's file (a resumable upload's) keeps its name: a
            # second one goes to the address
            link = os.path.join(self.temp_dir, f"{TEMP_PREFIX}link-{os.urandom(8).hex()}")
            os.link(staged.path, link)
            os.replace(link, final)
            _fsync_dir(directory)
            return
        # rename is atomic; a concurrent writer of the same bytes is harmless
        os.replace(staged.path, final)
        staged.path = None  # the temp name is free again: never unlink it later
        _fsync_dir(directory)

    def discard(self, staged: StagedBlob) -> None:
        """The upload is given up: its staged copy goes and its lock is
        released.  A file it placed keeps its marker, for :meth:`sweep_temp`
        to settle against the database (which may be what failed)."""
        if staged.path is not None and staged.owned:
            _unlink(staged.path)
            staged.path = None
        _release(staged)

    def settle(self, staged: StagedBlob) -> None:
        """The upload's rows are committed: drop its temp names and its lock,
        and its pages from the page cache (clean since its fsync).  Kept
        cached, every stored upload crowds the cache and the writes of the
        next ones pay for it: a 1 MB upload's write cost about 2 ms more
        kernel time here than with the pages dropped."""
        if staged.fd >= 0:
            drop_cached(staged.fd)
        if staged.marker is not None:
            _unlink(staged.marker)
            staged.marker = None
        self.discard(staged)

    def sweep_temp(self, grace: float | None = None) -> tuple[int, list[tuple[str, int]]]:
        """Temp files whose writer is gone (nobody holds their lock), at any
        age (``grace`` is not needed): staged files are removed; ``placed-*`` markers are returned as
        (path, descriptor holding their lock) for the caller to settle
        against the database (:meth:`unplace`, then unlink and close).
        Returns (removed, placed)."""
        placed: list[tuple[str, int]] = []
        removed = sweep_local_temp(self.temp_dir, placed)
        return removed, placed

    def unplace(self, sha256: bytes, fd: int) -> bool:
        """Remove the file at ``sha256``'s address if it is the file ``fd``
        is open on (a placed marker's); the caller holds the blob's lock and
        checked that no row refers to it."""
        final = self.path(sha256)
        try:
            at_address = os.stat(final)
        except FileNotFoundError:
            return False
        ours = os.fstat(fd)
        if (at_address.st_dev, at_address.st_ino) != (ours.st_dev, ours.st_ino):
            return False
        _unlink(final)
        _fsync_dir(os.path.dirname(final))
        return True

    def exists(self, sha256: bytes) -> bool:
        return os.path.exists(self.path(sha256))

    def _resumable_path(self, upload_id: str) -> str:
        return os.path.join(self.temp_dir, RESUMABLE_PREFIX + upload_id)

    def resumable_begin(self, upload_id: str) -> Resumable:
        fd = os.open(self._resumable_path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        _fsync_dir(self.temp_dir)
        return Resumable(upload_id)

    def resumable_append(self, state: Resumable, chunks: Iterator[bytes], on_chunk=None) -> Resumable:
        fd = os.open(self._resumable_path(state.id), os.O_WRONLY)
        offset = written_back = state.offset
        try:
            os.ftruncate(fd, offset)  # what a crashed PATCH wrote past the acknowledged bytes
            try:
                for chunk in chunks:
                    if on_chunk is not None:
                        on_chunk(chunk)
                    view = memoryview(chunk)
                    while view:
                        n = os.pwrite(fd, view, offset)
                        offset += n
                        view = view[n:]
                    if offset - written_back >= RESUMABLE_WRITEBACK_EVERY:
                        # start the disk on what came, as a streamed upload does:
                        # the fsync at the end then waits for the tail only
                        start_writeback(fd, written_back, offset, RESUMABLE_WRITEBACK_EVERY)
                        written_back = offset
            finally:
                # what arrived is kept, cut off or not, once it is on disk
                os.fsync(fd)
        finally:
            os.close(fd)
        return Resumable(state.id, offset)

    def resumable_staged(self, state: Resumable, sha256: bytes, head: bytes) -> StagedBlob:
        return StagedBlob(sha256, state.offset, head, path=self._resumable_path(state.id), owned=False)

    def resumable_open(self, state: Resumable) -> BinaryIO:
        return open(self._resumable_path(state.id), "rb")

    def resumable_drop(self, state: Resumable) -> None:
        _unlink(self._resumable_path(state.id))

    def size(self, sha256: bytes) -> int | None:
        try:
            return os.path.getsize(self.path(sha256))
        except FileNotFoundError:
            return None

    def open(self, sha256: bytes) -> BinaryIO:
        return open(self.path(sha256), "rb")

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

    def probe_writable(self) -> None:
        # a prefix sweep_temp ignores: the file is gone before anyone could look
        fd, path = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=self.temp_dir)
        os.close(fd)
        os.unlink(path)


def sweep_local_temp(temp_dir: str, placed: list[tuple[str, int]] | None = None) -> int:
    """Remove the staged temp files under ``temp_dir`` whose writer is gone
    (nobody holds their flock), at any age; with ``placed``, collect the
    ``placed-*`` markers a dead writer left, each with a descriptor holding
    its lock.  Returns how many staged files went."""
    removed = 0
    for entry in os.scandir(temp_dir):
        if not entry.name.startswith((TEMP_PREFIX, PLACED_PREFIX)):
            continue
        if entry.name.startswith(PLACED_PREFIX) and placed is None:
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # an upload in flight
            continue
        if entry.name.startswith(PLACED_PREFIX):
            placed.append((entry.path, fd))
            continue
        _unlink(entry.path)
        os.close(fd)
        removed += 1
    return removed


def start_writeback(fd: int, start: int, end: int, window: int) -> None:
    """Have the kernel start writing ``start:end`` of ``fd``, and drop the
    pages of the ``window`` bytes before ``start``, written by now
    (``POSIX_FADV_DONTNEED`` on dirty pages starts their writeback; advice
    only: an fsync is what makes them durable)."""
    start = max(0, start - window)
    drop_cached(fd, start, end - start)


def drop_cached(fd: int, offset: int = 0, length: int = 0) -> None:
    """``POSIX_FADV_DONTNEED`` on ``length`` bytes of ``fd`` from ``offset``
    (0: to the end): clean pages leave the page cache, dirty ones start
    their writeback.  Advice only: an error changes nothing."""
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def _release(staged: StagedBlob) -> None:
    if staged.fd >= 0:
        os.close(staged.fd)
        staged.fd = -1


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
