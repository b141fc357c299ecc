"""Mutated images against the imaging pipeline: the only exception that may
leave ``render`` is ``ImageError``; ``image_facts``, reading the EXIF
orientation and removing metadata (``pastefile.core.metadata``) never raise
at all.

Seeds are made with Pillow here (JPEG, progressive JPEG, PNG in several
modes, WebP lossy and lossless, an animated GIF, an MPO), several with EXIF
(orientation, GPS, a mistyped tag); hypothesis flips bytes, truncates,
inserts and deletes runs, writes boundary values over length fields and
swaps the types and counts of EXIF entries.  Pixel counts stay small (a
per-call ``max_pixels``) so a mutated header cannot make one example slow,
and each target is capped in examples so the file runs in seconds.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from pastefile.core import metadata
from pastefile.core.imaging import ImageError, RenditionSpec, _displayed, image_facts, image_size, oriented, render

from .test_core_imaging import GPS, MISTYPED, gradient, orientation_entry, raw_exif, srgb_profile

# mutated files make Pillow warn (corrupt EXIF, truncated data, odd chunks)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")

# small enough that a header claiming a huge picture is refused or left
# undecoded, large enough for every seed
MAX_PIXELS = 1 << 20
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
SPECS = [
    RenditionSpec(16, 16),
    RenditionSpec(24, 0),
    RenditionSpec(0, 12, fit="inside", format="png"),
    RenditionSpec(20, 20, format="webp", quality=50),
    RenditionSpec(40, 28, format="jpeg", quality=70),  # about the seeds' own size
]


def _save(img: Image.Image, fmt: str, **opts) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **opts)
    return out.getvalue()


def _exif(orientation: int, gps: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "fuzz-camera"
    if gps:
        exif[0x8825] = GPS
    return exif.tobytes()


def _seeds() -> dict[str, bytes]:
    rgb = gradient((40, 28))
    rgba = gradient((40, 28), "RGBA")
    frames = [gradient((30, 20), "P"), Image.new("P", (30, 20), 3)]
    second = Image.new("RGB", (20, 14), (0, 0, 255))
    return {
        "jpeg": _save(rgb, "JPEG", quality=80),
        "jpeg-exif-gps": _save(rgb, "JPEG", exif=_exif(6, gps=True), comment=b"fuzz comment"),
        "jpeg-mistyped": _save(rgb, "JPEG", exif=raw_exif([orientation_entry(6), MISTYPED["compression-ascii"]])),
        "jpeg-progressive-grey": _save(rgb.convert("L"), "JPEG", progressive=True, exif=_exif(8)),
        "png": _save(rgb, "PNG"),
        "png-rgba-exif": _save(rgba, "PNG", exif=_exif(5, gps=True), icc_profile=srgb_profile()),
        "png-palette": _save(rgb.convert("P"), "PNG", transparency=0),
        "webp-lossy-exif": _save(rgb, "WEBP", quality=60, exif=_exif(3, gps=True)[6:]),
        "webp-lossless": _save(
            rgba, "WEBP", lossless=True, exif=raw_exif([orientation_entry(7), MISTYPED["xresolution-undefined"]])[6:]
        ),
        "gif-animated": _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, comment=b"c"),
        "mpo": _save(rgb, "MPO", save_all=True, append_images=[second], exif=_exif(6, gps=True)),
    }


SEEDS = _seeds()
BOUNDARY = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff"]


def _exif_ifd0(data: bytes) -> tuple[int, str, int] | None:
    """(TIFF header offset, byte order, IFD0 offset) of the first EXIF/TIFF structure in ``data``."""
    starts = [i for i in (data.find(b"II*\x00"), data.find(b"MM\x00*")) if i >= 0]
    if not starts:
        return None
    base = min(starts)
    order = "<" if data[base] == ord("I") else ">"
    if base + 8 > len(data):
        return None
    (ifd,) = struct.unpack(order + "I", data[base + 4:base + 8])
    return base, order, ifd


@dataclass(frozen=True)
class Mutation:
    kind: str
    position: int
    value: int
    run: bytes

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        at = self.position % len(data)
        if self.kind == "flip":
            return data[:at] + bytes([data[at] ^ (self.value % 255 + 1)]) + data[at + 1:]
        if self.kind == "truncate":
            return data[:at]
        if self.kind == "insert":
            return data[:at] + self.run + data[at:]
        if self.kind == "delete":
            return data[:at] + data[at + 1 + self.value % 64:]
        if self.kind == "boundary":
            value = BOUNDARY[self.value % len(BOUNDARY)]
            return data[:at] + value + data[at + len(value):]
        if self.kind == "duplicate":
            return data[:at] + data[at:at + 1 + self.value % 256] * 2 + data[at + 1 + self.value % 256:]
        return self._exif_entry(data)

    def _exif_entry(self, data: bytes) -> bytes:
        """Rewrite the type (to any of 0..15, valid or not), the count or the
        value/offset of one IFD0 entry of the EXIF."""
        found = _exif_ifd0(data)
        if found is None:
            return data
        base, order, ifd = found
        start = base + ifd
        if start + 2 > len(data):
            return data
        (count,) = struct.unpack(order + "H", data[start:start + 2])
        if not count:
            return data
        entry = start + 2 + 12 * (self.position % count)
        if entry + 12 > len(data):
            return data
        field = self.kind.removeprefix("exif-")
        if field == "type":
            offset, packed = entry + 2, struct.pack(order + "H", self.value % 16)
        elif field == "count":
            offset, packed = entry + 4, struct.pack(order + "I", [0, 2, 255, 0xFFFF, 0xFFFFFFFF][self.value % 5])
        else:
            offset, packed = entry + 8, struct.pack(order + "I", self.value % (1 << 32))
        return data[:offset] + packed + data[offset + len(packed):]


KINDS = ["flip", "truncate", "insert", "delete", "boundary", "duplicate", "exif-type", "exif-count", "exif-value"]
mutations = st.builds(
    Mutation,
    kind=st.sampled_from(KINDS),
    position=st.integers(0, 1 << 20),
    value=st.integers(0, 1 << 32),
    run=st.one_of(st.binary(min_size=1, max_size=48), st.sampled_from(BOUNDARY)),
)


@st.composite
def mutated(draw) -> bytes:
    data = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    for mutation in draw(st.lists(mutations, min_size=1, max_size=4)):
        data = mutation.apply(data)
    return data


def test_seeds_are_what_they_claim():
    """The seeds decode, with the formats, orientations and EXIF they are meant to carry."""
    formats = {name: Image.open(io.BytesIO(data)).format for name, data in SEEDS.items()}
    assert formats["mpo"] == "MPO" and formats["gif-animated"] == "GIF" and formats["webp-lossless"] == "WEBP"
    assert _displayed(Image.open(io.BytesIO(SEEDS["jpeg-mistyped"])))[0] == 6
    assert _displayed(Image.open(io.BytesIO(SEEDS["webp-lossless"])))[0] == 7
    assert Image.open(io.BytesIO(SEEDS["jpeg-exif-gps"])).getexif().get_ifd(0x8825)
    for name, data in SEEDS.items():
        assert image_facts(io.BytesIO(data), MAX_PIXELS).phash is not None, name
        assert render(data, SPECS[0], max_pixels=MAX_PIXELS).width == 16, name
        mutation = Mutation("exif-type", 0, 13, b"")  # type 13 (IFD) is no seed entry's
        if _exif_ifd0(data):
            assert mutation.apply(data) != data, name


@FUZZ
@given(mutated())
def test_image_facts_never_raises(data):
    facts = image_facts(io.BytesIO(data), MAX_PIXELS)
    if facts is not None:
        assert facts.width > 0 and facts.height > 0
        assert facts.phash is None or 0 <= facts.phash < 1 << 64
    image_size(io.BytesIO(data))


@FUZZ
@given(mutated(), st.sampled_from(SPECS))
def test_render_raises_only_image_error(data, spec):
    try:
        result = render(data, spec, max_pixels=MAX_PIXELS)
    except ImageError:
        return
    out = Image.open(io.BytesIO(result.data))
    assert out.size == (result.width, result.height)
    assert "exif" not in out.info and "comment" not in out.info


@FUZZ
@given(mutated())
def test_orientation_never_raises(data):
    try:
        img = Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - not this target's concern: the header does not parse
        return
    orientation, size = _displayed(img)
    assert 1 <= orientation <= 8
    assert size in (img.size, img.size[::-1])
    if img.width * img.height > MAX_PIXELS:
        return
    try:
        img.load()
    except Exception:  # noqa: BLE001 - broken pixels are render's and image_facts' concern, tested above
        return
    assert oriented(img).size == size


@FUZZ
@given(mutated(), st.sampled_from(["location", "all"]))
def test_metadata_strip_never_raises(data, level):
    # the walk without strip()'s last-resort net, which would log and hide a bug
    out = metadata._strip(memoryview(data), level)
    assert out is None or isinstance(out, bytes)
    assert metadata.strip(data, level) == out


def _pixels(data: bytes) -> tuple | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                return None
            img.load()
            return img.mode, img.size, img.tobytes()
    except Exception:  # noqa: BLE001 - an input Pillow cannot decode has no pixels to keep
        return None


# an APP0 whose "JFIF" id is damaged, its declared length leaving 3 bytes
# before the next marker (Pillow and libjpeg skip such extraneous bytes)
DAMAGED_APP0 = Mutation("insert", 8, 0, b"|O\x18").apply(SEEDS["jpeg"])


@FUZZ
@example(DAMAGED_APP0, "all")
@given(mutated(), st.sampled_from(["location", "all"]))
def test_metadata_strip_keeps_decodable_pixels(data, level):
    """Lossless: whatever Pillow decodes before, it decodes the same after."""
    before = _pixels(data)
    out = metadata._strip(memoryview(data), level)
    if before is None or out is None:
        return
    assert _pixels(out) == before
