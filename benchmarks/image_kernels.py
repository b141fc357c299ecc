"""Timing of the image kernels against their yardsticks, in one run.

    python -m benchmarks.image_kernels [--runs 20]

  resize  4000x3000 RGB -> 800x600, bicubic and Lanczos: Image.resize versus
          pastefile.ext.resample.resize on one and on two threads
  pHash   of the same 12-megapixel image: imagehash.phash (when installed)
          and the NumPy reference versus pastefile.ext.phash.phash, exact
          and fast=True, on one and two threads
  search  radius 8 over 1,000,000 random hashes, 200 different queries:
          np.bitwise_count(hashes ^ q) <= 8 versus HammingIndex.search

Prints the minimum and the median of ``--runs`` runs (milliseconds) and the
ratios to the yardstick.  The minimum is the figure to compare on a machine
shared with other work; the median shows how much that work interferes.
Every result is checked against the yardstick's first.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image

from pastefile.ext import reference
from pastefile.ext.hamming import HammingIndex
from pastefile.ext.phash import phash, row_step
from pastefile.ext.resample import resize


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times), statistics.median(times)


def line(label: str, t: tuple[float, float], ref: tuple[float, float] | None = None) -> str:
    text = f"  {label:<34} {t[0]:8.2f} / {t[1]:8.2f} ms"
    if ref is not None:
        text += f"   {ref[0] / t[0]:5.1f}x / {ref[1] / t[1]:5.1f}x"
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    runs = args.runs
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8), "RGB")

    print(f"resize 4000x3000 RGB -> 800x600 (min / median of {runs}; speed-up vs Pillow)")
    for name, value in (("bicubic", Image.Resampling.BICUBIC), ("lanczos", Image.Resampling.LANCZOS)):
        expected = image.resize((800, 600), value).tobytes()
        for threads in (1, 2):
            assert resize(image, (800, 600), name, threads=threads).tobytes() == expected
        ref = timed(lambda: image.resize((800, 600), value), runs)
        print(line(f"Image.resize {name}", ref))
        for threads in (1, 2):
            t = timed(lambda: resize(image, (800, 600), name, threads=threads), runs)
            print(line(f"kernel {name}, {threads} thread(s)", t, ref))

    print(f"pHash of the 12 MP image (min / median of {runs}; speed-up vs the first line)")
    exact, fast = reference.phash(image), reference.phash(image, row_step(image.height, 32))
    try:
        import imagehash
    except ImportError:
        imagehash = None
    if imagehash is not None:
        ref = timed(lambda: imagehash.phash(image), runs)
        print(line("imagehash.phash", ref))
    else:
        ref = timed(lambda: reference.phash(image), runs)
        print(line("NumPy reference (no imagehash)", ref))
    for threads in (1, 2):
        assert phash(image, threads=threads) == exact
        assert phash(image, fast=True, threads=threads) == fast
        print(line(f"phash, {threads} thread(s)", timed(lambda: phash(image, threads=threads), runs), ref))
        t = timed(lambda: phash(image, fast=True, threads=threads), runs)
        print(line(f"phash fast=True, {threads} thread(s)", t, ref))

    count, queries = 1_000_000, 200
    hashes = rng.integers(0, 2**64, count, dtype=np.uint64)
    index = HammingIndex()
    index.add_many(np.arange(count, dtype=np.int64), hashes)
    probes = []
    for _ in range(queries):
        q = int(hashes[rng.integers(count)])
        for bit in rng.choice(64, size=int(rng.integers(0, 7)), replace=False):
            q ^= 1 << int(bit)
        probes.append(q)
    print(f"radius-8 search, 1,000,000 hashes, {queries} queries a run (min / median of {max(3, runs // 4)})")
    for q in probes[:10]:
        dist = np.bitwise_count(hashes ^ np.uint64(q))
        hit = np.nonzero(dist <= 8)[0]
        assert sorted(index.search(q, 8)) == sorted(zip(hit.tolist(), dist[hit].tolist()))
    n = max(3, runs // 4)
    ref = timed(lambda: [np.nonzero(np.bitwise_count(hashes ^ np.uint64(q)) <= 8)[0] for q in probes], n)
    print(line("np.bitwise_count scan", ref))
    print(line("HammingIndex.search", timed(lambda: [index.search(q, 8) for q in probes], n), ref))
    t = timed(lambda: [index.search(q, 8, strategy="scan") for q in probes], n)
    print(line("HammingIndex.search, scan only", t, ref))


if __name__ == "__main__":
    main()
