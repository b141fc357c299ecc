"""Resumable uploads (the tus 1.0 protocol's state, without its HTTP).

Each upload is a row in ``tus_upload``; its acknowledged bytes are in the
store (a file in the store's tmp/, or the parts of a multipart upload plus a
tail in the row).  Any process of any node continues any upload from the
row alone, one request at a time: a PostgreSQL session advisory lock per
upload (every node), or an flock'ed file on a single machine; either is
released the moment its holder's connection or process ends.  An offset is acknowledged (written to the row) only after its bytes
are durable in the store, together with the running SHA-256, so completion
never reads the bytes again: the digest comes from the saved hash state.
Completion is the normal ingest (sniff, metadata stripping, dedupe, paste,
delete token, renditions, near-duplicate hash).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import fcntl
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert, select, update

from pastefile.ext.hashing import HEAD_SIZE, Hasher

from . import mimes
from .blobstore import Resumable
from .errors import (
    ChecksumMismatch, Conflict, Forbidden, Gone, InvalidRequest, Locked, NotFound, PasteFileError, TooLarge,
    UnsupportedType,
)
from .models import TusUpload, utcnow
from .parts import Concern, Parts
from .records import PasteInfo
from .sniff import sniff

table = TusUpload.__table__
CHECKSUMS = {"sha1": "sha1", "md5": "md5", "sha256": "sha256"}
PARTIAL, FINAL = "partial", "final"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# the id of an upload made whole by its creation: this, then its paste's filehash
DONE_PREFIX = "done-"


@dataclass
class TusInfo:
    id: str
    length: int | None
    offset: int
    metadata: str
    expires: datetime
    concat: str | None = None
    concat_parts: list[str] = field(default_factory=list)
    filehash: str | None = None
    # the paste this call completed, with its delete token
    paste: PasteInfo | None = None

    @property
    def complete(self) -> bool:
        return self.length is not None and self.offset >= self.length


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (a key
    alone has an empty value).  Raises InvalidRequest on a malformed one."""
    out: dict[str, str] = {}
    if not header.strip():
        return out
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2 or parts[0] in out:
            raise InvalidRequest("Upload-Metadata must be comma-separated 'key base64' pairs with unique keys")
        try:
            value = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequest(f"Upload-Metadata value of {parts[0]!r} is not base64 of UTF-8 text") from None
        out[parts[0]] = value
    return out


def _checked_id(upload_id: str) -> str:
    """An id this module could have made (url-safe base64); anything else
    is no upload, and never reaches a file name or a lock."""
    if not isinstance(upload_id, str) or not _ID.fullmatch(upload_id):
        raise NotFound("no such upload")
    return upload_id


def _state(row: dict) -> Resumable:
    """Where an upload's acknowledged bytes are, as its row says (every row
    read here is the whole row, its tail included)."""
    return Resumable(row["id"], row["offset"], row["store_key"], row["store_upload_id"],
                     json.loads(row["parts"] or "[]"), row.get("tail") or b"")


def _int_meta(meta: dict[str, str], key: str) -> int | None:
    value = meta.get(key, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidRequest(f"metadata {key} must be a whole number")
    return int(value)


class FileHolds:
    """Holds on uploads for the processes of one machine: an flock'ed file
    per upload, which the kernel releases when its holder dies."""

    def __init__(self, directory: str):
        self.directory = directory

    @contextmanager
    def __call__(self, upload_id: str) -> Iterator[None]:
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"tus-{upload_id}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _locked() from None
            try:
                if os.fstat(fd).st_ino != os.stat(path).st_ino:
                    raise _locked()  # removed by its last holder meanwhile: another file now
            except FileNotFoundError:
                raise _locked() from None
            yield
        finally:
            os.close(fd)

    def forget(self, upload_id: str) -> None:
        """The upload is gone: its lock file too (called while holding it)."""
        try:
            os.unlink(os.path.join(self.directory, f"tus-{upload_id}.lock"))
        except FileNotFoundError:
            pass


class AdvisoryHolds:
    """Holds on uploads for every node on the PostgreSQL database: a session
    advisory lock, which the server releases when its holder's connection
    ends (a process killed mid-PATCH leaves nothing held)."""

    def __init__(self, engine):
        from .pglocks import UPLOAD_CLASS, AdvisoryFlightLock

        self.lock = AdvisoryFlightLock(engine, timeout=0, lock_class=UPLOAD_CLASS, busy=_locked)

    def __call__(self, upload_id: str):
        return self.lock(upload_id)

    def forget(self, upload_id: str) -> None:
        pass


def _locked() -> Locked:
    return Locked("another request is appending to this upload; try again when it is done")


class Resumables(Concern):
    def __init__(self, parts: Parts, ingest, lookups):
        super().__init__(parts)
        self.ingest = ingest
        self.lookups = lookups
        engine = self.uow.engine
        self.holds = (AdvisoryHolds(engine) if engine.dialect.name == "postgresql"
                      else FileHolds(os.path.join(self.settings.storage_root, "locks")))

    # -- creating -----------------------------------------------------------------------

    def create(self, length: int | None, metadata: str = "", *, partial: bool = False,
               final_of: list[str] | None = None, body: Iterable[bytes] | None = None,
               checksum: tuple[str, bytes] | None = None) -> TusInfo:
        meta = parse_metadata(metadata)
        self._check_meta(meta)
        if final_of is not None:
            return self._concatenate(final_of, metadata)
        if body is not None:
            if length is None or partial:
                raise InvalidRequest("a whole upload in its creation needs its Upload-Length")
            return self._whole(length, metadata, meta, body, checksum)
        if length is not None:
            self.ingest.check_declared_size(length)
        upload_id = secrets.token_urlsafe(24)
        state = self.store.resumable_begin(upload_id)
        now = utcnow()
        row = dict(
            id=upload_id, created=now, expires=now + timedelta(seconds=self.settings.tus_expire), length=length,
            offset=0, meta=metadata, hash_state=Hasher("sha256").export_state(), head=b"",
            store_key=state.key, store_upload_id=state.upload_id, parts="[]", tail=None,
            concat=PARTIAL if partial else None,
        )
        try:
            with self.uow.writing() as conn:
                conn.execute(insert(table).values(**row))
        except BaseException:
            self.store.resumable_drop(state)
            raise
        return self._info(row)

    def _whole(self, length: int, metadata: str, meta: dict[str, str], body: Iterable[bytes],
               checksum: tuple[str, bytes] | None) -> TusInfo:
        """An upload whose creation carries all of it: staged and ingested
        like ``POST /`` (one group commit), then recorded complete."""
        self.ingest.check_declared_size(length)
        if checksum is not None and checksum[0] not in CHECKSUMS:
            raise InvalidRequest(f"unsupported checksum algorithm {checksum[0]!r}")
        summed = hashlib.new(CHECKSUMS[checksum[0]]) if checksum is not None else None
        with self.ingest.receive() as writer:
            for chunk in body:
                if writer.size + len(chunk) > length:
                    raise TooLarge("the body goes past Upload-Length")
                writer.write(chunk)
                if summed is not None:
                    summed.update(chunk)
            if writer.size != length:
                raise InvalidRequest("the body is shorter than Upload-Length")
            if summed is not None and summed.digest() != checksum[1]:
                raise ChecksumMismatch("the body does not match its Upload-Checksum; nothing of it was kept")
            staged = writer.finish()
        paste = self._ingested(staged, meta)
        # no row: its URL names the paste it became, which answers for it
        return self._done_info(paste, metadata)

    def _done_info(self, paste: PasteInfo, metadata: str = "") -> TusInfo:
        return TusInfo(
            id=DONE_PREFIX + paste.filehash, length=paste.size, offset=paste.size, metadata=metadata,
            expires=utcnow() + timedelta(seconds=self.settings.tus_expire), filehash=paste.filehash,
            paste=paste,
        )

    def _done(self, upload_id: str) -> PasteInfo:
        """The paste an upload made whole in its creation became."""
        return self.lookups.require(upload_id[len(DONE_PREFIX):])

    def _check_meta(self, meta: dict[str, str]) -> None:
        """What completion will need is checked before a byte is sent."""
        w, h = _int_meta(meta, "w"), _int_meta(meta, "h")
        if w or h:
            self.ingest.renditions.check_dimensions(w, h)
        expires = meta.get("expires")
        if expires:
            self.ingest.expiry(self._expires_in(expires))

    def _expires_in(self, text: str) -> int:
        from .utils import parse_expiry

        return parse_expiry(text, self.settings.max_expiry)

    # -- reading ------------------------------------------------------------------------

    def get(self, upload_id: str) -> TusInfo:
        if upload_id.startswith(DONE_PREFIX):
            info = self._done_info(self._done(upload_id))
            info.paste = None
            return info
        return self._info(self._row(upload_id))

    def _row(self, upload_id: str) -> dict:
        with self.uow.connection() as conn:
            row = conn.execute(select(table).where(table.c.id == _checked_id(upload_id))).mappings().first()
        if row is None:
            raise NotFound("no such upload")
        return self._live(dict(row))

    @staticmethod
    def _live(row: dict) -> dict:
        row["expires"] = _aware(row["expires"])
        if row["expires"] <= utcnow():
            raise Gone("this upload expired")
        return row

    def _info(self, row: dict, paste: PasteInfo | None = None) -> TusInfo:
        return TusInfo(
            id=row["id"], length=row["length"], offset=row["offset"], metadata=row["meta"],
            expires=row["expires"], concat=row.get("concat"),
            concat_parts=json.loads(row["concat_parts"]) if row.get("concat_parts") else [],
            filehash=row.get("filehash"), paste=paste,
        )

    def paste_of(self, upload_id: str) -> PasteInfo:
        """The paste a complete upload became (completing it now if a crash
        or a failed store came between its last bytes and its paste)."""
        if upload_id.startswith(DONE_PREFIX):
            return self._done(upload_id)
        row = self._row(upload_id)
        if row["filehash"] is None:
            if row["length"] is None or row["offset"] < row["length"] or row["concat"] == PARTIAL:
                raise Conflict("this upload is not complete")
            with self._leased(upload_id) as row:
                if row["filehash"] is None:
                    return self._complete(row)
        return self.lookups.require(row["filehash"])

    # -- appending ----------------------------------------------------------------------

    @contextmanager
    def _leased(self, upload_id: str) -> Iterator[dict]:
        """Hold the upload (423 while another request does) and read its row."""
        with self.holds(_checked_id(upload_id)):
            yield self._row(upload_id)

    def append(self, upload_id: str, offset: int, chunks: Iterable[bytes], *, length: int | None = None,
               checksum: tuple[str, bytes] | None = None) -> TusInfo:
        """Append the body ``chunks`` at ``offset`` (which must be the
        acknowledged offset: else 409).  A body cut off keeps what arrived
        (its chunks end early); with ``checksum`` (algorithm, digest) the
        body counts only whole and matching (460 otherwise, nothing kept).
        The append that reaches the length completes the upload."""
        if checksum is not None and checksum[0] not in CHECKSUMS:
            raise InvalidRequest(f"unsupported checksum algorithm {checksum[0]!r}")
        if upload_id.startswith(DONE_PREFIX):
            info = self.get(upload_id)
            if offset != info.offset:
                raise Conflict(f"Upload-Offset {offset} is not the upload's offset {info.offset}")
            if any(chunk for chunk in chunks):
                raise TooLarge("the upload is complete; it takes no more bytes")
            return info
        with self._leased(upload_id) as row:
            if row["concat"] == FINAL:
                raise Forbidden("a final upload of a concatenation takes no PATCH")
            if offset != row["offset"]:
                raise Conflict(f"Upload-Offset {offset} is not the upload's offset {row['offset']}")
            if row["filehash"] is not None:
                # complete (its bytes are a paste now): nothing more fits
                if any(chunk for chunk in chunks):
                    raise TooLarge("the upload is complete; it takes no more bytes")
                return self._info(row)
            if length is not None:
                if row["length"] is None:
                    if length < row["offset"]:
                        raise InvalidRequest("Upload-Length is smaller than what was uploaded")
                    self.ingest.check_declared_size(length)
                    row["length"] = length
                elif length != row["length"]:
                    raise InvalidRequest("Upload-Length cannot change")
            if checksum is not None:
                spooled = self._verified(chunks, checksum, row)
                try:
                    row = self._append(row, self._read(spooled))
                finally:
                    spooled.close()
            else:
                row = self._append(row, chunks)
            paste = None
            if row["length"] is not None and row["offset"] == row["length"] and row["concat"] != PARTIAL:
                paste = self._complete(row)
            return self._info(row, paste)

    def _limit(self, row: dict) -> int:
        return row["length"] if row["length"] is not None else self.settings.max_upload_size

    def _verified(self, chunks: Iterable[bytes], checksum: tuple[str, bytes], row: dict):
        """The body spooled on this node and checked against its checksum
        before any of it counts."""
        hasher = hashlib.new(CHECKSUMS[checksum[0]])
        spool = tempfile.TemporaryFile(dir=self.store.temp_dir)
        room = self._limit(row) - row["offset"]
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > room:
                spool.close()
                raise TooLarge("the body goes past the upload's length")
            hasher.update(chunk)
            spool.write(chunk)
        if hasher.digest() != checksum[1]:
            spool.close()
            raise ChecksumMismatch("the body does not match its Upload-Checksum; nothing of it was kept")
        spool.seek(0)
        return spool

    @staticmethod
    def _read(fileobj) -> Iterator[bytes]:
        while chunk := fileobj.read(256 * 1024):
            yield chunk

    def _append(self, row: dict, chunks: Iterable[bytes]) -> dict:
        hasher = Hasher.from_state("sha256", row["hash_state"])
        head = bytearray(row["head"])
        offset = [row["offset"]]
        limit = self._limit(row)
        # a partial upload of a concatenation holds any middle of a file:
        # the whole is judged when the final upload joins them
        checked = [row["concat"] == PARTIAL or len(head) >= HEAD_SIZE
                   or (row["length"] is not None and len(head) >= row["length"])]

        def on_chunk(chunk: bytes) -> None:
            if offset[0] + len(chunk) > limit:
                raise TooLarge("the body goes past the upload's length" if row["length"] is not None
                               else "the upload exceeds the size limit")
            hasher.update(chunk)
            offset[0] += len(chunk)
            if len(head) < HEAD_SIZE:
                head.extend(chunk[:HEAD_SIZE - len(head)])
            if not checked[0] and (len(head) >= HEAD_SIZE or offset[0] == row["length"]):
                checked[0] = True
                self._check_type(bytes(head))

        state = _state(row)
        try:
            state = self.store.resumable_append(state, chunks, on_chunk)
        except UnsupportedType:
            self._drop(row)
            raise
        values = dict(offset=state.offset, hash_state=hasher.export_state(), head=bytes(head),
                      parts=json.dumps(state.parts or []), tail=state.tail or None, length=row["length"])
        with self.uow.writing() as conn:
            conn.execute(update(table).where(table.c.id == row["id"]).values(**values))
        return {**row, **values}

    def _check_type(self, head: bytes) -> None:
        mimetype = sniff(head)
        if not mimes.is_allowed(mimetype, self.settings.allowed_types):
            raise UnsupportedType(f"files of type {mimetype} are not accepted here")

    # -- completing ---------------------------------------------------------------------

    def _ingested(self, staged, meta: dict[str, str]) -> PasteInfo:
        """The paste of a whole upload, by the normal ingest, with what its
        metadata asks (filename, w, h, expires)."""
        expires = meta.get("expires")
        return self.ingest.upload_staged(
            staged, meta.get("filename") or None, w=_int_meta(meta, "w"), h=_int_meta(meta, "h"),
            expires_in=self._expires_in(expires) if expires else None,
        )

    def _complete(self, row: dict) -> PasteInfo:
        """The normal ingest of the whole upload; its bytes are not read again."""
        meta = parse_metadata(row["meta"])
        hasher = Hasher.from_state("sha256", row["hash_state"])
        state = _state(row)
        staged = self.store.resumable_staged(state, hasher.digest(), bytes(row["head"]))
        try:
            paste = self._ingested(staged, meta)
        except PasteFileError as exc:
            if exc.status < 500:
                self._drop(row)  # refused for good: nothing to resume
            raise
        with self.uow.writing() as conn:
            conn.execute(update(table).where(table.c.id == row["id"]).values(filehash=paste.filehash, tail=None))
        row["filehash"] = paste.filehash
        self.store.resumable_drop(state)
        return paste

    def _concatenate(self, ids: list[str], metadata: str) -> TusInfo:
        """A final upload: the partial ones' bytes in order, staged as one
        (read once more: a digest cannot be joined from its parts')."""
        if not ids:
            raise InvalidRequest("Upload-Concat: final needs the partial uploads' URLs")
        if any(i.startswith(DONE_PREFIX) for i in ids):
            raise InvalidRequest("only partial uploads can be concatenated")
        rows = [self._row(i) for i in ids]
        for row in rows:
            if row["concat"] != PARTIAL:
                raise InvalidRequest("only partial uploads can be concatenated")
            if row["length"] is None or row["offset"] < row["length"]:
                raise InvalidRequest("a partial upload is not complete yet")
        total = sum(row["length"] for row in rows)
        self.ingest.check_declared_size(total)
        meta = parse_metadata(metadata)
        with self.ingest.receive() as writer:
            for row in rows:
                state = _state(row)
                with self.store.resumable_open(state) as f:
                    while chunk := f.read(1 << 20):
                        writer.write(chunk)
            staged = writer.finish()
        paste = self._ingested(staged, meta)
        upload_id = secrets.token_urlsafe(24)
        now = utcnow()
        row = dict(
            id=upload_id, created=now, expires=now + timedelta(seconds=self.settings.tus_expire), length=total,
            offset=total, meta=metadata, hash_state=Hasher("sha256").export_state(), head=b"", parts="[]",
            concat=FINAL, concat_parts=json.dumps(ids), filehash=paste.filehash,
        )
        with self.uow.writing() as conn:
            conn.execute(insert(table).values(**row))
        return self._info(row, paste)

    # -- ending ---------------------------------------------------------------------------

    def terminate(self, upload_id: str) -> None:
        if upload_id.startswith(DONE_PREFIX):
            self._done(upload_id)  # complete already: nothing left to drop
            return
        with self._leased(upload_id) as row:
            self._drop(row)

    def _drop(self, row: dict) -> None:
        """Remove an upload and its bytes (its holder calls this)."""
        state = _state(row)
        with self.uow.writing() as conn:
            conn.execute(delete(table).where(table.c.id == row["id"]))
        self.store.resumable_drop(state)
        self.holds.forget(row["id"])

    def gc(self) -> int:
        """Remove uploads past their expiry (abandoned, or finished and no
        longer asked for) with their bytes; one being appended to is left
        for the next run."""
        now = utcnow()
        with self.uow.connection() as conn:
            ids = list(conn.execute(select(table.c.id).where(table.c.expires <= now)).scalars())
        removed = 0
        for upload_id in ids:
            try:
                with self.holds(upload_id):
                    with self.uow.connection() as conn:
                        row = conn.execute(select(table).where(table.c.id == upload_id)).mappings().first()
                    if row is not None:
                        self._drop(dict(row))
                        removed += 1
            except Locked:
                continue
        return removed
