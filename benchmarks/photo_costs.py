"""Photo uploads: CPU per upload by stage, in-process.

For each photo of the load comparison's corpus (benchmarks/load/photos.py)
this runs the steps pastefile's ingest runs on an image upload, with
pastefile's own functions, on a service with SQLite and the in-process
cache (production.ini's settings otherwise, so ``strip_metadata =
location``), and times each with ``time.process_time`` (the group
committer's thread included):

* ``storage``: staging (copy + SHA-256 into a temp file) and the save (the
  file placed under its address with its directory's fsync, the row
  committed by the group committer, SQLite's fsync);
* ``sniff``: ``Ingest.check_type`` (libmagic on the head);
* ``strip``: ``Ingest.strip_metadata`` (the GPS and serial numbers zeroed,
  the result staged afresh when anything went);
* ``decode``, ``facts``, ``phash``: ``imaging.image_facts`` taken apart
  the way it runs: ``Image.open`` + ``draft`` + the pixels decoded; the
  EXIF orientation and displayed size; the orientation applied and the
  pHash kernel.  The pHash is checked against ``image_facts``' own.

Each photo is uploaded once more whole (``PasteFileService.upload``): that
is the total the stages should add up to.  The reference is the plain way
of doing the image work: Pillow open + ``draft`` + ``imagehash.phash`` on
the same bytes (reader-image's ``image_work``).  Every upload is unique
(the photo's placeholder comment overwritten); each photo is measured
``--repeats`` times, its median kept; the table gives the mean over the
photos, what one upload costs on average with the load scenario's mix.

    python -m benchmarks.photo_costs [--json benchmarks/photo_costs.json] [--repeats 3] [--smoke]
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager

from PIL import Image

from benchmarks.load import config, photos
from benchmarks.load.body_reader import image_work

STAGES = ("decode", "facts", "phash", "strip", "sniff", "storage")
LABELS = {
    "decode": "decode: Image.open + draft + pixels (1/8 scale)",
    "facts": "facts: EXIF orientation, displayed size",
    "phash": "pHash: orientation applied + DCT kernel",
    "strip": "metadata stripping (location)",
    "sniff": "type sniff (libmagic)",
    "storage": "storage: stage + place + fsync + commit",
}


@contextmanager
def _clock(into: dict, key: str):
    start = time.process_time()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + (time.process_time() - start) * 1000.0


def service_settings(root: str) -> dict[str, str]:
    """production.ini's ``pastefile.*`` settings with the load comparison's
    SQLite ones (a database, files and cache of this run's own)."""
    app = config.run_app(config.read(), f"sqlite:///{root}/pastefile.sqlite", os.path.join(root, "files"),
                         "http://127.0.0.1:6543", {"pastefile.cache.backend": "memory"})
    app.pop("pastefile.cache.servers", None)
    return {k: v for k, v in app.items() if k.startswith("pastefile.")}


class Meter:
    """pastefile's image upload stage by stage on one service."""

    def __init__(self, root: str):
        from pastefile.core import PasteFileService

        self.service = PasteFileService(service_settings(root))
        self.ingest = self.service._ingest
        self.nonce = secrets.token_hex(4)
        self.count = 0

    def close(self) -> None:
        self.service.close()

    def unique(self, photo: photos.Photo, data: bytes, what: str) -> bytes:
        self.count += 1
        return photos.replace_placeholder(data, photo.offset, f"costs {self.nonce} {what} {self.count}".encode())

    def stages(self, data: bytes, name: str) -> dict[str, float]:
        from pastefile.core import imaging

        ingest = self.ingest
        ms: dict[str, float] = {}
        with _clock(ms, "storage"):
            staged = ingest.stage(io.BytesIO(data))
        try:
            with _clock(ms, "sniff"):
                mimetype = ingest.check_type(staged)
            with _clock(ms, "strip"):
                staged = ingest.strip_metadata(staged, mimetype)
            # imaging.image_facts, step by step
            with _clock(ms, "decode"):
                f = staged.open()
                img = Image.open(f)
            try:
                with _clock(ms, "facts"):
                    orientation, (width, height) = imaging._displayed(img)
                with _clock(ms, "decode"):
                    if imaging._format(img) == "JPEG":
                        img.draft("L", imaging._FACTS_DRAFT)
                    img.load()
                with _clock(ms, "phash"):
                    value = imaging._phash(imaging._upright(img, orientation))
            finally:
                img.close()
                f.close()
            expected = ingest.facts(staged, mimetype)  # not timed: the same steps in one call
            if expected != (width, height, value):
                raise AssertionError(f"{name}: stages gave {(width, height, value)}, image_facts {expected}")
            with _clock(ms, "storage"):
                ingest.save(staged, name, mimetype, (width, height, value), shortcut=False)
        except BaseException:
            self.service.store.discard(staged)
            raise
        return ms

    def whole(self, data: bytes, name: str) -> float:
        ms: dict[str, float] = {}
        with _clock(ms, "whole"):
            info = self.service.upload(io.BytesIO(data), name)
        if info.phash is None:
            raise AssertionError(f"{name}: the upload has no pHash")
        return ms["whole"]


def reference(data: bytes) -> float:
    ms: dict[str, float] = {}
    with _clock(ms, "reference"):
        image_work(data)
    return ms["reference"]


def measure(corpus: list[photos.Photo], workdir: str, repeats: int = 3, log=None) -> dict:
    """Per photo: the median over ``repeats`` of each stage, of the whole
    upload and of the reference; and their means over the photos."""
    meter = Meter(workdir)
    rows = []
    try:
        first = corpus[0]
        warm = open(first.path, "rb").read()
        meter.stages(meter.unique(first, warm, "warm-up"), "warm-up.jpg")  # imports, connections, libmagic
        meter.whole(meter.unique(first, warm, "warm-up"), "warm-up.jpg")
        reference(warm)
        for photo in corpus:
            with open(photo.path, "rb") as f:
                data = f.read()
            name = os.path.basename(photo.path)
            runs: dict[str, list[float]] = {key: [] for key in (*STAGES, "whole", "reference")}
            for _ in range(repeats):
                for key, value in meter.stages(meter.unique(photo, data, "stages"), name).items():
                    runs[key].append(value)
                runs["whole"].append(meter.whole(meter.unique(photo, data, "whole"), name))
                runs["reference"].append(reference(data))
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                gps = bool(img.getexif().get_ifd(photos.GPS_IFD))
            median = {key: statistics.median(values) for key, values in runs.items()}
            row = {
                "name": name, "bytes": len(data), "width": width, "height": height, "gps": gps,
                "stages_ms": {key: median[key] for key in STAGES},
                "stages_sum_ms": sum(median[key] for key in STAGES),
                "total_ms": median["whole"], "reference_ms": median["reference"],
            }
            rows.append(row)
            if log is not None:
                log(f"{name} {width}x{height} {len(data) / 1e6:.2f} MB: stages {row['stages_sum_ms']:.1f} ms, "
                    f"whole {row['total_ms']:.1f} ms, reference {row['reference_ms']:.1f} ms")
    finally:
        meter.close()
    mean = {key: statistics.fmean(r["stages_ms"][key] for r in rows) for key in STAGES}
    image = sum(mean[key] for key in ("decode", "facts", "phash"))
    ref = statistics.fmean(r["reference_ms"] for r in rows)
    return {
        "photos": rows,
        "stages": list(STAGES),
        "labels": LABELS,
        "mean_ms": mean,
        "stages_sum_ms": sum(mean.values()),
        "total_ms": statistics.fmean(r["total_ms"] for r in rows),
        "reference_ms": ref,
        "image_work_ms": image,
        "image_work_to_reference": image / ref if ref else None,
        "mean_bytes": statistics.fmean(r["bytes"] for r in rows),
    }


def table(result: dict) -> list[str]:
    total = result["total_ms"]
    lines = [f"{'stage':<50} {'CPU ms/upload':>13} {'share':>7}"]
    for key in result["stages"]:
        value = result["mean_ms"][key]
        lines.append(f"{result['labels'][key]:<50} {value:13.2f} {value / total:7.1%}")
    lines += [
        f"{'sum of the stages':<50} {result['stages_sum_ms']:13.2f} {result['stages_sum_ms'] / total:7.1%}",
        f"{'whole upload (PasteFileService.upload)':<50} {total:13.2f}",
        "",
        f"{'pastefile image work (decode + facts + pHash)':<50} {result['image_work_ms']:13.2f}",
        f"{'reference: Pillow open + draft + imagehash':<50} {result['reference_ms']:13.2f}",
        f"{'ratio pastefile / reference (CPU)':<50} {result['image_work_to_reference'] or 0:13.2f}",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_costs", description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--repeats", type=int, default=3, help="uploads of each photo per measure (default 3)")
    parser.add_argument("--smoke", action="store_true", help="the three small photos of --smoke runs, 1 repeat")
    parser.add_argument("--corpus-dir", help="where the photos are made or found (default: a temp dir)")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="pastefile-photo-costs-")
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        corpus = photos.corpus(args.corpus_dir or tmp, args.smoke, log)
        result = measure(list(corpus.photos), os.path.join(tmp, "service"), 1 if args.smoke else args.repeats, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    document = {
        "tool": "benchmarks.photo_costs", "started": started, "smoke": args.smoke,
        "repeats": 1 if args.smoke else args.repeats, "clock": "time.process_time",
        "machine": {"cpu": config.cpu_model(), "cores": os.cpu_count(), "loadavg": list(os.getloadavg())},
        "pillow": Image.__version__, **result,
    }
    print(f"Photo uploads: CPU per upload by stage ({len(result['photos'])} photos, mean "
          f"{result['mean_bytes'] / 1e6:.2f} MB, median of {document['repeats']} per photo, mean over the photos)")
    print("\n".join(table(result)))
    if args.json:
        config.write_document(args.json, document)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
