"""The photo upload benchmarks: the corpus of camera JPEGs
(benchmarks/load/photos.py) is what the scenario promises, the stage split
(benchmarks.photo_costs) adds up, and the plain reader (reader-image) does
the image work pastefile does."""
from __future__ import annotations

import hashlib
import io
import json

import imagehash
import pytest
from PIL import Image

from benchmarks import photo_costs
from benchmarks.load import body_reader, photos
from benchmarks.load.runner import APPS, multipart
from benchmarks.load.scenarios import BY_NAME, CONTENDERS, PASTEFILE

MB = 1_000_000
DATETIME_ORIGINAL = 0x9003


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> photos.Corpus:
    return photos.corpus(str(tmp_path_factory.mktemp("photos")))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> photos.Corpus:
    return photos.corpus(str(tmp_path_factory.mktemp("photos-smoke")), smoke=True)


def _read(photo: photos.Photo) -> bytes:
    with open(photo.path, "rb") as f:
        return f.read()


def test_corpus_is_camera_photos(corpus):
    assert 16 <= len(corpus.photos) <= 24
    sizes = sorted(p.size for p in corpus.photos)
    assert 0.2 * MB <= sizes[0] and sizes[-1] <= 4 * MB, sizes
    # spread over the range, not bunched at one end
    assert sum(s < 1 * MB for s in sizes) >= 4 and sum(s > 3 * MB for s in sizes) >= 4, sizes
    gps = twelve_mp = 0
    for photo in corpus.photos:
        with Image.open(photo.path) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert img.width * img.height >= 1200 * 900
            twelve_mp += img.width * img.height >= 12_000_000
            exif = img.getexif()
            assert exif.get(photos.MAKE) and exif.get(photos.MODEL), photo.path
            assert exif.get(photos.ORIENTATION) in range(1, 9)
            assert exif.get_ifd(photos.EXIF_IFD).get(DATETIME_ORIGINAL), photo.path
            gps += bool(exif.get_ifd(photos.GPS_IFD))
    assert twelve_mp >= 3
    assert 0.3 * len(corpus.photos) <= gps <= 0.7 * len(corpus.photos)
    # the index the load script reads: offset, placeholder length, path
    with open(corpus.index) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert [(int(o), int(n), p) for o, n, p in rows] == [
        (p.offset, photos.PLACEHOLDER_BYTES, p.path) for p in corpus.photos
    ]
    # made again from the seed: the same bytes; a second call reuses the files
    assert photos.make_photo(photos.FULL[0], 0)[0] == _read(corpus.photos[0])
    assert photos.corpus(corpus.directory.rsplit("/", 1)[0]) == corpus


def test_placeholder_makes_unique_uploads_that_stay_unique(corpus):
    from pastefile.core import metadata

    with_gps = [p for p in corpus.photos if Image.open(p.path).getexif().get_ifd(photos.GPS_IFD)]
    for photo in (corpus.photos[0], with_gps[0]):
        data = _read(photo)
        assert data.count(photos.PLACEHOLDER) == 1
        assert data[photo.offset : photo.offset + photos.PLACEHOLDER_BYTES] == photos.PLACEHOLDER
        one = photos.replace_placeholder(data, photo.offset, b"run-1 0 1")
        two = photos.replace_placeholder(data, photo.offset, b"run-1 0 2")
        assert len(one) == len(two) == len(data)
        digests = {hashlib.sha256(x).hexdigest() for x in (data, one, two)}
        assert len(digests) == 3
        for variant in (one, two):
            with Image.open(io.BytesIO(variant)) as img:
                img.draft("RGB", (img.width // 8, img.height // 8))
                img.load()  # every byte of the scan decodes
                assert img.info["comment"].startswith(b"run-1 0 ")
    # pastefile's default stripping removes the location and keeps the token
    data = photos.replace_placeholder(_read(with_gps[0]), with_gps[0].offset, b"kept token")
    stripped = metadata.strip(data, "location")
    assert stripped is not None and b"kept token" in stripped
    with Image.open(io.BytesIO(stripped)) as img:
        assert not img.getexif().get_ifd(photos.GPS_IFD)


def test_photo_costs_stages_add_up(small, tmp_path):
    photo_list = list(small.photos[:2])
    result = photo_costs.measure(photo_list, str(tmp_path / "service"), repeats=1)
    assert [r["name"] for r in result["photos"]] == ["IMG_0000.jpg", "IMG_0001.jpg"]
    for row in result["photos"]:
        assert set(row["stages_ms"]) == set(photo_costs.STAGES)
        assert all(value > 0 for value in row["stages_ms"].values()), row
        assert row["stages_sum_ms"] == pytest.approx(sum(row["stages_ms"].values()))
        assert row["total_ms"] > 0 and row["reference_ms"] > 0
    # the stages, measured one by one, are the whole upload measured at once
    total, added = result["total_ms"], result["stages_sum_ms"]
    assert abs(added - total) <= 0.4 * total + 3.0, (added, total)
    assert result["image_work_ms"] == pytest.approx(
        sum(result["mean_ms"][k] for k in ("decode", "facts", "phash")))
    assert result["image_work_to_reference"] > 0
    lines = photo_costs.table(result)
    assert any(line.startswith("sum of the stages") for line in lines)


def _call(app, body: bytes, content_type: str) -> tuple[str, dict]:
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type}
    answer = app(environ, start_response)
    try:
        return seen["status"], json.loads(b"".join(answer))
    finally:
        answer.close()


def test_reader_image_does_the_image_work(small, tmp_path):
    from pastefile.core import imaging

    # pastefile's reduced decode for the pHash is the reader's
    assert (body_reader.DRAFT_MODE, body_reader.DRAFT_SIZE) == ("L", imaging._FACTS_DRAFT)
    photo = small.photos[2]  # GPS, upright
    data = photos.replace_placeholder(_read(photo), photo.offset, b"reader test")
    form, ctype = multipart("IMG.jpg", data)
    app = body_reader.make_image_app({}, **{"reader.directory": str(tmp_path / "kept")})
    status, answer = _call(app, form, ctype)
    with Image.open(io.BytesIO(data)) as img:
        size = img.size
        img.draft("L", (256, 256))
        expected = imagehash.phash(img)
    assert status == "200 OK"
    assert answer["phash"] == str(expected)
    assert (answer["width"], answer["height"]) == size
    assert answer["mimetype"] == "image/jpeg"
    assert answer["sha256"] == hashlib.sha256(form).hexdigest() and answer["bytes"] == len(form)
    assert list((tmp_path / "kept").iterdir()) == []  # the closed answer took its file along
    # and pastefile's own facts give the same pHash
    facts = imaging.image_facts(io.BytesIO(data))
    assert facts is not None and facts.phash == int(answer["phash"], 16)
    # a GET (the harness's readiness check) is answered too
    assert _call(app, b"", "")[0] == "200 OK"


def test_photo_scenario_is_registered():
    scenario = BY_NAME["upload-photo"]
    assert scenario.kind == "photo" and scenario.reference == "reader-image"
    assert set(PASTEFILE) <= set(scenario.contenders) and "reader-image" in scenario.contenders
    assert all(c in CONTENDERS for c in scenario.contenders)
    assert APPS["reader-image"].endswith("body_reader:make_image_app")
    assert {(r.numerator, r.denominator) for r in scenario.ratios} >= {(c, "reader-image") for c in PASTEFILE}
