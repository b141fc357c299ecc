"""SQLAlchemy 2.0 models: content-addressed blobs and the pastes over them."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

# Stable constraint names so Alembic migrations match on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT identity on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

FILENAME_MAX = 255
FILEHASH_MAX = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Blob(Base):
    """Stored bytes, once per distinct SHA-256."""

    __tablename__ = "blob"

    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    mimetype: Mapped[str] = mapped_column(String(255), nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # the bytes of a small blob, made durable by the same commit as its row;
    # NULL for a blob stored as a file
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    # 64-bit DCT pHash of an image, stored signed (BIGINT); NULL otherwise
    phash: Mapped[int | None] = mapped_column(BigInteger)


class PasteFile(Base):
    """One upload: a public filehash and the original filename over a blob."""

    __tablename__ = "paste_file"
    __table_args__ = (
        # Same bytes under the same name is the same paste (idempotent
        # retries), for pastes kept until deleted: an expiring upload is a
        # paste of its own, so a repeat never changes someone else's expiry
        Index(
            "uq_paste_file_blob_filename_permanent", "blob_sha256", "filename", unique=True,
            sqlite_where=text("expires IS NULL"), postgresql_where=text("expires IS NULL"),
        ),
        Index("ix_paste_file_uploadtime", "uploadtime"),
        # only pastes that expire: gc's "expires <= now" implies it, and a
        # lookup of kept pastes ("expires IS NULL") is never steered onto it
        # instead of the index above
        Index(
            "ix_paste_file_expires", "expires",
            sqlite_where=text("expires IS NOT NULL"), postgresql_where=text("expires IS NOT NULL"),
        ),
        # ids are never handed out twice (short links are made from them);
        # SQLite would reuse the largest id once its row is deleted
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    filehash: Mapped[str] = mapped_column(String(FILEHASH_MAX), nullable=False, unique=True)
    filename: Mapped[str] = mapped_column(String(FILENAME_MAX), nullable=False)
    blob_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), ForeignKey("blob.sha256"), nullable=False)
    uploadtime: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("paste_file.id"), index=True)
    resize_w: Mapped[int | None] = mapped_column(Integer)
    resize_h: Mapped[int | None] = mapped_column(Integer)
    # SHA-256 of the delete token only the uploader was given
    delete_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # gone from then on (removed by gc); NULL: kept until deleted
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    blob: Mapped[Blob] = relationship(lazy="joined", innerjoin=True)


class Rendition(Base):
    """A resize of a source blob, stored as a blob of its own: (source,
    normalized spec, encoder version) -> the result's bytes."""

    __tablename__ = "rendition"

    source_sha256: Mapped[bytes] = mapped_column(
        LargeBinary(32), ForeignKey("blob.sha256", ondelete="CASCADE"), primary_key=True
    )
    spec: Mapped[str] = mapped_column(String(64), primary_key=True)
    encoder: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), ForeignKey("blob.sha256"), nullable=False, index=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class TusUpload(Base):
    """A resumable upload (the tus protocol) while its bytes arrive: every
    process and node continues it from this row alone."""

    __tablename__ = "tus_upload"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # abandoned uploads go after this (gc)
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    # NULL while the client defers it (Upload-Defer-Length)
    length: Mapped[int | None] = mapped_column(BigInteger)
    # bytes acknowledged: durable in the store and hashed into hash_state
    offset: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # the Upload-Metadata header as sent (filename, filetype, expires, w, h)
    meta: Mapped[str] = mapped_column(String(4096), nullable=False, default="")
    # the running SHA-256 of the first ``offset`` bytes (ext.hashing state)
    hash_state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # the first bytes, for the type check and the sniff at completion
    head: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, default=b"")
    # object store: the staging multipart upload, its parts' ETags (JSON)
    # and the bytes past the last whole part
    store_key: Mapped[str | None] = mapped_column(String(1024))
    store_upload_id: Mapped[str | None] = mapped_column(String(1024))
    parts: Mapped[str] = mapped_column(String, nullable=False, default="[]")
    tail: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    # concatenation: "partial", or "final" with its partial uploads' ids (JSON)
    concat: Mapped[str | None] = mapped_column(String(16))
    concat_parts: Mapped[str | None] = mapped_column(String)
    # set once complete: the paste it became
    filehash: Mapped[str | None] = mapped_column(String(FILEHASH_MAX))
