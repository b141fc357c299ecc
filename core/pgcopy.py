"""Blob rows into PostgreSQL through ``COPY .. FROM STDIN (FORMAT binary)``.

An INSERT sends a bytea parameter as hex text in the statement: a 64 KB
upload becomes 128 KB that psycopg2 escapes and the server parses back, which
cost the server more than storing the row.  COPY's binary format carries the
bytes as they are.  COPY cannot settle conflicts, so the rows go to a
session-private temp table first and one statement moves them into ``blob``
with ``ON CONFLICT DO NOTHING``; the temp table is emptied by that statement
and, for good measure, at each commit.

The temp table is made when the engine opens a connection
(:func:`create_stage`, see ``db.make_engine``); a connection from elsewhere
has no mark and takes the plain INSERT.
"""
from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from datetime import datetime, timezone

STAGE = "pastefile_blob_stage"
MARK = "pastefile.blob_stage"
# (column, binary encoding) in the order the rows give them
COLUMNS = (
    ("sha256", "bytea"),
    ("size", "int8"),
    ("mimetype", "text"),
    ("width", "int4"),
    ("height", "int4"),
    ("data", "bytea"),
    ("created", "timestamptz"),
    ("phash", "int8"),
)
_SQL_TYPES = {"bytea": "bytea", "int8": "bigint", "int4": "integer", "text": "text", "timestamptz": "timestamptz"}
_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ("
    + ", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_NAMES = ", ".join(name for name, _ in COLUMNS)
_MOVE = (
    f"WITH staged AS (DELETE FROM {STAGE} RETURNING {_NAMES}) "
    f"INSERT INTO blob ({_NAMES}) SELECT {_NAMES} FROM staged ON CONFLICT DO NOTHING RETURNING sha256"
)
_COPY = f"COPY {STAGE} ({_NAMES}) FROM STDIN (FORMAT binary)"

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
_NULL = struct.pack("!i", -1)
_INT8 = struct.Struct("!iq")
_INT4 = struct.Struct("!ii")
_LENGTH = struct.Struct("!i")
_FIELDS = struct.pack("!h", len(COLUMNS))
# timestamptz: microseconds since 2000-01-01 UTC
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def create_stage(dbapi_conn, connection_record) -> None:
    """On a new connection (a ``connect`` event): make the temp table, in a
    transaction of its own, and mark the connection as having it."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(_DDL)
    finally:
        cursor.close()
    dbapi_conn.commit()
    connection_record.info[MARK] = True


def _timestamp(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("timestamps are stored with their time zone")
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode(rows: Sequence[tuple]) -> bytearray:
    """``rows`` (values in :data:`COLUMNS` order) in COPY's binary format."""
    out = bytearray(_HEADER)
    kinds = [kind for _, kind in COLUMNS]
    for row in rows:
        if len(row) != len(kinds):
            raise ValueError(f"a blob row has {len(kinds)} values, not {len(row)}")
        out += _FIELDS
        for value, kind in zip(row, kinds):
            if value is None:
                out += _NULL
            elif kind == "int8":
                out += _INT8.pack(8, value)
            elif kind == "int4":
                out += _INT4.pack(4, value)
            elif kind == "timestamptz":
                out += _INT8.pack(8, _timestamp(value))
            else:
                raw = value.encode() if kind == "text" else value
                out += _LENGTH.pack(len(raw))
                out += raw
    out += _TRAILER
    return out


def staged(connection) -> bool:
    """Whether this pooled connection has the temp table."""
    return bool(connection.info.get(MARK))


def insert_blobs(connection, rows: Sequence[tuple]) -> list[bytes]:
    """Insert ``rows`` into ``blob`` (a row already there is kept); the
    SHA-256 of each row inserted.  ``connection``: the pooled DBAPI
    connection, inside the caller's transaction."""
    cursor = connection.cursor()
    try:
        cursor.copy_expert(_COPY, io.BytesIO(encode(rows)))
        cursor.execute(_MOVE)
        return [bytes(row[0]) for row in cursor.fetchall()]
    finally:
        cursor.close()
