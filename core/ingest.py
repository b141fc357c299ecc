"""Ingest: from bytes received to a durable, visible paste.

Receive or stage the bytes (one pass copies and hashes them), check size,
expiry and dimensions, sniff the type once, strip the metadata the settings
remove, take the image's facts, answer a repeated upload with the earlier
paste, then make it durable: the blob's file under its address first, then
the rows in one commit (the group committer's, or the caller's transaction
when bound), then the cache.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from pastefile.ext.hashing import SizeLimitExceeded

from . import db, metadata, metrics, mimes, repository
from .blobstore import StagedBlob, StagingWriter
from .errors import EmptyFile, TooLarge, UnsupportedType, Unprocessable
from .groupcommit import GroupCommitter
from .imaging import image_facts
from .models import utcnow
from .parts import Concern, Parts
from .records import PasteInfo
from .renditions import Renditions
from .repository import NewPaste
from .sniff import sniff
from .utils import clean_filename, expiry_out_of_bounds, humanize_bytes, new_filehash, parse_expiry

log = logging.getLogger(__name__)

# the containers core.metadata rewrites
STRIPPABLE = frozenset({"image/jpeg", "image/png", "image/webp"})

Facts = tuple[int | None, int | None, int | None]  # width, height, pHash


@dataclass
class _Pending:
    """An upload on its way to the database: the rows to record, and what only
    ingest needs until they are: the staged bytes (put back if their file
    goes before the commit) and the delete token (handed to the uploader
    once, stored only as its hash)."""

    paste: NewPaste
    staged: StagedBlob
    delete_token: str | None


class Ingest(Concern):
    def __init__(self, parts: Parts, renditions: Renditions, committer: GroupCommitter | None = None):
        super().__init__(parts)
        self.renditions = renditions
        # shared by every bound view: one writer queue per service
        self.committer = committer if committer is not None else self._new_committer()

    def _new_committer(self) -> GroupCommitter:
        engine = self.uow.engine
        # an upload whose blob row a concurrent delete removed meets a foreign
        # key error (or, rarely, a deadlock); tried again, it records the blob afresh
        return GroupCommitter(
            engine,
            self.record,
            after_commit=self._remember,
            retry_on=(IntegrityError, OperationalError),
            lock_path=db.writer_lock_path(engine),
            writers=self.settings.commit_writers or 1,
        )

    # -- receiving ----------------------------------------------------------------

    def upload(self, fileobj: BinaryIO, filename: str | None, *, w: int | None = None, h: int | None = None,
               expires_in: int | None = None) -> PasteInfo:
        if w or h:
            self.renditions.check_dimensions(w, h)  # before reading a byte
        self.expiry(expires_in)
        return self.upload_staged(self.stage(fileobj), filename, w=w, h=h, expires_in=expires_in)

    @contextmanager
    def receive(self) -> Iterator[StagingWriter]:
        with self.store.writer(self.settings.max_upload_size) as writer:
            try:
                yield writer
            except SizeLimitExceeded:
                raise self.too_large() from None

    def stage(self, fileobj: BinaryIO) -> StagedBlob:
        try:
            return self.store.stage(fileobj, self.settings.max_upload_size)
        except SizeLimitExceeded:
            raise self.too_large() from None

    def too_large(self) -> TooLarge:
        return TooLarge(f"the file exceeds the limit of {humanize_bytes(self.settings.max_upload_size)}")

    def check_declared_size(self, length: int | None, overhead: int = 0) -> None:
        if length is not None and length > self.settings.max_upload_size + overhead:
            raise self.too_large()

    def expiry(self, expires_in) -> datetime | None:
        if expires_in is None:
            return None
        limit = self.settings.max_expiry
        if isinstance(expires_in, bool) or not isinstance(expires_in, int):
            raise expiry_out_of_bounds(limit)
        return utcnow() + timedelta(seconds=parse_expiry(expires_in, limit))

    # -- checking ------------------------------------------------------------------

    def upload_staged(self, staged: StagedBlob, filename: str | None, *, w: int | None = None,
                      h: int | None = None, expires_in: int | None = None) -> PasteInfo:
        filename = clean_filename(filename)
        resize = (w, h) if (w or h) else None
        try:
            expires = self.expiry(expires_in)
            if resize:
                self.renditions.check_dimensions(w, h)
            elif staged.size and expires is None:
                # bytes already on record under this name: their type is
                # known, so the earlier paste answers before libmagic runs
                # (a text sniff costs more than the rest of a small upload)
                earlier = self.earlier_upload(staged.sha256, filename)
                if earlier is not None and mimes.is_allowed(earlier.mimetype, self.settings.allowed_types):
                    self.store.settle(staged)
                    metrics.observe("upload", staged.size, outcome="repeat")
                    return earlier
            mimetype = self.check_type(staged)
            staged = self.strip_metadata(staged, mimetype)
            facts = self.facts(staged, mimetype)
            if resize:
                return self._resized(staged, filename, mimetype, facts, resize, expires)
            return self.save(staged, filename, mimetype, facts, expires=expires, shortcut=False)
        except BaseException:
            self.store.discard(staged)
            raise

    def _resized(self, staged: StagedBlob, filename: str, mimetype: str, facts: Facts, resize: tuple,
                 expires: datetime | None) -> PasteInfo:
        if mimetype not in mimes.RESIZABLE_MIMES:
            raise UnsupportedType(f"cannot resize {mimetype}; only images can take w and h")
        # the original is kept as the rendition's source blob (no paste of
        # its own); the paste is the resized image
        spec = self.renditions.spec(mimetype, *resize)
        source_row = dict(
            sha256=staged.sha256, size=staged.size, mimetype=mimetype, width=facts[0], height=facts[1],
            phash=facts[2], data=staged.data, created=utcnow(),
        )
        info, data = self.renditions.produce(staged.sha256, staged.open, spec, source_row=source_row,
                                             staged_source=staged)
        self.store.settle(staged)
        staged = self.store.stage_bytes(data)
        try:
            return self.save(staged, filename, info.mimetype, (info.width, info.height, None), resize=resize,
                             expires=expires)
        except BaseException:
            self.store.discard(staged)
            raise

    def check_type(self, staged: StagedBlob) -> str:
        if staged.size == 0:
            raise EmptyFile("the file is empty")
        mimetype = sniff(staged.head, staged.path, staged.data)
        if not mimes.is_allowed(mimetype, self.settings.allowed_types):
            raise UnsupportedType(f"files of type {mimetype} are not accepted here")
        return mimetype

    def strip_metadata(self, staged: StagedBlob, mimetype: str) -> StagedBlob:
        """The upload without the image metadata ``strip_metadata`` removes
        (GPS by default), staged afresh when anything went: the stored blob,
        its SHA-256 and its dedupe are of the stripped bytes.  Takes
        ownership of ``staged``."""
        level = self.settings.strip_metadata
        if level == "none" or mimetype not in STRIPPABLE:
            return staged
        if staged.data is not None:
            data = staged.data
        else:
            with staged.open() as f:
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

    def facts(self, staged: StagedBlob, mimetype: str) -> Facts:
        """(width, height, pHash) of an image upload; Nones for anything else."""
        if mimetype not in mimes.IMAGE_MIMES:
            return (None, None, None)
        with staged.open() as f:
            facts = image_facts(f, self.settings.max_image_pixels)
        return (facts.width, facts.height, facts.phash) if facts else (None, None, None)

    # -- recording --------------------------------------------------------------------

    def save(
        self,
        staged: StagedBlob,
        filename: str,
        mimetype: str,
        facts: Facts,
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
        paste = NewPaste(
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
            delete_token_hash=token_hash(token) if token else None,
            expires=expires,
        )
        item = _Pending(paste, staged, token)
        # the same bytes under the same name: the earlier paste, as the
        # writer's ON CONFLICT would answer, without a place in its queue
        earlier = self.earlier_upload(staged.sha256, filename) if shortcut and expires is None else None
        if earlier is not None:
            self.store.settle(staged)
            metrics.observe("upload", staged.size, outcome="repeat")
            return earlier
        # durable under its address before any row points at it; when the
        # same bytes are there already, the staged copy is kept until the
        # rows are recorded, in case a concurrent delete takes that file
        self.store.commit(staged)
        session = self.uow.session
        if session is None:
            info = self.committer.submit(item)
        else:
            info = self.record(session.connection(), [item])[0]
            db.after_commit(session, lambda: self._remember([item], [info]))
        self.store.settle(staged)
        metrics.observe("upload", staged.size, outcome="created")
        return info

    def record(self, conn: Connection, items: list[_Pending]) -> list[PasteInfo]:
        files = [item.staged for item in items if not item.staged.inline]
        # each file blob's lock first (removals take it before the row locks,
        # so the order is the same everywhere), then the rows; a file a
        # removal took since commit() found it is put back before this
        # transaction makes rows point at it
        self.parts.coordination.blob_locks.lock(conn, [f.sha256 for f in files])
        rows = repository.record(conn, [item.paste for item in items])
        for staged in files:
            self.store.restore(staged)
        return [
            self.parts.info(row, delete_token=item.delete_token if row["new"] else None)
            for row, item in zip(rows, items)
        ]

    def _remember(self, items: list[_Pending], infos: list[PasteInfo]) -> None:
        self.pastecache.remember([item.paste for item in items], infos)

    def earlier_upload(self, sha256: bytes, filename: str) -> PasteInfo | None:
        """The paste kept until deleted that an earlier upload of the same
        bytes under the same name made, when the cache hints there is one and
        the database confirms it: a repeated upload then costs one read
        instead of a place in the writer's queue and a write that changes
        nothing.  Only pastes without an expiry are shared: a repeat never
        changes anyone's expiry."""
        if not self.pastecache.has_named(sha256, filename):
            return None
        with self.uow.connection() as conn:
            row = repository.paste_of(conn, sha256, filename)
        return None if row is None else self.parts.info(row)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
