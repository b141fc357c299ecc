"""Blob rows sent with binary COPY (core/pgcopy.py) land exactly as the plain
INSERT stores them, on a real PostgreSQL."""
from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from pastefile.core import db, pgcopy, repository
from pastefile.core.models import utcnow
from pastefile.core.repository import blob_table, paste_table

from .conftest import _migrated_database


@pytest.fixture(scope="module")
def copy_url(pg_cluster):
    yield from _migrated_database(pg_cluster, "pastefile_pgcopy")


@pytest.fixture
def engine(copy_url):
    engine = db.make_engine(copy_url)
    yield engine
    with engine.begin() as conn:
        conn.execute(paste_table.delete())
        conn.execute(blob_table.delete())
    engine.dispose()


def _rows(rng: random.Random, n: int) -> list[tuple]:
    out = []
    for i in range(n):
        size = rng.choice([0, 1, 31, 4096, 65536, 131072])
        phash = rng.choice([None, 0, 1, -1, (1 << 63) - 1, -(1 << 63), rng.getrandbits(64) - (1 << 63)])
        when = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=rng.getrandbits(45))
        out.append((
            os.urandom(32), size, rng.choice(["text/plain", "image/jpeg", "application/vnd.ms-excel", "x/ünï"]),
            rng.choice([None, 0, 1, 4096, 2**31 - 1]), rng.choice([None, 0, 3000]),
            rng.randbytes(size) if size else b"", when, phash,
        ))
    return out


def _stored(conn, shas) -> dict:
    columns = [blob_table.c[name] for name, _ in pgcopy.COLUMNS]
    return {bytes(r[0]): tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in conn.execute(select(*columns).where(blob_table.c.sha256.in_(shas)))}


def test_copy_stores_what_insert_stores(engine):
    rng = random.Random(7)
    rows = _rows(rng, 40)
    via_copy, via_insert = rows[:20], rows[20:]
    with engine.begin() as conn:
        assert pgcopy.staged(conn.connection)
        assert sorted(pgcopy.insert_blobs(conn.connection, via_copy)) == sorted(r[0] for r in via_copy)
        inserted = repository._insert_rows(conn, blob_table, repository._BLOB_INSERT, via_insert, ("sha256",))
        assert len(inserted) == 20
    with engine.connect() as conn:
        stored = _stored(conn, [r[0] for r in rows])
    for row in rows:
        assert stored[row[0]] == row


def test_conflicts_keep_the_row_there_and_the_stage_empties(engine):
    rows = _rows(random.Random(8), 6)
    with engine.begin() as conn:
        assert len(pgcopy.insert_blobs(conn.connection, rows[:3])) == 3
    changed = [(r[0], 999, "text/x-other", None, None, b"other", r[6], None) for r in rows[:3]]
    with engine.begin() as conn:
        # the three again, changed, and three new: only the new are inserted
        assert sorted(pgcopy.insert_blobs(conn.connection, changed + rows[3:])) == sorted(r[0] for r in rows[3:])
        assert conn.execute(text(f"SELECT count(*) FROM {pgcopy.STAGE}")).scalar() == 0
    with engine.connect() as conn:
        stored = _stored(conn, [r[0] for r in rows])
    assert [stored[r[0]] for r in rows] == rows


def test_a_rolled_back_batch_leaves_nothing(engine):
    rows = _rows(random.Random(9), 3)
    with engine.connect() as conn:
        trans = conn.begin()
        pgcopy.insert_blobs(conn.connection, rows)
        trans.rollback()
        with conn.begin():
            assert _stored(conn, [r[0] for r in rows]) == {}
            # the next batch on the same connection goes through
            assert len(pgcopy.insert_blobs(conn.connection, rows)) == 3


def test_upload_batch_goes_through_copy_and_reads_back(engine):
    items = [
        repository.NewPaste(sha256=os.urandom(32), size=n, mimetype="text/plain", width=None, height=None,
                            data=os.urandom(n), filehash=f"copy{n}.txt", filename="a.txt", uploadtime=utcnow(),
                            phash=(1 << 64) - 5)
        for n in (1, 70000)
    ]
    calls = []
    real = pgcopy.insert_blobs

    def counting(connection, rows):
        calls.append(len(rows))
        return real(connection, rows)

    pgcopy.insert_blobs = counting
    try:
        with engine.begin() as conn:
            rows = repository.record(conn, items)
    finally:
        pgcopy.insert_blobs = real
    assert calls == [2]
    assert all(r["new"] and r["inline"] for r in rows)
    with engine.connect() as conn:
        for item in items:
            assert repository.blob_data(conn, item.sha256) == item.data
            row = repository.paste_by_filehash(conn, item.filehash)
            assert repository.to_unsigned64(row["phash"]) == item.phash and row["size"] == item.size


def test_encode_refuses_naive_timestamps_and_short_rows():
    row = (b"x" * 32, 1, "text/plain", None, None, b"a", datetime(2026, 1, 1), None)
    with pytest.raises(ValueError):
        pgcopy.encode([row])
    with pytest.raises(ValueError):
        pgcopy.encode([row[:3]])
