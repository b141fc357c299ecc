"""The chapter 14 kernels (benchmarks.ch14) build and agree.

The pure-Python Hamming radius scan, the same file compiled by Cython and
the typed Cython version must give identical results.  The build runs here
(once per process, shared with benchmarks/test_bench_ch14.py); a Cython or
compiler failure fails the test.
"""
from __future__ import annotations

import array
import importlib.machinery
import random
from pathlib import Path

import pytest

from benchmarks.ch14 import build

TOP = 2**64 - 1


@pytest.fixture(scope="module")
def kernels():
    return build.kernels()


def _all_agree(kernels, hashes, query, radius):
    want = kernels.python.radius_scan(hashes, query, radius)
    assert kernels.compiled.radius_scan(hashes, query, radius) == want
    assert kernels.typed.radius_scan(hashes, query, radius) == want
    assert kernels.typed.radius_scan_packed(array.array("Q", hashes), query, radius) == want
    return want


def test_compiled_from_the_same_source(kernels):
    for module in (kernels.compiled, kernels.typed):
        assert any(module.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)
    assert kernels.python.__file__.endswith(".py")
    copy = Path(kernels.compiled.__file__).parent.parent / "src" / f"{build.COMPILED_NAME}.py"
    assert copy.read_bytes() == build.PURE_SOURCE.read_bytes()
    assert type(kernels.compiled.radius_scan).__name__ == "cython_function_or_method"


def test_random_inputs(kernels):
    rng = random.Random(1414)
    for _ in range(60):
        hashes = [rng.getrandbits(64) for _ in range(rng.randint(0, 3000))]
        query = rng.getrandbits(64)
        for position in rng.sample(range(len(hashes)), min(len(hashes), rng.randint(0, 30))):
            near = query
            for bit in rng.sample(range(64), rng.randint(0, 12)):
                near ^= 1 << bit
            hashes[position] = near
        _all_agree(kernels, hashes, query, rng.randint(-1, 65))


def test_edge_cases(kernels):
    hashes = [0, TOP, 1, 1 << 63, TOP ^ 1, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA, 0, TOP]
    for query in (0, TOP, 1 << 63, 0x5555555555555555):
        for radius in (-1, 0, 1, 31, 32, 63, 64, 65, 10**6):
            _all_agree(kernels, hashes, query, radius)
    assert _all_agree(kernels, [], 0, 64) == []
    assert _all_agree(kernels, hashes, 0, -1) == []
    assert _all_agree(kernels, hashes, 0, 64) == [(i, h.bit_count()) for i, h in enumerate(hashes)]
    assert _all_agree(kernels, [TOP], 0, 64) == [(0, 64)]
    assert _all_agree(kernels, hashes, TOP, 0) == [(1, 0), (8, 0)]


def test_any_iterable(kernels):
    hashes = [3, 7, 0, TOP]
    want = kernels.python.radius_scan(hashes, 1, 2)
    for module in kernels:
        assert module.radius_scan(tuple(hashes), 1, 2) == want
        assert module.radius_scan(iter(hashes), 1, 2) == want


def test_typed_rejects_what_is_not_uint64(kernels):
    for bad in ([-1], [TOP + 1]):
        with pytest.raises(OverflowError):
            kernels.typed.radius_scan(bad, 0, 64)
    with pytest.raises(OverflowError):
        kernels.typed.radius_scan([0], TOP + 1, 64)
    with pytest.raises(TypeError):
        kernels.typed.radius_scan_packed(array.array("I", [1, 2]), 0, 64)
