"""pytest-benchmark suites for pastefile.ext.hamming against a NumPy popcount scan.

One million random 64-bit hashes; each round answers 50 queries, each a
stored hash with up to six bits flipped (different buckets every query, as
in real use).  The yardstick is ``np.bitwise_count(hashes ^ q) <= r`` (NumPy
2.0 or later).  Every round checks its results against the scan's, so
``--benchmark-disable`` makes this a quick correctness pass.
"""
from __future__ import annotations

import numpy as np
import pytest

from pastefile.ext.hamming import HammingIndex

COUNT = 1_000_000
QUERIES = 50
RADIUS = 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    hashes = rng.integers(0, 2**64, COUNT, dtype=np.uint64)
    ids = np.arange(COUNT, dtype=np.int64)
    queries = []
    for _ in range(QUERIES):
        q = int(hashes[rng.integers(COUNT)])
        for bit in rng.choice(64, size=int(rng.integers(0, 7)), replace=False):
            q ^= 1 << int(bit)
        queries.append(q)
    index = HammingIndex()
    index.add_many(ids, hashes)
    return hashes, ids, queries, index


def numpy_scan(hashes, ids, queries, radius):
    out = []
    for q in queries:
        dist = np.bitwise_count(hashes ^ np.uint64(q))
        hit = np.nonzero(dist <= radius)[0]
        out.append(sorted(zip(ids[hit].tolist(), dist[hit].tolist())))
    return out


@pytest.fixture(scope="module")
def expected(data):
    hashes, ids, queries, _ = data
    # np.bitwise_count is NumPy 2.0 (setup.py's test extras ask for it)
    return numpy_scan(hashes, ids, queries, RADIUS)


def _as_sets(results):
    return [sorted(r) for r in results]


@pytest.mark.benchmark(group="hamming-radius8-1M-x50")
def test_reference_numpy_bitwise_count_scan(benchmark, data, expected):
    hashes, ids, queries, _ = data
    assert benchmark(numpy_scan, hashes, ids, queries, RADIUS) == expected


@pytest.mark.benchmark(group="hamming-radius8-1M-x50")
@pytest.mark.parametrize("strategy", ["auto", "mih", "scan"])
def test_index_search(benchmark, data, expected, strategy):
    _, _, queries, index = data
    results = benchmark(lambda: [index.search(q, RADIUS, strategy=strategy) for q in queries])
    assert _as_sets(results) == expected


def numpy_nearest(hashes, ids, queries, k):
    out = []
    for q in queries:
        dist = np.bitwise_count(hashes ^ np.uint64(q))
        kth = np.partition(dist, k - 1)[k - 1]
        near = np.nonzero(dist <= kth)[0]
        order = near[np.lexsort((ids[near], dist[near]))][:k]
        out.append(list(zip(ids[order].tolist(), dist[order].tolist())))
    return out


@pytest.mark.benchmark(group="hamming-nearest10-1M-x50")
def test_reference_numpy_nearest(benchmark, data, expected):
    hashes, ids, queries, index = data
    results = benchmark(numpy_nearest, hashes, ids, queries, 10)
    assert results[:5] == [index.nearest(q, 10) for q in queries[:5]]


@pytest.mark.benchmark(group="hamming-nearest10-1M-x50")
@pytest.mark.parametrize("strategy", ["auto", "scan"])
def test_index_nearest(benchmark, data, strategy):
    hashes, ids, queries, index = data
    results = benchmark(lambda: [index.nearest(q, 10, strategy=strategy) for q in queries])
    for q, got in zip(queries[:5], results):
        dist = np.bitwise_count(hashes ^ np.uint64(q)).astype(np.int64)
        order = np.lexsort((ids, dist))[:10]
        assert got == list(zip(ids[order].tolist(), dist[order].tolist()))
