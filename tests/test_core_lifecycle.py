"""Delete tokens, expiry, gc and fsck: an uploader can take a file back, and
nobody can take anyone else's; removal never costs a concurrent upload its bytes."""
from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from pastefile.core import Forbidden, InvalidRequest, NotFound, PasteFileService
from pastefile.core.models import Blob, PasteFile, Rendition, utcnow
from pastefile.core.service import _named_key

from .conftest import blob_copies, make_image, overwrite_blob, pg_service, random_text, read_blob, settings_for

STORAGE = pytest.mark.parametrize("inline_max", ["128k", "0"], ids=["inline", "file"])


def rows(service, table) -> int:
    with service._connection() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


def test_upload_answers_a_token_that_only_deletes_its_own_paste(service):
    mine = service.upload(io.BytesIO(random_text(100)), "mine.txt")
    theirs = service.upload(io.BytesIO(random_text(101)), "theirs.txt")
    assert mine.delete_token and theirs.delete_token and mine.delete_token != theirs.delete_token
    doc = mine.to_json(service.base_url)
    assert doc["delete_token"] == mine.delete_token
    assert doc["url_delete"] == f"{service.base_url}/x/{mine.filehash}/{mine.delete_token}"
    # the token is never stored or cached in the clear
    assert service.get(mine.filehash).delete_token is None
    with service._connection() as conn:
        stored = conn.execute(select(PasteFile.delete_token_hash).where(PasteFile.id == mine.id)).scalar_one()
    assert len(stored) == 32 and mine.delete_token.encode() not in stored
    for token in (theirs.delete_token, "", "x" * 24, mine.delete_token[:-1], mine.delete_token.upper()):
        if token == mine.delete_token:
            continue
        with pytest.raises(Forbidden):
            service.delete(mine.filehash, token)
    assert service.can_delete(mine.filehash, mine.delete_token)
    assert not service.can_delete(mine.filehash, theirs.delete_token)
    assert service.get(mine.filehash) is not None
    with pytest.raises(NotFound):
        service.delete("f" * 32 + ".txt", mine.delete_token)
    service.delete(mine.filehash, mine.delete_token)
    assert service.get(mine.filehash) is None and service.get_by_symlink(mine.symlink) is None
    assert service.get(theirs.filehash) is not None
    with pytest.raises(NotFound):
        service.delete(mine.filehash, mine.delete_token)


def test_a_repeat_of_someone_elses_upload_gets_no_token(service):
    data = random_text(102)
    first = service.upload(io.BytesIO(data), "same.txt")
    again = service.upload(io.BytesIO(data), "same.txt")
    assert again == first and again.delete_token is None
    # the same bytes under another name: a paste of its own, with its own token
    other = service.upload(io.BytesIO(data), "other.txt")
    assert other.delete_token and other.sha256 == first.sha256
    assert other.filehash != first.filehash and other.delete_token != first.delete_token
    # the first uploader's token still takes the paste back, and only that one
    service.delete(first.filehash, first.delete_token)
    assert service.get(first.filehash) is None
    with service.open(other.filehash) as f:
        assert f.read() == data


@STORAGE
def test_blob_goes_with_its_last_paste(service_factory, inline_max):
    service = service_factory(**{"pastefile.inline_max": inline_max})
    data = random_text(103, 5000)
    a = service.upload(io.BytesIO(data), "a.txt")
    b = service.upload(io.BytesIO(data), "b.txt")
    service.delete(a.filehash, a.delete_token)
    assert rows(service, Blob) == 1 and blob_copies(service, b.sha256) == 1
    with service.open(b.filehash) as f:
        assert f.read() == data
    service.delete(b.filehash, b.delete_token)
    assert rows(service, Blob) == 0 and rows(service, PasteFile) == 0
    assert blob_copies(service, b.sha256) == 0
    with pytest.raises(NotFound):
        service.open(b.filehash)


def test_deleting_an_image_takes_its_renditions(service_factory):
    service = service_factory(**{"pastefile.inline_max": "0"})
    src = service.upload(io.BytesIO(make_image("PNG", (200, 100), seed=104)), "r.png")
    made = service.rendition(src, 50, 50)
    child = service.resize(src.filehash, 60, 0)  # a paste over another rendition
    assert rows(service, Rendition) == 2
    service.delete(src.filehash, src.delete_token)
    # the source and its cached rendition are gone; the child paste keeps its bytes
    assert rows(service, Rendition) == 0
    assert not service.store.exists(bytes.fromhex(src.sha256))
    assert not service.store.exists(bytes.fromhex(made.sha256))
    kept = service.get(child.filehash)
    assert kept is not None and kept.parent_id is None
    with service.open(child.filehash) as f:
        assert len(f.read()) == child.size
    assert service.fsck(grace=0)["missing_files"] == 0


def test_delete_reaches_every_process(tmp_path, memcached_nodes):
    """Two services on one PostgreSQL-free setup share memcached like two workers."""
    settings = settings_for("sqlite", tmp_path, **{"pastefile.cache.backend": "memcached",
                                                    "pastefile.cache.servers": memcached_nodes[0].address})
    one, two = PasteFileService(settings), PasteFileService(settings)
    paste = one.upload(io.BytesIO(random_text(105)), "shared.txt")
    assert two.get(paste.filehash) is not None and two.get_by_symlink(paste.symlink) is not None
    assert two.blob_bytes(two.get(paste.filehash)) == random_text(105)
    one.delete(paste.filehash, paste.delete_token)
    assert two.get(paste.filehash) is None and two.get_by_symlink(paste.symlink) is None
    one.close()
    two.close()


def test_expiry_is_bounded_and_hides_then_gc_removes(service_factory):
    service = service_factory(**{"pastefile.max_expiry": "3600"})
    for bad in (0, -5, 3601, "60", 1.5, True):
        with pytest.raises(InvalidRequest):
            service.upload(io.BytesIO(random_text(106)), "bad.txt", expires_in=bad)
    keep = service.upload(io.BytesIO(random_text(107)), "keep.txt")
    soon = service.upload(io.BytesIO(random_text(108)), "soon.txt", expires_in=60)
    assert soon.expires is not None and timedelta(seconds=55) < soon.expires - utcnow() <= timedelta(seconds=60)
    assert service.get(soon.filehash) is not None
    _as_if_expired(service, soon)  # as if a minute had passed
    assert service.get(soon.filehash) is None
    assert [p.filehash for p in service.latest(10)] == [keep.filehash]
    report = service.gc(grace=0)
    assert report["expired_pastes"] == 1 and report["blobs"] == 1
    assert rows(service, PasteFile) == 1 and rows(service, Blob) == 1
    assert service.gc(grace=0) == {"expired_pastes": 0, "blobs": 0, "files": 0, "renditions": 0, "stale_temp": 0,
                                   "orphan_files": 0, "resumable_uploads": 0}


def _forget_cached(service, paste) -> None:
    """Drop what ``service`` cached of ``paste``'s row (shared and per process)."""
    service.cache.delete_many([f"paste:fh:{paste.filehash}", f"paste:id:{paste.id}"])
    if service._local_rows is not None:
        service._local_rows.clear()


def _as_if_expired(service, paste) -> None:
    """Move ``paste``'s expiry into the past behind the service's back."""
    with service._writing() as conn:
        conn.execute(update(PasteFile).where(PasteFile.id == paste.id).values(expires=utcnow() - timedelta(seconds=1)))
    _forget_cached(service, paste)


@pytest.mark.parametrize("hinted", [True, False], ids=["cache-hint", "no-hint"])
def test_a_repeated_upload_never_changes_anyones_expiry(service_factory, hinted):
    """The same bytes under the same name are one paste only while neither
    asks for an expiry: an expiring upload, or a repeat of one, is a paste of
    its own over the same blob, so nobody extends or shortens a life that
    another uploader chose."""
    service = service_factory(**{"pastefile.max_expiry": "3600"})
    data = random_text(130)

    def again(**kw):
        if not hinted:  # without the cache's hint: the write path, not the shortcut for repeats
            service.cache.delete_many([_named_key(hashlib.sha256(data).digest(), "same.txt")])
        paste = service.upload(io.BytesIO(data), "same.txt", **kw)
        if service._session is not None:
            # a bound service refreshes the cache when its owner commits,
            # which this test's rolled-back transaction never does
            _forget_cached(service, paste)
        return paste

    first = service.upload(io.BytesIO(data), "same.txt", expires_in=60)
    longer = again(expires_in=600)
    assert longer.filehash != first.filehash and longer.delete_token
    assert timedelta(seconds=590) < longer.expires - utcnow() <= timedelta(seconds=600)
    assert timedelta(seconds=50) < service.get(first.filehash).expires - utcnow() <= timedelta(seconds=60)
    kept = again()
    assert kept.filehash not in (first.filehash, longer.filehash) and kept.expires is None and kept.delete_token
    assert service.get(first.filehash).expires == first.expires
    assert service.get(longer.filehash).expires == longer.expires
    # a repeat without expiry of a kept paste is that paste, token-less
    repeat = again()
    assert repeat.filehash == kept.filehash and repeat.delete_token is None
    shorter = again(expires_in=30)
    assert shorter.filehash not in (first.filehash, longer.filehash, kept.filehash)
    assert service.get(kept.filehash).expires is None

    _as_if_expired(service, first)
    assert service.get(first.filehash) is None and service.get_by_symlink(first.symlink) is None
    assert service.gc(grace=0)["expired_pastes"] == 1
    for paste in (longer, kept, shorter):
        with service.open(paste.filehash) as f:
            assert f.read() == data


def test_gc_racing_a_repeat_of_an_expired_upload(tmp_path, fresh_pg_url, memcached_nodes, race_rgw):
    """gc holds and removes an expired paste while the same bytes and name
    are uploaded again: the upload is a paste of its own and keeps its bytes."""
    service = pg_service(tmp_path, fresh_pg_url, memcached_nodes, "0", race_rgw)
    try:
        data = random_text(131)
        first = service.upload(io.BytesIO(data), "same.txt", expires_in=60)
        _as_if_expired(service, first)
        results, errors = [], []

        def upload():
            try:
                results.append(service.upload(io.BytesIO(data), "same.txt"))
            except Exception as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        thread = threading.Thread(target=upload)
        with service.engine.begin() as conn:
            from pastefile.core import repository

            held = repository.expired_pastes(conn, utcnow(), 10)
            assert held == [first.id]
            thread.start()
            # the upload does not wait for gc's row lock: it finishes, a paste
            # over the same blob, while gc holds the expired one; then gc removes that
            thread.join(30)
            assert not thread.is_alive(), "the repeat upload did not finish while gc held the expired paste"
            assert errors == [] and len(results) == 1
            repository.remove_pastes(conn, held)
        paste = results[0]
        assert paste.filehash != first.filehash and paste.expires is None
        service.gc(grace=0)
        assert service.get(paste.filehash) is not None and service.get(first.filehash) is None
        with service.open(paste.filehash) as f:
            assert f.read() == data
        assert service.fsck()["missing_files"] == 0
    finally:
        service.close()


def test_short_links_are_never_handed_out_again(service):
    """Deleting the newest paste must not give its id, and so its short
    link, to the next upload (SQLite reuses the largest rowid otherwise)."""
    gone = service.upload(io.BytesIO(random_text(140)), "a.txt")
    service.delete(gone.filehash, gone.delete_token)
    assert service.get_by_symlink(gone.symlink) is None
    after = service.upload(io.BytesIO(random_text(141)), "b.txt")
    assert after.id > gone.id and after.symlink != gone.symlink
    assert service.get_by_symlink(gone.symlink) is None
    assert service.get_by_symlink(after.symlink).filehash == after.filehash


def test_gc_removes_sources_of_resized_uploads_and_leaves_live_renditions(service_factory):
    service = service_factory(**{"pastefile.inline_max": "0"})
    resized = service.upload(io.BytesIO(make_image("PNG", (120, 80), seed=109)), "small.png", w=30, h=30)
    image = service.upload(io.BytesIO(make_image("PNG", (120, 80), seed=110)), "img.png")
    cached = service.rendition(image, 40, 40)
    assert rows(service, Blob) == 4
    assert service.gc(grace=3600)["blobs"] == 0  # young blobs may belong to uploads still committing
    report = service.gc(grace=0)
    # the resized upload's original went, with its rendition row; the pasted result stayed
    assert report["blobs"] == 1 and report["renditions"] == 1
    assert {b.hex() for b in _blob_shas(service)} == {resized.sha256, image.sha256, cached.sha256}
    with service.open(resized.filehash) as f:
        assert len(f.read()) == resized.size


def _blob_shas(service) -> set[bytes]:
    with service._connection() as conn:
        return set(conn.execute(select(Blob.sha256)).scalars())


def test_fsck_reports_corruption_and_puts_back_trashed_files(service_factory):
    service = service_factory(**{"pastefile.inline_max": "0"})
    good = service.upload(io.BytesIO(random_text(111, 3000)), "good.txt")
    bad = service.upload(io.BytesIO(random_text(112, 3000)), "bad.txt")
    flipped = bytearray(read_blob(service, bad.sha256))
    flipped[10] ^= 0xFF  # same size, one byte flipped
    overwrite_blob(service, bad.sha256, bytes(flipped))
    assert service.fsck(grace=0)["corrupt_files"] == 0  # sizes agree
    assert service.fsck(grace=0, verify=True)["corrupt_files"] == 1
    # a removal that crashed between its rename and its commit
    trashed = service.store.trash(bytes.fromhex(good.sha256))
    report = service.fsck(grace=0)
    assert report["trash"] == 1 and report["missing_files"] == 1
    service.fsck(repair=True, grace=0)
    assert trashed and service.store.trashed() == []
    report = service.fsck(grace=0, verify=True)
    assert report["trash"] == 0 and report["missing_files"] == 0 and report["corrupt_files"] == 1
    with service.open(good.filehash) as f:
        assert f.read() == random_text(111, 3000)


def test_stale_temp_files_counted_and_swept(service_factory):
    service = service_factory(**{"pastefile.inline_max": "0"})
    stale = os.path.join(service.store.temp_dir, "upload-crashed")
    with open(stale, "wb") as f:
        f.write(b"half an upload")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert service.fsck()["stale_temp"] == 1 and os.path.exists(stale)
    assert service.fsck(repair=True)["stale_temp"] == 1 and not os.path.exists(stale)


# -- races (real commits on PostgreSQL) ------------------------------------------


@STORAGE
def test_delete_racing_a_reupload_of_the_same_bytes(tmp_path, fresh_pg_url, memcached_nodes, inline_max, race_rgw):
    """The last paste over some bytes is deleted while other clients upload
    the same bytes: every upload that got a link keeps its paste and bytes."""
    service = pg_service(tmp_path, fresh_pg_url, memcached_nodes, inline_max, race_rgw)
    try:
        for round_ in range(12):
            data = random_text(1000 + round_, 200_000)
            first = service.upload(io.BytesIO(data), "first.bin")
            barrier = threading.Barrier(4)
            results, errors = [], []

            def reupload(i, round_=round_, data=data):
                barrier.wait()
                try:
                    results.append(service.upload(io.BytesIO(data), f"again-{round_}-{i}.bin"))
                except Exception as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            def delete():
                barrier.wait()
                try:
                    service.delete(first.filehash, first.delete_token)
                except Exception as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            threads = [threading.Thread(target=reupload, args=(i,)) for i in range(3)]
            threads.append(threading.Thread(target=delete))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == [] and len(results) == 3
            assert service.get(first.filehash) is None
            for paste in results:
                found = service.get(paste.filehash)
                assert found is not None
                with service.open(paste.filehash) as f:
                    assert f.read() == data
        report = service.fsck(grace=0, verify=True)
        assert report["missing_files"] == 0 and report["corrupt_files"] == 0 and report["orphan_files"] == 0
    finally:
        service.close()


def test_fsck_repair_racing_a_reupload(tmp_path, fresh_pg_url, memcached_nodes, race_rgw):
    """An orphan file (its row gone) is repaired away while the same bytes are
    uploaded again: the upload keeps its file."""
    service = pg_service(tmp_path, fresh_pg_url, memcached_nodes, "0", race_rgw)
    # an object's age cannot be set: on s3 every orphan is old enough
    grace = 3600 if race_rgw is None else 0
    try:
        for round_ in range(8):
            data = random_text(2000 + round_, 150_000)
            paste = service.upload(io.BytesIO(data), "orphaned.bin")
            sha = bytes.fromhex(paste.sha256)
            # the rows go, the file stays: an orphan, as a crash would leave one
            with service.engine.begin() as conn:
                conn.execute(PasteFile.__table__.delete().where(PasteFile.id == paste.id))
                conn.execute(Blob.__table__.delete().where(Blob.sha256 == sha))
            if race_rgw is None:
                old = time.time() - 7200
                os.utime(service.store.path(sha), (old, old))
            service.cache.delete_many([f"paste:fh:{paste.filehash}", f"paste:id:{paste.id}"])
            barrier = threading.Barrier(2)
            got, errors = [], []

            def upload(data=data, round_=round_):
                barrier.wait()
                got.append(service.upload(io.BytesIO(data), f"back-{round_}.bin"))

            def repair():
                barrier.wait()
                try:
                    service.fsck(repair=True, grace=grace)
                except Exception as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            threads = [threading.Thread(target=upload), threading.Thread(target=repair)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == [] and len(got) == 1
            with service.open(got[0].filehash) as f:
                assert f.read() == data
    finally:
        service.close()


def test_a_shared_cache_never_vouches_for_a_missing_row(tmp_path, memcached_nodes):
    """Two deployments on one memcached key space (or a restored database):
    the cache knows the bytes, this database does not; the upload still
    records the blob, the database being the authority."""
    shared = {"pastefile.cache.backend": "memcached", "pastefile.cache.servers": memcached_nodes[0].address,
              "pastefile.cache.prefix": f"shared{os.getpid()}{int(time.time() * 1000)}"}
    first = PasteFileService(settings_for("sqlite", tmp_path / "a", **shared))
    second = PasteFileService(settings_for("sqlite", tmp_path / "b", **shared))
    for seed, size in ((3001, 5000), (3002, 200_000)):  # kept in the row, then as a file
        data = random_text(seed, size)
        a = first.upload(io.BytesIO(data), "same.bin")
        b = second.upload(io.BytesIO(data), "same.bin")
        assert a.sha256 == b.sha256
        with second.open(b.filehash) as f:
            assert f.read() == data
        assert blob_copies(second, b.sha256) == 1
    first.close()
    second.close()


def test_delete_reaches_processes_with_their_own_in_process_cache(tmp_path):
    """Workers on SQLite with the in-process cache (no memcached) hear of a
    delete through the store: the next lookup in any of them misses."""
    settings = settings_for("sqlite", tmp_path)  # cache.backend = memory
    one, two = PasteFileService(settings), PasteFileService(settings)
    keep = one.upload(io.BytesIO(random_text(120)), "keep.txt")
    gone = one.upload(io.BytesIO(random_text(121)), "gone.txt")
    for svc in (one, two):  # cached in both
        assert svc.get(gone.filehash) is not None and svc.get_by_symlink(gone.symlink) is not None
    one.delete(gone.filehash, gone.delete_token)
    assert two.get(gone.filehash) is None and two.get_by_symlink(gone.symlink) is None
    assert [p.filehash for p in two.latest(5)] == [keep.filehash]
    assert two.get(keep.filehash) == keep
    one.close()
    two.close()
