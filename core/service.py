"""The public API of pastefile: upload, look up, open and resize pastes.

Embedding in a program (library mode, own sessions)::

    from pastefile.core import PasteFileService

    service = PasteFileService({"pastefile.db_url": "sqlite:///pastes.sqlite",
                                "pastefile.storage_root": "files"})
    service.initdb()
    with open("cat.jpg", "rb") as f:
        paste = service.upload(f, "cat.jpg")
    print(paste.url_s(service.base_url))          # short link
    with service.open(paste.filehash) as data:    # the stored bytes
        head = data.read(16)
    thumb = service.resize(paste.filehash, 200, 200)

In a web app, ``service.bind(session)`` gives a view of the service that
runs in the caller's transaction (pyramid_tm commits it).

This module is the facade: it wires the parts and delegates each call to
the concern that owns it (``ingest``, ``lookups``, ``renditions``,
``removal``, ``maintenance``; ``pastecache`` for the cache, ``uow`` for
transactions, ``coordination`` for what processes agree on).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from . import coordination, db, health
from .blobstore import BlobStore, StagedBlob, StagingWriter
from .cache import Cache, MemoryCache, make_cache
from .content import Content
from .groupcommit import GroupCommitter
from .health import Readiness
from .imaging import RenditionSpec
from .ingest import Ingest
from .lookups import MAX_LATEST, MAX_SIMILAR, Lookups
from .maintenance import Maintenance, StoreMigration
from .parts import Parts
from .pastecache import LATEST_EXPIRE, LOCAL_ROW_TTL, SIMILAR_GENERATION, PasteCache
from .pastecache import named_key as _named_key  # noqa: F401 - the name tests import from here
from .ratelimit import Verdict
from .records import PasteInfo, RenditionInfo
from .removal import Removal
from .renditions import Renditions
from .resumable import Resumables, TusInfo
from .settings import Settings
from .shortlink import ShortLinks
from .similar import SimilarIndex
from .stores import configured_store, make_store
from .uow import UnitOfWork


class PasteFileService:
    """Upload, find, open and resize pastes.

    ``settings`` is a plain dict of ``pastefile.*`` keys (or a
    :class:`Settings`).  The service owns an engine, a cache client and a
    blob store; :meth:`bind` shares them with a caller's session.
    """

    def __init__(self, settings: Mapping | Settings | None = None, *, cache_backend: Cache | None = None):
        settings = settings if isinstance(settings, Settings) else Settings.from_dict(settings)
        engine = db.make_engine(settings.db_url)
        backend = cache_backend or make_cache(
            settings.cache_backend,
            servers=settings.cache_servers,
            prefix=settings.cache_prefix,
            max_entries=settings.cache_memory_size,
            max_bytes=settings.cache_memory_bytes,
        )
        store = configured_store(settings)
        coordinated = coordination.for_deployment(
            settings.storage_root, backend, engine, SIMILAR_GENERATION, settings.cache_expire,
            (settings.rate_limit_uploads, settings.rate_limit_bytes, settings.rate_limit_window),
        )
        self._wire(Parts(
            settings=settings,
            uow=UnitOfWork(engine, db.make_session_factory(engine)),
            store=store,
            links=ShortLinks(settings.symlink_key),
            pastecache=PasteCache(backend, settings, coordinated.removals, coordinated.images),
            coordination=coordinated,
        ))
        os.register_at_fork(after_in_child=functools.partial(_after_fork_in_child, weakref.ref(self)))
        if settings.auto_migrate:
            self.initdb()

    def _wire(self, parts: Parts, committer: GroupCommitter | None = None) -> None:
        self._parts = parts
        self._lookups = Lookups(parts)
        self._renditions = Renditions(parts, self._lookups)
        self._ingest = Ingest(parts, self._renditions, committer)
        self._removal = Removal(parts)
        self._maintenance = Maintenance(parts)
        self._resumables = Resumables(parts, self._ingest, self._lookups)

    # -- wiring -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._parts.settings.base_url

    @property
    def settings(self) -> Settings:
        return self._parts.settings

    @property
    def engine(self) -> Engine:
        return self._parts.uow.engine

    @property
    def session_factory(self) -> sessionmaker:
        return self._parts.uow.session_factory

    @property
    def cache(self) -> Cache:
        """The shared cache backend."""
        return self._parts.pastecache.backend

    @cache.setter
    def cache(self, backend: Cache) -> None:
        # rows and bytes go through the new backend from now on; the
        # coordination chosen at start-up keeps its own
        self._parts.pastecache.backend = backend

    @property
    def store(self) -> BlobStore:
        return self._parts.store

    @property
    def links(self) -> ShortLinks:
        return self._parts.links

    @property
    def expire(self) -> int:
        return self._parts.pastecache.expire

    def new_session(self, info: dict | None = None) -> Session:
        """A session on the service's engine, for a caller's own transaction
        (the web app's ``request.dbsession``); :meth:`bind` runs the service in it."""
        return self._parts.uow.session_factory(info=info or {})

    def bind(self, session: Session) -> "PasteFileService":
        """This service running in ``session``'s transaction (not committed here)."""
        bound = object.__new__(PasteFileService)
        bound._wire(self._parts.bound(session), self._ingest.committer)
        return bound

    def initdb(self) -> None:
        """Create or upgrade the schema (Alembic ``upgrade head``), and the
        object store's bucket when it is missing."""
        db.upgrade(self.engine)
        self._parts.store.ensure_bucket()

    def readiness(self) -> Readiness:
        """Whether this process can serve now: the database answers at the
        head revision, the blob store's temp dir takes a file, the cache
        answers (a dead cache is ``degraded``, still ready).  Cheap: one
        query, one tiny file made and removed, one cache get per server."""
        return health.readiness(self._parts)

    def require_current_schema(self) -> None:
        """Raise :class:`pastefile.core.health.SchemaBehind` (naming the fix)
        when the database's schema is older than this code; start-up calls it."""
        health.require_current_schema(self._parts)

    def close(self) -> None:
        self._ingest.committer.close()
        self.cache.close()
        self.engine.dispose()

    # the internals tests and tools reach for
    @property
    def _session(self) -> Session | None:
        return self._parts.uow.session

    def _transaction(self) -> AbstractContextManager[Session]:
        return self._parts.uow.transaction()

    def _writing(self) -> AbstractContextManager[Connection]:
        return self._parts.uow.writing()

    def _connection(self) -> AbstractContextManager[Connection]:
        return self._parts.uow.connection()

    def _after_commit(self, fn: Callable[[], None]) -> None:
        self._parts.uow.after_commit(fn)

    @property
    def _committer(self) -> GroupCommitter:
        return self._ingest.committer

    @property
    def _local_rows(self) -> MemoryCache | None:
        return self._parts.pastecache.local_rows

    @property
    def _local_bytes(self) -> MemoryCache:
        return self._parts.pastecache.local_bytes

    @property
    def _similar(self) -> SimilarIndex:
        return self._parts.pastecache.similar

    @_similar.setter
    def _similar(self, index: SimilarIndex) -> None:
        self._parts.pastecache.similar = index

    def _new_similar_index(self) -> SimilarIndex:
        return self._parts.pastecache.new_similar_index()

    # -- upload -------------------------------------------------------------

    def upload(
        self,
        fileobj: BinaryIO,
        filename: str | None,
        *,
        w: int | None = None,
        h: int | None = None,
        expires_in: int | None = None,
    ) -> PasteInfo:
        """Store ``fileobj`` and return its paste.

        One pass copies and hashes the bytes; identical content is stored
        once.  The same content under the same filename returns the earlier
        paste.  With ``w``/``h`` an image is crop-resized first and only the
        result is kept.  ``expires_in`` (seconds, up to the ``max_expiry``
        setting) makes the paste disappear then.  The answer carries a
        ``delete_token`` for a new paste.  Raises TooLarge, EmptyFile,
        UnsupportedType, InvalidRequest.
        """
        return self._ingest.upload(fileobj, filename, w=w, h=h, expires_in=expires_in)

    @contextmanager
    def receive(self) -> Iterator[StagingWriter]:
        """A writer for uploads that arrive in chunks (a streaming parser).

        ``write`` chunks into it, then pass ``writer.finish()`` to
        :meth:`upload_staged`.  The size limit applies while writing; an
        exception inside the ``with`` block discards what was written.
        """
        with self._ingest.receive() as writer:
            yield writer

    def upload_staged(
        self,
        staged: StagedBlob,
        filename: str | None,
        *,
        w: int | None = None,
        h: int | None = None,
        expires_in: int | None = None,
    ) -> PasteInfo:
        """The second half of :meth:`upload`, for bytes already staged.

        Takes ownership of ``staged``: it is committed or discarded.
        """
        return self._ingest.upload_staged(staged, filename, w=w, h=h, expires_in=expires_in)

    def discard_upload(self, staged: StagedBlob) -> None:
        """Give up bytes staged by :meth:`receive` that will not be passed to
        :meth:`upload_staged` (a bad form field, a request gone away)."""
        self._parts.store.discard(staged)

    def admit_upload(self, client: str, length: int | None) -> Verdict:
        """Count an upload from ``client`` (an address) of ``length`` bytes
        against the ``rate_limit`` settings: ``Verdict(0)`` admits it, 429
        says when to retry, 413 that it never fits a window."""
        return self._parts.coordination.uploads.admit(client, length)

    def check_declared_size(self, length: int | None, overhead: int = 0) -> None:
        """Refuse an upload by its announced length (say Content-Length),
        before reading a byte; ``overhead`` allows for framing such as multipart."""
        self._ingest.check_declared_size(length, overhead)

    # -- lookups --------------------------------------------------------------

    def get(self, filehash: str) -> PasteInfo | None:
        """The paste with this public filehash, or None."""
        return self._lookups.get(filehash)

    def get_by_id(self, paste_id: int) -> PasteInfo | None:
        return self._lookups.get_by_id(paste_id)

    def get_by_symlink(self, symlink: str) -> PasteInfo | None:
        """The paste behind a short link, or None (also for malformed links)."""
        return self._lookups.get_by_symlink(symlink)

    def require(self, filehash: str) -> PasteInfo:
        """The paste with this filehash; NotFound if there is none."""
        return self._lookups.require(filehash)

    def latest(self, limit: int = 20, offset: int = 0) -> list[PasteInfo]:
        """The most recent uploads, newest first (cached for a few seconds)."""
        return self._lookups.latest(limit, offset)

    def count(self) -> tuple[int, int]:
        """(pastes, blobs) in the database."""
        return self._lookups.count()

    # -- content --------------------------------------------------------------

    def content(self, info: PasteInfo | RenditionInfo) -> Content:
        """What to serve for a paste or rendition already looked up: its bytes
        (a blob kept in its row, from memory or the cache) or the file to send,
        with its path under the store for X-Accel-Redirect.  No syscall."""
        return self._lookups.content(info)

    def path(self, info: PasteInfo | RenditionInfo) -> str | None:
        """Where the paste's bytes are on disk (for sendfile/X-Accel-Redirect),
        None for a blob kept in its row."""
        return self._lookups.path(info)

    def open(self, filehash: str) -> BinaryIO:
        """The stored bytes of a paste, as a binary file object."""
        return self._lookups.open(filehash)

    def open_blob(self, info: PasteInfo | RenditionInfo) -> BinaryIO:
        """The stored bytes of a paste already looked up."""
        return self._lookups.open_blob(info)

    def blob_bytes(self, info: PasteInfo | RenditionInfo) -> bytes:
        """All the bytes of an inline blob: from this process's memory, the
        shared cache, else its row."""
        return self._lookups.blob_bytes(info)

    # -- renditions -----------------------------------------------------------

    def sign(self, filehash: str, spec: RenditionSpec) -> str:
        """The signature a rendition link carries when ``rendition_secret`` is set."""
        return self._renditions.sign(filehash, spec)

    def rendition_url(
        self, paste: PasteInfo, w=None, h=None, *, fit="crop", format=None, quality=None, base_url: str | None = None
    ) -> str:
        """A link to a rendition that this service will honour (signed when a
        secret is set), on ``base_url`` (default: the configured one)."""
        return self._renditions.rendition_url(paste, w, h, fit=fit, format=format, quality=quality,
                                              base_url=base_url)

    def offers_size(self, w: int, h: int) -> bool:
        """Whether visitors may ask for a w x h rendition (``rendition_sizes``; empty: any)."""
        return self._renditions.offers_size(w, h)

    def rendition(
        self,
        paste: PasteInfo | str,
        w: int | None = None,
        h: int | None = None,
        *,
        fit: str = "crop",
        format: str | None = None,
        quality: int | None = None,
        public: bool = False,
        signature: str | None = None,
    ) -> RenditionInfo:
        """The resize of an image paste: made once, stored as a blob, then
        found by (source, spec, encoder version) from the cache or the table.

        ``public`` applies the bounds for visitors: the signature or the list
        of allowed sizes, and the cap on distinct specs per source.
        Concurrent requests for the same rendition render it once.
        """
        return self._renditions.rendition(paste, w, h, fit=fit, format=format, quality=quality, public=public,
                                          signature=signature)

    def resize(self, filehash: str, w: int | None, h: int | None, *, public: bool = False,
               signature: str | None = None) -> PasteInfo:
        """A paste holding a crop-resize of an image (what GET /r/ makes), made
        from the stored rendition; repeating the request returns the same paste.

        ``public`` (a visitor's request): the paste answers no delete token,
        since it is the source uploader's picture, and goes when its source goes."""
        return self._renditions.resize(self._ingest, filehash, w, h, public=public, signature=signature)

    # -- near duplicates ------------------------------------------------------

    def similar(self, paste: PasteInfo | str, max_distance: int | None = None) -> list[tuple[PasteInfo, int]]:
        """Other image pastes whose pHash is within ``max_distance`` bits
        (default: the ``similar_distance`` setting), nearest first."""
        return self._lookups.similar(paste, max_distance)

    # -- removal --------------------------------------------------------------

    def delete(self, filehash: str, token: str) -> PasteInfo:
        """Remove a paste with the token its upload answered; its blob goes
        too when nothing else refers to it.  NotFound for an unknown paste,
        Forbidden for any other token (also for pastes made without one)."""
        return self._removal.delete(filehash, token)

    def can_delete(self, filehash: str, token: str) -> bool:
        """Whether ``token`` deletes this paste (checked again by :meth:`delete`)."""
        return self._removal.can_delete(filehash, token)

    def remove(self, filehash: str) -> PasteInfo:
        """Remove a paste without its token (the operator's command line)."""
        return self._removal.remove(filehash)

    def gc(self, grace: float = 3600.0, batch: int = 500) -> dict[str, int]:
        """Remove expired pastes, then blobs nothing refers to any more
        (older than ``grace`` seconds: their upload may still be committing),
        with their files and renditions; then what interrupted uploads left
        in the store (:meth:`sweep`: ``stale_temp``, ``orphan_files``)."""
        report = self._removal.gc(grace, batch)
        report["resumable_uploads"] = self._resumables.gc()
        report.update(self._maintenance.sweep())
        return report

    # -- resumable uploads (tus) ------------------------------------------------

    def tus_create(self, length: int | None, metadata: str = "", *, partial: bool = False,
                   final_of: list[str] | None = None, body: Iterable[bytes] | None = None,
                   checksum: tuple[str, bytes] | None = None) -> TusInfo:
        """Start a resumable upload of ``length`` bytes (None: told later)
        with tus ``Upload-Metadata`` (filename, filetype, expires, w, h);
        ``partial`` for a part of a concatenation; ``final_of``: the ids of
        complete partial uploads, joined now into one paste; ``body``: all
        of the upload's bytes at once (with their ``checksum``), made a
        paste as ``upload`` makes one."""
        return self._resumables.create(length, metadata, partial=partial, final_of=final_of, body=body,
                                       checksum=checksum)

    def tus_info(self, upload_id: str) -> TusInfo:
        return self._resumables.get(upload_id)

    def tus_append(self, upload_id: str, offset: int, chunks, *, length: int | None = None,
                   checksum: tuple[str, bytes] | None = None) -> TusInfo:
        """Append a body's chunks at ``offset``; the append that reaches the
        length completes the upload (``TusInfo.paste``, with its delete token)."""
        return self._resumables.append(upload_id, offset, chunks, length=length, checksum=checksum)

    def tus_paste(self, upload_id: str) -> PasteInfo:
        """The paste a complete upload became."""
        return self._resumables.paste_of(upload_id)

    def tus_terminate(self, upload_id: str) -> None:
        self._resumables.terminate(upload_id)

    # -- maintenance ----------------------------------------------------------

    def fsck(self, repair: bool = False, grace: float = 3600.0, verify: bool = False) -> dict[str, int]:
        """Check the store against the database.

        Counts stale temp files, files in the trash (left by a crash during a
        removal), blob files with no row, rows whose file is missing, and
        files whose size (or, with ``verify``, SHA-256, re-hashed by the C
        extension) does not match their address.  ``repair`` removes stale
        temp files, puts trashed files whose row still exists back, and
        removes orphan files, each under the blob's lock so a concurrent
        upload of the same bytes keeps its file.  Files younger than
        ``grace`` seconds are left alone.  Missing and corrupt files are only
        reported: they need a backup.
        """
        return self._maintenance.fsck(repair, grace, verify)

    def migrate_store(self, to: str, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Copy every file-backed blob (pastes' and renditions') into the
        ``to`` store ("s3" or "file") from the other one, each re-hashed
        while it streams; resumable, and a no-op once everything is there.
        Run it while the service reads through ``store.fallback``; then
        switch ``store``.  ``progress(blobs_done, blobs_in_all)``."""
        if to not in ("s3", "file"):
            raise ValueError(f"expected s3 or file, got {to!r}")
        # every blob goes to the target as an object or a file, whatever its size
        settings = dataclasses.replace(self.settings, inline_max=0)
        source = make_store(settings, "file" if to == "s3" else "s3")
        return StoreMigration(self._parts).run(source, make_store(settings, to), progress)

    def sweep(self) -> dict[str, int]:
        """Settle what crashed or failed uploads left, at any age, reading
        only the store's tmp/: staged files nobody writes any more are
        removed, and so is a file an upload placed at its address if its
        row never committed (under the blob's lock, like a repair).  Safe
        beside live uploads: their files are locked.  Run at start-up."""
        return self._maintenance.sweep()


def _after_fork_in_child(ref: weakref.ref) -> None:
    """A forked worker must not share the parent's database or cache sockets."""
    service = ref()
    if service is not None:
        service.engine.dispose(close=False)
        service._parts.pastecache.after_fork()
        service._parts.store.after_fork()


__all__ = [
    "Content",
    "LATEST_EXPIRE",
    "LOCAL_ROW_TTL",
    "MAX_LATEST",
    "MAX_SIMILAR",
    "SIMILAR_GENERATION",
    "PasteFileService",
    "PasteInfo",
    "RenditionInfo",
]
