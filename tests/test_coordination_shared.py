"""Coordination for nodes that share only PostgreSQL and memcached: the single
flight as an advisory lock, upload counters and the removals token in
memcached, and the factory that picks them.  Separate processes, separate
client instances and separate stamp directories stand for separate nodes."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid

import pytest
from sqlalchemy import func, select

from pastefile.core import Busy, db
from pastefile.core.cache import MemcachedCache, MemoryCache
from pastefile.core.coordination import (
    CacheEntry,
    StampAndCacheEntry,
    StampFile,
    TransactionBlobLocks,
    for_deployment,
    local,
)
from pastefile.core.pglocks import FLIGHT_CLASS, AdvisoryFlightLock, flight_key
from pastefile.core.ratelimit import SharedUploadCounters, UploadLimiter
from pastefile.core.singleflight import SingleFlight

from .servers import free_port

SPAWN = multiprocessing.get_context("spawn")
WINDOW = 60.0
NOW = 1_800_000_000.0  # a fixed wall-clock moment for the shared buckets


def _memcached(nodes, prefix: str) -> MemcachedCache:
    return MemcachedCache([node.address for node in nodes], prefix=prefix)


def _dead_memcached(prefix: str = "dead") -> MemcachedCache:
    return MemcachedCache([f"127.0.0.1:{free_port()}"], prefix=prefix)


@pytest.fixture
def prefix():
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def engine(pg_url):
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


# -- the single flight on PostgreSQL ---------------------------------------------


def _contend(url: str, key: str, log_path: str, tag: str, rounds: int, start) -> None:
    engine = db.make_engine(url)
    flights = AdvisoryFlightLock(engine, timeout=30)
    start.wait(30)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        for _ in range(rounds):
            with flights(key):
                os.write(fd, f"{tag} enter\n".encode())
                time.sleep(0.02)
                os.write(fd, f"{tag} exit\n".encode())
    finally:
        os.close(fd)
        engine.dispose()


def _hold(url: str, key: str, held) -> None:
    engine = db.make_engine(url)
    with AdvisoryFlightLock(engine)(key):
        held.set()
        time.sleep(120)


def test_one_holder_at_a_time_across_processes(pg_url, tmp_path):
    log_path = str(tmp_path / "markers")
    start = SPAWN.Event()
    procs = [SPAWN.Process(target=_contend, args=(pg_url, "rend:shared", log_path, tag, 10, start))
             for tag in ("a", "b")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    lines = open(log_path).read().split("\n")[:-1]
    assert len(lines) == 40
    for enter, exit_ in zip(lines[::2], lines[1::2]):  # never two inside at once
        tag = enter.split()[0]
        assert (enter, exit_) == (f"{tag} enter", f"{tag} exit")
    assert {line.split()[0] for line in lines} == {"a", "b"}


def test_other_keys_and_blob_locks_do_not_wait(engine):
    flights = AdvisoryFlightLock(engine, timeout=0.3)
    with flights("rend:one"):
        started = time.monotonic()
        with flights("rend:two"):
            pass
        assert time.monotonic() - started < 0.3
        # the bigint a blob's lock would use for the same 64 bits is another lock
        bigint = int.from_bytes(
            FLIGHT_CLASS.to_bytes(4, "big") + flight_key("rend:one").to_bytes(4, "big", signed=True),
            "big", signed=True,
        )
        with engine.begin() as conn:
            assert conn.execute(select(func.pg_try_advisory_xact_lock(bigint))).scalar()
    # every connection went back to the pool, unlocked
    assert engine.pool.checkedout() == 0
    with flights("rend:one"):
        pass


def test_waiting_past_the_timeout_is_busy(engine):
    holder = AdvisoryFlightLock(engine)
    waiter = AdvisoryFlightLock(engine, timeout=0.3)
    with holder("rend:busy"):
        started = time.monotonic()
        with pytest.raises(Busy):
            with waiter("rend:busy"):
                pytest.fail("two holders")
        assert 0.3 <= time.monotonic() - started < 2
    with waiter("rend:busy"):  # released on leaving
        pass
    assert engine.pool.checkedout() == 0


def test_a_killed_holder_releases_the_key(engine, pg_url):
    held = SPAWN.Event()
    proc = SPAWN.Process(target=_hold, args=(pg_url, "rend:killed", held))
    proc.start()
    try:
        assert held.wait(60)
        with pytest.raises(Busy):
            with AdvisoryFlightLock(engine, timeout=0.2)("rend:killed"):
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        started = time.monotonic()
        with AdvisoryFlightLock(engine, timeout=10)("rend:killed"):
            pass
        assert time.monotonic() - started < 5
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()


# -- upload counters in memcached --------------------------------------------------


def _admit_many(addresses: list[str], prefix: str, attempts: int, start, results) -> None:
    cache = MemcachedCache(addresses, prefix=prefix)
    counters = SharedUploadCounters(cache, 7, 0, WINDOW, clock=lambda: NOW)
    start.wait(30)
    results.put([counters.admit("192.0.2.50", 100).status for _ in range(attempts)])
    cache.close()


def test_uploads_per_window_across_nodes(memcached_nodes, prefix):
    def node(clock=lambda: NOW):
        return SharedUploadCounters(_memcached(memcached_nodes, prefix), 5, 0, WINDOW, clock=clock)

    nodes = [node() for _ in range(3)]
    verdicts = [nodes[i % 3].admit("192.0.2.1", 10) for i in range(12)]
    assert [v.status for v in verdicts] == [0] * 5 + [429] * 7
    assert {v.retry_after for v in verdicts[5:]} == {12}  # one upload every 12 s
    assert nodes[0].admit("192.0.2.2", 10).status == 0  # another client, its own bucket
    later = node(lambda: NOW + 12)
    assert later.admit("192.0.2.1", 10).status == 0
    assert later.admit("192.0.2.1", 10).status == 429


def test_same_verdicts_as_one_process(memcached_nodes, prefix):
    """The shared buckets answer what UploadLimiter answers in one process."""
    now = [NOW]
    shared = SharedUploadCounters(_memcached(memcached_nodes, prefix), 3, 1000, WINDOW, clock=lambda: now[0])
    alone = UploadLimiter(3, 1000, WINDOW, clock=lambda: now[0])
    steps = [(0, 400), (0, 400), (1, 300), (0, 10), (5, 100), (20, 600), (0, 0), (40, 900), (3, 50), (60, 1000),
             (0, 1), (7, 120), (0, 2000)]
    for advance, length in steps:
        now[0] += advance
        one, other = shared.admit("c", length), alone.admit("c", length)
        assert one.status == other.status and abs(one.retry_after - other.retry_after) <= 1, (advance, length)


def test_uploads_per_window_across_processes(memcached_nodes, prefix):
    start, results = SPAWN.Event(), SPAWN.Queue()
    addresses = [node.address for node in memcached_nodes]
    procs = [SPAWN.Process(target=_admit_many, args=(addresses, prefix, 10, start, results)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    statuses = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    flat = [s for one in statuses for s in one]
    assert flat.count(0) == 7 and flat.count(429) == 13


def test_bytes_per_window_across_nodes(memcached_nodes, prefix):
    one, two = (SharedUploadCounters(_memcached(memcached_nodes, prefix), 0, 1000, WINDOW, clock=lambda: NOW)
                for _ in range(2))
    assert one.admit("a", 1001).status == 413  # never fits, waiting does not help
    assert one.admit("a", 600).status == 0
    refused = two.admit("a", 600)
    assert refused.status == 429 and refused.retry_after == 12  # 200 bytes missing, 1000 per minute
    assert two.admit("a", 400).status == 0  # a refused request took nothing
    assert one.admit("a", 1).status == 429


def test_refused_by_bytes_gives_the_upload_back(memcached_nodes, prefix):
    counters = SharedUploadCounters(_memcached(memcached_nodes, prefix), 2, 1000, WINDOW, clock=lambda: NOW)
    assert counters.admit("a", 900).status == 0
    assert counters.admit("a", 900).status == 429
    assert counters.admit("a", 100).status == 0  # the refused one counted no upload
    assert counters.admit("a", 0).status == 429


def test_dead_memcached_falls_back_to_this_process(caplog):
    counters = SharedUploadCounters(_dead_memcached(), 2, 0, WINDOW)
    with caplog.at_level(logging.WARNING, logger="pastefile.core.ratelimit"):
        statuses = [counters.admit("a", 10).status for _ in range(4)]
    assert statuses == [0, 0, 429, 429]  # the local buckets' verdicts
    assert counters.admit("a", 10).retry_after >= 1
    warnings = [r for r in caplog.records if r.name == "pastefile.core.ratelimit"]
    assert len(warnings) == 1 and "per process" in warnings[0].getMessage()
    assert counters.admit("b", 10**9).status == 0  # no byte limit: never 413


# -- the removals token ----------------------------------------------------------------


def _removals(tmp_path, node: str, cache) -> StampAndCacheEntry:
    return StampAndCacheEntry(StampFile(str(tmp_path / node / "locks" / "removals")), cache, "removals:generation")


def test_a_removal_reaches_other_nodes_within_a_second(tmp_path, memcached_nodes, prefix):
    one = _removals(tmp_path, "one", _memcached(memcached_nodes, prefix))
    other = _removals(tmp_path, "other", _memcached(memcached_nodes, prefix))
    before = other.token()
    assert before is not None and other.token() == before
    one.announce()
    deadline = time.monotonic() + 1.0
    while other.token() == before:
        assert time.monotonic() < deadline, "another node did not see the removal within 1 s"
        time.sleep(0.02)


def test_a_removal_reaches_this_nodes_workers_at_once(tmp_path, memcached_nodes, prefix):
    one = _removals(tmp_path, "node", _memcached(memcached_nodes, prefix))
    # another worker of the same node: the same stamp file, a long interval
    # so that only the stamp file can tell it
    worker = StampAndCacheEntry(StampFile(one.stamp.path), _memcached(memcached_nodes, prefix),
                                "removals:generation", interval=3600)
    before, mine = worker.token(), one.token()
    one.announce()
    assert worker.token() != before
    assert one.token() != mine


def test_removals_token_unknown_without_memcached(tmp_path):
    removals = _removals(tmp_path, "node", _dead_memcached())
    assert removals.token() is None
    removals.announce()  # does not raise; the node's own workers still hear it
    assert removals.stamp.token() != (0, 0)


# -- the factory --------------------------------------------------------------------------


def test_shared_implementations_for_postgresql_and_memcached(tmp_path, engine, memcached_nodes, prefix):
    cache = _memcached(memcached_nodes, prefix)
    chosen = for_deployment(str(tmp_path), cache, engine, "similar:generation", 60, (3, 1000, 60.0))
    assert isinstance(chosen.flights, AdvisoryFlightLock) and chosen.flights.engine is engine
    assert isinstance(chosen.uploads, SharedUploadCounters)
    assert (chosen.uploads.uploads, chosen.uploads.max_bytes, chosen.uploads.window) == (3, 1000, 60.0)
    assert isinstance(chosen.removals, StampAndCacheEntry) and chosen.removals.cache is cache
    assert isinstance(chosen.images, CacheEntry) and chosen.images.key == "similar:generation"
    assert isinstance(chosen.blob_locks, TransactionBlobLocks)


def test_local_implementations_for_sqlite_and_memory(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.sqlite'}")
    try:
        chosen = for_deployment(str(tmp_path), MemoryCache(), engine, "similar:generation", 0, (3, 0, 60.0))
        assert isinstance(chosen.flights, SingleFlight)
        assert isinstance(chosen.uploads, UploadLimiter) and chosen.uploads.uploads == 3
        assert isinstance(chosen.removals, StampFile) and isinstance(chosen.images, StampFile)
        assert chosen.removals.path == str(tmp_path / "locks" / "removals")
        # local() still chooses what one host shares
        assert isinstance(local(str(tmp_path), MemoryCache(), "similar:generation").flights, SingleFlight)
    finally:
        engine.dispose()


def test_single_flight_threads_on_postgresql(engine):
    """Threads of one process exclude each other too (a connection each)."""
    flights = AdvisoryFlightLock(engine, timeout=30)
    inside, most, guard = [0], [0], threading.Lock()

    def work():
        for _ in range(5):
            with flights("rend:threads"):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.005)
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == 1 and engine.pool.checkedout() == 0


# -- two nodes of one deployment -----------------------------------------------------------


@pytest.fixture
def two_nodes(tmp_path, fresh_pg_url, memcached_nodes, monkeypatch):
    """Two services as two machines: their own storage roots, one database,
    one memcached key space, coordination chosen by the factory."""
    from pastefile.core import PasteFileService, coordination

    from .conftest import settings_for

    flights_engine = db.make_engine(fresh_pg_url)
    # a service that still calls local() gets the factory's choice too
    monkeypatch.setattr(
        coordination, "local",
        lambda root, cache, key, expire=0, limits=(0, 0, 60.0): for_deployment(
            root, cache, flights_engine, key, expire, limits),
    )
    settings = settings_for("postgresql", tmp_path / "one", pg_url=fresh_pg_url, memcached=memcached_nodes,
                            **{"pastefile.rate_limit.uploads": "3"})
    one = PasteFileService(settings)
    one.initdb()
    two = PasteFileService({**settings, "pastefile.storage_root": str(tmp_path / "two" / "files")})
    assert one.store.root != two.store.root
    yield one, two
    two.close()
    one.close()
    flights_engine.dispose()


def test_a_paste_removed_on_one_node_is_gone_on_the_other_within_a_second(two_nodes):
    import io

    from .conftest import random_text

    one, two = two_nodes
    paste = one.upload(io.BytesIO(random_text(777)), "shared.txt")
    assert two.get(paste.filehash) == paste  # now kept in the other node's process
    one.delete(paste.filehash, paste.delete_token)
    assert one.get(paste.filehash) is None
    deadline = time.monotonic() + 1.0
    while two.get(paste.filehash) is not None:
        assert time.monotonic() < deadline, "the other node still answers the removed paste"
        time.sleep(0.02)


def test_upload_allowance_is_shared_by_the_nodes(two_nodes):
    one, two = two_nodes
    statuses = [(one if i % 2 else two).admit_upload("192.0.2.77", 100).status for i in range(5)]
    assert statuses.count(0) == 3 and statuses[3:] == [429, 429]


def test_the_same_resize_on_two_nodes_is_rendered_once(two_nodes):
    import io

    from .conftest import make_image

    one, two = two_nodes
    source = one.upload(io.BytesIO(make_image("PNG", (96, 64), seed=9191)), "source.png")
    renders, barrier = [], threading.Barrier(2)
    for node in (one, two):
        produce = node._renditions.produce

        def slow_produce(*args, _produce=produce, **kwargs):
            renders.append(1)
            time.sleep(0.3)  # long enough for the other node to ask meanwhile
            return _produce(*args, **kwargs)

        node._renditions.produce = slow_produce
    results, errors = {}, []

    def ask(node):
        try:
            barrier.wait(10)
            results[node] = node.rendition(source.filehash, 32, 32)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(node,)) for node in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(renders) == 1
    assert results[one].sha256 == results[two].sha256
