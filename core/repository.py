"""The SQL of pastes and blobs, in SQLAlchemy Core over a Connection.

The hot paths (upload, lookups) run here without the ORM's unit of work:
each function is a handful of statements, the same on SQLite and PostgreSQL.
Rows come back as mappings with the keys of :data:`PASTE_COLUMNS`.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from . import pgcopy
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
    paste_table.c.expires,
    *_BLOB_FACTS,
)
_BLOB_FACT_KEYS = ("size", "mimetype", "width", "height", "phash", "inline")
_PASTES = select(*PASTE_COLUMNS).select_from(paste_table.join(blob_table))


@functools.lru_cache(maxsize=None)
def _insert_new(dialect_name: str, table, returning: tuple = ()):
    """``INSERT .. ON CONFLICT DO NOTHING [RETURNING ..]``, built once per
    dialect: the statements are immutable, and building one per upload batch
    cost more than executing it."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing()
    return stmt.returning(*returning) if returning else stmt


def _insert(conn: Connection, table, returning: tuple = ()):
    return _insert_new(conn.dialect.name, table, returning)


@dataclass(frozen=True)
class _RawInsert:
    """``INSERT .. VALUES (..), (..) ON CONFLICT DO NOTHING RETURNING ..`` as
    the driver's own SQL for one batch size, with the bind processors of the
    columns that need one (SQLite's datetimes)."""

    sql: str
    processors: tuple

    def run(self, conn: Connection, rows: Sequence[tuple]) -> list[tuple]:
        params = []
        processors = self.processors
        for row in rows:
            params.extend(value if proc is None or value is None else proc(value)
                          for value, proc in zip(row, processors))
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()


@functools.lru_cache(maxsize=256)
def _raw_insert(dialect, table, columns: tuple[str, ...], returning: tuple[str, ...], rows: int) -> _RawInsert:
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    values = "(" + ", ".join([mark] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES {', '.join([values] * rows)} ON CONFLICT DO NOTHING"
        + (f" RETURNING {', '.join(quote(c) for c in returning)}" if returning else "")
    )
    processors = tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return _RawInsert(sql, processors)


def _insert_rows(conn: Connection, table, columns: tuple[str, ...], rows: Sequence[tuple],
                 returning: tuple[str, ...]) -> list[tuple]:
    """The upload batch's INSERTs straight through the driver: built once per
    batch size and dialect, no compilation, result set or type machinery per
    batch (that cost the writer more than the database's own work)."""
    return _raw_insert(conn.dialect, table, columns, returning, len(rows)).run(conn, rows)


_BLOB_INSERT = tuple(name for name, _ in pgcopy.COLUMNS)
_PASTE_INSERT = ("filehash", "filename", "blob_sha256", "uploadtime", "parent_id", "resize_w", "resize_h",
                 "delete_token_hash", "expires")


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
    delete_token_hash: bytes | None = None
    expires: datetime | None = None


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
    # one multi-row INSERT per table with RETURNING (bytea comes back as a
    # memoryview from psycopg2)
    blob_rows = [(i.sha256, i.size, i.mimetype, i.width, i.height, i.data, i.uploadtime, to_signed64(i.phash))
                 for i in blobs.values()]
    if any(i.data is not None for i in blobs.values()) and pgcopy.staged(conn.connection):
        # inline bytes: COPY's binary format instead of hex in the statement
        inserted = set(pgcopy.insert_blobs(conn.connection, blob_rows))
    else:
        inserted = {bytes(row[0]) for row in _insert_rows(conn, blob_table, _BLOB_INSERT, blob_rows, ("sha256",))}
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
    new: dict[str, int] = {}
    earlier_pastes: dict = {}
    todo = list(items)
    # a paste of the same bytes under the same name, both kept until
    # deleted, is the earlier one; one that a concurrent removal took after
    # the conflict was seen is inserted again
    for _ in range(3):
        new.update(
            (filehash, paste_id)
            for paste_id, filehash in _insert_rows(conn, paste_table, _PASTE_INSERT, [
                (i.filehash, i.filename, i.sha256, i.uploadtime, i.parent_id, i.resize_w, i.resize_h,
                 i.delete_token_hash, i.expires)
                for i in todo
            ], ("id", "filehash"))
        )
        conflicts = [i for i in todo if i.filehash not in new]
        if not conflicts:
            break
        earlier_pastes.update(_paste_of(conn, [(i.sha256, i.filename) for i in conflicts]))
        todo = [i for i in conflicts if (i.sha256, i.filename) not in earlier_pastes]
        if not todo:
            break
    else:
        raise RuntimeError("the same bytes under the same name kept being removed while this upload was recorded")
    out = []
    for item in items:
        if item.filehash in new:
            out.append(dict(
                id=new[item.filehash], filehash=item.filehash, filename=item.filename, blob_sha256=item.sha256,
                uploadtime=item.uploadtime, parent_id=item.parent_id, resize_w=item.resize_w,
                resize_h=item.resize_h, expires=item.expires, new=True, **stored[item.sha256],
            ))
        else:
            out.append(dict(earlier_pastes[(item.sha256, item.filename)], new=False))
    return out


def paste_of(conn: Connection, sha256: bytes, filename: str):
    """The paste of these bytes under this name that is kept until deleted,
    or None (expiring pastes are never shared by a repeated upload)."""
    return _paste_of(conn, [(sha256, filename)]).get((sha256, filename))


def _paste_of(conn: Connection, keys: Iterable[tuple[bytes, str]]) -> dict:
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(
        _PASTES.where(
            tuple_(paste_table.c.blob_sha256, paste_table.c.filename).in_(keys), paste_table.c.expires.is_(None)
        )
    ).mappings()
    return {(row["blob_sha256"], row["filename"]): row for row in rows}


def inline_hashes(conn: Connection) -> set[bytes]:
    return set(conn.execute(select(blob_table.c.sha256).where(blob_table.c.data.is_not(None))).scalars())


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


def rendition_count(conn: Connection, source: bytes, encoder: int) -> int:
    """Renditions of ``source`` by this encoder version (older ones are no
    longer served, so they do not count against the cap)."""
    return conn.execute(
        select(func.count()).select_from(rendition_table).where(
            rendition_table.c.source_sha256 == source, rendition_table.c.encoder == encoder
        )
    ).scalar_one()


def record_blob(conn: Connection, sha256: bytes, size: int, mimetype: str, width, height, phash, data, created) -> None:
    """A blob row with no paste over it (yet); an existing row is kept."""
    conn.execute(
        _insert(conn, blob_table),
        dict(sha256=sha256, size=size, mimetype=mimetype, width=width, height=height, phash=to_signed64(phash),
             data=data, created=created),
    )


def record_rendition(conn: Connection, source: bytes, spec: str, encoder: int, result: bytes, created) -> None:
    conn.execute(
        _insert(conn, rendition_table),
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


# -- removal --------------------------------------------------------------------


def lock_blobs(conn: Connection, shas: Iterable[bytes]) -> None:
    """Serialize, per blob, putting its file back (an upload) with removing
    it (delete, gc, repair): a transaction-scoped advisory lock on
    PostgreSQL; SQLite's write transactions are serialized already."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({int.from_bytes(sha[:8], "big", signed=True) for sha in shas}):
        conn.execute(select(func.pg_advisory_xact_lock(key)))


def paste_for_removal(conn: Connection, filehash: str):
    """id, blob and token hash of a paste, its row locked until the end of
    the transaction (PostgreSQL), or None."""
    query = select(paste_table.c.id, paste_table.c.blob_sha256, paste_table.c.delete_token_hash).where(
        paste_table.c.filehash == filehash
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


@dataclass
class Removed:
    """Pastes deleted, and the children that lost their parent with them."""

    pastes: list[tuple[int, str, bytes]]  # (id, filehash, blob sha256)
    children: list[tuple[int, str]]  # (id, filehash)


def remove_pastes(conn: Connection, ids: Sequence[int]) -> Removed:
    """Delete pastes and the resizes visitors made of them (children without
    a delete token of their own: nobody else can take them back); children
    an uploader holds a token for keep living, without a parent."""
    if not ids:
        return Removed([], [])
    ids = list(ids)
    todo = ids
    for _ in range(16):  # resizes of resizes, a few levels at most
        todo = list(conn.execute(
            select(paste_table.c.id).where(
                paste_table.c.parent_id.in_(todo), paste_table.c.delete_token_hash.is_(None),
                paste_table.c.id.not_in(ids),
            )
        ).scalars())
        if not todo:
            break
        ids.extend(todo)
    children = [
        (row[0], row[1])
        for row in conn.execute(
            paste_table.update()
            .where(paste_table.c.parent_id.in_(ids), paste_table.c.id.not_in(ids))
            .values(parent_id=None)
            .returning(paste_table.c.id, paste_table.c.filehash)
        )
    ]
    rows = conn.execute(
        paste_table.delete()
        .where(paste_table.c.id.in_(ids))
        .returning(paste_table.c.id, paste_table.c.filehash, paste_table.c.blob_sha256)
    )
    return Removed([(row[0], row[1], row[2]) for row in rows], children)


@dataclass
class Released:
    """What removing unreferenced blobs took away, for the files and caches."""

    files: list[bytes]  # blobs stored as files
    blobs: list[bytes]  # every blob row removed
    renditions: list[tuple[bytes, str, int]]  # (source, spec, encoder)


def release_blobs(conn: Connection, candidates: Iterable[bytes]) -> Released:
    """Remove the rows of those ``candidates`` nothing refers to any more: no
    paste over them and no rendition of a live source producing them.  Their
    renditions go with them (the foreign key cascades), and the results of
    those renditions become candidates in turn.  Blob rows are locked first
    (PostgreSQL), so a concurrent paste over the same bytes either commits
    before (and keeps the blob) or waits and re-inserts the row."""
    released = Released([], [], [])
    todo = sorted(set(candidates))
    seen: set[bytes] = set()
    while todo:
        batch = [sha for sha in todo if sha not in seen]
        seen.update(batch)
        todo = []
        if not batch:
            break
        lock_blobs(conn, batch)
        query = select(blob_table.c.sha256, blob_table.c.data.is_(None).label("file")).where(
            blob_table.c.sha256.in_(batch)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = {row[0]: row[1] for row in conn.execute(query)}
        pasted = set(conn.execute(
            select(paste_table.c.blob_sha256).where(paste_table.c.blob_sha256.in_(list(rows)))
        ).scalars())
        produced = set(conn.execute(
            select(rendition_table.c.result_sha256).where(rendition_table.c.result_sha256.in_(list(rows)))
        ).scalars())
        free = [sha for sha in rows if sha not in pasted and sha not in produced]
        if not free:
            continue
        made = list(conn.execute(
            select(rendition_table.c.source_sha256, rendition_table.c.spec, rendition_table.c.encoder,
                   rendition_table.c.result_sha256)
            .where(rendition_table.c.source_sha256.in_(free))
        ))
        # the renditions first (not every SQLite connection cascades), then the blobs
        conn.execute(rendition_table.delete().where(rendition_table.c.source_sha256.in_(free)))
        conn.execute(blob_table.delete().where(blob_table.c.sha256.in_(free)))
        released.blobs.extend(free)
        released.files.extend(sha for sha in free if rows[sha])
        released.renditions.extend((row[0], row[1], row[2]) for row in made)
        todo = [row[3] for row in made]
    return released


def expired_pastes(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Ids of pastes expired at ``now``, locked until the transaction ends
    (PostgreSQL), so two collectors never take the same rows."""
    query = select(paste_table.c.id).where(paste_table.c.expires <= now).order_by(paste_table.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return list(conn.execute(query).scalars())


def unreferenced_blobs(conn: Connection, created_before: datetime) -> list[bytes]:
    """Blobs older than ``created_before`` that no paste is over and that are
    not a rendition of a blob a paste is over (sources of resized uploads,
    renditions of removed sources, rows left by a crash)."""
    pasted = select(paste_table.c.blob_sha256)
    live_renditions = select(rendition_table.c.result_sha256).where(rendition_table.c.source_sha256.in_(pasted))
    query = select(blob_table.c.sha256).where(
        blob_table.c.created < created_before,
        blob_table.c.sha256.not_in(pasted),
        blob_table.c.sha256.not_in(live_renditions),
    )
    return list(conn.execute(query).scalars())


def blob_sizes(conn: Connection) -> dict[bytes, int]:
    """The recorded size of every file-backed blob (for fsck)."""
    return {row[0]: row[1] for row in conn.execute(
        select(blob_table.c.sha256, blob_table.c.size).where(blob_table.c.data.is_(None))
    )}


def has_blob(conn: Connection, sha256: bytes) -> bool:
    return conn.execute(select(blob_table.c.sha256).where(blob_table.c.sha256 == sha256)).first() is not None


def write_lock(conn: Connection) -> None:
    """Take SQLite's write lock now, so a check and the action on it are one
    serialized step (PostgreSQL relies on row and advisory locks instead)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE blob SET size = size WHERE 0")


def delete_token_hash(conn: Connection, filehash: str) -> bytes | None:
    return conn.execute(
        select(paste_table.c.delete_token_hash).where(paste_table.c.filehash == filehash)
    ).scalar()
