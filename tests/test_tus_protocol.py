"""Resumable uploads (tus 1.0.0, https://tus.io/protocols/resumable-upload)
against the app, on every backend: the core protocol and the creation,
creation-with-upload, creation-defer-length, termination, checksum,
expiration and concatenation extensions, each case by its status and
headers; what a complete upload becomes (the paste, its links, its bytes).
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import io
import socket
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlparse

import pytest
from PIL import Image
from sqlalchemy import func, select

from pastefile.core.models import Blob, TusUpload

from .rawhttp import request_bytes
from .servers import LiveServer
from .webapp_helpers import API, public, unique_image, unique_text

VERSION = "1.0.0"
TUS = {"Tus-Resumable": VERSION}
OCTET = "application/offset+octet-stream"
EXTENSIONS = {"creation", "creation-with-upload", "creation-defer-length", "termination", "checksum",
              "expiration", "concatenation"}


# -- helpers ------------------------------------------------------------------------------


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def metadata(**values: str) -> str:
    return ",".join(f"{k} {b64(v)}" for k, v in values.items())


def path_of(url: str) -> str:
    return urlparse(url).path


def create(app, length: int | None = None, *, defer: bool = False, meta: str | None = None, body: bytes = b"",
           status: int = 201, headers: dict | None = None, **kw):
    """POST /files/ (with a first body when given)."""
    h = dict(TUS)
    if length is not None:
        h["Upload-Length"] = str(length)
    if defer:
        h["Upload-Defer-Length"] = "1"
    if meta is not None:
        h["Upload-Metadata"] = meta
    h.update(headers or {})
    if body:
        return app.post("/files/", params=body, headers=h, content_type=OCTET, status=status, **kw)
    return app.post("/files/", headers=h, status=status, **kw)


def new_upload(app, length: int | None, **kw) -> str:
    """Create an upload; its path (/files/<id>)."""
    res = create(app, length, defer=length is None, **kw)
    return path_of(res.headers["Location"])


def patch(app, path: str, offset: int, data: bytes, *, status: int = 204, headers: dict | None = None, **kw):
    h = {**TUS, "Upload-Offset": str(offset), **(headers or {})}
    return app.patch(path, params=data, headers=h, content_type=OCTET, status=status, **kw)


def head(app, path: str, status: int = 200):
    return app.head(path, headers=TUS, status=status)


def offset_of(app, path: str) -> int:
    return int(head(app, path).headers["Upload-Offset"])


def send_in_pieces(app, path: str, data: bytes, sizes: list[int]):
    """PATCH ``data`` in pieces of ``sizes`` (the rest in the last); the last answer."""
    offset, res = 0, None
    for size in sizes + [len(data)]:
        piece = data[offset:offset + size]
        if not piece:
            break
        res = patch(app, path, offset, piece)
        offset += len(piece)
        assert res.headers["Upload-Offset"] == str(offset)
    return res


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def downloaded(app, paste_url: str) -> bytes:
    """The bytes behind a paste's /d/ link (from its /p/ URL)."""
    fh = path_of(paste_url).rstrip("/").rsplit("/", 1)[-1]
    return app.get(f"/d/{fh}").body


def paste_json(app, path: str) -> dict:
    res = app.get(path, headers=API)
    assert res.content_type == "application/json"
    assert "X-Delete-Token" not in res.headers
    return res.json


def blob_rows(service, sha_hex: str) -> int:
    with service._connection() as conn:
        query = select(func.count()).select_from(Blob).where(Blob.sha256 == bytes.fromhex(sha_hex))
        return conn.execute(query).scalar()


def upload_rows(service) -> int:
    with service._connection() as conn:
        return conn.execute(select(func.count()).select_from(TusUpload)).scalar()


def assert_completed(res) -> None:
    assert res.headers["X-Paste-Url"].startswith("http")
    assert res.headers["X-Delete-Url"].endswith(res.headers["X-Delete-Token"])
    assert res.headers["X-Delete-Token"]


def leftover_resumables(service) -> list[str]:
    """What the store still holds of resumable uploads: ``tus-*`` files in
    the temp dir, or multipart uploads under the prefix."""
    store = service.store
    if hasattr(store, "root"):
        import os

        return [n for n in os.listdir(store.temp_dir) if n.startswith("tus-")]
    prefix = store.prefix + "/" if store.prefix else ""
    listed = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix)
    return [u["Key"] for u in listed.get("Uploads", []) if "tus-" in u["Key"]]


# -- OPTIONS and the version ---------------------------------------------------------------


def test_options_tells_version_extensions_limits_and_checksums(webapp_factory):
    app = webapp_factory(**{"pastefile.max_upload_size": "3M"})
    path = new_upload(app, 10)
    for target in ("/files/", path, "/files/unknown-id"):
        res = app.options(target, status=204)  # without Tus-Resumable
        assert res.headers["Tus-Resumable"] == VERSION
        assert VERSION in res.headers["Tus-Version"].split(",")
        assert {e.strip() for e in res.headers["Tus-Extension"].split(",")} == EXTENSIONS
        assert res.headers["Tus-Max-Size"] == str(3 << 20) == str(app.service.settings.max_upload_size)
        assert {"sha1", "md5", "sha256"} <= {a.strip() for a in res.headers["Tus-Checksum-Algorithm"].split(",")}
        assert res.body == b""
    # with the header too
    assert app.options("/files/", headers=TUS, status=204).headers["Tus-Resumable"] == VERSION


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", ""])
def test_requests_without_the_version_get_412(webapp, version):
    path = new_upload(webapp, 100)
    rows = upload_rows(webapp.service)
    h = {} if version is None else {"Tus-Resumable": version}
    answers = [
        webapp.post("/files/", headers={**h, "Upload-Length": "10"}, status=412),
        webapp.head(path, headers=h, status=412),
        webapp.patch(path, params=b"abc", headers={**h, "Upload-Offset": "0"}, content_type=OCTET, status=412),
        webapp.delete(path, headers=h, status=412),
    ]
    for res in answers:
        assert VERSION in res.headers["Tus-Version"].split(",")
    # nothing was created, appended or terminated
    assert head(webapp, path).headers["Upload-Offset"] == "0"
    assert upload_rows(webapp.service) == rows


# -- creation ---------------------------------------------------------------------------------


def test_creation_answers_location_and_expiry(webapp):
    before = datetime.now(timezone.utc)
    res = create(webapp, 1234)
    location = res.headers["Location"]
    assert urlparse(location).scheme in ("http", "https") and urlparse(location).netloc
    assert path_of(location).startswith("/files/") and len(path_of(location)) > len("/files/")
    expires = parsedate_to_datetime(res.headers["Upload-Expires"])
    assert res.headers["Upload-Expires"].endswith("GMT")
    expire = webapp.service.settings.tus_expire
    assert expires > before
    assert abs((expires - before).total_seconds() - expire) < 60
    assert res.headers["Tus-Resumable"] == VERSION
    h = head(webapp, path_of(location))
    assert h.headers["Upload-Offset"] == "0" and h.headers["Upload-Length"] == "1234"
    assert "Upload-Defer-Length" not in h.headers
    assert h.headers["Cache-Control"] == "no-store"
    assert parsedate_to_datetime(h.headers["Upload-Expires"]) == expires
    # two creations: two uploads
    assert path_of(create(webapp, 1234).headers["Location"]) != path_of(location)


@pytest.mark.parametrize("headers", [
    {},  # neither
    {"Upload-Length": "10", "Upload-Defer-Length": "1"},  # both
    {"Upload-Defer-Length": "0"},
    {"Upload-Defer-Length": "2"},
    {"Upload-Defer-Length": "yes"},
    {"Upload-Length": "-1"},
    {"Upload-Length": "ten"},
    {"Upload-Length": "1.5"},
    {"Upload-Length": ""},
    {"Upload-Length": "10", "Upload-Concat": "sometimes"},
], ids=["neither", "both", "defer0", "defer2", "defer-text", "negative", "text", "fraction", "empty", "concat"])
def test_creation_with_bad_lengths_is_400(webapp, headers):
    res = webapp.post("/files/", headers={**TUS, **headers}, status=400)
    assert res.headers["Tus-Resumable"] == VERSION
    assert "Location" not in res.headers


def test_creation_over_the_size_limit_is_413(webapp_factory):
    app = webapp_factory(**{"pastefile.max_upload_size": "1M"})
    res = create(app, (1 << 20) + 1, status=413)
    assert "Location" not in res.headers
    create(app, 1 << 20)  # the limit itself is fine
    # a deferred length told later is held to the same limit
    path = new_upload(app, None)
    patch(app, path, 0, b"x" * 10, headers={"Upload-Length": str((1 << 20) + 1)}, status=413)
    assert offset_of(app, path) == 0


@pytest.mark.parametrize("header", [
    "filename bm90IGJhc2U2NA!!",  # not base64
    "filename Zm9v,filename YmFy",  # a key twice
    "filename Zm9v YmFy",  # three words
    "filename Zm9v,,size MTA=",  # an empty pair: no key
    "filename //79",  # base64, but not UTF-8
], ids=["bad-base64", "duplicate", "three-words", "no-key", "not-utf8"])
def test_malformed_metadata_is_400(webapp, header):
    create(webapp, 10, meta=header, status=400)


def test_metadata_is_echoed_by_head_exactly(webapp):
    header = "filename " + b64("résumé 2024.txt") + ",filetype " + b64("text/plain") + ",empty"
    path = new_upload(webapp, 50, meta=header)
    assert head(webapp, path).headers["Upload-Metadata"] == header
    assert "Upload-Metadata" not in head(webapp, new_upload(webapp, 50)).headers


# -- creation-with-upload -------------------------------------------------------------------


def test_creation_with_upload_answers_its_offset(webapp):
    data = unique_text(20_000)
    res = create(webapp, len(data), body=data[:7000])
    assert res.headers["Upload-Offset"] == "7000"
    assert "X-Paste-Url" not in res.headers
    path = path_of(res.headers["Location"])
    assert offset_of(webapp, path) == 7000
    done = patch(webapp, path, 7000, data[7000:])
    assert_completed(done)
    assert downloaded(webapp, done.headers["X-Paste-Url"]) == data


def test_creation_with_the_whole_small_file_completes_at_once(webapp):
    data = unique_text(3000)
    res = create(webapp, len(data), body=data, meta=metadata(filename="whole.txt"))
    assert res.status_int == 201 and res.headers["Upload-Offset"] == str(len(data))
    assert_completed(res)
    assert downloaded(webapp, res.headers["X-Paste-Url"]) == data
    doc = paste_json(webapp, path_of(res.headers["Location"]))
    assert doc["filename"] == "whole.txt" and doc["url_p"] == res.headers["X-Paste-Url"]


def test_creation_with_a_body_of_another_type_is_415(webapp):
    res = webapp.post("/files/", params=b"abc", headers={**TUS, "Upload-Length": "3"},
                      content_type="text/plain", status=415)
    assert "Location" not in res.headers


def test_creation_with_upload_checksum(webapp):
    data = unique_text(5000)
    bad = {"Upload-Checksum": "sha1 " + b64(hashlib.sha1(b"other").digest())}
    res = create(webapp, len(data), body=data[:2000], headers=bad, status=460)
    assert res.headers["Tus-Resumable"] == VERSION
    good = {"Upload-Checksum": "sha1 " + b64(hashlib.sha1(data[:2000]).digest())}
    res = create(webapp, len(data), body=data[:2000], headers=good)
    assert res.headers["Upload-Offset"] == "2000"


def test_a_refused_creation_with_upload_leaves_nothing(webapp):
    data = unique_text(5000)
    rows, left = upload_rows(webapp.service), leftover_resumables(webapp.service)
    bad = {"Upload-Checksum": "sha1 " + b64(hashlib.sha1(b"other").digest())}
    res = create(webapp, len(data), body=data, headers=bad, status=460)
    assert "Location" not in res.headers
    res = create(webapp, 100, body=data[:101], status=413)
    assert "Location" not in res.headers
    assert upload_rows(webapp.service) == rows
    assert leftover_resumables(webapp.service) == left


# -- HEAD --------------------------------------------------------------------------------------


def test_head_of_a_deferred_length_and_unknown_ids(webapp):
    path = new_upload(webapp, None)
    res = head(webapp, path)
    assert res.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in res.headers
    assert res.headers["Upload-Offset"] == "0" and res.headers["Cache-Control"] == "no-store"
    assert res.headers["Tus-Resumable"] == VERSION
    for unknown in ("/files/nosuchupload", "/files/" + "a" * 32, "/files/" + "x" * 200):
        res = head(webapp, unknown, status=404)
        assert res.headers["Tus-Resumable"] == VERSION
    patch(webapp, "/files/nosuchupload", 0, b"abc", status=404)


# -- PATCH -------------------------------------------------------------------------------------


def test_patch_refuses_bad_requests_and_keeps_nothing_of_them(webapp):
    data = unique_text(10_000)
    path = new_upload(webapp, len(data))
    patch(webapp, path, 0, data[:3000])
    # wrong type
    webapp.patch(path, params=data[3000:4000], headers={**TUS, "Upload-Offset": "3000"},
                 content_type="application/octet-stream", status=415)
    # missing or bad offset
    webapp.patch(path, params=data[3000:4000], headers=TUS, content_type=OCTET, status=400)
    for bad in ("-1", "abc", "", "3000.0", "0x10"):
        patch(webapp, path, 0, data[3000:4000], headers={"Upload-Offset": bad}, status=400)
    assert offset_of(webapp, path) == 3000
    done = patch(webapp, path, 3000, data[3000:])
    assert downloaded(webapp, done.headers["X-Paste-Url"]) == data


def test_patch_offsets_and_too_long_bodies(webapp):
    data = unique_text(10_000)
    path = new_upload(webapp, len(data))
    patch(webapp, path, 0, data[:3000])
    assert offset_of(webapp, path) == 3000
    for wrong in (0, 2999, 3001):
        patch(webapp, path, wrong, data[3000:4000], status=409)
    assert offset_of(webapp, path) == 3000
    res = patch(webapp, path, 3000, data[3000:] + b"!!!", status=413)
    assert res.headers["Tus-Resumable"] == VERSION
    assert offset_of(webapp, path) == 3000
    patch(webapp, path, 3000, data[3000:5000])
    done = patch(webapp, path, 5000, data[5000:])
    assert done.headers["Upload-Offset"] == str(len(data))
    assert_completed(done)
    assert downloaded(webapp, done.headers["X-Paste-Url"]) == data


def test_a_complete_upload_takes_no_more_bytes(webapp):
    data = unique_text(5000)
    res = create(webapp, len(data), body=data)
    path = path_of(res.headers["Location"])
    assert patch(webapp, path, len(data), b"more", status="*").status_int in (403, 409, 410, 413)
    h = head(webapp, path)
    assert h.headers["Upload-Offset"] == str(len(data))


def test_deferred_length_is_set_once_by_a_patch(webapp):
    data = unique_text(9000)
    path = new_upload(webapp, None)
    patch(webapp, path, 0, data[:4000])
    assert head(webapp, path).headers["Upload-Defer-Length"] == "1"
    # smaller than what was sent
    patch(webapp, path, 4000, data[4000:5000], headers={"Upload-Length": "3999"}, status=400)
    res = patch(webapp, path, 4000, data[4000:6000], headers={"Upload-Length": str(len(data))})
    assert res.headers["Upload-Offset"] == "6000" and "X-Paste-Url" not in res.headers
    h = head(webapp, path)
    assert h.headers["Upload-Length"] == str(len(data)) and "Upload-Defer-Length" not in h.headers
    # it cannot change, even to the same value plus one
    patch(webapp, path, 6000, data[6000:7000], headers={"Upload-Length": str(len(data) + 1)}, status=400)
    assert offset_of(webapp, path) == 6000
    # repeating the same value is fine
    patch(webapp, path, 6000, data[6000:7000], headers={"Upload-Length": str(len(data))})
    done = patch(webapp, path, 7000, data[7000:])
    assert_completed(done)
    assert downloaded(webapp, done.headers["X-Paste-Url"]) == data


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_checksums(webapp, algorithm):
    data = unique_text(8000)
    path = new_upload(webapp, len(data))

    def checksum(piece: bytes, name: str = algorithm) -> dict:
        return {"Upload-Checksum": f"{name} {b64(hashlib.new(name, piece).digest())}"}

    res = patch(webapp, path, 0, data[:3000], headers=checksum(data[:3000]))
    assert res.headers["Upload-Offset"] == "3000"
    # a mismatch: 460 and nothing of it counts
    res = patch(webapp, path, 3000, data[3000:6000], headers=checksum(data[3000:5999]), status=460)
    assert res.headers["Tus-Resumable"] == VERSION
    assert offset_of(webapp, path) == 3000
    # an algorithm the server does not offer, or a digest that is not base64
    patch(webapp, path, 3000, data[3000:6000], headers={"Upload-Checksum": "crc32 AAAAAA=="}, status=400)
    patch(webapp, path, 3000, data[3000:6000], headers={"Upload-Checksum": f"{algorithm} %%%"}, status=400)
    assert offset_of(webapp, path) == 3000
    done = patch(webapp, path, 3000, data[3000:], headers=checksum(data[3000:]))
    assert_completed(done)
    assert downloaded(webapp, done.headers["X-Paste-Url"]) == data


# -- completion ----------------------------------------------------------------------------------


def test_completion_gives_the_paste_its_links_and_json(webapp):
    data = unique_text(50_000)
    path = new_upload(webapp, len(data), meta=metadata(filename="report.txt", filetype="text/plain"))
    res = send_in_pieces(webapp, path, data, [10_000, 17_777, 1])
    assert res.status_int == 204 and res.headers["Upload-Offset"] == str(len(data))
    assert_completed(res)
    got = downloaded(webapp, res.headers["X-Paste-Url"])
    assert sha256(got) == sha256(data)
    # the paste's JSON: the keys POST / answers, without the delete token
    doc = paste_json(webapp, path)
    normal = webapp.upload_json(unique_text(3000), "normal.txt")
    assert set(doc) == set(public(normal))
    assert "delete_token" not in doc and "url_delete" not in doc
    assert doc["filename"] == "report.txt" and doc["bytes"] == len(data) and doc["sha256"] == sha256(data)
    assert doc["url_p"] == res.headers["X-Paste-Url"] and doc["expires"] is None
    assert webapp.get(f"/j/{doc['filehash']}").json["filename"] == "report.txt"
    # HEAD still answers the complete upload
    h = head(webapp, path)
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(len(data))
    # the delete URL takes it away
    delete_url = res.headers["X-Delete-Url"]
    assert res.headers["X-Delete-Token"] in delete_url
    webapp.post(path_of(delete_url), headers=API)
    webapp.get(f"/j/{doc['filehash']}", status=404)
    webapp.get(f"/d/{doc['filehash']}", status=404)


def test_delete_token_from_the_completing_patch_deletes(webapp):
    data = unique_text(6000)
    res = create(webapp, len(data), body=data)
    doc = paste_json(webapp, path_of(res.headers["Location"]))
    gone = webapp.delete(f"/j/{doc['filehash']}", headers={**API, "X-Delete-Token": res.headers["X-Delete-Token"]})
    assert gone.json == {"deleted": doc["filehash"]}
    webapp.get(f"/j/{doc['filehash']}", status=404)


def test_get_of_an_incomplete_upload_is_not_a_paste(webapp):
    path = new_upload(webapp, 100)
    patch(webapp, path, 0, b"x" * 10)
    assert webapp.get(path, headers=API, status="*").status_int in (404, 409)
    webapp.get("/files/nosuchupload", headers=API, status=404)


def test_expires_metadata_makes_an_expiring_paste(webapp):
    data = unique_text(4000)
    res = create(webapp, len(data), body=data, meta=metadata(filename="soon.txt", expires="3600"))
    assert_completed(res)
    doc = paste_json(webapp, path_of(res.headers["Location"]))
    assert doc["expires"] is not None
    when = datetime.strptime(doc["expires"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs((when - datetime.now(timezone.utc)).total_seconds() - 3600) < 120
    # a bad expiry is refused at creation, before a byte is sent
    create(webapp, 10, meta=metadata(expires="soonish"), status=400)


def test_w_and_h_metadata_resize_an_image_as_post_does(webapp):
    data = unique_image("PNG", (64, 48))
    res = create(webapp, len(data), body=data, meta=metadata(filename="pic.png", w="32", h="24"))
    assert_completed(res)
    doc = paste_json(webapp, path_of(res.headers["Location"]))
    assert (doc["width"], doc["height"]) == (32, 24)
    stored = downloaded(webapp, res.headers["X-Paste-Url"])
    assert Image.open(io.BytesIO(stored)).size == (32, 24)
    posted = webapp.upload_json(data, "pic.png", w=32, h=24)
    assert (posted["width"], posted["height"]) == (32, 24)
    assert posted["sha256"] == doc["sha256"] and posted["filehash"] == doc["filehash"]
    # dimensions out of range are refused at creation
    create(webapp, 10, meta=metadata(w="100000"), status=400)
    create(webapp, 10, meta=metadata(w="abc"), status=400)


def test_same_bytes_dedupe_to_one_blob(webapp):
    data = unique_text(40_000)
    first = create(webapp, len(data), body=data, meta=metadata(filename="one.txt"))
    path = new_upload(webapp, len(data), meta=metadata(filename="two.txt"))
    second = send_in_pieces(webapp, path, data, [12_345])
    assert_completed(first) and assert_completed(second)
    a = paste_json(webapp, path_of(first.headers["Location"]))
    b = paste_json(webapp, path)
    assert a["filehash"] != b["filehash"]  # two pastes (two names) ...
    assert a["sha256"] == b["sha256"] == sha256(data)
    assert blob_rows(webapp.service, a["sha256"]) == 1  # ... over one blob
    posted = webapp.upload_json(data, "three.txt")
    assert posted["sha256"] == a["sha256"] and blob_rows(webapp.service, a["sha256"]) == 1
    # the same bytes and name again: the same paste, as POST / answers it
    # (only its first uploader holds a delete token)
    again = create(webapp, len(data), body=data, meta=metadata(filename="one.txt"))
    assert again.headers["X-Paste-Url"] == first.headers["X-Paste-Url"]
    assert "X-Delete-Token" not in again.headers
    assert "delete_token" not in webapp.upload_json(data, "three.txt")
    assert blob_rows(webapp.service, a["sha256"]) == 1


def test_an_upload_over_five_megabytes_in_uneven_patches(webapp):
    """Past the 5M part size of the s3 store in tests: parts and a tail."""
    data = unique_text(6 * 1024 * 1024 + 12_345)
    path = new_upload(webapp, len(data), meta=metadata(filename="big.txt"))
    patch(webapp, path, 0, data[:1_700_001])
    # a body past the length that crosses a part boundary first: nothing of it counts
    patch(webapp, path, 1_700_001, data[1_700_001:] + b"!!", status=413)
    assert offset_of(webapp, path) == 1_700_001
    offset = 1_700_001
    for size in (3_900_000, 7, 200_000, len(data)):
        piece = data[offset:offset + size]
        res = patch(webapp, path, offset, piece)
        offset += len(piece)
        assert res.headers["Upload-Offset"] == str(offset)
        assert parsedate_to_datetime(res.headers["Upload-Expires"]) > datetime.now(timezone.utc)
        if offset == len(data):
            break
    assert_completed(res)
    got = downloaded(webapp, res.headers["X-Paste-Url"])
    assert len(got) == len(data) and sha256(got) == sha256(data)
    doc = paste_json(webapp, path)
    assert doc["sha256"] == sha256(data) and blob_rows(webapp.service, doc["sha256"]) == 1
    assert leftover_resumables(webapp.service) == []


# -- types refused early ------------------------------------------------------------------------


def test_refused_type_is_checked_on_the_first_4096_bytes(webapp_factory):
    app = webapp_factory(**{"pastefile.allowed_types": "image/*"})
    data = unique_text(20_000)
    path = new_upload(app, len(data))
    patch(app, path, 0, data[:3000])  # not yet enough to tell
    res = patch(app, path, 3000, data[3000:5000], status=415)
    assert res.headers["Tus-Resumable"] == VERSION
    head(app, path, status=404)
    patch(app, path, 3000, data[3000:5000], status=404)
    # one PATCH bringing 4096 bytes at once
    path = new_upload(app, len(data))
    patch(app, path, 0, data[:4096], status=415)
    head(app, path, status=404)
    # a whole file smaller than 4096 bytes: at its end
    small = unique_text(1000)
    path = new_upload(app, len(small))
    patch(app, path, 0, small[:600])
    patch(app, path, 600, small[600:], status=415)
    head(app, path, status=404)
    create(app, len(small), body=small, status=415)
    assert leftover_resumables(app.service) == []
    # an image goes through
    image = unique_image("PNG", (40, 30))
    assert_completed(create(app, len(image), body=image))


# -- termination ----------------------------------------------------------------------------------


def test_termination(webapp):
    data = unique_text(10_000)
    path = new_upload(webapp, len(data))
    patch(webapp, path, 0, data[:4000])
    res = webapp.delete(path, headers=TUS, status=204)
    assert res.headers["Tus-Resumable"] == VERSION
    assert head(webapp, path, status="*").status_int in (404, 410)
    assert patch(webapp, path, 4000, data[4000:], status="*").status_int in (404, 410)
    assert webapp.delete(path, headers=TUS, status="*").status_int in (404, 410)
    webapp.delete("/files/nosuchupload", headers=TUS, status=404)
    assert leftover_resumables(webapp.service) == []


# -- expiration -----------------------------------------------------------------------------------


def test_expired_uploads_answer_404_or_410_and_gc_removes_them(webapp_factory):
    app = webapp_factory(**{"pastefile.tus.expire": "1"})
    data = unique_text(8000)
    res = create(app, len(data), body=data[:3000])
    path = path_of(res.headers["Location"])
    expires = parsedate_to_datetime(res.headers["Upload-Expires"])
    assert (expires - datetime.now(timezone.utc)).total_seconds() <= 2
    assert leftover_resumables(app.service) != []
    # one that does not expire, to see that gc leaves it
    keeper_app = webapp_factory()
    keeper = new_upload(keeper_app, len(data))
    patch(keeper_app, keeper, 0, data[:3000])
    time.sleep(1.3)
    assert head(app, path, status="*").status_int in (404, 410)
    assert patch(app, path, 3000, data[3000:], status="*").status_int in (404, 410)
    report = app.service.gc()
    assert report["resumable_uploads"] >= 1
    assert app.service.gc()["resumable_uploads"] == 0
    assert head(app, path, status="*").status_int in (404, 410)
    # the expired one's bytes are gone; the live one's are not
    left = leftover_resumables(app.service)
    assert len(left) == 1 and keeper.rsplit("/", 1)[1] in left[0]
    done = patch(keeper_app, keeper, 3000, data[3000:])
    assert downloaded(keeper_app, done.headers["X-Paste-Url"]) == data
    assert leftover_resumables(app.service) == []


# -- concatenation ----------------------------------------------------------------------------------


def test_concatenation_of_partial_uploads(webapp):
    data = unique_text(30_000)
    pieces = [data[:7000], data[7000:8001], data[8001:20_000], data[20_000:]]
    urls = []
    for piece in pieces:
        res = create(webapp, len(piece), headers={"Upload-Concat": "partial"})
        path = path_of(res.headers["Location"])
        assert head(webapp, path).headers["Upload-Concat"] == "partial"
        done = patch(webapp, path, 0, piece)
        assert "X-Paste-Url" not in done.headers  # a partial upload is no paste
        urls.append(res.headers["Location"])
    # a final of an incomplete partial
    unfinished = create(webapp, 100, headers={"Upload-Concat": "partial"}).headers["Location"]
    patch(webapp, path_of(unfinished), 0, b"y" * 10)
    create(webapp, headers={"Upload-Concat": f"final;{urls[0]} {unfinished}"}, status=400)
    # a final of a non-partial upload, or of nothing
    plain = create(webapp, 3, body=b"abc").headers["Location"]
    create(webapp, headers={"Upload-Concat": f"final;{urls[0]} {plain}"}, status=400)
    create(webapp, headers={"Upload-Concat": "final;"}, status=400)
    create(webapp, headers={"Upload-Concat": "final;http://elsewhere.test/x/y"}, status=400)
    # the final
    final = create(webapp, headers={"Upload-Concat": "final;" + " ".join(urls),
                                    "Upload-Metadata": metadata(filename="joined.txt")})
    assert_completed(final)
    fpath = path_of(final.headers["Location"])
    got = downloaded(webapp, final.headers["X-Paste-Url"])
    assert sha256(got) == sha256(data)
    h = head(webapp, fpath)
    assert h.headers["Upload-Concat"].startswith("final;")
    assert [path_of(u) for u in h.headers["Upload-Concat"][len("final;"):].split()] == [path_of(u) for u in urls]
    assert h.headers["Upload-Length"] == h.headers["Upload-Offset"] == str(len(data))
    res = patch(webapp, fpath, len(data), b"more", status=403)
    assert res.headers["Tus-Resumable"] == VERSION
    doc = paste_json(webapp, fpath)
    assert doc["filename"] == "joined.txt" and doc["sha256"] == sha256(data)
    # the same paste as a single upload of the same bytes
    single = create(webapp, len(data), body=data)
    assert paste_json(webapp, path_of(single.headers["Location"]))["sha256"] == doc["sha256"]
    assert blob_rows(webapp.service, doc["sha256"]) == 1


def _http(base: str, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers={**TUS, **(headers or {})})
        res = conn.getresponse()
        res.read()
        return res.status, {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()


def test_partial_uploads_sent_in_parallel_then_joined(webapp):
    data = unique_text(5_400_000)  # past one s3 part when joined
    bounds = [0, 1_000_000, 2_600_003, 2_700_004, len(data)]
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    results: list = [None] * 4
    errors: list = []

    with LiveServer(webapp.app, threads=4) as server:
        def send(i: int) -> None:
            try:
                status, h = _http(server.url, "POST", "/files/",
                                  headers={"Upload-Length": str(len(pieces[i])), "Upload-Concat": "partial"})
                assert status == 201, status
                location = h["location"]
                piece, offset = pieces[i], 0
                step = max(1, len(piece) // 3 + 7)
                while offset < len(piece):
                    chunk = piece[offset:offset + step]
                    status, r = _http(server.url, "PATCH", path_of(location), chunk,
                                      {"Upload-Offset": str(offset), "Content-Type": OCTET})
                    assert status == 204, status
                    offset += len(chunk)
                    assert r["upload-offset"] == str(offset)
                results[i] = location
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        status, h = _http(server.url, "POST", "/files/", headers={"Upload-Concat": "final;" + " ".join(results)})
        assert status == 201 and "x-paste-url" in h and h["x-delete-token"]
    got = downloaded(webapp, h["x-paste-url"])
    assert len(got) == len(data) and sha256(got) == sha256(data)
    assert blob_rows(webapp.service, sha256(data)) == 1


# -- one PATCH at a time ------------------------------------------------------------------------


def _raw_patch_start(port: int, path: str, offset: int, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(request_bytes("PATCH", path, [
        ("Host", "127.0.0.1"), ("Tus-Resumable", VERSION), ("Upload-Offset", str(offset)),
        ("Content-Type", OCTET), ("Content-Length", str(length)), ("Connection", "close"),
    ]))
    return sock


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_two_patches_at_once_never_interleave(webapp):
    """A PATCH whose body arrives slowly and a second one on the same
    upload meanwhile: the first is appended whole, the second refused, and
    the upload's bytes are the first's alone."""
    size = 60_000
    a = b"A" * 20 + unique_text(size - 20)
    b = b"B" * 20 + unique_text(size - 20)
    path = new_upload(webapp, size)
    with LiveServer(webapp.app, threads=4) as server:
        port = int(server.url.rsplit(":", 1)[1])
        slow = _raw_patch_start(port, path, 0, size)
        slow.sendall(a[:size // 2])
        time.sleep(0.3)
        status_b, headers_b = _http(server.url, "PATCH", path, b, {"Upload-Offset": "0", "Content-Type": OCTET})
        for i in range(size // 2, size, 5000):
            slow.sendall(a[i:i + 5000])
            time.sleep(0.02)
        status_a = _read_status(slow)
        slow.close()
    # the server appends a PATCH while its body arrives: the slow one holds
    # the upload, the second is refused whole
    assert (status_a, status_b in (409, 423)) == (204, True), (status_a, status_b)
    assert headers_b["tus-resumable"] == VERSION
    winner = a
    doc = paste_json(webapp, path)
    assert doc["sha256"] == sha256(winner)
    assert downloaded(webapp, doc["url_p"]) == winner


def test_a_patch_cut_off_keeps_what_came(webapp):
    """A PATCH whose connection drops mid-body: the upload resumes from the
    offset HEAD then tells (what arrived, at most), and ends whole."""
    size = 100_000
    data = unique_text(size)
    path = new_upload(webapp, size)
    with LiveServer(webapp.app, threads=4) as server:
        port = int(server.url.rsplit(":", 1)[1])
        sock = _raw_patch_start(port, path, 0, 60_000)
        sock.sendall(data[:25_000])
        time.sleep(0.3)
        sock.close()
        deadline = time.monotonic() + 10
        while True:  # the server notices the drop, then lets the upload go
            status, h = _http(server.url, "HEAD", path)
            assert status == 200
            offset = int(h["upload-offset"])
            busy, _ = _http(server.url, "PATCH", path, b"", {"Upload-Offset": str(offset), "Content-Type": OCTET})
            # 423 while the cut-off PATCH still holds the upload; 409 when it
            # saved its offset between this HEAD and this PATCH
            if busy not in (409, 423) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert busy == 204
        assert offset == 25_000
        status, h = _http(server.url, "PATCH", path, data[offset:], {"Upload-Offset": str(offset),
                                                                      "Content-Type": OCTET})
        assert status == 204 and h["upload-offset"] == str(size)
    assert downloaded(webapp, h["x-paste-url"]) == data


class _HeldInput:
    """A ``wsgi.input`` that hands the app its first block, then waits for
    ``release``: the app holds the upload while its body 'arrives'."""

    def __init__(self, inner, started: threading.Event, release: threading.Event):
        self.inner, self.started, self.release = inner, started, release

    def read(self, size=-1):
        if self.started.is_set():
            self.release.wait(30)
        data = self.inner.read(1024 if size is None or size < 0 else min(size, 1024))
        self.started.set()
        return data

    def readline(self, size=-1):
        return self.read(size)


def test_a_second_patch_while_one_is_appending_gets_423(webapp):
    """The lease: while a PATCH is reading its body in the app, another
    PATCH of the same upload is refused (423), and the first completes."""
    size = 20_000
    a, b = unique_text(size), unique_text(size)
    path = new_upload(webapp, size)
    started, release = threading.Event(), threading.Event()
    inner = webapp.app

    def held(environ, start_response):
        if environ.get("HTTP_X_TEST_HOLD"):
            environ["wsgi.input"] = _HeldInput(environ["wsgi.input"], started, release)
        return inner(environ, start_response)

    outcome: dict = {}
    with LiveServer(held, threads=4) as server:
        def first():
            outcome["a"] = _http(server.url, "PATCH", path, a,
                                 {"Upload-Offset": "0", "Content-Type": OCTET, "X-Test-Hold": "1"})

        t = threading.Thread(target=first)
        t.start()
        try:
            assert started.wait(30)
            status_b, headers_b = _http(server.url, "PATCH", path, b, {"Upload-Offset": "0", "Content-Type": OCTET})
            status_head, _ = _http(server.url, "HEAD", path)
        finally:
            release.set()
            t.join(60)
    assert status_b == 423 and headers_b["tus-resumable"] == VERSION and status_head == 200
    status_a, headers_a = outcome["a"]
    assert status_a == 204 and headers_a["upload-offset"] == str(size)
    assert downloaded(webapp, headers_a["x-paste-url"]) == a


# -- rate limit -----------------------------------------------------------------------------------


def test_creations_count_against_the_upload_rate_limit(webapp_factory):
    app = webapp_factory(**{"pastefile.rate_limit.uploads": "2"})
    one = {"REMOTE_ADDR": "192.0.2.77"}
    data = unique_text(9000)
    path = new_upload(app, len(data), extra_environ=one)
    create(app, 10, extra_environ=one)
    # PATCHes are not counted
    for i in range(0, len(data), 1000):
        patch(app, path, i, data[i:i + 1000], extra_environ=one)
    head(app, path)
    res = create(app, 10, extra_environ=one, status=429)
    assert int(res.headers["Retry-After"]) >= 1
    assert "Location" not in res.headers
    # another address has its own allowance
    create(app, 10, extra_environ={"REMOTE_ADDR": "192.0.2.78"})


def test_a_rate_limited_creation_still_speaks_tus(webapp_factory):
    app = webapp_factory(**{"pastefile.rate_limit.uploads": "1"})
    one = {"REMOTE_ADDR": "192.0.2.79"}
    create(app, 10, extra_environ=one)
    res = create(app, 10, extra_environ=one, status=429)
    assert res.headers.get("Tus-Resumable") == VERSION


def test_partial_uploads_of_a_split_image_concatenate(webapp):
    data = unique_image("PNG", (200, 150))
    cut = [0, len(data) // 3, len(data) // 3 + 1, 2 * len(data) // 3, len(data)]
    urls = []
    for a, b in zip(cut, cut[1:]):
        res = create(webapp, b - a, headers={"Upload-Concat": "partial"})
        patch(webapp, path_of(res.headers["Location"]), 0, data[a:b])
        urls.append(res.headers["Location"])
    final = create(webapp, headers={"Upload-Concat": "final;" + " ".join(urls)})
    assert downloaded(webapp, final.headers["X-Paste-Url"]) == data
