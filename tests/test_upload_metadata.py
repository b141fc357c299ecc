"""Uploads lose their photos' location on the way in: what /i/ and /d/ serve,
the stored blob, its SHA-256 and its dedupe are of the stripped bytes, read
back by exiftool; the pixels are the uploader's, untouched."""
from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from .test_core_metadata import (  # noqa: F401 - exiftool is a fixture
    ICC, camera_exif, exiftool, jpeg_sample, location_left, mpo_sample, picture, pixels, png_sample, read_tags, save,
    webp_sample,
)
from .webapp_helpers import API

SAMPLES = {
    "photo.jpg": jpeg_sample,
    "shot.png": png_sample,
    "pic.webp": lambda: webp_sample(False),
    "pair.jpg": mpo_sample,
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_served_bytes_have_no_location_and_the_same_pixels(webapp, exiftool, tmp_path, name):  # noqa: F811
    original = SAMPLES[name]()
    assert location_left(read_tags(exiftool, original, tmp_path, "before"))  # the sample carries them
    doc = webapp.upload_json(original, name)
    for route in ("i", "d"):
        served = webapp.get(f"/{route}/{doc['filehash']}").body
        assert served != original and len(served) <= len(original)
        assert hashlib.sha256(served).hexdigest() == doc["sha256"] and len(served) == doc["bytes"]
        tags = read_tags(exiftool, served, tmp_path, f"{route}-{name}")
        assert location_left(tags) == [], tags
        assert pixels(served) == pixels(original)
    # what rendering needs stays: the orientation, so the size shown is the turned one
    if name == "photo.jpg":
        assert Image.open(io.BytesIO(served)).getexif().get(0x0112) == 6
        assert (doc["width"], doc["height"]) == (64, 96)
    # the same photo again under the same name is the same paste, and so
    # are its stripped bytes: dedupe is of what is stored
    assert webapp.upload_json(original, name)["filehash"] == doc["filehash"]
    assert webapp.upload_json(served, name)["filehash"] == doc["filehash"]


def test_all_keeps_only_what_rendering_needs(webapp_factory, exiftool, tmp_path):  # noqa: F811
    app = webapp_factory(**{"pastefile.strip_metadata": "all"})
    original = jpeg_sample()
    doc = app.upload_json(original, "all.jpg")
    served = app.get(f"/i/{doc['filehash']}").body
    tags = read_tags(exiftool, served, tmp_path, "all")
    assert not [k for k in tags if k.startswith(("IFD0:Make", "IFD0:Model", "XMP", "File:Comment", "ExifIFD"))], tags
    assert tags.get("IFD0:Orientation") and "ICC_Profile:ProfileDescription" in tags
    assert pixels(served) == pixels(original)


def test_none_stores_the_bytes_as_sent(webapp_factory):
    app = webapp_factory(**{"pastefile.strip_metadata": "none"})
    original = jpeg_sample()
    doc = app.upload_json(original, "asis.jpg")
    assert app.get(f"/i/{doc['filehash']}").body == original
    assert doc["sha256"] == hashlib.sha256(original).hexdigest()


def test_put_and_resized_uploads_are_stripped_too(webapp, exiftool, tmp_path):  # noqa: F811
    serial = f"SN-{tmp_path.name[-12:]}-{id(webapp)}".encode()
    original = save(picture(), "JPEG", exif=camera_exif(serial), icc_profile=ICC, quality=90)
    put = webapp.put("/put.jpg", original, headers=API).json
    served = webapp.get(f"/i/{put['filehash']}").body
    assert location_left(read_tags(exiftool, served, tmp_path, "put")) == []
    small = webapp.upload_json(original, "small.jpg", w=20, h=20)
    out = webapp.get(f"/i/{small['filehash']}").body
    assert location_left(read_tags(exiftool, out, tmp_path, "small")) == [] and b"Exif" not in out[:4096]
    # the original kept as the resize's source is stripped as well
    with webapp.service._connection() as conn:
        from sqlalchemy import text

        sources = [row[0] for row in conn.execute(text("SELECT data FROM blob WHERE data IS NOT NULL"))]
    assert sources and not any(serial in bytes(d) for d in sources)
    assert serial in original
