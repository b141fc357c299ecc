"""The chapter 14 table on pastefile's Hamming radius scan: pure Python,
the same .py compiled by Cython unchanged, and a typed Cython version.

100,000 random 64-bit hashes as a list of Python ints, 40 of them planted
within 0..10 bits of the query; radius 8.  The pure-Python scan is the
report's baseline.  All three take the very same list; the typed kernel's
scan of the hashes pre-packed as uint64 (how the index stores them) is shown
beside them.  The kernels are compiled once per run (benchmarks.ch14.build);
every round checks its result, so ``--benchmark-disable`` makes this a quick
correctness pass.
"""
from __future__ import annotations

import array
import random

import pytest

from benchmarks.ch14 import build

COUNT = 100_000
PLANTED = 40
RADIUS = 8
GROUP = "ch14-hamming-radius8-100k"


@pytest.fixture(scope="module")
def kernels():
    return build.kernels()


@pytest.fixture(scope="module")
def data(kernels):
    rng = random.Random(14)
    hashes = [rng.getrandbits(64) for _ in range(COUNT)]
    query = rng.getrandbits(64)
    for position in rng.sample(range(COUNT), PLANTED):
        near = query
        for bit in rng.sample(range(64), rng.randint(0, 10)):
            near ^= 1 << bit
        hashes[position] = near
    expected = kernels.python.radius_scan(hashes, query, RADIUS)
    assert 0 < len(expected) <= PLANTED + 2  # the planted ones within 8 bits, rarely a random one
    return hashes, query, expected


@pytest.mark.benchmark(group=GROUP)
def test_reference_pure_python(benchmark, kernels, data):
    hashes, query, expected = data
    assert benchmark(kernels.python.radius_scan, hashes, query, RADIUS) == expected


@pytest.mark.benchmark(group=GROUP)
def test_cython_compiled_unchanged(benchmark, kernels, data):
    hashes, query, expected = data
    assert benchmark(kernels.compiled.radius_scan, hashes, query, RADIUS) == expected


@pytest.mark.benchmark(group=GROUP)
def test_cython_typed(benchmark, kernels, data):
    hashes, query, expected = data
    assert benchmark(kernels.typed.radius_scan, hashes, query, RADIUS) == expected


@pytest.mark.benchmark(group=GROUP)
def test_cython_typed_prepacked_uint64(benchmark, kernels, data):
    hashes, query, expected = data
    packed = array.array("Q", hashes)
    assert benchmark(kernels.typed.radius_scan_packed, packed, query, RADIUS) == expected
