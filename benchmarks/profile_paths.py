"""Line-by-line profile (line_profiler) of the upload and resize paths.

    python -m benchmarks.profile_paths [--files 200] [--size-kb 256]

Uploads random images and text through PasteFileService in embedded mode
(SQLite, in-process cache) in a temp directory, then resizes each image,
and prints per-line timings of the functions on those paths.
"""
from __future__ import annotations

import argparse
import io
import random
import tempfile

from line_profiler import LineProfiler
from PIL import Image

from pastefile.core import PasteFileService
from pastefile.core import blobstore, imaging
from pastefile.core.ingest import Ingest
from pastefile.core.renditions import Renditions
from pastefile.ext import hashing


def _payloads(count: int, size_kb: int) -> list[tuple[str, bytes]]:
    rng = random.Random(12)
    out = []
    for i in range(count):
        if i % 2:
            text = " ".join(str(rng.random()) for _ in range(size_kb * 1024 // 20))
            out.append((f"doc{i}.txt", text.encode()[: size_kb * 1024]))
        else:
            img = Image.frombytes("RGB", (512, 384), rng.randbytes(512 * 384 * 3))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            out.append((f"img{i}.jpg", buf.getvalue()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-kb", type=int, default=256)
    args = parser.parse_args()

    profiler = LineProfiler()
    for fn in (
        Ingest.upload,
        Ingest.save,
        Renditions.resize,
        Ingest.check_type,
        blobstore.FileSystemBlobStore.stage,
        blobstore.FileSystemBlobStore.commit,
        imaging.crop_resize,
        hashing.copy_and_hash,
    ):
        profiler.add_function(fn)

    payloads = _payloads(args.files, args.size_kb)
    with tempfile.TemporaryDirectory() as tmp:
        svc = PasteFileService(
            {"pastefile.db_url": f"sqlite:///{tmp}/p.sqlite", "pastefile.storage_root": f"{tmp}/files", "pastefile.auto_migrate": "true"}
        )
        profiler.enable_by_count()
        pastes = [svc.upload(io.BytesIO(data), name) for name, data in payloads]
        for paste in pastes:
            if paste.is_resizable:
                svc.resize(paste.filehash, 160, 120)
        profiler.disable_by_count()
        svc.close()
    profiler.print_stats(stripzeros=True, output_unit=1e-3)


if __name__ == "__main__":
    main()
