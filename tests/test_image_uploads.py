"""Awkward images over HTTP, on SQLite and on PostgreSQL + memcached: EXIF
with a mistyped tag beside the orientation, phone MPOs, broken pixels.
Each is stored (2xx) and its resizes answer 200, or a clear 4xx when the
pixels do not decode: never a 5xx."""
from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from .test_core_imaging import MISTYPED, orientation_entry, raw_exif, with_exif
from .webapp_helpers import API, assert_no_traceback, error_of, unique_seed


def noise(size: tuple[int, int]) -> Image.Image:
    """Random pixels: content no other test or earlier run uploads."""
    rng = random.Random(unique_seed())
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def displayed_size(meta: dict) -> tuple[int, int]:
    return meta["width"], meta["height"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("bad", sorted(MISTYPED))
def test_mistyped_exif_beside_orientation_is_served(webapp, fmt, bad):
    data = with_exif(noise((80, 40)), fmt, raw_exif([orientation_entry(6), MISTYPED[bad]]))
    ext = fmt.lower()
    res = webapp.upload(data, f"bad-exif.{ext}", headers=API)
    assert 200 <= res.status_int < 300
    doc = res.json
    fh = doc["filehash"]
    meta = webapp.get(f"/j/{fh}").json
    # stored as displayed: turned by the orientation
    assert displayed_size(meta) == (40, 80)
    assert meta["phash"] is not None
    variant = webapp.get(f"/i/{fh}?w=20&h=20")
    assert variant.content_type == f"image/{ext}"
    assert Image.open(io.BytesIO(variant.body)).size == (20, 20)
    tall = webapp.get(f"/i/{fh}?w=20")
    assert Image.open(io.BytesIO(tall.body)).size == (20, 40)
    # resized on upload and through /r/: the same pipeline
    resized = webapp.upload(data, f"bad-exif-small.{ext}", headers=API, w=20, h=20).json
    assert displayed_size(webapp.get(f"/j/{resized['filehash']}").json) == (20, 20)
    url = webapp.get(f"/r/{fh}?w=10").text
    assert displayed_size(webapp.get(f"/j/{url.rsplit('/', 1)[1]}").json) == (10, 20)


def test_mpo_upload_resizes_as_jpeg(webapp):
    primary = noise((120, 80))
    out = io.BytesIO()
    primary.save(out, "MPO", save_all=True, append_images=[noise((60, 40))], quality=92)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    doc = webapp.upload(data, "phone.jpg", headers=API).json
    meta = webapp.get(f"/j/{doc['filehash']}").json
    assert meta["mimetype"] == "image/jpeg"
    assert displayed_size(meta) == (120, 80) and meta["phash"] is not None
    res = webapp.get(f"/i/{doc['filehash']}?w=40&h=40")
    assert res.status_int == 200 and res.content_type == "image/jpeg"
    out = Image.open(io.BytesIO(res.body))
    assert out.format == "JPEG" and out.size == (40, 40)
    resized = webapp.upload(data, "phone-small.jpg", headers=API, w=30, h=20).json
    small = webapp.get(f"/j/{resized['filehash']}").json
    assert small["mimetype"] == "image/jpeg" and displayed_size(small) == (30, 20)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_undecodable_pixels_are_a_clean_4xx(webapp, fmt):
    whole = io.BytesIO()
    noise((200, 150)).save(whole, fmt)
    data = whole.getvalue()[: len(whole.getvalue()) // 2]  # the header intact, the pixels cut
    res = webapp.upload(data, f"cut.{fmt.lower()}", headers=API)
    assert 200 <= res.status_int < 300
    fh = res.json["filehash"]
    assert webapp.get(f"/j/{fh}").status_int == 200
    variant = webapp.get(f"/i/{fh}?w=20&h=20", headers=API, status="*")
    assert variant.status_int < 500, variant.status
    assert_no_traceback(variant)
    if variant.status_int >= 400:
        assert error_of(variant)["status"] == variant.status_int
    assert webapp.get(f"/i/{fh}").body == data  # the original is still served
