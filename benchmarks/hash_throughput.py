"""SHA-256 throughput of pastefile.ext.hashing versus hashlib, measured in one run.

    python -m benchmarks.hash_throughput [--size-mb 256] [--repeat 3] [--dir DIR]
    python benchmarks/hash_throughput.py [--size-mb 256]

Creates a file of random data in a temporary directory and times

  (a) copy_and_hash, file -> file (C loop, GIL released)
  (b) hashlib.sha256 over the same data already in memory
  (c) pastefile's Hasher.update over the same data in memory
  (d) a Python copy loop (256 KiB reads) with hashlib, file -> file

taking the best of ``--repeat`` runs of each (the runs are interleaved), and
prints the throughput and its ratio to (b).  The source file is in the page
cache and the destination is written without fsync, so (a) and (d) measure
copying through the page cache, not the disk.  1 MB = 2**20 bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import ssl
import sys
import tempfile
import time
from typing import Callable

from pastefile.ext.hashing import Hasher, copy_and_hash

try:
    from .references import python_copy_and_hash
except ImportError:  # run as a script
    from references import python_copy_and_hash

MB = 1024 * 1024


def file_case(src_path: str, dst_path: str, copy: Callable) -> Callable[[], tuple[float, bytes]]:
    """Open both files and truncate the destination outside the timed part."""

    def run() -> tuple[float, bytes]:
        with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
            start = time.perf_counter()
            digest = copy(src, dst)
            dst.flush()
            elapsed = time.perf_counter() - start
        if os.path.getsize(dst_path) != os.path.getsize(src_path):
            raise RuntimeError(f"{dst_path} was not fully written")
        os.unlink(dst_path)
        return elapsed, digest

    return run


def memory_case(hash_once: Callable[[], bytes]) -> Callable[[], tuple[float, bytes]]:
    def run() -> tuple[float, bytes]:
        start = time.perf_counter()
        digest = hash_once()
        return time.perf_counter() - start, digest

    return run


def make_source(path: str, size: int) -> bytes:
    data = bytearray(size)
    view = memoryview(data)
    for start in range(0, size, 8 * MB):
        end = min(start + 8 * MB, size)
        view[start:end] = os.urandom(end - start)
    with open(path, "wb") as f:
        f.write(data)
    return bytes(data)


def hasher_digest(data: bytes) -> bytes:
    h = Hasher("sha256")
    h.update(data)
    return h.digest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=256, help="size of the test file in MB (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method, best is kept (default 3)")
    parser.add_argument("--dir", default=None, help="where to create the temporary directory")
    args = parser.parse_args(argv)
    if args.size_mb <= 0 or args.repeat <= 0:
        parser.error("--size-mb and --repeat must be positive")
    size = args.size_mb * MB

    with tempfile.TemporaryDirectory(prefix="hash-throughput-", dir=args.dir) as tmp:
        src_path = os.path.join(tmp, "src.bin")
        dst_path = os.path.join(tmp, "dst.bin")
        data = make_source(src_path, size)
        expected = hashlib.sha256(data).digest()

        cases = [
            ("(a)", "copy_and_hash file->file", file_case(src_path, dst_path, lambda s, d: copy_and_hash(s, d).digest)),
            ("(b)", "hashlib.sha256 in memory", memory_case(lambda: hashlib.sha256(data).digest())),
            ("(c)", "Hasher.update in memory", memory_case(lambda: hasher_digest(data))),
            ("(d)", "Python loop + hashlib file->file", file_case(src_path, dst_path, lambda s, d: python_copy_and_hash(s, d)[0])),
        ]
        best = {key: float("inf") for key, _, _ in cases}
        for _ in range(args.repeat):
            for key, label, run in cases:
                elapsed, digest = run()
                if digest != expected:
                    print(f"{key} {label}: wrong digest", file=sys.stderr)
                    return 1
                best[key] = min(best[key], elapsed)

    rate = {key: size / MB / seconds for key, seconds in best.items()}
    print(
        f"SHA-256 throughput, {args.size_mb} MB of random data, best of {args.repeat} "
        f"(Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION})"
    )
    print(f"{'':4}{'method':<34}{'time [s]':>10}{'MB/s':>10}{'vs (b)':>9}")
    for key, label, _ in cases:
        print(f"{key:<4}{label:<34}{best[key]:>10.4f}{rate[key]:>10.1f}{rate[key] / rate['(b)']:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
