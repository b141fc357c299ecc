"""pytest-benchmark suites for pastefile.ext.hashing against pure-Python/hashlib references.

Run with ``pytest benchmarks/test_bench_hashing.py`` to time, or add
``--benchmark-disable`` to run every case once as a correctness check (each
benchmark asserts its digest equals hashlib's).
"""
from __future__ import annotations

import hashlib
import os

import pytest

from pastefile.ext.hashing import Hasher, copy_and_hash, sha256

from .references import python_copy_and_hash

MiB = 1024 * 1024
FILE_SIZE = 32 * MiB

MEMORY_SIZES = {"1KB": 1024, "64KB": 64 * 1024, "8MB": 8 * MiB}


# ---------------------------------------------------------------------------
# file -> file: copy_and_hash versus a Python copy loop with hashlib
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-hashing")
    path = folder / "src.bin"
    expected = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(FILE_SIZE // MiB):
            block = os.urandom(MiB)
            expected.update(block)
            f.write(block)
    return path, expected.digest()


@pytest.mark.benchmark(group="copy-and-hash-32MB")
def test_copy_and_hash_file_to_file(benchmark, source_file, tmp_path):
    src_path, expected = source_file
    dst_path = tmp_path / "dst-ext.bin"

    def run():
        with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
            return copy_and_hash(src, dst)

    result = benchmark(run)
    assert result.digest == expected
    assert result.size == FILE_SIZE
    assert os.path.getsize(dst_path) == FILE_SIZE


@pytest.mark.benchmark(group="copy-and-hash-32MB")
def test_reference_python_loop_file_to_file(benchmark, source_file, tmp_path):
    src_path, expected = source_file
    dst_path = tmp_path / "dst-py.bin"

    def run():
        with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
            return python_copy_and_hash(src, dst)

    digest, size = benchmark(run)
    assert digest == expected
    assert size == FILE_SIZE
    assert os.path.getsize(dst_path) == FILE_SIZE


# ---------------------------------------------------------------------------
# in memory: Hasher.update versus hashlib.sha256
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buffers():
    return {label: os.urandom(size) for label, size in MEMORY_SIZES.items()}


def _by_size():
    return [
        pytest.param(label, marks=pytest.mark.benchmark(group=f"sha256-{label}"), id=label)
        for label in MEMORY_SIZES
    ]


@pytest.mark.parametrize("label", _by_size())
def test_hasher_update(benchmark, buffers, label):
    data = buffers[label]

    def run():
        h = Hasher("sha256")
        h.update(data)
        return h.digest()

    assert benchmark(run) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("label", _by_size())
def test_hasher_constructor_shortcut(benchmark, buffers, label):
    data = buffers[label]
    assert benchmark(lambda: sha256(data).digest()) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("label", _by_size())
def test_hashlib_sha256(benchmark, buffers, label):
    data = buffers[label]
    expected = Hasher("sha256", data).digest()  # cross-check in the other direction
    assert benchmark(lambda: hashlib.sha256(data).digest()) == expected
