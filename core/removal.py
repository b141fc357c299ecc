"""Removal: deleting a paste (with its token, or by the operator), expiry,
and collecting blobs nothing refers to any more.

Every removal runs through :meth:`Removal.removing`: the rows go in one
write transaction, blobs left without references are released under their
locks, their files are moved to the trash inside the transaction (back in
place if it rolls back) and purged once it commits, and every cache forgets
what went.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from . import repository
from .errors import Forbidden, NotFound
from .ingest import token_hash
from .models import utcnow
from .parts import Concern
from .records import PasteInfo
from .utils import is_filehash

# work(conn) -> (result, removed pastes, more candidate blobs)
Work = Callable[[Connection], tuple[Any, repository.Removed, list[bytes]]]


class Removal(Concern):

    def delete(self, filehash: str, token: str) -> PasteInfo:
        if not isinstance(filehash, str) or not is_filehash(filehash):
            raise NotFound(f"no file {filehash!r}")
        if not isinstance(token, str) or not token:
            raise Forbidden("deleting a file needs the delete token its upload answered")
        return self._remove(filehash, token)

    def can_delete(self, filehash: str, token: str) -> bool:
        if not isinstance(filehash, str) or not is_filehash(filehash) or not isinstance(token, str) or not token:
            return False
        with self.uow.connection() as conn:
            stored = repository.delete_token_hash(conn, filehash)
        return stored is not None and hmac.compare_digest(stored, token_hash(token))

    def remove(self, filehash: str) -> PasteInfo:
        if not isinstance(filehash, str) or not is_filehash(filehash):
            raise NotFound(f"no file {filehash!r}")
        return self._remove(filehash, None)

    def _remove(self, filehash: str, token: str | None) -> PasteInfo:
        def remove(conn):
            row = repository.paste_for_removal(conn, filehash)
            if row is None:
                raise NotFound(f"no file {filehash!r}")
            if token is not None:
                stored = row["delete_token_hash"]
                if stored is None or not hmac.compare_digest(stored, token_hash(token)):
                    raise Forbidden("this delete token is not the one for this file")
            info = self.parts.info(repository.paste_by_id(conn, row["id"]))
            return info, repository.remove_pastes(conn, [row["id"]]), []

        info, _ = self.removing(remove)
        return info

    def removing(self, work: Work) -> tuple[Any, tuple[repository.Removed, repository.Released]]:
        """Run ``work(conn)`` -> (result, removed pastes, more candidate blobs)
        in a write transaction, release the blobs left without references, take their
        files out of the store when the transaction commits (back in if it
        does not) and forget everything removed, in every cache."""
        trashed: list[tuple[str, bytes]] = []
        try:
            with self.uow.writing() as conn:
                result, removed, candidates = work(conn)
                released = repository.release_blobs(conn, [sha for _, _, sha in removed.pastes] + list(candidates))
                # inside the transaction, under the blobs' locks: an upload
                # of the same bytes that commits after this sees no file and
                # puts its own copy in place
                trashed = [(p, sha) for sha in released.files if (p := self.store.trash(sha))]
        except BaseException:
            self._untrash(trashed)
            raise

        def done():
            for path, _ in trashed:
                self.store.purge(path)
            self.pastecache.forget(removed, released)

        if self.uow.session is not None:
            # the caller commits or rolls back later; forget now for this
            # transaction's own reads, and again after the commit for readers
            # that cached the rows in between
            self.pastecache.forget(removed, released)
            self.uow.after_rollback(lambda: self._untrash(trashed))
        self.uow.after_commit(done)
        return result, (removed, released)

    def _untrash(self, trashed: list[tuple[str, bytes]]) -> None:
        for path, sha in trashed:
            self.store.untrash(path, sha)

    def gc(self, grace: float = 3600.0, batch: int = 500) -> dict[str, int]:
        """Remove expired pastes, then blobs nothing refers to any more
        (older than ``grace`` seconds: their upload may still be committing),
        with their files and renditions."""
        report = {"expired_pastes": 0, "blobs": 0, "files": 0, "renditions": 0}

        def count(released: repository.Released) -> None:
            report["blobs"] += len(released.blobs)
            report["files"] += len(released.files)
            report["renditions"] += len(released.renditions)

        while True:
            now = utcnow()

            def expire(conn):
                return None, repository.remove_pastes(conn, repository.expired_pastes(conn, now, batch)), []

            _, (removed, released) = self.removing(expire)
            report["expired_pastes"] += len(removed.pastes)
            count(released)
            if len(removed.pastes) < batch:
                break
        with self.uow.connection() as conn:
            loose = repository.unreferenced_blobs(conn, utcnow() - timedelta(seconds=grace))
        for start in range(0, len(loose), batch):
            chunk = loose[start:start + batch]
            _, (_, released) = self.removing(lambda conn, chunk=chunk: (None, repository.Removed([], []), chunk))
            count(released)
        return report
