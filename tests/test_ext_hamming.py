"""Tests for pastefile.ext.hamming (the multi-index-hashing near-duplicate index).

The reference is ``pastefile.ext.reference.BruteForceIndex``, which compares
the query with every hash.  Results must be equal, order included (by
distance, then id), for every search strategy.
"""
from __future__ import annotations

import random
import threading
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pastefile.ext.reference import BruteForceIndex
from pastefile.ext.hamming import STRATEGIES, HammingIndex

U64 = (1 << 64) - 1


def near(rng: random.Random, h: int, bits: int) -> int:
    for b in rng.sample(range(64), bits):
        h ^= 1 << b
    return h


def build(pairs):
    index, reference = HammingIndex(), BruteForceIndex()
    for id, h in pairs:
        assert index.add(id, h) == reference.add(id, h)
    return index, reference


def check(index, reference, queries, radii=(0, 1, 3, 4, 7, 8, 12, 16, 21, 33, 64), ks=(0, 1, 3, 10, 50)):
    for q in queries:
        ranked = reference.nearest(q, len(reference))  # every (id, distance), in order
        for r in radii:
            expected = [pair for pair in ranked if pair[1] <= r]
            for strategy in STRATEGIES:
                assert index.search(q, r, strategy=strategy) == expected, (q, r, strategy)
        for k in ks:
            for strategy in STRATEGIES:
                assert index.nearest(q, k, strategy=strategy) == ranked[:k], (q, k, strategy)


@pytest.fixture(scope="module")
def clustered():
    """5000 hashes in clusters of near duplicates, plus exact duplicates."""
    rng = random.Random(1)
    pairs = []
    for c in range(500):
        centre = rng.getrandbits(64)
        for j in range(9):
            pairs.append((len(pairs), near(rng, centre, rng.randint(0, 10))))
        pairs.append((len(pairs), centre))
    return pairs


def test_matches_brute_force(clustered):
    index, reference = build(clustered)
    rng = random.Random(2)
    queries = [near(rng, h, rng.randint(0, 12)) for _, h in rng.sample(clustered, 25)]
    queries += [rng.getrandbits(64) for _ in range(5)] + [0, U64]
    check(index, reference, queries)


def test_numpy_bulk_add_matches_brute_force():
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, 8000, dtype=np.uint64)
    hashes[100:200] = hashes[0]  # one hash shared by many ids
    ids = rng.permutation(8000).astype(np.int64) - 4000  # negative ids too
    index = HammingIndex()
    assert index.add_many(ids, hashes) == 8000
    reference = BruteForceIndex()
    for i, h in zip(ids.tolist(), hashes.tolist()):
        reference.add(i, h)
    assert len(index) == len(reference) == 8000
    pyrng = random.Random(4)
    queries = [near(pyrng, int(h), pyrng.randint(0, 9)) for h in hashes[:12]] + [int(hashes[0])]
    check(index, reference, queries, radii=(0, 2, 5, 8, 11, 18, 64), ks=(1, 5, 150))


def test_remove_and_replace():
    rng = random.Random(5)
    pairs = [(i, rng.getrandbits(64)) for i in range(3000)]
    index, reference = build(pairs)
    # replace some hashes, remove others, add back a few
    for id in rng.sample(range(3000), 600):
        h = near(rng, reference.get(id), 3) if rng.random() < 0.5 else rng.getrandbits(64)
        assert index.add(id, h) is False
        reference.add(id, h)
    for id in rng.sample(range(3000), 1200):
        assert index.discard(id) == reference.discard(id)
    for id in rng.sample(range(3000), 300):
        h = rng.getrandbits(64)
        assert index.add(id, h) == reference.add(id, h)
    assert len(index) == len(reference)
    assert sorted(index.items()) == sorted(reference.items())
    for id, h in reference.items():
        assert id in index and index.get(id) == h
    queries = [near(rng, h, rng.randint(0, 8)) for _, h in rng.sample(reference.items(), 20)]
    check(index, reference, queries)
    # remove everything
    for id, _ in reference.items():
        index.remove(id)
    assert len(index) == 0
    assert index.search(0, 64) == [] and index.nearest(0, 3) == []
    with pytest.raises(KeyError):
        index.remove(1)


def test_edge_cases():
    index = HammingIndex()
    assert index.search(123, 0) == []
    assert index.nearest(123, 5) == []
    index.add(7, 0)
    index.add(-3, U64)
    index.add(9, 0)  # the same hash under another id
    assert index.search(0, 0) == [(7, 0), (9, 0)]
    assert index.search(0, 63) == [(7, 0), (9, 0)]
    assert index.search(0, 64) == [(7, 0), (9, 0), (-3, 64)]
    assert index.nearest(U64, 1) == [(-3, 0)]
    assert index.nearest(U64, 10) == [(-3, 0), (7, 64), (9, 64)]
    assert index.add(7, 0) is False  # same id, same hash: nothing changes
    assert len(index) == 3
    assert index.get(42) is None and index.get(42, "x") == "x"
    assert 42 not in index and "7" not in index and True not in index
    assert index.discard(42) is False
    assert HammingIndex([(1, 2), (1, 3)]).items() == [(1, 3)]


def test_id_map_survives_churn():
    # many adds and removes of colliding ids exercise the open-addressing map
    index, reference = HammingIndex(), BruteForceIndex()
    rng = random.Random(6)
    for step in range(20000):
        id = rng.randrange(0, 4096) * 1024  # ids sharing low bits
        if rng.random() < 0.6:
            h = rng.getrandbits(64)
            assert index.add(id, h) == reference.add(id, h)
        else:
            assert index.discard(id) == reference.discard(id)
    assert sorted(index.items()) == sorted(reference.items())
    for id, h in reference.items():
        assert index.get(id) == h


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(0, U64)), max_size=60),
    st.lists(st.integers(0, U64), min_size=1, max_size=4),
    st.integers(0, 64),
    st.integers(0, 70),
)
def test_random_sets(pairs, queries, radius, k):
    index, reference = build(pairs)
    for q in queries:
        for strategy in STRATEGIES:
            assert index.search(q, radius, strategy=strategy) == reference.search(q, radius)
            assert index.nearest(q, k, strategy=strategy) == reference.nearest(q, k)


def test_concurrent_searches_and_writes():
    rng = random.Random(8)
    base = [(i, rng.getrandbits(64)) for i in range(20000)]
    index = HammingIndex(base)
    stop = threading.Event()
    errors = []

    def reader(seed):
        r = random.Random(seed)
        while not stop.is_set():
            id, h = base[r.randrange(len(base))]
            hits = index.search(h, 4)
            if (id, 0) not in hits:  # base ids are never removed
                errors.append((id, hits))

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for i in range(20000, 40000):
        index.add(i, rng.getrandbits(64))
        if i % 3 == 0:
            index.discard(i - 1)
    stop.set()
    for t in threads:
        t.join()
    assert not errors


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


def test_bad_arguments():
    index = HammingIndex()
    for bad_id, error in ((1.0, TypeError), (True, TypeError), (1 << 63, ValueError)):
        with pytest.raises(error):
            index.add(bad_id, 1)
    for bad_hash, error in ((-1, ValueError), (1 << 64, ValueError), ("1", TypeError), (None, TypeError)):
        with pytest.raises(error):
            index.add(1, bad_hash)
    for radius, error in ((-1, ValueError), (65, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error):
            index.search(0, radius)
    for k, error in ((-1, ValueError), (1.5, TypeError), (None, TypeError)):
        with pytest.raises(error):
            index.nearest(0, k)
    with pytest.raises(ValueError):
        index.search(0, 3, strategy="fast")
    with pytest.raises(ValueError):
        index.add_many([1, 2], [3])
    with pytest.raises(ValueError):
        index.add_many([1], [-5])
    with pytest.raises(ValueError):
        index.add_many([1 << 63], [5])
    with pytest.raises(TypeError):
        index.add_many([1.5], [5])
    with pytest.raises(TypeError):
        index.add_many([1], [True])
    assert index.add_many([], []) == 0
    assert index.add_many(array("q", [1, 2]), array("Q", [3, 4])) == 2
    assert index.add_many(np.array([5], dtype=np.int32), np.array([6], dtype=np.uint8)) == 1
    assert index.get(5) == 6
    assert len(index) == 3
