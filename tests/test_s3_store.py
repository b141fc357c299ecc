"""The object store against a real Ceph RADOS Gateway: its key layout, parts
streamed while a body arrives, no PUT for bytes already stored, serving by
redirect, an unreachable store, what a crash leaves, and moving blobs
between the stores (pastefile migrate-store) while the service serves."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import urllib.request
import uuid

import pytest

from pastefile.core import PasteFileService
from pastefile.core import s3store
from pastefile.core.errors import Unavailable
from pastefile.core.settings import Settings, SettingsError

from .conftest import make_image, random_text, settings_for
from .servers import free_port
from .webapp_helpers import API, WebApp

MB = 1 << 20


@pytest.fixture
def s3_service(request, tmp_path, pg_url, memcached_nodes, rgw):
    made = []

    def make(**extra) -> PasteFileService:
        svc = PasteFileService(settings_for("s3", tmp_path, pg_url=pg_url, memcached=memcached_nodes, rgw=rgw,
                                            **extra))
        svc.initdb()
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.close()
    from .conftest import _empty_tables

    _empty_tables(pg_url)


class Calls:
    """Counts the S3 operations a client sends."""

    def __init__(self, client):
        self.seen: list[str] = []
        client.meta.events.register("before-call.s3.*", self._record)

    def _record(self, model, **kwargs):
        self.seen.append(model.name)

    def count(self, *names: str) -> int:
        return sum(self.seen.count(name) for name in names)


def keys(store, under: str = "") -> list[str]:
    prefix = store.prefix + "/" + under
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))


def multipart_uploads(store) -> list[dict]:
    return store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix + "/").get("Uploads", [])


# -- the layout and the write path ----------------------------------------------------


def test_blobs_are_objects_under_their_content_address(s3_service):
    service = s3_service(**{"pastefile.inline_max": "4k"})
    data = random_text(501, 20_000)
    paste = service.upload(io.BytesIO(data), "a.txt")
    sha = hashlib.sha256(data).hexdigest()
    assert paste.sha256 == sha and not paste.inline
    store = service.store
    assert keys(store) == [f"{store.prefix}/{sha[:2]}/{sha[2:4]}/{sha}"]
    body = store.client.get_object(Bucket=store.bucket, Key=keys(store)[0])["Body"].read()
    assert body == data
    # small blobs stay in their row: no object
    small = service.upload(io.BytesIO(b"tiny"), "t.txt")
    assert small.inline and len(keys(store)) == 1


def test_a_large_body_streams_its_parts_while_it_arrives(s3_service):
    service = s3_service(**{"pastefile.inline_max": "0", "pastefile.allowed_types": "*"})
    store = service.store
    block = os.urandom(MB)
    with service._ingest.receive() as writer:
        for _ in range(12):
            writer.write(block)
        # more than two parts in: the first ones are on their way before the body ends
        uploads = multipart_uploads(store)
        assert len(uploads) == 1 and uploads[0]["Key"].startswith(f"{store.prefix}/tmp/upload-")
        staged = writer.finish()
    assert staged.key is not None and staged.size == 12 * MB
    assert staged.sha256 == hashlib.sha256(block * 12).digest()
    paste = service.upload_staged(staged, "big.bin")
    assert multipart_uploads(store) == [] and keys(store, "tmp/") == []
    with service.open(paste.filehash) as f:
        assert hashlib.sha256(f.read()).digest() == staged.sha256
    assert service.fsck(grace=0, verify=True)["corrupt_files"] == 0


def test_a_refused_large_body_leaves_no_parts(s3_service):
    service = s3_service(**{"pastefile.inline_max": "0", "pastefile.max_upload_size": "11M"})
    store = service.store
    with pytest.raises(Exception):
        with service._ingest.receive() as writer:
            for _ in range(12):
                writer.write(os.urandom(MB))
    assert multipart_uploads(store) == [] and os.listdir(store.temp_dir) == []


def test_bytes_already_stored_are_not_sent_again(s3_service):
    service = s3_service(**{"pastefile.inline_max": "0"})
    calls = Calls(service.store.client)
    data = random_text(502, 300_000)
    service.upload(io.BytesIO(data), "one.txt")
    assert calls.count("PutObject") == 1
    before = len(calls.seen)
    again = service.upload(io.BytesIO(data), "two.txt")  # same bytes, another name: a paste of its own
    sent = calls.seen[before:]
    assert again.filename == "two.txt"
    assert "PutObject" not in sent and "CopyObject" not in sent and "UploadPart" not in sent


def test_part_size_grows_so_no_object_needs_more_than_10000_parts():
    config = s3store.S3Config(bucket="b", part_size=16 * MB)
    assert config.part_size_for(100 * MB) == 16 * MB
    grown = config.part_size_for(500 * 1024 * MB)
    assert grown % MB == 0 and grown * 10_000 >= 500 * 1024 * MB and grown > 16 * MB


def test_settings_name_the_store_and_its_bucket():
    with pytest.raises(SettingsError) as info:
        Settings.from_dict({"pastefile.store": "s3"}, environ={})
    assert info.value.key == "pastefile.s3.bucket"
    with pytest.raises(SettingsError):
        Settings.from_dict({"pastefile.store": "tape"}, environ={})
    with pytest.raises(SettingsError):
        Settings.from_dict({"pastefile.store": "s3", "pastefile.s3.bucket": "b", "pastefile.s3.serve": "x"}, environ={})
    settings = Settings.from_dict({}, environ={"PASTEFILE_STORE": "s3", "PASTEFILE_S3_BUCKET": "blobs",
                                               "PASTEFILE_S3_PART_SIZE": "32M"})
    assert (settings.store, settings.s3_bucket, settings.s3_part_size) == ("s3", "blobs", 32 * MB)


def test_initdb_creates_the_bucket_with_an_abort_rule(tmp_path, rgw, pg_url, memcached_nodes):
    bucket = f"fresh-{uuid.uuid4().hex[:8]}"
    settings = settings_for("s3", tmp_path, pg_url=pg_url, memcached=memcached_nodes, rgw=rgw,
                            **{"pastefile.s3.bucket": bucket})
    service = PasteFileService(settings)
    try:
        service.initdb()
        rules = service.store.client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert any(rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for rule in rules)
        assert service.store.ensure_bucket() is False  # there now
    finally:
        service.close()


# -- what a crash leaves -------------------------------------------------------------------


def test_sweep_removes_stale_staging_objects_and_multipart_uploads(s3_service):
    service = s3_service(**{"pastefile.inline_max": "0"})
    store = service.store
    client = store.client
    client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/tmp/upload-crashed", Body=b"half")
    client.create_multipart_upload(Bucket=store.bucket, Key=f"{store.prefix}/tmp/upload-crashed-parts")
    # young: an upload may still own them
    assert service.fsck(repair=True)["stale_temp"] == 0
    assert len(keys(store, "tmp/")) == 1 and len(multipart_uploads(store)) == 1
    # past the grace period the operator gives fsck, they are a crash's leftovers
    assert service.fsck(grace=0)["stale_temp"] == 2
    assert service.fsck(repair=True, grace=0)["stale_temp"] == 2
    assert keys(store, "tmp/") == [] and multipart_uploads(store) == []


def test_an_object_without_its_row_is_an_orphan_fsck_removes(s3_service):
    service = s3_service(**{"pastefile.inline_max": "0"})
    kept = service.upload(io.BytesIO(random_text(503, 9000)), "kept.txt")
    store = service.store
    orphan = hashlib.sha256(b"left by a crash").hexdigest()
    store.client.put_object(Bucket=store.bucket, Key=store.key(orphan), Body=b"left by a crash")
    assert service.fsck()["orphan_files"] == 0  # younger than the grace period
    assert service.fsck(grace=0)["orphan_files"] == 1
    assert service.fsck(repair=True, grace=0)["orphan_files"] == 1
    assert not store.exists(bytes.fromhex(orphan)) and store.exists(bytes.fromhex(kept.sha256))


# -- serving -----------------------------------------------------------------------------------


def _app(tmp_path, request, ensure: bool = True, **extra) -> WebApp:
    import pastefile.webapp

    from .conftest import webapp_settings

    app = WebApp(pastefile.webapp.main({}, **webapp_settings(request, "s3", tmp_path, **extra)))
    if ensure:
        app.service.store.ensure_bucket()
    return app


def test_redirect_serving_hands_out_a_presigned_get_with_the_right_headers(tmp_path, request):
    app = _app(tmp_path, request, **{"pastefile.s3.serve": "redirect", "pastefile.inline_max": "0"})
    try:
        data = make_image("PNG", (120, 80), seed=504)
        doc = app.post("/", upload_files=[("file", "pic é.png", data)], headers=API).json
        res = app.get(f"/i/{doc['filehash']}", status=302)
        assert res.headers["Cache-Control"] == "no-store" and res.headers["ETag"] == f'"{doc["sha256"]}"'
        with urllib.request.urlopen(res.headers["Location"]) as got:
            assert got.read() == data
            assert got.headers["Content-Type"] == "image/png"
            assert got.headers["Content-Disposition"].startswith("inline;")
        down = app.get(f"/d/{doc['filehash']}", status=302)
        with urllib.request.urlopen(down.headers["Location"]) as got:
            assert got.headers["Content-Type"] == "application/octet-stream"
            assert got.headers["Content-Disposition"].startswith("attachment;") and "UTF-8''pic%20%C3%A9.png" in \
                got.headers["Content-Disposition"]
        # a client that has the bytes is told so without a trip to the store
        app.get(f"/i/{doc['filehash']}", headers={"If-None-Match": f'"{doc["sha256"]}"'}, status=304)
    finally:
        app.service.close()


def test_proxy_serving_streams_ranges_from_the_store(tmp_path, request):
    app = _app(tmp_path, request, **{"pastefile.inline_max": "0", "pastefile.allowed_types": "*"})
    try:
        data = os.urandom(3 * MB + 17)
        doc = app.post("/", upload_files=[("file", "r.bin", data)], headers=API).json
        res = app.get(f"/d/{doc['filehash']}", headers={"Range": "bytes=1048570-2097160"}, status=206)
        assert res.body == data[1048570:2097161]
        tail = app.get(f"/d/{doc['filehash']}", headers={"Range": "bytes=-5"}, status=206)
        assert tail.body == data[-5:]
        assert app.get(f"/d/{doc['filehash']}").body == data
    finally:
        app.service.close()


def test_an_unreachable_store_is_a_503_with_retry_after(tmp_path, request):
    app = _app(tmp_path, request, **{"pastefile.inline_max": "4k"})
    try:
        doc = app.post("/", upload_files=[("file", "before.txt", random_text(505, 9000))], headers=API).json
    finally:
        app.service.close()
    # the same deployment, its store gone
    broken = _app(tmp_path, request, **{"pastefile.inline_max": "4k",
                                        "pastefile.s3.endpoint_url": f"http://127.0.0.1:{free_port()}"},
                  ensure=False)
    try:
        before = broken.service.count()
        res = broken.post("/", upload_files=[("file", "during.txt", random_text(506, 9000))], headers=API,
                          status=503)
        assert res.headers["Retry-After"].isdigit()
        read = broken.get(f"/d/{doc['filehash']}", headers=API, status=503)
        assert read.headers["Retry-After"].isdigit()
        assert broken.get("/readyz", status=503).json["checks"]["store"] == "failing"
        assert broken.service.count() == before  # nothing half-stored
        with pytest.raises(Unavailable):
            broken.service.open(doc["filehash"])
    finally:
        broken.service.close()


# -- moving between the stores ------------------------------------------------------------


def _migration_settings(tmp_path, request, store: str, fallback: str = "", **extra) -> dict:
    settings = settings_for(
        "s3", tmp_path, pg_url=request.getfixturevalue("fresh_pg_url"),
        memcached=request.getfixturevalue("memcached_nodes"), rgw=request.getfixturevalue("rgw"),
        **{"pastefile.inline_max": "4k", **extra},
    )
    settings["pastefile.store"] = store
    settings["pastefile.store.fallback"] = fallback
    return settings


def _read_all(service, pastes: dict) -> None:
    for filehash, data in pastes.items():
        with service.open(filehash) as f:
            assert f.read() == data, filehash


def test_migrate_store_both_ways_while_serving_interrupted_and_resumed(tmp_path, request):
    # on files first, as a single machine runs
    on_files = PasteFileService(_migration_settings(tmp_path, request, "file"))
    on_files.initdb()
    pastes = {}
    for i in range(12):
        data = random_text(600 + i, 5000 + i * 3000)
        pastes[on_files.upload(io.BytesIO(data), f"f{i}.txt").filehash] = data
    image = on_files.upload(io.BytesIO(make_image("PNG", (160, 120), seed=612)), "i.png")
    on_files.rendition(image, 40, 30)
    on_files.close()

    # the nodes switch to s3 reading through to the files; uploads land in s3 meanwhile
    moving = PasteFileService(_migration_settings(tmp_path, request, "s3", "file"))
    _read_all(moving, pastes)
    stop = threading.Event()
    during, errors = {}, []

    def keep_uploading():
        i = 0
        while not stop.is_set():
            data = random_text(700 + i, 6000)
            try:
                during[moving.upload(io.BytesIO(data), f"d{i}.txt").filehash] = data
            except Exception as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)
            i += 1

    uploader = threading.Thread(target=keep_uploading)
    uploader.start()
    try:
        class Interrupted(Exception):
            pass

        def interrupt(done, total):
            if done == 5:
                raise Interrupted

        with pytest.raises(Interrupted):
            moving.migrate_store("s3", interrupt)
        _read_all(moving, pastes)
        report = moving.migrate_store("s3")
    finally:
        stop.set()
        uploader.join()
    assert errors == [] and len(during) > 0
    assert report["corrupt"] == 0 and report["gone"] == 0 and report["present"] >= 5 and report["copied"] >= 1
    assert report["copied"] + report["present"] == report["blobs"]
    assert moving.migrate_store("s3")["copied"] == 0  # nothing left to do
    moving.close()

    # switched: s3 alone serves everything, renditions included
    on_s3 = PasteFileService(_migration_settings(tmp_path, request, "s3"))
    _read_all(on_s3, {**pastes, **during})
    assert on_s3.rendition(image, 40, 30).sha256
    assert on_s3.fsck(grace=0, verify=True) | {"renditions": 0} == {
        "stale_temp": 0, "trash": 0, "orphan_files": 0, "missing_files": 0, "corrupt_files": 0, "renditions": 0}
    on_s3.close()

    # and back to files, through the command line
    ini = tmp_path / "back.ini"
    settings = _migration_settings(tmp_path, request, "file", "s3")
    ini.write_text("[app:main]\nuse = egg:pastefile\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    out = subprocess.run([sys.executable, "-m", "pastefile.core.cli", "-c", str(ini), "migrate-store", "--to", "file",
                          "-q"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert '"corrupt": 0' in out.stdout
    back = PasteFileService(_migration_settings(tmp_path, request, "file"))
    _read_all(back, {**pastes, **during})
    report = back.fsck(grace=0, verify=True)
    assert report["missing_files"] == 0 and report["corrupt_files"] == 0
    back.close()
