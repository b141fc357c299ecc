"""Concurrent identical uploads against PostgreSQL end with one blob and no error."""
from __future__ import annotations

import io
import os
import threading
import time

import pytest

from pastefile.core import PasteFileService

from .conftest import blob_copies, make_image, pg_service, random_text, settings_for

THREADS = 12


def _race(service, data: bytes, names: list[str]):
    barrier = threading.Barrier(len(names))
    results, errors = [None] * len(names), []

    def worker(i):
        try:
            barrier.wait()
            results[i] = service.upload(io.BytesIO(data), names[i])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


# blobs kept in their rows (the default for small files), and as files
STORAGE = pytest.mark.parametrize("inline_max", ["128k", "0"], ids=["inline", "file"])


@STORAGE
def test_identical_uploads_same_name(tmp_path, fresh_pg_url, memcached_nodes, inline_max):
    svc = pg_service(tmp_path, fresh_pg_url, memcached_nodes, inline_max)
    try:
        data = make_image("PNG", (128, 128), seed=501)
        results, errors = _race(svc, data, ["same.png"] * THREADS)
        assert errors == []
        assert len({r.id for r in results}) == 1
        assert svc.count() == (1, 1)
        assert blob_copies(svc, results[0].sha256) == 1
        assert os.listdir(svc.store.temp_dir) == []
    finally:
        svc.close()


@STORAGE
def test_identical_uploads_different_names(tmp_path, fresh_pg_url, memcached_nodes, inline_max, monkeypatch):
    svc = pg_service(tmp_path, fresh_pg_url, memcached_nodes, inline_max)
    try:
        data = make_image("PNG", (128, 128), seed=502)
        names = [f"copy{i}.png" for i in range(THREADS)]
        # the batches the writers take wait until every upload reached the
        # committer: the ones that came meanwhile queue and go in shared commits
        committer = svc._committer
        # each writer holds one batch, then takes what queued: at most two
        # batches per writer unless a batch fails and is retried item by item
        assert 2 * committer.writers < THREADS
        record, everyone, held, sizes = committer.record, threading.Event(), [], []
        before = committer.batches

        def held_record(conn, items):
            if not everyone.is_set():
                held.append(len(items))
                everyone.wait(30)
            out = record(conn, items)
            sizes.append(len(items))  # recorded (a failed batch is retried item by item)
            return out

        monkeypatch.setattr(committer, "record", held_record)

        def all_arrived():
            queued = committer._queue.qsize() if committer._queue is not None else 0
            return sum(held) + queued == THREADS

        outcome = []
        racing = threading.Thread(target=lambda: outcome.extend(_race(svc, data, names)))
        racing.start()
        deadline = time.monotonic() + 30
        try:
            while not all_arrived():
                assert time.monotonic() < deadline, f"{sum(held)} held in batches, of {THREADS} uploads"
                time.sleep(0.001)
        finally:
            everyone.set()
            racing.join(60)
        assert not racing.is_alive()
        results, errors = outcome
        assert errors == []
        assert sorted(r.filename for r in results) == sorted(names)
        assert len({r.sha256 for r in results}) == 1
        assert svc.count() == (THREADS, 1)
        assert blob_copies(svc, results[0].sha256) == 1
        # concurrent uploads shared commits: every upload committed once, in fewer commits
        assert sum(sizes) == THREADS and max(sizes) > 1
        assert committer.batches - before == len(sizes) < THREADS
    finally:
        svc.close()


def test_identical_uploads_sqlite(tmp_path):
    svc = PasteFileService(settings_for("sqlite", tmp_path))
    try:
        data = make_image("PNG", (64, 64), seed=503)
        results, errors = _race(svc, data, ["a.png", "b.png", "a.png", "b.png"] * 2)
        assert errors == []
        assert len({r.id for r in results}) == 2
        assert svc.count() == (2, 1)
    finally:
        svc.close()


def test_rows_kept_in_process_see_another_process_remove_them(tmp_path, fresh_pg_url, memcached_nodes):
    """In front of memcached each process keeps paste rows for a moment; a
    delete by another process (same storage root) is seen at the next lookup."""
    one = pg_service(tmp_path, fresh_pg_url, memcached_nodes, "128k")
    other = PasteFileService(one.settings)
    try:
        paste = one.upload(io.BytesIO(random_text(4242)), "shared.txt")
        assert one.get(paste.filehash) == paste
        assert one.get_by_symlink(paste.symlink) == paste
        assert one._local_rows is not None and one._local_rows.get(f"fh:{paste.filehash}") is not None
        assert other.delete(paste.filehash, paste.delete_token)
        assert one.get(paste.filehash) is None
        assert one.get_by_symlink(paste.symlink) is None
    finally:
        other.close()
        one.close()
