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
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import io
import logging
import secrets
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from pastefile.ext.hashing import SizeLimitExceeded, copy_and_hash

from . import db, metadata, mimes, repository
from .blobstore import FileSystemBlobStore, StagedBlob, StagingWriter
from .cache import Cache, MemcachedCache, MemoryCache, cache, make_cache
from .errors import EmptyFile, Forbidden, InvalidRequest, NotFound, TooLarge, UnsupportedType, Unprocessable
from .groupcommit import GroupCommitter
from .imaging import ENCODER_VERSION, ImageError, ImageTooLarge, RenditionSpec, UndecodableImage, image_facts, render
from .models import Blob, PasteFile, utcnow
from .records import PasteInfo, RenditionInfo, live as _live, paste_from_row, rendition_from_row
from .repository import NewPaste, to_unsigned64
from .settings import Settings, parse_size
from .shortlink import ShortLinks
from .similar import SimilarIndex
from .singleflight import SingleFlight
from .sniff import sniff
from .utils import clean_filename, humanize_bytes, is_filehash, new_filehash

log = logging.getLogger(__name__)

LATEST_EXPIRE = 10  # seconds; the list changes with every upload
# seconds a paste row stays in a process in front of a shared cache: the most
# a removal is seen late by a host that does not share the storage root
LOCAL_ROW_TTL = 2
MAX_LATEST = 100
MAX_SIMILAR = 50
# a token in the shared cache that changes whenever image uploads commit
SIMILAR_GENERATION = "similar:generation"


class PasteFileService:
    """Upload, find, open and resize pastes.

    ``settings`` is a plain dict of ``pastefile.*`` keys (or a
    :class:`Settings`).  The service owns an engine, a cache client and a
    blob store; :meth:`bind` shares them with a caller's session.
    """

    def __init__(self, settings: Mapping | Settings | None = None, *, cache_backend: Cache | None = None):
        self.settings = settings if isinstance(settings, Settings) else Settings.from_dict(settings)
        self.engine = db.make_engine(self.settings.db_url)
        self.session_factory = db.make_session_factory(self.engine)
        self.cache = cache_backend or make_cache(
            self.settings.cache_backend,
            servers=self.settings.cache_servers,
            prefix=self.settings.cache_prefix,
            max_entries=self.settings.cache_memory_size,
            max_bytes=self.settings.cache_memory_bytes,
        )
        # content-addressed bytes are immutable: a small per-process copy
        # saves a round trip to memcached on every read of a hot blob
        self._local_bytes = MemoryCache(prefix="local", max_entries=4096, max_bytes=self.settings.cache_local_bytes)
        # with a shared cache (memcached), paste rows are also kept here for
        # LOCAL_ROW_TTL seconds: a cached read then costs no round trip.  A
        # removal anywhere is seen at once through the removals stamp below.
        self._local_rows = (
            None if isinstance(self.cache, MemoryCache) else MemoryCache(prefix="rows", max_entries=8192, max_bytes=16 << 20)
        )
        self.store = FileSystemBlobStore(self.settings.storage_root, self.settings.inline_max)
        self.links = ShortLinks(self.settings.symlink_key)
        self.expire = self.settings.cache_expire
        self._session: Session | None = None
        # an upload whose blob row a concurrent delete removed meets a foreign
        # key error (or, rarely, a deadlock); tried again, it records the blob afresh
        self._committer = GroupCommitter(
            self.engine,
            self._record,
            after_commit=self._remember,
            retry_on=(IntegrityError, OperationalError),
            lock_path=db.writer_lock_path(self.engine),
            writers=self.settings.commit_writers or (1 if self.engine.dialect.name == "sqlite" else 4),
        )
        self._flights = SingleFlight(os.path.join(self.store.root, "locks"))
        self._offered_sizes = frozenset(parse_size(size) for size in self.settings.rendition_sizes)
        # an in-process cache cannot hear another process's delete: removals
        # replace this file, and a lookup that sees it changed starts afresh
        self._removals = os.path.join(self.store.root, "locks", "removals")
        self._images = os.path.join(self.store.root, "locks", "images")
        self._removals_seen: tuple[int, int] | None = None
        self._similar = self._new_similar_index()
        os.register_at_fork(after_in_child=functools.partial(_after_fork_in_child, weakref.ref(self)))
        if self.settings.auto_migrate:
            self.initdb()

    # -- wiring -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def bind(self, session: Session) -> "PasteFileService":
        """This service running in ``session``'s transaction (not committed here)."""
        bound = object.__new__(PasteFileService)
        bound.__dict__.update(self.__dict__)
        bound._session = session
        return bound

    def initdb(self) -> None:
        """Create or upgrade the schema (Alembic ``upgrade head``)."""
        db.upgrade(self.engine)

    def close(self) -> None:
        self._committer.close()
        self.cache.close()
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        if self._session is not None:
            yield self._session
            return
        with self.session_factory() as session, session.begin():
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A connection in a write transaction: the bound session's (committed
        by its owner), else one committed on leaving the block."""
        if self._session is not None:
            yield self._session.connection()
            return
        with self.engine.begin() as conn:
            yield conn

    def _after_commit(self, fn) -> None:
        """Run ``fn`` once what was just written is committed."""
        if self._session is not None:
            db.after_commit(self._session, fn)
        else:
            fn()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection for reads: the bound session's, or one from the pool."""
        if self._session is not None:
            yield self._session.connection()
            return
        with self.engine.connect() as conn:
            yield conn

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
        if w or h:
            self._check_dimensions(w, h)  # before reading a byte
        self._expiry(expires_in)
        return self.upload_staged(self._stage(fileobj), filename, w=w, h=h, expires_in=expires_in)

    @contextmanager
    def receive(self) -> Iterator[StagingWriter]:
        """A writer for uploads that arrive in chunks (a streaming parser).

        ``write`` chunks into it, then pass ``writer.finish()`` to
        :meth:`upload_staged`.  The size limit applies while writing; an
        exception inside the ``with`` block discards what was written.
        """
        with self.store.writer(self.settings.max_upload_size) as writer:
            try:
                yield writer
            except SizeLimitExceeded:
                raise self._too_large() from None

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
        filename = clean_filename(filename)
        resize = (w, h) if (w or h) else None
        try:
            expires = self._expiry(expires_in)
            if resize:
                self._check_dimensions(w, h)
            elif staged.size and expires is None:
                # bytes already on record under this name: their type is
                # known, so the earlier paste answers before libmagic runs
                # (a text sniff costs more than the rest of a small upload)
                earlier = self._earlier_upload(staged.sha256, filename)
                if earlier is not None and mimes.is_allowed(earlier.mimetype, self.settings.allowed_types):
                    self.store.settle(staged)
                    return earlier
            mimetype = self._check_type(staged)
            staged = self._strip_metadata(staged, mimetype)
            facts = self._facts(staged, mimetype)
            if resize:
                if mimetype not in mimes.RESIZABLE_MIMES:
                    raise UnsupportedType(f"cannot resize {mimetype}; only images can take w and h")
                # the original is kept as the rendition's source blob (no
                # paste of its own); the paste is the resized image
                spec = self._spec(mimetype, w, h)
                source_row = dict(
                    sha256=staged.sha256, size=staged.size, mimetype=mimetype, width=facts[0], height=facts[1],
                    phash=facts[2], data=staged.data, created=utcnow(),
                )
                info, data = self._produce(staged.sha256, staged.open, spec, source_row=source_row, staged_source=staged)
                self.store.settle(staged)
                staged = self.store.stage_bytes(data)
                return self._save(
                    staged, filename, info.mimetype, (info.width, info.height, None), resize=resize, expires=expires
                )
            return self._save(staged, filename, mimetype, facts, expires=expires, shortcut=False)
        except BaseException:
            self.store.discard(staged)
            raise

    def _expiry(self, expires_in) -> datetime | None:
        if expires_in is None:
            return None
        limit = self.settings.max_expiry
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= limit:
            raise InvalidRequest(f"expires must be a number of seconds between 1 and {limit}")
        return utcnow() + timedelta(seconds=expires_in)

    def _too_large(self) -> TooLarge:
        return TooLarge(f"the file exceeds the limit of {humanize_bytes(self.settings.max_upload_size)}")

    def check_declared_size(self, length: int | None, overhead: int = 0) -> None:
        """Refuse an upload by its announced length (say Content-Length),
        before reading a byte; ``overhead`` allows for framing such as multipart."""
        if length is not None and length > self.settings.max_upload_size + overhead:
            raise self._too_large()

    def _stage(self, fileobj: BinaryIO) -> StagedBlob:
        try:
            return self.store.stage(fileobj, self.settings.max_upload_size)
        except SizeLimitExceeded:
            raise self._too_large() from None

    def _check_type(self, staged: StagedBlob) -> str:
        if staged.size == 0:
            raise EmptyFile("the file is empty")
        mimetype = sniff(staged.head, staged.path, staged.data)
        if not mimes.is_allowed(mimetype, self.settings.allowed_types):
            raise UnsupportedType(f"files of type {mimetype} are not accepted here")
        return mimetype

    def _strip_metadata(self, staged: StagedBlob, mimetype: str) -> StagedBlob:
        """The upload without the image metadata ``strip_metadata`` removes
        (GPS by default), staged afresh when anything went: the stored blob,
        its SHA-256 and its dedupe are of the stripped bytes.  Takes
        ownership of ``staged``."""
        level = self.settings.strip_metadata
        if level == "none" or mimetype not in _STRIPPABLE:
            return staged
        if staged.data is not None:
            data = staged.data
        else:
            with open(staged.path, "rb") as f:
                data = f.read()
        try:
            stripped = metadata.strip(data, level)
        except Exception:  # noqa: BLE001 - untrusted bytes: refuse rather than publish what should go
            log.exception("removing metadata from an upload failed")
            raise Unprocessable("the image's metadata could not be removed; it was not stored") from None
        if stripped is None:
            return staged
        replacement = self.store.stage_bytes(stripped)
        self.store.discard(staged)
        return replacement

    def _check_dimensions(self, w, h) -> None:
        """w/h as a rendition spec checks them (None: follow the aspect ratio)."""
        try:
            RenditionSpec(_side(w), _side(h)).validate(self.settings.max_side)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def _facts(self, staged: StagedBlob, mimetype: str) -> tuple[int | None, int | None, int | None]:
        """(width, height, pHash) of an image upload; Nones for anything else."""
        if mimetype not in mimes.IMAGE_MIMES:
            return (None, None, None)
        with staged.open() as f:
            facts = image_facts(f, self.settings.max_image_pixels)
        return (facts.width, facts.height, facts.phash) if facts else (None, None, None)

    def _save(
        self,
        staged: StagedBlob,
        filename: str,
        mimetype: str,
        facts: tuple[int | None, int | None, int | None],
        *,
        parent_id: int | None = None,
        resize: tuple | None = None,
        expires: datetime | None = None,
        shortcut: bool = True,
        token: bool = True,
    ) -> PasteInfo:
        """Make the upload durable and visible: a file blob under its address
        first, then the rows in one commit (shared with concurrent uploads by
        the group committer, or the caller's transaction when bound)."""
        token = secrets.token_urlsafe(18) if token else None
        item = NewPaste(
            sha256=staged.sha256,
            size=staged.size,
            mimetype=mimetype,
            width=facts[0],
            height=facts[1],
            phash=facts[2],
            data=staged.data,
            filehash=new_filehash(filename),
            filename=filename,
            uploadtime=utcnow(),
            parent_id=parent_id,
            resize_w=resize[0] if resize else None,
            resize_h=resize[1] if resize else None,
            delete_token_hash=_token_hash(token) if token else None,
            expires=expires,
            delete_token=token,
            staged=staged,
        )
        # the same bytes under the same name: the earlier paste, as the
        # writer's ON CONFLICT would answer, without a place in its queue
        earlier = self._earlier_upload(staged.sha256, filename) if shortcut and expires is None else None
        if earlier is not None:
            self.store.settle(staged)
            return earlier
        # durable under its address before any row points at it; when the
        # same bytes are there already, the staged copy is kept until the
        # rows are recorded, in case a concurrent delete takes that file
        self.store.commit(staged)
        if self._session is None:
            info = self._committer.submit(item)
        else:
            info = self._record(self._session.connection(), [item])[0]
            db.after_commit(self._session, lambda: self._remember([item], [info]))
        self.store.settle(staged)
        return info

    def _record(self, conn: Connection, items: list[NewPaste]) -> list[PasteInfo]:
        files = [item.staged for item in items if item.staged is not None and not item.staged.inline]
        # each file blob's lock first (removals take it before the row locks,
        # so the order is the same everywhere), then the rows; a file a
        # removal took since commit() found it is put back before this
        # transaction makes rows point at it
        repository.lock_blobs(conn, [f.sha256 for f in files])
        rows = repository.record(conn, items)
        for staged in files:
            self.store.restore(staged)
        return [
            self._info(row, delete_token=item.delete_token if row["new"] else None)
            for row, item in zip(rows, items)
        ]

    def _earlier_upload(self, sha256: bytes, filename: str) -> PasteInfo | None:
        """The paste kept until deleted that an earlier upload of the same
        bytes under the same name made, when the cache hints there is one and
        the database confirms it: a repeated upload then costs one read
        instead of a place in the writer's queue and a write that changes
        nothing.  Only pastes without an expiry are shared: a repeat never
        changes anyone's expiry."""
        if not self.cache.get(_named_key(sha256, filename)):
            return None
        with self._connection() as conn:
            row = repository.paste_of(conn, sha256, filename)
        return None if row is None else self._info(row)

    def _remember(self, items: list[NewPaste], infos: list[PasteInfo]) -> None:
        """One cache write for a committed batch of uploads: their pastes and
        the bytes of small ones (a new upload is usually viewed at once)."""
        mapping = {}
        for item, info in zip(items, infos):
            if info.phash is not None:
                self._similar.add(info.id, info.phash)
                mapping[SIMILAR_GENERATION] = os.urandom(8).hex()
            data = info.to_cache()
            if info.expires is None:
                mapping[_named_key(item.sha256, item.filename)] = 1
            mapping[f"paste:fh:{info.filehash}"] = data
            mapping[f"paste:id:{info.id}"] = data
            if info.inline and item.data is not None and len(item.data) <= self.settings.cache_variant_max:
                mapping[f"blobdata:{info.sha256}"] = item.data
        self.cache.set_many(mapping, self.expire)
        if SIMILAR_GENERATION in mapping and not isinstance(self.cache, MemcachedCache):
            # before the links are handed out: every process's next lookup
            # of near duplicates sees these images
            _replace_stamp(self._images)

    def _info(self, row, delete_token: str | None = None) -> PasteInfo:
        return paste_from_row(row, self.links.encode(row["id"]), delete_token)

    # -- lookups --------------------------------------------------------------

    @cache("paste:fh:{filehash}", max_retry=5)
    def _paste_by_filehash(self, filehash: str) -> dict | None:
        with self._connection() as conn:
            row = repository.paste_by_filehash(conn, filehash)
            return self._info(row).to_cache() if row is not None else None

    @cache("paste:id:{paste_id}", max_retry=5)
    def _paste_by_id(self, paste_id: int) -> dict | None:
        with self._connection() as conn:
            row = repository.paste_by_id(conn, paste_id)
            return self._info(row).to_cache() if row is not None else None

    def _pastes_by_ids(self, ids: list[int]) -> dict[int, dict]:
        with self._connection() as conn:
            return {row["id"]: self._info(row).to_cache() for row in repository.pastes_by_ids(conn, ids)}

    def get(self, filehash: str) -> PasteInfo | None:
        """The paste with this public filehash, or None."""
        if not isinstance(filehash, str) or not is_filehash(filehash):
            return None
        self._sync_removals()
        data = self._row(f"fh:{filehash}", self._paste_by_filehash, filehash)
        return _live(PasteInfo.from_cache(data)) if data else None

    def get_by_id(self, paste_id: int) -> PasteInfo | None:
        self._sync_removals()
        data = self._row(f"id:{paste_id}", self._paste_by_id, paste_id)
        return _live(PasteInfo.from_cache(data)) if data else None

    def _row(self, key: str, load, arg):
        local = self._local_rows
        if local is None:
            return load(arg)
        data = local.get(key)
        if data is None:
            data = load(arg)
            if data:
                local.set(key, data, LOCAL_ROW_TTL)
        return data

    def get_by_symlink(self, symlink: str) -> PasteInfo | None:
        """The paste behind a short link, or None (also for malformed links)."""
        paste_id = self.links.decode(symlink) if isinstance(symlink, str) else None
        return self.get_by_id(paste_id) if paste_id else None

    def require(self, filehash: str) -> PasteInfo:
        info = self.get(filehash)
        if info is None:
            raise NotFound(f"no file {filehash!r}")
        return info

    @cache("latest:{limit}:{offset}", expire=LATEST_EXPIRE)
    def _latest_ids(self, limit: int, offset: int) -> list[int]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(PasteFile.id).order_by(PasteFile.id.desc()).limit(limit).offset(offset)
                )
            )

    def latest(self, limit: int = 20, offset: int = 0) -> list[PasteInfo]:
        """The most recent uploads, newest first (cached for a few seconds)."""
        if not 1 <= limit <= MAX_LATEST or offset < 0:
            raise InvalidRequest(f"limit must be 1..{MAX_LATEST} and offset >= 0")
        self._sync_removals()
        ids = self._latest_ids(limit, offset)
        found = self._paste_by_id.many(self, ids, self._pastes_by_ids)
        return [p for p in (PasteInfo.from_cache(found[i]) for i in ids if i in found) if not p.expired()]

    def count(self) -> tuple[int, int]:
        """(pastes, blobs) in the database."""
        with self._transaction() as session:
            return (
                session.scalar(select(func.count()).select_from(PasteFile)),
                session.scalar(select(func.count()).select_from(Blob)),
            )

    # -- content --------------------------------------------------------------

    def path(self, info: PasteInfo | RenditionInfo) -> str | None:
        """Where the paste's bytes are on disk (for sendfile/X-Accel-Redirect),
        None for a blob kept in its row."""
        return None if info.inline else self.store.path(bytes.fromhex(info.sha256))

    def open(self, filehash: str) -> BinaryIO:
        """The stored bytes of a paste, as a binary file object."""
        return self.open_blob(self.require(filehash))

    def open_blob(self, info: PasteInfo | RenditionInfo) -> BinaryIO:
        """The stored bytes of a paste already looked up."""
        if info.inline:
            return io.BytesIO(self.blob_bytes(info))
        return self.store.open(bytes.fromhex(info.sha256))

    def blob_bytes(self, info: PasteInfo | RenditionInfo) -> bytes:
        """All the bytes of an inline blob: from this process's memory, the
        shared cache, else its row.  Bytes under a content hash never change,
        so keeping them per process is always correct (a removed paste is
        refused by its lookup before its bytes are asked for)."""
        key = f"blobdata:{info.sha256}"
        data = self._local_bytes.get(key)
        if data is not None:
            return data
        data = self.cache.get(key)
        if data is None:
            with self._connection() as conn:
                data = repository.blob_data(conn, bytes.fromhex(info.sha256))
            if data is None:
                raise NotFound(f"the bytes of blob {info.sha256[:16]} are missing")
            if len(data) <= self.settings.cache_variant_max:
                self.cache.set(key, data, self.expire)
        self._local_bytes.set(key, data)
        return data

    # -- renditions -----------------------------------------------------------

    def _spec(self, mimetype: str, w, h, fit: str = "crop", format: str | None = None, quality=None) -> RenditionSpec:
        spec = RenditionSpec(_side(w), _side(h), fit or "crop", format or None, quality)
        try:
            spec.validate(self.settings.max_side)
            return spec.normalized(mimetype)
        except ImageError as exc:
            raise UnsupportedType(str(exc)) from None
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def sign(self, filehash: str, spec: RenditionSpec) -> str:
        """The signature a rendition link carries when ``rendition_secret`` is set."""
        message = f"{filehash}/{spec.key()}".encode()
        return hmac.new(self.settings.rendition_secret.encode(), message, hashlib.sha256).hexdigest()[:32]

    def rendition_url(
        self, paste: PasteInfo, w=None, h=None, *, fit="crop", format=None, quality=None, base_url: str | None = None
    ) -> str:
        """A link to a rendition that this service will honour (signed when a
        secret is set), on ``base_url`` (default: the configured one)."""
        spec = self._spec(paste.mimetype, w, h, fit, format, quality)
        params = [f"w={spec.width}", f"h={spec.height}"]
        if spec.fit != "crop":
            params.append(f"fit={spec.fit}")
        if format:
            params.append(f"format={spec.format}")
        if quality:
            params.append(f"q={spec.quality}")
        if self.settings.rendition_secret:
            params.append(f"sig={self.sign(paste.filehash, spec)}")
        return f"{paste.url_i(base_url or self.base_url)}?{'&'.join(params)}"

    def _check_public(self, source: PasteInfo, spec: RenditionSpec, signature: str | None) -> None:
        """The bounds on renditions asked for by visitors rather than by the
        program embedding the service."""
        if self.settings.rendition_secret:
            if not isinstance(signature, str) or not hmac.compare_digest(signature, self.sign(source.filehash, spec)):
                raise Forbidden("this resize link is not signed by this service")
        if not self.offers_size(spec.width, spec.height):
            sizes = ", ".join(self.settings.rendition_sizes)
            raise Forbidden(f"{spec.width}x{spec.height} is not offered here; sizes: {sizes}")

    def offers_size(self, w: int, h: int) -> bool:
        """Whether visitors may ask for a w x h rendition (``rendition_sizes``; empty: any)."""
        return not self._offered_sizes or (w, h) in self._offered_sizes

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
        source = paste if isinstance(paste, PasteInfo) else self.require(paste)
        if not source.is_resizable:
            raise UnsupportedType(f"cannot resize {source.mimetype}")
        spec = self._spec(source.mimetype, w, h, fit, format, quality)
        if public:
            self._check_public(source, spec, signature)
        sha = bytes.fromhex(source.sha256)
        key = _rendition_key(source.sha256, spec.key(), ENCODER_VERSION)
        data = self.cache.get(key)
        if data is not None:
            return RenditionInfo(**data)
        found = self._find_rendition(sha, spec, key)
        if found is not None:
            return found
        cap = self.settings.rendition_max_per_source if public else None
        if cap is not None:
            # a cheap early refusal; the count that holds is taken again
            # under the source's lock when the rendition is recorded
            with self._connection() as conn:
                _check_cap(repository.rendition_count(conn, sha, ENCODER_VERSION), cap)
        with self._flights(key):
            # made by another thread or process while this one waited?
            found = self._find_rendition(sha, spec, key)
            if found is not None:
                return found
            try:
                info, _ = self._produce(sha, lambda: self.open_blob(source), spec, cap=cap)
            except IntegrityError:
                # the source was deleted while this rendered: its row is gone
                raise NotFound(f"no file {source.filehash!r}") from None
        return info

    def _find_rendition(self, sha: bytes, spec: RenditionSpec, key: str) -> RenditionInfo | None:
        with self._connection() as conn:
            row = repository.rendition(conn, sha, spec.key(), ENCODER_VERSION)
        if row is None:
            return None
        info = self._rendition_info(sha, spec, row["sha256"], row)
        self.cache.set(key, asdict(info), self.expire)
        return info

    def _rendition_info(self, source: bytes, spec: RenditionSpec, sha: bytes, facts: Mapping) -> RenditionInfo:
        return RenditionInfo(
            source=source.hex(), spec=spec.key(), sha256=sha.hex(), size=facts["size"], mimetype=facts["mimetype"],
            width=facts["width"], height=facts["height"], inline=bool(facts["inline"]),
        )

    def _produce(
        self,
        source: bytes,
        read,
        spec: RenditionSpec,
        *,
        source_row: dict | None = None,
        staged_source: StagedBlob | None = None,
        cap: int | None = None,
    ) -> tuple[RenditionInfo, bytes]:
        """Render ``spec`` from the bytes ``read()`` opens, store the result
        as a blob and record the rendition, in one transaction with
        ``source_row`` (a source blob not yet recorded) when given.  With
        ``cap``, Forbidden when the source has that many renditions by the
        time this one would be recorded."""
        with read() as f:
            try:
                out = render(
                    f, spec, upscale=self.settings.allow_upscale, max_pixels=self.settings.max_image_pixels,
                    threads=self.settings.image_threads or None,
                )
            except (ImageTooLarge, UndecodableImage) as exc:
                raise Unprocessable(str(exc)) from None
            except ImageError as exc:
                raise UnsupportedType(str(exc)) from None
        facts = image_facts(io.BytesIO(out.data), self.settings.max_image_pixels)
        staged = self.store.stage_bytes(out.data)
        try:
            # files first, durable under their address, then the rows
            if staged_source is not None:
                self.store.commit(staged_source)
            self.store.commit(staged)
            now = utcnow()
            kept = [b for b in (staged_source, staged) if b is not None and not b.inline]
            with self._writing() as conn:
                # the blobs' locks before their rows, in the order removals
                # take them; with a cap the source's too, so that concurrent
                # renditions of one source count and record one at a time
                repository.lock_blobs(conn, [b.sha256 for b in kept] + ([source] if cap is not None else []))
                if cap is not None:
                    repository.write_lock(conn)
                    _check_cap(repository.rendition_count(conn, source, ENCODER_VERSION), cap)
                if source_row is not None:
                    repository.record_blob(conn, **source_row)
                repository.record_blob(
                    conn, staged.sha256, staged.size, out.mimetype, out.width, out.height,
                    facts.phash if facts else None, staged.data, now,
                )
                repository.record_rendition(conn, source, spec.key(), ENCODER_VERSION, staged.sha256, now)
                for blob in kept:  # files a concurrent delete took since commit() found them
                    self.store.restore(blob)
        except BaseException:
            self.store.discard(staged)
            raise
        self.store.settle(staged)
        info = RenditionInfo(
            source=source.hex(), spec=spec.key(), sha256=staged.sha256.hex(), size=staged.size,
            mimetype=out.mimetype, width=out.width, height=out.height, inline=staged.inline,
        )
        mapping = {_rendition_key(info.source, info.spec, ENCODER_VERSION): asdict(info)}
        if staged.inline and len(out.data) <= self.settings.cache_variant_max:
            mapping[f"blobdata:{info.sha256}"] = out.data
        self._after_commit(lambda: self.cache.set_many(mapping, self.expire))
        return info, out.data

    def resize(self, filehash: str, w: int | None, h: int | None, *, public: bool = False,
               signature: str | None = None) -> PasteInfo:
        """A paste holding a crop-resize of an image (book route /r/), made
        from the stored rendition; repeating the request returns the same paste.

        ``public`` (a visitor's request): the paste answers no delete token,
        since it is the source uploader's picture, and goes when its source goes."""
        source = self.require(filehash)
        self._check_dimensions(w, h)
        made = self.rendition(source, w, h, public=public, signature=signature)
        with self.open_blob(made) as f:
            data = f.read()
        staged = self.store.stage_bytes(data)
        try:
            return self._save(
                staged, source.filename, made.mimetype, (made.width, made.height, None),
                parent_id=source.id, resize=(w, h), token=not public,
            )
        except BaseException:
            self.store.discard(staged)
            raise

    # -- near duplicates ------------------------------------------------------

    def _new_similar_index(self) -> SimilarIndex:
        if isinstance(self.cache, MemcachedCache):
            return SimilarIndex(lambda: self.cache.get(SIMILAR_GENERATION))
        # a cache of this process alone cannot carry another process's
        # token: the stamp file that image uploads replace does (one stat)
        return SimilarIndex(lambda: _stamp_of(self._images))

    def _image_hashes(self, after_id: int) -> list[tuple[int, int]]:
        with self._connection() as conn:
            return repository.image_hashes(conn, after_id)

    def similar(self, paste: PasteInfo | str, max_distance: int | None = None) -> list[tuple[PasteInfo, int]]:
        """Other image pastes whose pHash is within ``max_distance`` bits
        (default: the ``similar_distance`` setting), nearest first."""
        source = paste if isinstance(paste, PasteInfo) else self.require(paste)
        if max_distance is None:
            max_distance = self.settings.similar_distance
        if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= 64:
            raise InvalidRequest("the distance must be an integer between 0 and 64")
        if source.phash is None:
            return []
        hits = [(i, d) for i, d in self._similar.search(source.phash, max_distance, self._image_hashes) if i != source.id][:MAX_SIMILAR]
        found = self._paste_by_id.many(self, [i for i, _ in hits], self._pastes_by_ids)
        return [(p, d) for p, d in ((PasteInfo.from_cache(found[i]), d) for i, d in hits if i in found)
                if not p.expired()]

    # -- removal --------------------------------------------------------------

    def delete(self, filehash: str, token: str) -> PasteInfo:
        """Remove a paste with the token its upload answered; its blob goes
        too when nothing else refers to it.  NotFound for an unknown paste,
        Forbidden for any other token (also for pastes made without one)."""
        if not isinstance(filehash, str) or not is_filehash(filehash):
            raise NotFound(f"no file {filehash!r}")
        if not isinstance(token, str) or not token:
            raise Forbidden("deleting a file needs the delete token its upload answered")
        return self._remove(filehash, token)

    def can_delete(self, filehash: str, token: str) -> bool:
        """Whether ``token`` deletes this paste (checked again by :meth:`delete`)."""
        if not isinstance(filehash, str) or not is_filehash(filehash) or not isinstance(token, str) or not token:
            return False
        with self._connection() as conn:
            stored = repository.delete_token_hash(conn, filehash)
        return stored is not None and hmac.compare_digest(stored, _token_hash(token))

    def remove(self, filehash: str) -> PasteInfo:
        """Remove a paste without its token (the operator's command line)."""
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
                if stored is None or not hmac.compare_digest(stored, _token_hash(token)):
                    raise Forbidden("this delete token is not the one for this file")
            info = self._info(repository.paste_by_id(conn, row["id"]))
            return info, repository.remove_pastes(conn, [row["id"]]), []

        info, _ = self._removing(remove)
        return info

    def _removing(self, work):
        """Run ``work(conn)`` -> (result, removed pastes, more candidate blobs)
        in a write transaction, release the blobs left without references, take their
        files out of the store when the transaction commits (back in if it
        does not) and forget everything removed, in every cache."""
        trashed: list[tuple[str, bytes]] = []
        try:
            with self._writing() as conn:
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
            self._forget(removed, released)

        if self._session is not None:
            # the caller commits or rolls back later; forget now for this
            # transaction's own reads, and again after the commit for readers
            # that cached the rows in between
            self._forget(removed, released)
            db.after_rollback(self._session, lambda: self._untrash(trashed))
        self._after_commit(done)
        return result, (removed, released)

    def _sync_removals(self) -> None:
        """Drop the rows cached in this process when any process removed
        pastes since this one last looked (one stat per lookup)."""
        seen = _stamp_of(self._removals)
        if seen != self._removals_seen:
            if self._removals_seen is not None:
                (self._local_rows if self._local_rows is not None else self.cache).clear()
            self._removals_seen = seen

    def _announce_removals(self) -> None:
        _replace_stamp(self._removals)

    def _untrash(self, trashed: list[tuple[str, bytes]]) -> None:
        for path, sha in trashed:
            self.store.untrash(path, sha)

    def _forget(self, removed: repository.Removed, released: repository.Released) -> None:
        keys = []
        for paste_id, filehash, _ in removed.pastes:
            keys += [f"paste:fh:{filehash}", f"paste:id:{paste_id}"]
            self._similar.discard(paste_id)
        for paste_id, filehash in removed.children:  # their parent_id changed
            keys += [f"paste:fh:{filehash}", f"paste:id:{paste_id}"]
        for sha in released.blobs:
            keys.append(f"blobdata:{sha.hex()}")
            self._local_bytes.delete(f"blobdata:{sha.hex()}")
        keys += [_rendition_key(src.hex(), spec, enc) for src, spec, enc in released.renditions]
        if keys:
            self.cache.delete_many(keys)
            self._announce_removals()
        if removed.pastes:
            self.cache.set(SIMILAR_GENERATION, os.urandom(8).hex(), self.expire)

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

            _, (removed, released) = self._removing(expire)
            report["expired_pastes"] += len(removed.pastes)
            count(released)
            if len(removed.pastes) < batch:
                break
        with self._connection() as conn:
            loose = repository.unreferenced_blobs(conn, utcnow() - timedelta(seconds=grace))
        for start in range(0, len(loose), batch):
            chunk = loose[start:start + batch]
            _, (_, released) = self._removing(lambda conn, chunk=chunk: (None, repository.Removed([], []), chunk))
            count(released)
        return report

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
        with self._connection() as conn:
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
        """Settle what crashed or failed uploads left, at any age, reading
        only the store's tmp/: staged files nobody writes any more are
        removed, and so is a file an upload placed at its address if its
        row never committed (under the blob's lock, like a repair).  Safe
        beside live uploads: their files are locked.  Run at start-up."""
        removed, pending = self.store.sweep_temp()
        orphans = 0
        try:
            while pending:
                marker, fd = pending[0]
                sha = _hash_file(marker).digest
                with self._blob_locked(sha) as conn:
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
    def _blob_locked(self, sha: bytes) -> Iterator[Connection]:
        """A write transaction holding the blob's lock (and SQLite's write
        lock), so checking its row and acting on its file are one step
        against uploads and removals of the same bytes."""
        with self._writing() as conn:
            repository.lock_blobs(conn, [sha])
            repository.write_lock(conn)
            yield conn

    def _file_matches(self, sha: bytes, size: int, verify: bool) -> bool:
        path = self.store.path(sha)
        try:
            if os.path.getsize(path) != size:
                return False
            if not verify:
                return True
            result = _hash_file(path)
        except FileNotFoundError:
            return True  # removed meanwhile: not corrupt
        return result.digest == sha and result.size == size

    def _repair(self, trashed: list[tuple[str, bytes]], orphans: set[bytes]) -> None:
        for path, sha in trashed:
            with self._blob_locked(sha) as conn:
                if repository.blob_data(conn, sha) is None and repository.has_blob(conn, sha):
                    self.store.untrash(path, sha)  # its removal never committed
                else:
                    self.store.purge(path)
        for sha in orphans:
            removed = None
            try:
                with self._blob_locked(sha) as conn:
                    if not repository.has_blob(conn, sha):
                        removed = self.store.trash(sha)
            except BaseException:
                if removed:
                    self.store.untrash(removed, sha)
                raise
            if removed:
                self.store.purge(removed)


def _after_fork_in_child(ref: weakref.ref) -> None:
    """A forked worker must not share the parent's database or cache sockets."""
    service = ref()
    if service is not None:
        service.engine.dispose(close=False)
        service.cache.after_fork()
        service._local_bytes.after_fork()
        if service._local_rows is not None:
            service._local_rows.after_fork()
        # its lock may have been held by a thread that does not exist here
        service._similar = service._new_similar_index()


# the containers core.metadata rewrites
_STRIPPABLE = frozenset({"image/jpeg", "image/png", "image/webp"})


def _check_cap(made: int, cap: int) -> None:
    if made >= cap:
        raise Forbidden(f"this image already has {made} sizes, the most one image may have; ask for one of those")


def _stamp_of(path: str) -> tuple[int, int]:
    """What a stamp file is now: (inode, mtime), (0, 0) before the first."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0)
    return (st.st_ino, st.st_mtime_ns)


def _replace_stamp(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        f.write(os.urandom(8).hex())
    os.replace(tmp, path)  # a new inode: every process sees a change


def _hash_file(path: str):
    """SHA-256 and size of a file, read by the C extension without the GIL."""
    with open(path, "rb") as src, open(os.devnull, "wb") as sink:
        return copy_and_hash(src, sink)


def _named_key(sha256: bytes, filename: str) -> str:
    # only a hint that such a paste exists: the database has the last word
    return f"named:{sha256.hex()}:{filename}"


def _rendition_key(source_hex: str, spec_key: str, encoder: int) -> str:
    return f"rend:{source_hex}:{spec_key}:{encoder}"


def _side(value):
    """A requested width or height; None (not given) follows the aspect ratio."""
    return 0 if value is None else value


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()



__all__ = ["PasteFileService", "PasteInfo", "RenditionInfo"]
