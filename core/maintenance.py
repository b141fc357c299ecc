"""Keeping the store and the database in agreement: fsck (check, and with
``repair`` mend), sweep (settle what interrupted uploads left; run at
start-up).  Every change to a blob's file is made under the blob's lock, so
a concurrent upload of the same bytes keeps its file."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from pastefile.ext.hashing import copy_and_hash

from . import repository
from .blobstore import BlobStore
from .parts import Concern

log = logging.getLogger(__name__)


class Maintenance(Concern):

    def fsck(self, repair: bool = False, grace: float = 3600.0, verify: bool = False) -> dict[str, int]:
        report = {"stale_temp": 0, "trash": 0, "orphan_files": 0, "missing_files": 0, "corrupt_files": 0,
                  "renditions": 0}
        if repair:
            # temp files are judged by their writer's lock, not their age;
            # an object store's staging by its age
            swept = self.sweep(grace)
            report["stale_temp"] = swept["stale_temp"]
            report["orphan_files"] = swept["orphan_files"]
        else:
            report["stale_temp"] = self.store.count_stale_temp(grace)
        trashed = self.store.trashed()
        report["trash"] = len(trashed)
        on_disk = set(self.store.iter_hashes())
        with self.uow.connection() as conn:
            sizes = repository.blob_sizes(conn)
            known = set(sizes) | repository.inline_hashes(conn)
            report["renditions"] = repository.rendition_rows(conn)
        cutoff = time.time() - grace
        orphans = {sha for sha in on_disk - known if self.store.mtime(sha) < cutoff}
        report["orphan_files"] += len(orphans)
        report["missing_files"] = len(set(sizes) - on_disk)
        for sha in on_disk & set(sizes):
            if not self._file_matches(sha, sizes[sha], verify):
                report["corrupt_files"] += 1
        if repair:
            self._repair(trashed, orphans)
        return report

    def sweep(self, grace: float | None = None) -> dict[str, int]:
        removed, pending = self.store.sweep_temp(grace)
        orphans = 0
        try:
            while pending:
                marker, fd = pending[0]
                sha = hash_file(marker).digest
                with self.blob_locked(sha) as conn:
                    if not repository.has_blob(conn, sha) and self.store.unplace(sha, fd):
                        orphans += 1
                os.unlink(marker)
                pending.pop(0)
                os.close(fd)
        finally:
            for _, fd in pending:  # left for the next sweep
                os.close(fd)
        return {"stale_temp": removed, "orphan_files": orphans}

    @contextmanager
    def blob_locked(self, sha: bytes) -> Iterator[Connection]:
        """A write transaction holding the blob's lock (and SQLite's write
        lock), so checking its row and acting on its file are one step
        against uploads and removals of the same bytes."""
        with self.uow.writing() as conn:
            self.parts.coordination.blob_locks.lock(conn, [sha])
            repository.write_lock(conn)
            yield conn

    def _file_matches(self, sha: bytes, size: int, verify: bool) -> bool:
        if not verify:
            stored = self.store.size(sha)
            return stored is None or stored == size  # None: removed meanwhile, not corrupt
        result = self.store.hash(sha)
        return result is None or (result.digest == sha and result.size == size)

    def _repair(self, trashed: list[tuple[str, bytes]], orphans: set[bytes]) -> None:
        for path, sha in trashed:
            with self.blob_locked(sha) as conn:
                if repository.blob_data(conn, sha) is None and repository.has_blob(conn, sha):
                    self.store.untrash(path, sha)  # its removal never committed
                else:
                    self.store.purge(path)
        for sha in orphans:
            removed = None
            try:
                with self.blob_locked(sha) as conn:
                    if not repository.has_blob(conn, sha):
                        removed = self.store.trash(sha)
            except BaseException:
                if removed:
                    self.store.untrash(removed, sha)
                raise
            if removed:
                self.store.purge(removed)


def hash_file(path: str):
    """SHA-256 and size of a file, read by the C extension without the GIL."""
    with open(path, "rb") as src, open(os.devnull, "wb") as sink:
        return copy_and_hash(src, sink)


class StoreMigration(Maintenance):
    """Copy every file-backed blob (pastes' and renditions') from one store
    to the other while the service keeps serving: each copy is re-hashed as
    it streams and must match its address; what is there already is left
    alone, so an interrupted run resumes where it stopped and a second run
    finds nothing to do."""

    def run(self, from_store: BlobStore, to_store: BlobStore, progress: Callable[[int, int], None] | None = None,
            ) -> dict[str, int]:
        report = {"blobs": 0, "copied": 0, "present": 0, "gone": 0, "corrupt": 0, "bytes": 0}
        to_store.ensure_bucket()
        with self.uow.connection() as conn:
            sizes = sorted(repository.blob_sizes(conn).items())
        report["blobs"] = len(sizes)
        for done, (sha, size) in enumerate(sizes, 1):
            outcome = self._move(from_store, to_store, sha, size)
            report[outcome] += 1
            if outcome == "copied":
                report["bytes"] += size
            if progress is not None:
                progress(done, len(sizes))
        return report

    def _move(self, from_store: BlobStore, to_store: BlobStore, sha: bytes, size: int) -> str:
        there = to_store.size(sha)
        if there == size:
            return "present"
        try:
            reader = from_store.open(sha)
        except FileNotFoundError:
            return "present" if there == size else "gone"
        with reader:
            staged = to_store.stage(reader)
        try:
            if staged.sha256 != sha or staged.size != size:
                log.error("blob %s does not match its address in the old store; not copied", sha.hex())
                return "corrupt"
            if there is not None:
                # a wrong object at the address (a torn earlier copy): replace it
                trashed = to_store.trash(sha)
                if trashed:
                    to_store.purge(trashed)
            to_store.commit(staged)
            # removed while it was copied? then the copy must not stay behind
            with self.blob_locked(sha) as conn:
                if not repository.has_blob(conn, sha):
                    trashed = to_store.trash(sha)
                    if trashed:
                        to_store.purge(trashed)
                    return "gone"
            return "copied"
        finally:
            to_store.settle(staged)
