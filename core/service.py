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
import io
import os
import tempfile
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import BinaryIO
from urllib.parse import quote

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from pastefile.ext.hashing import SizeLimitExceeded

from . import db, mimes, repository
from .blobstore import FileSystemBlobStore, StagedBlob, StagingWriter
from .cache import Cache, MemoryCache, cache, make_cache
from .errors import EmptyFile, InvalidRequest, NotFound, TooLarge, UnsupportedType
from .groupcommit import GroupCommitter
from .imaging import ImageError, crop_resize, image_size
from .models import Blob, PasteFile, utcnow
from .repository import NewPaste
from .settings import Settings
from .shortlink import ShortLinks
from .sniff import sniff
from .utils import clean_filename, humanize_bytes, is_filehash, new_filehash

LATEST_EXPIRE = 10  # seconds; the list changes with every upload
MAX_LATEST = 100


@dataclass(frozen=True)
class PasteInfo:
    """A paste as callers see it: plain values, safe to cache and share."""

    id: int
    filehash: str
    filename: str
    symlink: str
    sha256: str
    size: int
    mimetype: str
    width: int | None
    height: int | None
    uploadtime: datetime
    parent_id: int | None = None
    resize_w: int | None = None
    resize_h: int | None = None
    inline: bool = False  # the bytes live in the blob's row, not in a file

    @property
    def type(self) -> str:
        return mimes.kind_of(self.mimetype)

    @property
    def is_image(self) -> bool:
        return self.mimetype in mimes.IMAGE_MIMES

    @property
    def is_resizable(self) -> bool:
        return self.mimetype in mimes.RESIZABLE_MIMES

    @property
    def etag(self) -> str:
        return self.sha256

    def get_url(self, subtype: str, base_url: str, is_symlink: bool = False) -> str:
        return f"{base_url.rstrip('/')}/{subtype}/{self.symlink if is_symlink else self.filehash}"

    def url_d(self, base_url: str) -> str:
        return self.get_url("d", base_url)

    def url_i(self, base_url: str) -> str:
        return self.get_url("i", base_url)

    def url_p(self, base_url: str) -> str:
        return self.get_url("p", base_url)

    def url_s(self, base_url: str) -> str:
        return self.get_url("s", base_url, is_symlink=True)

    def to_json(self, base_url: str) -> dict:
        """The book's keys (url_d url_i url_s url_p filename size time type
        quoteurl) plus exact values a program needs."""
        url_i = self.url_i(base_url)
        return {
            "url_d": self.url_d(base_url),
            "url_i": url_i,
            "url_s": self.url_s(base_url),
            "url_p": self.url_p(base_url),
            "filename": self.filename,
            "size": humanize_bytes(self.size),
            "time": self.uploadtime.strftime("%Y-%m-%d %H:%M:%S"),
            "type": self.type,
            "quoteurl": quote(url_i, safe=""),
            "mimetype": self.mimetype,
            "bytes": self.size,
            "width": self.width,
            "height": self.height,
            "filehash": self.filehash,
            "symlink": self.symlink,
            "sha256": self.sha256,
        }

    def to_cache(self) -> dict:
        data = asdict(self)
        data["uploadtime"] = self.uploadtime.isoformat()
        return data

    @classmethod
    def from_cache(cls, data: Mapping) -> "PasteInfo":
        values = dict(data)
        values["uploadtime"] = datetime.fromisoformat(values["uploadtime"])
        return cls(**values)


@dataclass(frozen=True)
class Variant:
    """A crop-resized rendition of an image paste, for ``/i/{filehash}?w=&h=``."""

    source: PasteInfo
    mimetype: str
    etag: str
    data: bytes | None = None  # small variants come from the cache as bytes
    path: str | None = None  # larger ones from the variant directory

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else os.path.getsize(self.path)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")


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
        self.store = FileSystemBlobStore(self.settings.storage_root, self.settings.inline_max)
        self.links = ShortLinks(self.settings.symlink_key)
        self.expire = self.settings.cache_expire
        self._session: Session | None = None
        self._committer = GroupCommitter(self.engine, self._record, after_commit=self._remember)
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
    ) -> PasteInfo:
        """Store ``fileobj`` and return its paste.

        One pass copies and hashes the bytes; identical content is stored
        once.  The same content under the same filename returns the earlier
        paste.  With ``w``/``h`` an image is crop-resized first and only the
        result is kept.  Raises TooLarge, EmptyFile, UnsupportedType,
        InvalidRequest.
        """
        if w or h:
            self._check_dimensions(w, h)  # before reading a byte
        return self.upload_staged(self._stage(fileobj), filename, w=w, h=h)

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
    ) -> PasteInfo:
        """The second half of :meth:`upload`, for bytes already staged.

        Takes ownership of ``staged``: it is committed or discarded.
        """
        filename = clean_filename(filename)
        resize = (w, h) if (w or h) else None
        try:
            if resize:
                self._check_dimensions(w, h)
            mimetype = self._check_type(staged)
            if resize:
                if mimetype not in mimes.RESIZABLE_MIMES:
                    raise UnsupportedType(f"cannot resize {mimetype}; only images can take w and h")
                with staged.open() as f:
                    resized = self._crop_resize(f, w, h)
                self.store.discard(staged)
                staged = self.store.stage_bytes(resized.data)
                mimetype, dims = resized.mimetype, (resized.width, resized.height)
            else:
                dims = self._dimensions(staged, mimetype)
            return self._save(staged, filename, mimetype, dims, resize=resize)
        except BaseException:
            self.store.discard(staged)
            raise

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

    def _check_dimensions(self, w, h) -> None:
        limit = self.settings.max_side
        for name, value in (("w", w), ("h", h)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise InvalidRequest(f"{name} must be an integer between 0 and {limit}")
        if not (w or h):
            raise InvalidRequest("give a width or a height")

    def _crop_resize(self, fileobj: BinaryIO, w, h):
        try:
            return crop_resize(fileobj, w or 0, h or 0, upscale=self.settings.allow_upscale)
        except ImageError as exc:
            raise UnsupportedType(str(exc)) from None

    @staticmethod
    def _dimensions(staged: StagedBlob, mimetype: str) -> tuple[int | None, int | None]:
        if mimetype not in mimes.IMAGE_MIMES:
            return (None, None)
        with staged.open() as f:
            return image_size(f) or (None, None)

    def _save(
        self,
        staged: StagedBlob,
        filename: str,
        mimetype: str,
        dims: tuple[int | None, int | None],
        *,
        parent_id: int | None = None,
        resize: tuple | None = None,
    ) -> PasteInfo:
        """Make the upload durable and visible: a file blob under its address
        first, then the rows in one commit (shared with concurrent uploads by
        the group committer, or the caller's transaction when bound)."""
        item = NewPaste(
            sha256=staged.sha256,
            size=staged.size,
            mimetype=mimetype,
            width=dims[0],
            height=dims[1],
            data=staged.data,
            filehash=new_filehash(filename),
            filename=filename,
            uploadtime=utcnow(),
            parent_id=parent_id,
            resize_w=resize[0] if resize else None,
            resize_h=resize[1] if resize else None,
        )
        if not staged.inline:
            # durable under its address before any row points at it; a file
            # already there (same bytes) is kept and the staged copy dropped
            self.store.commit(staged)
        if self._session is None:
            return self._committer.submit(item)
        info = self._record(self._session.connection(), [item])[0]
        db.after_commit(self._session, lambda: self._remember([item], [info]))
        return info

    def _record(self, conn: Connection, items: list[NewPaste]) -> list[PasteInfo]:
        return [self._info(row) for row in repository.record(conn, items)]

    def _remember(self, items: list[NewPaste], infos: list[PasteInfo]) -> None:
        """One cache write for a committed batch of uploads: their pastes and
        the bytes of small ones (a new upload is usually viewed at once)."""
        mapping = {}
        for item, info in zip(items, infos):
            data = info.to_cache()
            mapping[f"paste:fh:{info.filehash}"] = data
            mapping[f"paste:id:{info.id}"] = data
            if info.inline and item.data is not None and len(item.data) <= self.settings.cache_variant_max:
                mapping[f"blobdata:{info.sha256}"] = item.data
        self.cache.set_many(mapping, self.expire)

    def _info(self, row) -> PasteInfo:
        return PasteInfo(
            id=row["id"],
            filehash=row["filehash"],
            filename=row["filename"],
            symlink=self.links.encode(row["id"]),
            sha256=row["blob_sha256"].hex(),
            size=row["size"],
            mimetype=row["mimetype"],
            width=row["width"],
            height=row["height"],
            uploadtime=_aware(row["uploadtime"]),
            parent_id=row["parent_id"],
            resize_w=row["resize_w"],
            resize_h=row["resize_h"],
            inline=bool(row["inline"]),
        )

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
        data = self._paste_by_filehash(filehash)
        return PasteInfo.from_cache(data) if data else None

    def get_by_id(self, paste_id: int) -> PasteInfo | None:
        data = self._paste_by_id(paste_id)
        return PasteInfo.from_cache(data) if data else None

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
        ids = self._latest_ids(limit, offset)
        found = self._paste_by_id.many(self, ids, self._pastes_by_ids)
        return [PasteInfo.from_cache(found[i]) for i in ids if i in found]

    def count(self) -> tuple[int, int]:
        """(pastes, blobs) in the database."""
        with self._transaction() as session:
            return (
                session.scalar(select(func.count()).select_from(PasteFile)),
                session.scalar(select(func.count()).select_from(Blob)),
            )

    # -- content --------------------------------------------------------------

    def path(self, info: PasteInfo) -> str | None:
        """Where the paste's bytes are on disk (for sendfile/X-Accel-Redirect),
        None for a blob kept in its row."""
        return None if info.inline else self.store.path(bytes.fromhex(info.sha256))

    def open(self, filehash: str) -> BinaryIO:
        """The stored bytes of a paste, as a binary file object."""
        return self.open_blob(self.require(filehash))

    def open_blob(self, info: PasteInfo) -> BinaryIO:
        """The stored bytes of a paste already looked up."""
        if info.inline:
            return io.BytesIO(self.blob_bytes(info))
        return self.store.open(bytes.fromhex(info.sha256))

    def blob_bytes(self, info: PasteInfo) -> bytes:
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
                raise NotFound(f"the bytes of {info.filehash!r} are missing")
            if len(data) <= self.settings.cache_variant_max:
                self.cache.set(key, data, self.expire)
        self._local_bytes.set(key, data)
        return data

    def _resize_source(self, filehash: str, w, h) -> PasteInfo:
        """The image paste a resize request names, after checking the request."""
        self._check_dimensions(w, h)
        source = self.require(filehash)
        if not source.is_resizable:
            raise UnsupportedType(f"cannot resize {source.mimetype}")
        return source

    def _resized(self, source: PasteInfo, w, h):
        with self.open_blob(source) as f:
            return self._crop_resize(f, w, h)

    def resize(self, filehash: str, w: int | None, h: int | None) -> PasteInfo:
        """A new paste holding a crop-resized copy of an image (book route /r/).

        Repeating the same request returns the same paste.
        """
        source = self._resize_source(filehash, w, h)
        resized = self._resized(source, w, h)
        staged = self.store.stage_bytes(resized.data)
        try:
            return self._save(
                staged,
                source.filename,
                resized.mimetype,
                (resized.width, resized.height),
                parent_id=source.id,
                resize=(w, h),
            )
        except BaseException:
            self.store.discard(staged)
            raise

    def variant(self, filehash: str, w: int | None, h: int | None) -> Variant:
        """A crop-resize of an image paste, computed once, then served from the
        cache (small variants, as bytes) or the variant directory on disk."""
        source = self._resize_source(filehash, w, h)
        tag = f"{source.sha256}-{w or 0}x{h or 0}{'u' if self.settings.allow_upscale else ''}"
        key = f"variant:{tag}"
        path = os.path.join(self.store.root, "variants", tag[:2], tag)
        data = self.cache.get(key)
        if data is not None:
            return Variant(source, source.mimetype, tag, data=data)
        if os.path.exists(path):
            return Variant(source, source.mimetype, tag, path=path)
        resized = self._resized(source, w, h)
        _write_atomic(path, resized.data)
        if len(resized.data) <= self.settings.cache_variant_max:
            self.cache.set(key, resized.data, self.expire)
        return Variant(source, resized.mimetype, tag, data=resized.data)

    # -- maintenance ----------------------------------------------------------

    def fsck(self, repair: bool = False, grace: float = 3600.0) -> dict[str, int]:
        """Check the store against the database.

        Counts stale temp files (removed when ``repair``), blob files with no
        row (removed when ``repair``: a crash between rename and commit) and
        rows whose file is missing (reported only).  Files younger than
        ``grace`` seconds are left alone: their upload may still be committing.
        """
        report = {"stale_temp": 0, "orphan_files": 0, "missing_files": 0}
        if repair:
            report["stale_temp"] = self.store.remove_stale_temp(grace)
        on_disk = set(self.store.iter_hashes())
        with self._connection() as conn:
            in_files = repository.file_hashes(conn)
            known = in_files | repository.inline_hashes(conn)
        cutoff = time.time() - grace
        orphans = {sha for sha in on_disk - known if self.store.mtime(sha) < cutoff}
        report["orphan_files"] = len(orphans)
        report["missing_files"] = len(in_files - on_disk)
        if repair:
            for sha in orphans:
                self.store.delete(sha)
        return report


def _after_fork_in_child(ref: weakref.ref) -> None:
    """A forked worker must not share the parent's database or cache sockets."""
    service = ref()
    if service is not None:
        service.engine.dispose(close=False)
        service.cache.after_fork()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _write_atomic(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


__all__ = ["PasteFileService", "PasteInfo", "Variant"]
