"""Choosing the blob store from the settings, and the store used while blobs
move from one store to the other (``pastefile migrate-store``).

:class:`MovingStore` writes to the new store and reads from the new one
first, then the old one: the service keeps serving every link while the
migration copies blobs across, and new uploads land where they will stay.
A removal takes the blob out of both.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO


from .blobstore import BlobStore, FileSystemBlobStore, Resumable, StagedBlob, StagingWriter
from .content import Content
from .settings import Settings


def make_store(settings: Settings, kind: str | None = None) -> BlobStore:
    """The store named ``kind`` ("file" or "s3"; default: the configured
    one), built from the settings."""
    kind = kind or settings.store
    if kind == "file":
        return FileSystemBlobStore(settings.storage_root, settings.inline_max)
    if kind == "s3":
        from .s3store import S3BlobStore, S3Config

        config = S3Config(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url or None,
            prefix=settings.s3_prefix,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=settings.s3_secret_access_key or None,
            part_size=settings.s3_part_size,
            serve=settings.s3_serve,
        )
        return S3BlobStore(config, settings.storage_root, settings.inline_max, settings.max_upload_size)
    raise ValueError(f"unknown store {kind!r}")


def configured_store(settings: Settings) -> BlobStore:
    """The store the service uses: the configured one, reading through to
    ``store.fallback`` while a migration is under way."""
    store = make_store(settings)
    if settings.store_fallback:
        return MovingStore(store, make_store(settings, settings.store_fallback))
    return store


class MovingStore(BlobStore):
    """Writes go to ``new``; reads find a blob in ``new``, else in ``old``."""

    def __init__(self, new: BlobStore, old: BlobStore):
        self.new = new
        self.old = old
        self.inline_max = new.inline_max

    def _holder(self, sha256: bytes) -> BlobStore:
        return self.new if self.new.exists(sha256) or not self.old.exists(sha256) else self.old

    # -- writes: the new store -------------------------------------------------------

    def stage(self, fileobj: BinaryIO, limit: int | None = None) -> StagedBlob:
        return self.new.stage(fileobj, limit)

    def writer(self, limit: int | None = None) -> StagingWriter:
        return self.new.writer(limit)

    def commit(self, staged: StagedBlob) -> bool:
        return self.new.commit(staged)

    def restore(self, staged: StagedBlob) -> bool:
        return self.new.restore(staged)

    def discard(self, staged: StagedBlob) -> None:
        self.new.discard(staged)

    def settle(self, staged: StagedBlob) -> None:
        self.new.settle(staged)

    # resumable uploads begin where new uploads go; one begun before the
    # switch goes on in the store that holds its bytes (an object store's
    # state names its staging key, a file store's does not)

    def _holding(self, state: Resumable) -> BlobStore:
        keyed = not isinstance(self.new, FileSystemBlobStore)
        return self.new if (state.key is not None) == keyed else self.old

    def resumable_begin(self, upload_id: str) -> Resumable:
        return self.new.resumable_begin(upload_id)

    def resumable_append(self, state: Resumable, chunks, on_chunk=None) -> Resumable:
        return self._holding(state).resumable_append(state, chunks, on_chunk)

    def resumable_staged(self, state: Resumable, sha256: bytes, head: bytes) -> StagedBlob:
        return self._holding(state).resumable_staged(state, sha256, head)

    def resumable_open(self, state: Resumable) -> BinaryIO:
        return self._holding(state).resumable_open(state)

    def resumable_drop(self, state: Resumable) -> None:
        self._holding(state).resumable_drop(state)

    def ensure_bucket(self) -> bool:
        created_old = self.old.ensure_bucket()
        return self.new.ensure_bucket() or created_old

    def after_fork(self) -> None:
        self.new.after_fork()
        self.old.after_fork()

    # -- reads: the new store first ----------------------------------------------------

    def content(self, sha256_hex: str) -> Content:
        return self._holder(bytes.fromhex(sha256_hex)).content(sha256_hex)

    def open(self, sha256: bytes) -> BinaryIO:
        return self._holder(sha256).open(sha256)

    def path(self, sha256: bytes) -> str | None:
        return self._holder(sha256).path(sha256)

    def exists(self, sha256: bytes) -> bool:
        return self.new.exists(sha256) or self.old.exists(sha256)

    def size(self, sha256: bytes) -> int | None:
        size = self.new.size(sha256)
        return size if size is not None else self.old.size(sha256)

    # -- removal: both -------------------------------------------------------------------

    def trash(self, sha256: bytes) -> str | None:
        taken = [self.new.trash(sha256), None]
        try:
            taken[1] = self.old.trash(sha256)
        except BaseException:
            if taken[0]:
                self.new.untrash(taken[0], sha256)
            raise
        if not any(taken):
            return None
        return "\n".join(t or "" for t in taken)

    def untrash(self, trashed: str, sha256: bytes) -> None:
        new, old = trashed.split("\n")
        if new:
            self.new.untrash(new, sha256)
        if old:
            self.old.untrash(old, sha256)

    def purge(self, trashed: str) -> None:
        new, old = trashed.split("\n")
        if new:
            self.new.purge(new)
        if old:
            self.old.purge(old)

    # -- maintenance ---------------------------------------------------------------------

    def iter_hashes(self) -> Iterator[bytes]:
        seen = set()
        for store in (self.new, self.old):
            for sha in store.iter_hashes():
                if sha not in seen:
                    seen.add(sha)
                    yield sha

    def mtime(self, sha256: bytes) -> float:
        return self._holder(sha256).mtime(sha256)

    def trashed(self) -> list[tuple[str, bytes]]:
        return ([(f"{path}\n", sha) for path, sha in self.new.trashed()]
                + [(f"\n{path}", sha) for path, sha in self.old.trashed()])

    def sweep_temp(self, grace: float | None = None) -> tuple[int, list[tuple[str, int]]]:
        removed_old, placed_old = self.old.sweep_temp(grace)
        removed, placed = self.new.sweep_temp(grace)
        for _, fd in placed_old:  # the old store takes no uploads: nothing of it is placed ahead of its rows
            os.close(fd)
        return removed + removed_old, placed

    def unplace(self, sha256: bytes, fd: int) -> bool:
        return self.new.unplace(sha256, fd)

    def count_stale_temp(self, older_than: float = 3600.0) -> int:
        return self.new.count_stale_temp(older_than) + self.old.count_stale_temp(older_than)

    def probe_writable(self) -> None:
        self.new.probe_writable()
