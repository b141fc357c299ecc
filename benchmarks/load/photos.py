"""A corpus of camera-like JPEGs for the photo upload scenario.

Made here, deterministically (seeded), rather than shipped: 20 JPEGs of
about 0.2 to 4 MB, 1280x960 up to 12 MP (4032x3024 and 4000x3000, as phones
take them), with content that compresses like a photo (smooth gradients,
shapes, sensor-like noise) at quality 85-92.  Every file has EXIF (Make,
Model, Software, dates, Orientation, exposure, lens); about half have a GPS
IFD and some a body serial number, which pastefile removes by default
(``strip_metadata = location``), so its uploads take the stripping path.

Each file holds a fixed-length placeholder: a JPEG comment (COM segment)
after the APP segments whose payload is ``PLACEHOLDER_BYTES`` bytes of
``x``.  The load script overwrites it with a per-request token, which makes
every upload unique without re-encoding (and pastefile keeps comments when
it strips the location, so the stored bytes stay unique too).

The corpus goes into ``<directory>/photos-v<VERSION>-<set>/`` with an index
file written last; a directory whose index exists is reused as it is.

    python -m benchmarks.load.photos DIRECTORY [--smoke]
"""
from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

# bump when the files would come out different
VERSION = 2
SEED = 20240611
PLACEHOLDER_BYTES = 64
PLACEHOLDER = b"x" * PLACEHOLDER_BYTES
INDEX = "index.tsv"
_MAKING = threading.Lock()  # contenders of a --smoke run ask at the same time

# EXIF tags
MAKE, MODEL, ORIENTATION, SOFTWARE, DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
EXPOSURE_TIME, F_NUMBER, ISO, DATETIME_ORIGINAL, FOCAL_LENGTH = 0x829A, 0x829D, 0x8827, 0x9003, 0x920A
BODY_SERIAL, LENS_MODEL = 0xA431, 0xA434

CAMERAS = (
    ("Apple", "iPhone 13", "16.5", "iPhone 13 back dual wide camera 5.1mm f/1.6"),
    ("samsung", "SM-G991B", "G991BXXU5CVLB", "Samsung S5KGN3"),
    ("Google", "Pixel 7", "HDR+ 1.0.486938273", "Pixel 7 back camera"),
    ("Canon", "Canon EOS 80D", "Firmware Version 1.0.3", "EF-S18-135mm f/3.5-5.6 IS USM"),
    ("SONY", "ILCE-6400", "ILCE-6400 v2.00", "E 16-50mm F3.5-5.6 PZ OSS"),
)


@dataclass(frozen=True)
class Spec:
    """One photo: stored size, noise amplitude (what sets the file size),
    JPEG quality, camera, GPS or not, EXIF orientation."""

    width: int
    height: int
    noise: int
    quality: int
    camera: int
    gps: bool
    orientation: int = 1
    serial: bool = False


# sizes grow down the list from about 0.2 MB to about 3.8 MB; five at 12 MP
FULL = (
    Spec(1280, 960, 6, 86, 2, False),
    Spec(1200, 1600, 6, 88, 0, True),
    Spec(1600, 1200, 7, 88, 1, False, serial=True),
    Spec(1920, 1440, 6, 88, 2, True),
    Spec(2048, 1536, 6, 88, 3, False, serial=True),
    Spec(1920, 1080, 9, 90, 4, True),
    Spec(2592, 1944, 5, 90, 1, False),
    Spec(3000, 2000, 5, 88, 3, True, serial=True),
    Spec(2592, 1944, 8, 90, 2, True, orientation=6),
    Spec(3264, 2448, 4, 88, 1, False),
    Spec(3000, 2000, 8, 90, 4, False, serial=True),
    Spec(3264, 2448, 6, 90, 0, True, orientation=6),
    Spec(4032, 3024, 4, 88, 0, False),
    Spec(3648, 2736, 6, 90, 2, True),
    Spec(4000, 3000, 5, 88, 1, True),
    Spec(4032, 3024, 6, 90, 0, True, orientation=6),
    Spec(4000, 3000, 7, 90, 1, False),
    Spec(3648, 2736, 8, 92, 2, False, orientation=8),
    Spec(4032, 3024, 8, 90, 0, True, orientation=6),
    Spec(4000, 3000, 6, 92, 1, True),
)
# --smoke: a few small ones, with and without GPS, made in a second
SMOKE = (
    Spec(1280, 960, 6, 86, 2, False),
    Spec(1200, 1600, 6, 88, 0, True, orientation=6),
    Spec(1600, 1200, 7, 88, 1, True, serial=True),
)


@dataclass(frozen=True)
class Photo:
    path: str
    size: int
    offset: int  # where the placeholder's bytes start


@dataclass(frozen=True)
class Corpus:
    directory: str
    index: str  # one line per photo: offset, placeholder length, path (tab-separated)
    photos: tuple[Photo, ...]

    @property
    def mean_size(self) -> int:
        return sum(p.size for p in self.photos) // len(self.photos)


# -- pixels ---------------------------------------------------------------------------

def _pixels(spec: Spec, rng: np.random.Generator) -> Image.Image:
    """A smooth colour field (a tiny random image scaled up) with shapes,
    drawn at a quarter of the size and scaled up (soft edges), plus
    luminance noise of +-2*noise (the sum of two uniforms): detail at every
    scale, as in a photo, so the JPEG sizes are a photo's."""
    w, h = spec.width, spec.height
    cw, ch = w // 4, h // 4
    field = rng.integers(20, 236, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(field).resize((cw, ch), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = int(rng.integers(0, cw)), int(rng.integers(0, ch))
        r = int(rng.integers(max(cw, ch) // 60, max(cw, ch) // 6))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    pixels = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.integers(-spec.noise, spec.noise + 1, (h, w), dtype=np.int16)
    noise += rng.integers(-spec.noise, spec.noise + 1, (h, w), dtype=np.int16)
    pixels += noise[:, :, None]
    return Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8))


# -- metadata -------------------------------------------------------------------------

def _rational(value: float, limit: int = 10000) -> IFDRational:
    f = Fraction(value).limit_denominator(limit)
    return IFDRational(f.numerator, f.denominator)


def _dms(degrees: float) -> tuple[IFDRational, ...]:
    d = int(degrees)
    m = int((degrees - d) * 60)
    s = (degrees - d - m / 60) * 3600
    return IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(s * 100), 100)


def _exif(spec: Spec, number: int, rng: np.random.Generator) -> Image.Exif:
    make, model, software, lens = CAMERAS[spec.camera]
    when = f"2023:{1 + number % 12:02d}:{1 + number % 28:02d} {8 + number % 12:02d}:{number * 7 % 60:02d}:{number * 13 % 60:02d}"
    exif = Image.Exif()
    exif[MAKE] = make
    exif[MODEL] = model
    exif[SOFTWARE] = software
    exif[DATETIME] = when
    exif[ORIENTATION] = spec.orientation
    sub = exif.get_ifd(EXIF_IFD)
    sub[DATETIME_ORIGINAL] = when
    sub[EXPOSURE_TIME] = IFDRational(1, int(rng.choice([60, 120, 250, 500, 1000])))
    sub[F_NUMBER] = _rational(float(rng.choice([1.6, 1.8, 2.8, 4.0, 5.6])))
    sub[ISO] = int(rng.choice([50, 100, 200, 400, 800]))
    sub[FOCAL_LENGTH] = _rational(float(rng.uniform(4.2, 50.0)), 100)
    sub[LENS_MODEL] = lens
    if spec.serial:
        sub[BODY_SERIAL] = f"{int(rng.integers(10**9, 10**10))}"
    if spec.gps:
        lat, lon = float(rng.uniform(-60, 60)), float(rng.uniform(-170, 170))
        gps = exif.get_ifd(GPS_IFD)
        gps[0] = b"\x02\x02\x00\x00"  # GPSVersionID
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = _dms(abs(lat))
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = _dms(abs(lon))
        gps[5] = b"\x00"  # above sea level
        gps[6] = _rational(float(rng.uniform(0, 900)), 100)
        gps[7] = (IFDRational(8 + number % 12, 1), IFDRational(number * 7 % 60, 1), IFDRational(0, 1))
        gps[0x1D] = when[:10]
    return exif


def with_placeholder(jpeg: bytes) -> tuple[bytes, int]:
    """``jpeg`` with a COM segment holding ``PLACEHOLDER`` inserted after its
    APP segments (before the tables), and where the placeholder starts."""
    pos = 2
    while jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    segment = b"\xff\xfe" + struct.pack(">H", PLACEHOLDER_BYTES + 2) + PLACEHOLDER
    return jpeg[:pos] + segment + jpeg[pos:], pos + 4


def replace_placeholder(data: bytes, offset: int, token: bytes) -> bytes:
    """What the load script does to a photo: the token (padded with dots to
    the placeholder's length) over the placeholder."""
    token = token[:PLACEHOLDER_BYTES].ljust(PLACEHOLDER_BYTES, b".")
    assert data[offset : offset + PLACEHOLDER_BYTES] == PLACEHOLDER, "no placeholder at that offset"
    return data[:offset] + token + data[offset + PLACEHOLDER_BYTES :]


def make_photo(spec: Spec, number: int, seed: int = SEED) -> tuple[bytes, int]:
    """The JPEG of ``spec`` (the same bytes for the same arguments) and the
    offset of its placeholder."""
    rng = np.random.default_rng([seed, number])
    img = _pixels(spec, rng)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=spec.quality, exif=_exif(spec, number, rng), optimize=False)
    return with_placeholder(out.getvalue())


# -- the corpus on disk ---------------------------------------------------------------

def corpus(directory: str, smoke: bool = False, log=None) -> Corpus:
    """The corpus under ``directory``, made unless a complete one is there
    (``log`` is told when it is made)."""
    with _MAKING:
        return _corpus(directory, smoke, log)


def _corpus(directory: str, smoke: bool, log) -> Corpus:
    specs = SMOKE if smoke else FULL
    where = os.path.join(os.path.abspath(directory), f"photos-v{VERSION}-{'smoke' if smoke else 'full'}")
    index = os.path.join(where, INDEX)
    if not os.path.exists(index):
        if log is not None:
            log(f"making {len(specs)} photos in {where} ...")
        os.makedirs(where, exist_ok=True)
        lines = []
        for number, spec in enumerate(specs):
            data, offset = make_photo(spec, number)
            path = os.path.join(where, f"IMG_{number:04d}.jpg")
            with open(path, "wb") as f:
                f.write(data)
            lines.append(f"{offset}\t{PLACEHOLDER_BYTES}\t{path}\n")
        with open(index + ".part", "w") as f:
            f.writelines(lines)
        os.replace(index + ".part", index)
    return load(index)


def load(index: str) -> Corpus:
    photos = []
    with open(index) as f:
        for line in f:
            offset, _, path = line.rstrip("\n").split("\t", 2)
            photos.append(Photo(path, os.path.getsize(path), int(offset)))
    return Corpus(os.path.dirname(index), index, tuple(photos))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load.photos", description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--smoke", action="store_true", help="the three small photos of --smoke runs")
    args = parser.parse_args(argv)
    made = corpus(args.directory, args.smoke)
    for photo in made.photos:
        with Image.open(photo.path) as img:
            exif = img.getexif()
            gps = "GPS" if exif.get_ifd(GPS_IFD) else "   "
            print(f"{os.path.basename(photo.path)} {img.width:5d}x{img.height:<5d} {photo.size / 1e6:5.2f} MB {gps} "
                  f"{exif.get(MAKE)} {exif.get(MODEL)} orientation {exif.get(ORIENTATION)}")
    print(f"{len(made.photos)} photos, mean {made.mean_size / 1e6:.2f} MB, index {made.index}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
