"""PasteFileService on SQLite (library mode) and PostgreSQL + memcached (bound session)."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random

import pytest
from PIL import Image

from pastefile.core import EmptyFile, InvalidRequest, NotFound, PasteFileService, TooLarge, UnsupportedType
from pastefile.core.blobstore import FileSystemBlobStore

from .conftest import blob_copies, blob_files, make_image, only_file_stores, random_text, raw_store, temp_files


def test_upload_returns_book_fields(service):
    data = make_image("PNG", (40, 30), seed=1)
    paste = service.upload(io.BytesIO(data), "cat.png")
    assert paste.filehash.endswith(".png") and len(paste.filehash) == 36
    assert paste.mimetype == "image/png" and paste.type == "image"
    assert (paste.width, paste.height) == (40, 30)
    assert paste.size == len(data)
    doc = paste.to_json("http://h")
    assert set(doc) >= {"url_d", "url_i", "url_s", "url_p", "filename", "size", "time", "type", "quoteurl"}
    assert doc["url_s"] == f"http://h/s/{paste.symlink}"
    assert doc["url_p"] == f"http://h/p/{paste.filehash}"
    assert doc["quoteurl"] == "http%3A%2F%2Fh%2Fi%2F" + paste.filehash
    with service.open(paste.filehash) as f:
        assert f.read() == data


def test_same_content_same_name_returns_earlier_paste(service):
    data = random_text(2)
    first = service.upload(io.BytesIO(data), "notes.txt")
    again = service.upload(io.BytesIO(data), "notes.txt")
    assert again == first
    assert service.count() == (1, 1)
    assert blob_copies(service, first.sha256) == 1
    assert temp_files(service) == []


def test_repeated_upload_of_a_type_no_longer_allowed_is_refused(service_factory):
    data = random_text(8)
    service_factory().upload(io.BytesIO(data), "kept.txt")
    strict = service_factory(**{"pastefile.allowed_types": "image/*"})
    with pytest.raises(UnsupportedType):
        strict.upload(io.BytesIO(data), "kept.txt")
    assert temp_files(strict) == []


def test_other_name_gets_own_paste_over_same_blob(service):
    data = random_text(3)
    a = service.upload(io.BytesIO(data), "a.txt")
    b = service.upload(io.BytesIO(data), "b.txt")
    assert a.id != b.id and a.filehash != b.filehash and a.symlink != b.symlink
    assert a.sha256 == b.sha256
    assert service.count() == (2, 1)
    assert blob_copies(service, a.sha256) == 1


@only_file_stores
def test_blob_is_content_addressed_on_disk(service_factory):
    service = service_factory(**{"pastefile.inline_max": "4k"})
    data = random_text(4, 5000)
    paste = service.upload(io.BytesIO(data), "x.txt")
    assert not paste.inline
    sha = paste.sha256
    path = service.path(paste)
    assert path.endswith(os.path.join(sha[:2], sha[2:4], sha))
    with open(path, "rb") as f:
        assert f.read() == data


def test_small_blob_is_kept_in_its_row(service_factory):
    service = service_factory(**{"pastefile.inline_max": "4k"})
    small = service.upload(io.BytesIO(random_text(40, 4096)), "small.txt")
    large = service.upload(io.BytesIO(random_text(41, 4097)), "large.txt")
    assert small.inline and not large.inline
    assert service.path(small) is None and [os.path.basename(p) for p in blob_files(service)] == [large.sha256]
    assert temp_files(service) == []
    for paste, size in ((small, 4096), (large, 4097)):
        with service.open(paste.filehash) as f:
            assert len(f.read()) == size
    # the cache may lose the bytes: the row still has them
    service.cache.delete(f"blobdata:{small.sha256}")
    assert service.blob_bytes(small) == random_text(40, 4096)
    assert service.fsck() == {"stale_temp": 0, "trash": 0, "orphan_files": 0, "missing_files": 0, "corrupt_files": 0, "renditions": 0}


def test_lookups(service):
    paste = service.upload(io.BytesIO(random_text(5)), "x.txt")
    assert service.get(paste.filehash) == paste
    assert service.get_by_symlink(paste.symlink) == paste
    assert service.get_by_id(paste.id) == paste
    assert service.get("0" * 32 + ".txt") is None
    assert service.get("../../etc/passwd") is None
    assert service.get_by_symlink(service.links.encode(paste.id + 1000)) is None
    assert service.get_by_symlink("not a link") is None
    with pytest.raises(NotFound):
        service.open("0" * 32)


def test_disallowed_type_is_refused_and_leaves_nothing(service):
    with pytest.raises(UnsupportedType):
        service.upload(io.BytesIO(b"<html><body><script>alert(1)</script></body></html>"), "x.html")
    with pytest.raises(UnsupportedType):
        service.upload(io.BytesIO(random.Random(5).randbytes(5000)), "random.bin")
    assert service.count() == (0, 0)
    assert blob_files(service) == [] and temp_files(service) == []


def test_client_extension_does_not_decide_type(service):
    paste = service.upload(io.BytesIO(make_image("JPEG", seed=6)), "photo.txt")
    assert paste.mimetype == "image/jpeg"


def test_allowed_types_configurable(service_factory):
    svc = service_factory(**{"pastefile.allowed_types": "application/octet-stream text/*"})
    # seeded: some random byte strings happen to look like executables
    assert svc.upload(io.BytesIO(random.Random(3).randbytes(3000)), "r.bin").mimetype == "application/octet-stream"
    assert svc.upload(io.BytesIO(random_text(7)), "t.txt").mimetype == "text/plain"
    with pytest.raises(UnsupportedType):
        svc.upload(io.BytesIO(make_image("PNG", seed=7)), "i.png")


def test_size_limit(service_factory):
    svc = service_factory(**{"pastefile.max_upload_size": "1000"})
    svc.upload(io.BytesIO(random_text(8, 1000)), "ok.txt")
    with pytest.raises(TooLarge):
        svc.upload(io.BytesIO(random_text(8, 1001)), "big.txt")
    assert svc.count() == (1, 1)
    assert temp_files(svc) == []


def test_empty_file_refused(service):
    with pytest.raises(EmptyFile):
        service.upload(io.BytesIO(b""), "empty.txt")
    assert temp_files(service) == []


def test_filename_is_cleaned(service):
    paste = service.upload(io.BytesIO(random_text(9)), "../../etc/\u732b\u732b\r\n.txt")
    assert paste.filename == "\u732b\u732b.txt"
    long = service.upload(io.BytesIO(random_text(10)), "a" * 400 + ".txt")
    assert len(long.filename) == 255 and long.filename.endswith(".txt")


def test_upload_with_resize_keeps_only_result(service):
    data = make_image("PNG", (400, 200), seed=11)
    paste = service.upload(io.BytesIO(data), "wide.png", w=100, h=100)
    assert (paste.width, paste.height) == (100, 100)
    assert (paste.resize_w, paste.resize_h) == (100, 100)
    with service.open(paste.filehash) as f:
        assert Image.open(f).size == (100, 100)
    assert blob_copies(service, paste.sha256) == 1
    # one paste, over the result; the original is kept as the rendition's source
    assert service.count() == (1, 2)


def test_resize_creates_child_paste_idempotently(service):
    src = service.upload(io.BytesIO(make_image("JPEG", (640, 480), seed=12)), "p.jpg")
    child = service.resize(src.filehash, 160, 0)
    assert child.parent_id == src.id
    assert (child.width, child.height) == (160, 120)
    assert service.resize(src.filehash, 160, 0) == child
    # no upscaling unless asked
    big = service.resize(src.filehash, 2000, 1000)
    assert (big.width, big.height) == (640, 320)


def test_resize_rejects_bad_requests(service):
    text = service.upload(io.BytesIO(random_text(13)), "t.txt")
    with pytest.raises(UnsupportedType):
        service.resize(text.filehash, 10, 10)
    img = service.upload(io.BytesIO(make_image(seed=13)), "i.png")
    with pytest.raises(InvalidRequest):
        service.resize(img.filehash, 0, 0)
    with pytest.raises(InvalidRequest):
        service.resize(img.filehash, 100000, 10)
    with pytest.raises(InvalidRequest):
        service.resize(img.filehash, -1, 10)
    with pytest.raises(NotFound):
        service.resize("f" * 32 + ".png", 10, 10)


def test_rendition_computed_once_then_found(service):
    img = service.upload(io.BytesIO(make_image("PNG", (300, 300), seed=14)), "v.png")
    first = service.rendition(img.filehash, 50, 50)
    with service.open_blob(first) as f:
        body = f.read()
    assert Image.open(io.BytesIO(body)).size == (50, 50)
    assert first.etag == hashlib.sha256(body).hexdigest()
    second = service.rendition(img.filehash, 50, 50)
    assert second == first
    assert service.count() == (1, 2)  # a rendition is a blob, not a paste


def test_latest_newest_first(service):
    ids = [service.upload(io.BytesIO(random_text(100 + i)), f"{i}.txt").id for i in range(5)]
    latest = service.latest(limit=3)
    assert [p.id for p in latest] == ids[::-1][:3]
    assert [p.id for p in service.latest(limit=3, offset=3)] == ids[1::-1]
    with pytest.raises(InvalidRequest):
        service.latest(limit=0)


def test_fsck_finds_and_repairs_orphans(service):
    paste = service.upload(io.BytesIO(random_text(15)), "f.txt")
    # a store of the same kind over the same place (no inline blobs) leaves bytes behind
    orphan = raw_store(service).stage_bytes(b"orphan bytes")
    service.store.commit(orphan)
    # a fresh orphan may be an upload still committing: left alone
    assert service.fsck(repair=True)["orphan_files"] == 0
    assert service.store.exists(orphan.sha256)
    report = service.fsck(grace=0)
    assert report["orphan_files"] == 1 and report["missing_files"] == 0
    assert service.fsck(repair=True, grace=0)["orphan_files"] == 1
    assert not service.store.exists(orphan.sha256)
    assert service.fsck(grace=0)["orphan_files"] == 0
    with service.open(paste.filehash) as f:
        assert f.read() == random_text(15)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_bound_service_writes_in_its_owners_transaction(request, tmp_path, backend):
    """``bind(session)``: uploads join the caller's transaction and are
    seen once the caller commits; a rollback leaves nothing visible."""
    from sqlalchemy.orm import Session

    from .conftest import settings_for

    if backend == "sqlite":
        settings = settings_for("sqlite", tmp_path)
    else:
        settings = settings_for("postgresql", tmp_path, pg_url=request.getfixturevalue("fresh_pg_url"),
                                memcached=request.getfixturevalue("memcached_nodes"))
    base = PasteFileService(settings)
    base.initdb()
    try:
        with Session(bind=base.engine, expire_on_commit=False) as session:
            dropped = base.bind(session).upload(io.BytesIO(b"never committed " * 50), "gone.txt")
            session.rollback()
        assert base.get(dropped.filehash) is None and base.count() == (0, 0)
        with Session(bind=base.engine, expire_on_commit=False) as session:
            bound = base.bind(session)
            kept = bound.upload(io.BytesIO(b"committed by its owner " * 50), "kept.txt")
            assert bound.get(kept.filehash) is not None  # its own transaction sees it
            session.commit()
        assert base.get(kept.filehash) == dataclasses.replace(kept, delete_token=None)
        with base.open(kept.filehash) as f:
            assert f.read() == b"committed by its owner " * 50
    finally:
        base.close()
