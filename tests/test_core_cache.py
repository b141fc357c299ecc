"""The cache layer against a real memcached (two nodes), the in-process LRU and null."""
from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from pastefile.core.cache import KEY_VERSION, Cache, MemcachedCache, MemoryCache, NullCache, cache

from .servers import Memcached, free_port


@pytest.fixture
def mc(memcached_nodes):
    client = MemcachedCache([n.address for n in memcached_nodes], prefix=f"t{uuid.uuid4().hex[:8]}")
    yield client
    client.close()


@pytest.fixture(params=["memcached", "memory"])
def any_cache(request):
    if request.param == "memory":
        return MemoryCache(prefix="t")
    return request.getfixturevalue("mc")


def test_roundtrip_values(any_cache):
    any_cache.set("d", {"a": 1, "b": [1, 2], "c": None})
    any_cache.set("b", b"\x00\xffbytes")
    any_cache.set("s", "text")
    assert any_cache.get("d") == {"a": 1, "b": [1, 2], "c": None}
    assert any_cache.get("b") == b"\x00\xffbytes"
    assert any_cache.get("s") == "text"
    assert any_cache.get("missing") is None


def test_many_add_delete(any_cache):
    any_cache.set_many({f"k{i}": i for i in range(20)})
    assert any_cache.get_many([f"k{i}" for i in range(25)]) == {f"k{i}": i for i in range(20)}
    assert any_cache.add("k1", 99) is False
    assert any_cache.get("k1") == 1
    assert any_cache.add("fresh", 5) is True
    any_cache.delete("k1")
    any_cache.delete_many(["k2", "k3"])
    assert any_cache.get_many(["k1", "k2", "k3", "k4"]) == {"k4": 4}


def test_expiry(any_cache):
    any_cache.set("short", 1, expire=1)
    assert any_cache.get("short") == 1
    time.sleep(2.1)
    assert any_cache.get("short") is None


def test_keys_are_versioned_and_sanitised(any_cache):
    assert f":v{KEY_VERSION}:" in any_cache.full_key("x")
    weird = "key with spaces\nand newline " + "x" * 300
    full = any_cache.full_key(weird)
    assert len(full) < 250 and " " not in full
    any_cache.set(weird, 7)
    assert any_cache.get(weird) == 7


def test_memcached_spreads_keys_over_nodes(mc, memcached_nodes):
    keys = [f"spread{i}" for i in range(200)]
    mc.set_many({k: 1 for k in keys})
    # each node holds a share: consistent (rendezvous) hashing over the ring
    from pymemcache.client.base import Client

    counts = []
    for node in memcached_nodes:
        direct = Client(("127.0.0.1", node.port))
        counts.append(len(direct.get_many([mc.full_key(k) for k in keys])))
        direct.close()
    assert sum(counts) == 200
    assert all(c > 40 for c in counts), counts


def test_memory_lru_evicts_least_recent():
    c = MemoryCache(max_entries=3)
    c.set("a", 1)
    c.set("b", 2)
    c.set("c", 3)
    assert c.get("a") == 1  # a is now most recent
    c.set("d", 4)
    assert c.get("b") is None
    assert c.get_many(["a", "c", "d"]) == {"a": 1, "c": 3, "d": 4}


def test_null_cache_stores_nothing():
    c = NullCache()
    c.set("a", 1)
    assert c.get("a") is None and c.get_many(["a"]) == {}
    assert c.add("a", 1) is True


class Repo:
    def __init__(self, backend: Cache):
        self.cache = backend
        self.expire = 0
        self.calls = 0

    @cache("user:{user_id}:{kind}")
    def load(self, user_id, kind="full"):
        self.calls += 1
        return {"id": user_id, "kind": kind} if user_id > 0 else None


def test_decorator_caches_and_formats_keys(any_cache):
    repo = Repo(any_cache)
    assert repo.load(1) == {"id": 1, "kind": "full"}
    assert repo.load(1) == {"id": 1, "kind": "full"}
    assert repo.load(user_id=1, kind="full") == {"id": 1, "kind": "full"}
    assert repo.calls == 1
    assert Repo.load.key(repo, 1) == "user:1:full"
    assert repo.load(1, "short") == {"id": 1, "kind": "short"}
    assert repo.calls == 2
    # None is not cached
    assert repo.load(0) is None and repo.load(0) is None
    assert repo.calls == 4
    Repo.load.invalidate(repo, 1)
    repo.load(1)
    assert repo.calls == 5


def test_decorator_batches_with_get_many(any_cache):
    repo = Repo(any_cache)
    repo.load(1)
    loaded = []

    def loader(missing):
        loaded.extend(missing)
        return {m: {"id": m, "kind": "full"} for m in missing}

    result = Repo.load.many(repo, [1, 2, 3], loader)
    assert result == {i: {"id": i, "kind": "full"} for i in (1, 2, 3)}
    assert loaded == [2, 3]
    assert Repo.load.many(repo, [2, 3], loader) == {i: {"id": i, "kind": "full"} for i in (2, 3)}
    assert loaded == [2, 3]


def test_decorator_rejects_varargs():
    with pytest.raises(TypeError):
        cache("k:{a}")(lambda *a: None)


def test_mutex_stops_stampede(any_cache):
    calls = []
    gate = threading.Event()

    @cache("hot:{n}", max_retry=100, mc=any_cache)
    def slow(n):
        calls.append(n)
        gate.wait(2)
        time.sleep(0.2)
        return {"n": n}

    results = []
    threads = [threading.Thread(target=lambda: results.append(slow(1))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join()
    assert results == [{"n": 1}] * 8
    assert len(calls) == 1


def test_dead_node_degrades_to_miss(caplog):
    node = Memcached().start()
    client = MemcachedCache([node.address], prefix="dead", connect_timeout=0.2, timeout=0.2)
    try:
        client.set("k", {"v": 1})
        assert client.get("k") == {"v": 1}
        node.stop()
        with caplog.at_level(logging.WARNING, logger="pastefile.core.cache"):
            assert client.get("k") is None
            assert client.get_many(["k", "j"]) == {}
            client.set("k", 2)
            client.delete("k")
            assert client.add("k#mutex", 1) is True  # a mutex on a dead node never blocks
        assert any("memcached" in r.getMessage() for r in caplog.records)
    finally:
        node.stop()
        client.close()


def test_never_started_node_is_a_miss():
    client = MemcachedCache([f"127.0.0.1:{free_port()}"], prefix="none", connect_timeout=0.2, timeout=0.2)
    assert client.get("k") is None
    client.set("k", 1)
    assert client.get("k") is None
    client.close()


def test_rendezvous_hash_spreads_keys_and_moves_only_a_lost_nodes_keys():
    from collections import Counter

    from pastefile.core.cache import _FastRendezvousHash

    nodes = ["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"]
    three = _FastRendezvousHash()
    for node in nodes:
        three.add_node(node)
    keys = [f"pastefile:v3:paste:fh:{i:x}" for i in range(6000)]
    counts = Counter(three.get_node(k) for k in keys)
    assert set(counts) == set(nodes) and min(counts.values()) > 1700
    two = _FastRendezvousHash(nodes[:2])
    moved = Counter()
    for key in keys:
        owner = three.get_node(key)
        if owner != nodes[2]:
            # a key the lost node did not own stays where it was
            assert two.get_node(key) == owner
        else:
            moved[two.get_node(key)] += 1
    # the lost node's keys (about a third) go to its runner-up, spread over both survivors
    assert sum(moved.values()) == counts[nodes[2]]
    assert set(moved) == set(nodes[:2]) and min(moved.values()) > 700
    three.remove_node(nodes[2])
    assert all(three.get_node(k) == two.get_node(k) for k in keys)
