"""The SQL of pastes and blobs, in SQLAlchemy Core over a Connection.

The hot paths (upload, lookups) run here without the ORM's unit of work:
each function is a handful of statements, the same on SQLite and PostgreSQL.
Rows come back as mappings with the keys of :data:`PASTE_COLUMNS`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from .models import Blob, PasteFile, Rendition

blob_table = Blob.__table__
paste_table = PasteFile.__table__
rendition_table = Rendition.__table__

_BLOB_FACTS = (
    blob_table.c.size,
    blob_table.c.mimetype,
    blob_table.c.width,
    blob_table.c.height,
    blob_table.c.phash,
    blob_table.c.data.is_not(None).label("inline"),
)
PASTE_COLUMNS = (
    paste_table.c.id,
    paste_table.c.filehash,
    paste_table.c.filename,
    paste_table.c.blob_sha256,
    paste_table.c.uploadtime,
    paste_table.c.parent_id,
    paste_table.c.resize_w,
    paste_table.c.resize_h,
    *_BLOB_FACTS,
)
_BLOB_FACT_KEYS = ("size", "mimetype", "width", "height", "phash", "inline")
_PASTES = select(*PASTE_COLUMNS).select_from(paste_table.join(blob_table))


def _insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def paste_by_filehash(conn: Connection, filehash: str):
    return conn.execute(_PASTES.where(paste_table.c.filehash == filehash)).mappings().first()


def paste_by_id(conn: Connection, paste_id: int):
    return conn.execute(_PASTES.where(paste_table.c.id == paste_id)).mappings().first()


def pastes_by_ids(conn: Connection, ids: Sequence[int]) -> list:
    return list(conn.execute(_PASTES.where(paste_table.c.id.in_(ids))).mappings())


def blob_data(conn: Connection, sha256: bytes) -> bytes | None:
    return conn.execute(select(blob_table.c.data).where(blob_table.c.sha256 == sha256)).scalar()


@dataclass
class NewPaste:
    """One upload to record: its blob's row and its paste's row."""

    sha256: bytes
    size: int
    mimetype: str
    width: int | None
    height: int | None
    data: bytes | None  # the bytes of an inline blob
    filehash: str
    filename: str
    uploadtime: datetime
    parent_id: int | None = None
    resize_w: int | None = None
    resize_h: int | None = None
    phash: int | None = None  # unsigned 64-bit


def to_signed64(value: int | None) -> int | None:
    """An unsigned 64-bit hash as the signed BIGINT both databases store."""
    return None if value is None else value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned64(value: int | None) -> int | None:
    return None if value is None else value + (1 << 64) if value < 0 else value


def record(conn: Connection, items: Sequence[NewPaste]) -> list[dict]:
    """Insert the blobs and pastes of ``items`` in a few statements, whatever
    their number; returns each item's paste row (the earlier paste when the
    same bytes were already uploaded under the same name).

    Conflicts are settled by ``ON CONFLICT DO NOTHING``: a blob row that
    exists is kept (the database is the authority on what is stored), and a
    paste of the same bytes under the same name is the earlier one.
    """
    blobs: dict[bytes, NewPaste] = {}
    for item in items:
        blobs.setdefault(item.sha256, item)
    # executemany with RETURNING: one cached statement, sent as one
    # multi-row INSERT (SQLAlchemy's "insertmanyvalues")
    inserted = set(
        conn.execute(
            _insert(conn, blob_table).on_conflict_do_nothing().returning(blob_table.c.sha256),
            [
                dict(sha256=i.sha256, size=i.size, mimetype=i.mimetype, width=i.width, height=i.height,
                     data=i.data, created=i.uploadtime, phash=to_signed64(i.phash))
                for i in blobs.values()
            ],
        ).scalars()
    )
    stored = {sha: dict(size=i.size, mimetype=i.mimetype, width=i.width, height=i.height,
                        phash=to_signed64(i.phash), inline=i.data is not None)
              for sha, i in blobs.items() if sha in inserted}
    earlier = [sha for sha in blobs if sha not in inserted]
    if earlier:
        rows = conn.execute(
            select(blob_table.c.sha256, *_BLOB_FACTS).where(blob_table.c.sha256.in_(earlier))
        ).mappings()
        for row in rows:
            stored[row["sha256"]] = {k: row[k] for k in _BLOB_FACT_KEYS}
    new = {
        row.filehash: row.id
        for row in conn.execute(
            _insert(conn, paste_table)
            .on_conflict_do_nothing()
            .returning(paste_table.c.id, paste_table.c.filehash),
            [
                dict(filehash=i.filehash, filename=i.filename, blob_sha256=i.sha256, uploadtime=i.uploadtime,
                     parent_id=i.parent_id, resize_w=i.resize_w, resize_h=i.resize_h)
                for i in items
            ],
        )
    }
    # the same bytes under the same name: the earlier paste, in one query
    earlier_pastes = _paste_of(conn, [(i.sha256, i.filename) for i in items if i.filehash not in new])
    out = []
    for item in items:
        if item.filehash in new:
            out.append(dict(
                id=new[item.filehash], filehash=item.filehash, filename=item.filename, blob_sha256=item.sha256,
                uploadtime=item.uploadtime, parent_id=item.parent_id, resize_w=item.resize_w,
                resize_h=item.resize_h, **stored[item.sha256],
            ))
        else:
            out.append(dict(earlier_pastes[(item.sha256, item.filename)]))
    return out


def _paste_of(conn: Connection, keys: Iterable[tuple[bytes, str]]) -> dict:
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(_PASTES.where(tuple_(paste_table.c.blob_sha256, paste_table.c.filename).in_(keys))).mappings()
    return {(row["blob_sha256"], row["filename"]): row for row in rows}


def inline_hashes(conn: Connection) -> set[bytes]:
    return set(conn.execute(select(blob_table.c.sha256).where(blob_table.c.data.is_not(None))).scalars())


def file_hashes(conn: Connection) -> set[bytes]:
    return set(conn.execute(select(blob_table.c.sha256).where(blob_table.c.data.is_(None))).scalars())


# -- renditions ----------------------------------------------------------------


def rendition(conn: Connection, source: bytes, spec: str, encoder: int):
    """The result blob of a recorded rendition (sha256 and blob facts), or None."""
    query = (
        select(rendition_table.c.result_sha256.label("sha256"), *_BLOB_FACTS)
        .select_from(rendition_table.join(blob_table, rendition_table.c.result_sha256 == blob_table.c.sha256))
        .where(
            rendition_table.c.source_sha256 == source,
            rendition_table.c.spec == spec,
            rendition_table.c.encoder == encoder,
        )
    )
    return conn.execute(query).mappings().first()


def rendition_count(conn: Connection, source: bytes) -> int:
    return conn.execute(
        select(func.count()).select_from(rendition_table).where(rendition_table.c.source_sha256 == source)
    ).scalar_one()


def record_blob(conn: Connection, sha256: bytes, size: int, mimetype: str, width, height, phash, data, created) -> None:
    """A blob row with no paste over it (yet); an existing row is kept."""
    conn.execute(
        _insert(conn, blob_table).on_conflict_do_nothing(),
        dict(sha256=sha256, size=size, mimetype=mimetype, width=width, height=height, phash=to_signed64(phash),
             data=data, created=created),
    )


def record_rendition(conn: Connection, source: bytes, spec: str, encoder: int, result: bytes, created) -> None:
    conn.execute(
        _insert(conn, rendition_table).on_conflict_do_nothing(),
        dict(source_sha256=source, spec=spec, encoder=encoder, result_sha256=result, created=created),
    )


def rendition_rows(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(rendition_table)).scalar_one()


# -- near duplicates ----------------------------------------------------------


def image_hashes(conn: Connection, after_id: int) -> list[tuple[int, int]]:
    """(paste id, signed pHash) of every hashed image paste with id > after_id."""
    query = (
        select(paste_table.c.id, blob_table.c.phash)
        .select_from(paste_table.join(blob_table))
        .where(paste_table.c.id > after_id, blob_table.c.phash.is_not(None))
    )
    return [(row[0], row[1]) for row in conn.execute(query)]
