"""Keeping the store and the database in agreement: fsck (check, and with
``repair`` mend), sweep (settle what interrupted uploads left; run at
start-up).  Every change to a blob's file is made under the blob's lock, so
a concurrent upload of the same bytes keeps its file."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from pastefile.ext.hashing import copy_and_hash

from . import repository
from .parts import Concern


class Maintenance(Concern):

    def fsck(self, repair: bool = False, grace: float = 3600.0, verify: bool = False) -> dict[str, int]:
        report = {"stale_temp": 0, "trash": 0, "orphan_files": 0, "missing_files": 0, "corrupt_files": 0,
                  "renditions": 0}
        if repair:
            # temp files are judged by their writer's lock, not their age
            swept = self.sweep()
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

    def sweep(self) -> dict[str, int]:
        removed, pending = self.store.sweep_temp()
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
        path = self.store.path(sha)
        try:
            if os.path.getsize(path) != size:
                return False
            if not verify:
                return True
            result = hash_file(path)
        except FileNotFoundError:
            return True  # removed meanwhile: not corrupt
        return result.digest == sha and result.size == size

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
