"""What the processes of a deployment agree on, behind small ports.

Correctness across processes rests on three things: one render at a time
per rendition (the single-flight lock), one writer at a time per blob when a
file is put back or taken away (per-blob locks), and every process hearing
of changes that its own caches cannot see (announcements: a token that
changes whenever any process announces).  Each is a port here with the
implementation a single machine uses, and :func:`for_deployment` chooses
the shared ones when the deployment has them: nodes that share only
PostgreSQL, memcached and an object store (no storage root) then agree
through advisory locks and memcached, never through files of one host.
"""
from __future__ import annotations

import abc
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from . import repository
from .cache import Cache, MemcachedCache
from .pglocks import AdvisoryFlightLock
from .ratelimit import SharedUploadCounters, UploadLimiter, Verdict
from .singleflight import SingleFlight

log = logging.getLogger(__name__)

# the removals token every node reads from memcached
REMOVALS_GENERATION = "removals:generation"


class FlightLock(Protocol):
    """``with flights(key):`` runs one holder of ``key`` at a time across the
    deployment; raises Busy past its timeout rather than wait for ever."""

    def __call__(self, key: str) -> AbstractContextManager[None]: ...


class BlobLocks(Protocol):
    def lock(self, conn: Connection, shas: Iterable[bytes]) -> None:
        """Hold the blobs' locks until ``conn``'s transaction ends (taken in
        one order everywhere: uploads, renditions, removals, repairs)."""


class TransactionBlobLocks:
    """Per-blob locks taken in the database transaction: advisory locks on
    PostgreSQL (shared by every node), SQLite's single writer otherwise."""

    def lock(self, conn: Connection, shas: Iterable[bytes]) -> None:
        repository.lock_blobs(conn, shas)


class UploadCounters(Protocol):
    def admit(self, client: str, length: int | None) -> Verdict:
        """Count an upload of ``length`` bytes by ``client`` against its
        allowance, or say why not (413: never fits, 429: not yet)."""


class Announcements(abc.ABC):
    """A token that changes whenever any process announces."""

    @abc.abstractmethod
    def token(self) -> object:
        """The token now; None when it is unknown (a cold or dead cache)."""

    @abc.abstractmethod
    def announce(self, written: Mapping[str, Any] | None = None) -> None:
        """Change the token for every process.  ``written``: cache entries
        the caller has just written; a token kept in the cache that is among
        them has been announced by that write already."""


class StampFile(Announcements):
    """A file under the storage root (which every process of a host shares),
    replaced whole on each announcement; its token is (inode, mtime)."""

    def __init__(self, path: str):
        self.path = path

    def token(self) -> tuple[int, int]:
        """(inode, mtime), (0, 0) before the first announcement: one stat."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_mtime_ns)

    def announce(self, written: Mapping[str, Any] | None = None) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w") as f:
            f.write(os.urandom(8).hex())
        os.replace(tmp, self.path)  # a new inode: every process sees a change


class CacheEntry(Announcements):
    """A value under ``key`` in the shared cache (memcached), which every
    node reads: one cache read per look."""

    def __init__(self, cache: Cache, key: str, expire: int = 0):
        self.cache, self.key, self.expire = cache, key, expire

    def token(self) -> object:
        return self.cache.get(self.key)

    def announce(self, written: Mapping[str, Any] | None = None) -> None:
        if written is None or self.key not in written:
            self.cache.set(self.key, new_token(), self.expire)


class StampAndCacheEntry(Announcements):
    """A node-local :class:`StampFile` joined with a token in memcached that
    every node reads: the workers of the announcing node see the change at
    their next look (one stat), other nodes within ``interval`` seconds,
    since each process reads memcached at most once per ``interval``.

    The token is None once a read of memcached fails (until one succeeds),
    so a dead cache is never mistaken for "nothing removed".  A key missing
    from memcached (a cold or restarted node, an eviction) is replaced by a
    new token, which reads as a change: processes drop rows they keep.
    """

    def __init__(self, stamp: StampFile, cache: MemcachedCache, key: str, expire: int = 0,
                 interval: float = 0.25, clock=time.monotonic):
        self.stamp, self.cache, self.key, self.expire = stamp, cache, key, expire
        self.interval, self.clock = interval, clock
        self._shared: object = None
        self._read_at = -math.inf
        self._last_warning = -math.inf

    def token(self) -> object:
        now = self.clock()
        if now - self._read_at >= self.interval:
            # claimed before the round trip: threads looking meanwhile take the
            # value read last instead of reading too (no lock: a fork may
            # happen while a thread holds one)
            self._read_at = now
            self._shared = self._read_shared()
        shared = self._shared
        return None if shared is None else (self.stamp.token(), shared)

    def _read_shared(self) -> object:
        client, full = self.cache.client, self.cache.full_key(self.key)
        try:
            value = client.get(full)
            if value is None:
                # missing, or a node in the client's retry window: only an
                # add that stores, or a value read back, tells them apart
                fresh = new_token()
                if client.add(full, fresh, expire=self.expire, noreply=False):
                    return fresh
                value = client.get(full)
        except Exception as exc:  # noqa: BLE001 - any cache failure: unknown
            self._warn(exc)
            return None
        return value

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning("removals token unknown, memcached unreachable: %s: %s", type(exc).__name__, exc)

    def announce(self, written: Mapping[str, Any] | None = None) -> None:
        self.stamp.announce()
        if written is None or self.key not in written:
            self.cache.set(self.key, new_token(), self.expire)
        self._read_at = -math.inf  # this process reads the new value at its next look


def new_token() -> str:
    return os.urandom(8).hex()


@dataclass(frozen=True)
class Coordination:
    flights: FlightLock
    blob_locks: BlobLocks
    # pastes were removed: rows cached in a process are stale
    removals: Announcements
    # image pastes were committed: near-duplicate indexes are behind
    images: Announcements
    # uploads per client address and window
    uploads: UploadCounters


def local(
    storage_root: str, cache: Cache, image_generation_key: str, expire: int = 0,
    upload_limits: tuple[int, int, float] = (0, 0, 60.0),
) -> Coordination:
    """The implementations of one host, for processes that share ``storage_root``
    (:func:`for_deployment` picks shared ones where the deployment has them):
    flock'ed lock files and stamp files under ``storage_root/locks``, the
    database's per-blob locks, and, with memcached, the near-duplicate
    generation in the cache under ``image_generation_key`` (a cache of one
    process alone cannot carry another process's token: a stamp file does),
    and upload counters kept in this process (``upload_limits``: uploads,
    bytes, window seconds)."""
    locks = os.path.join(storage_root, "locks")
    images: Announcements
    if isinstance(cache, MemcachedCache):
        images = CacheEntry(cache, image_generation_key, expire)
    else:
        images = StampFile(os.path.join(locks, "images"))
    return Coordination(
        flights=SingleFlight(locks),
        blob_locks=TransactionBlobLocks(),
        removals=StampFile(os.path.join(locks, "removals")),
        images=images,
        uploads=UploadLimiter(*upload_limits),
    )


def for_deployment(
    storage_root: str, cache: Cache, engine: Engine, image_generation_key: str, expire: int = 0,
    upload_limits: tuple[int, int, float] = (0, 0, 60.0),
) -> Coordination:
    """The implementations this deployment can share.  On PostgreSQL, the
    single flight is an advisory lock (every node on the database); with
    memcached, upload counters, the removals token (joined with a stamp file
    under ``storage_root/locks`` for the workers of one node) and the
    near-duplicate generation live there.  Otherwise they are those of
    :func:`local`, for processes that share ``storage_root``.  Per-blob locks
    are the database's either way."""
    locks = os.path.join(storage_root, "locks")
    flights: FlightLock
    if engine.dialect.name == "postgresql":
        flights = AdvisoryFlightLock(engine)
    else:
        flights = SingleFlight(locks)
    removals: Announcements = StampFile(os.path.join(locks, "removals"))
    images: Announcements
    uploads: UploadCounters
    if isinstance(cache, MemcachedCache):
        removals = StampAndCacheEntry(removals, cache, REMOVALS_GENERATION)
        images = CacheEntry(cache, image_generation_key, expire)
        uploads = SharedUploadCounters(cache, *upload_limits)
    else:
        images = StampFile(os.path.join(locks, "images"))
        uploads = UploadLimiter(*upload_limits)
    return Coordination(
        flights=flights,
        blob_locks=TransactionBlobLocks(),
        removals=removals,
        images=images,
        uploads=uploads,
    )
