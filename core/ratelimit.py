"""Per-client upload limits: how many uploads and how many bytes a client
address may send per window (``pastefile.rate_limit.*``).

Each address has two token buckets, refilled evenly over the window: one
upload token per request, one byte token per byte the request declares
(waitress sets ``Content-Length`` for chunked bodies too, once it has them).
A request that would overdraw either bucket takes nothing and is answered
429 with ``Retry-After``: the seconds until it would fit.  A request that
declares more bytes than the whole window allows can never fit: 413.

The address is ``REMOTE_ADDR``, which waitress rewrites from
``X-Forwarded-For`` only for its ``trusted_proxy``; a client cannot pick
its own.  :class:`UploadLimiter` keeps the buckets in its process: with
``workers = N`` a client spread over N processes may get up to N times the
limit.  It is the local implementation of
:class:`pastefile.core.coordination.UploadCounters`.
:class:`SharedUploadCounters` keeps the same buckets in memcached instead,
so the allowance holds across every worker of every node; while memcached
cannot be reached it falls back to an :class:`UploadLimiter` of its own.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    status: int  # 0: admitted, else 413 or 429
    retry_after: int = 0


class UploadLimiter:
    """Token buckets per client for ``uploads`` requests and ``max_bytes``
    bytes per ``window`` seconds (0: that limit is off)."""

    def __init__(self, uploads: int, max_bytes: int, window: float = 60.0, *, max_clients: int = 100_000,
                 clock=time.monotonic):
        self.uploads = uploads
        self.max_bytes = max_bytes
        self.window = window
        self.max_clients = max_clients
        self.clock = clock
        # client -> (upload tokens, byte tokens, when last refilled)
        self._buckets: OrderedDict[str, tuple[float, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, client: str, length: int | None) -> Verdict:
        length = max(0, length or 0)
        if self.max_bytes and length > self.max_bytes:
            return Verdict(413)
        now = self.clock()
        with self._lock:
            uploads, nbytes, stamp = self._buckets.pop(client, (self.uploads, self.max_bytes, now))
            elapsed = max(0.0, now - stamp)
            uploads = min(self.uploads, uploads + elapsed * self.uploads / self.window)
            nbytes = min(self.max_bytes, nbytes + elapsed * self.max_bytes / self.window)
            wait = 0.0
            if self.uploads and uploads < 1:
                wait = (1 - uploads) * self.window / self.uploads
            if self.max_bytes and nbytes < length:
                wait = max(wait, (length - nbytes) * self.window / self.max_bytes)
            if not wait:
                uploads -= 1 if self.uploads else 0
                nbytes -= length if self.max_bytes else 0
            self._buckets[client] = (uploads, nbytes, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)  # the longest idle: its bucket has refilled most
        if wait:
            return Verdict(429, max(1, math.ceil(wait - 1e-9)))
        return Verdict(0)


class _CacheDown(Exception):
    pass


# memcached reads an expiry past 30 days as a point in time
_MAX_RELATIVE_EXPIRE = 30 * 24 * 3600
# compare-and-swap rounds one admission tries: each lost round is another
# request of the same client that won, so only a flood of them exhausts it
_CAS_ROUNDS = 64


class SharedUploadCounters:
    """The buckets of :class:`UploadLimiter`, for ``uploads`` requests and
    ``max_bytes`` declared bytes per ``window`` seconds (0: that limit is
    off), kept in memcached so that they hold across every worker of every
    node: the same verdicts and ``Retry-After`` as in one process.

    Each bucket is one value per client, the moment it will be full again
    (GCRA: a bucket of ``limit`` units refilled at ``limit / window`` per
    second is full at ``tat``; a request of ``n`` units fits while
    ``max(tat, now) + n * window / limit`` is at most ``now + window``),
    changed with ``gets``/``cas`` so that concurrent requests never both
    take the last unit.  A refused request takes nothing.  The moment is
    wall-clock time: nodes need synchronized clocks (a node ``s`` seconds
    ahead sees ``s * limit / window`` more units).

    When memcached fails (an error, a timeout, a node in the client's retry
    window) the request is judged by a process-local :class:`UploadLimiter`
    instead, so the limits then hold per process, and a warning is logged
    at most once a minute: an upload never fails because the cache is down.
    """

    def __init__(self, cache, uploads: int, max_bytes: int, window: float = 60.0, *, clock=time.time,
                 fallback: UploadLimiter | None = None):
        # ``cache``: a MemcachedCache (its client and key scheme: buckets
        # need gets/cas and to tell a miss from a failure)
        self.cache = cache
        self.uploads = uploads
        self.max_bytes = max_bytes
        self.window = window
        self.clock = clock
        self.fallback = fallback or UploadLimiter(uploads, max_bytes, window)
        self._last_warning = -math.inf

    def admit(self, client: str, length: int | None) -> Verdict:
        length = max(0, length or 0)
        if self.max_bytes and length > self.max_bytes:
            return Verdict(413)
        now = self.clock()
        prefix = f"ratelimit:{self.window:g}:{client}"
        taken: list[tuple[str, float]] = []
        try:
            for suffix, amount, limit in ((":n", 1, self.uploads), (":b", length, self.max_bytes)):
                if not limit or not amount:
                    continue
                key = self.cache.full_key(prefix + suffix)
                cost = amount * self.window / limit
                wait = self._take(key, cost, now)
                if wait:
                    self._give_back(taken, now)
                    return Verdict(429, max(1, math.ceil(wait - 1e-9)))
                taken.append((key, cost))
        except _CacheDown as exc:
            self._give_back(taken, now)
            self._warn(exc.__cause__ or exc)
            return self.fallback.admit(client, length)
        return Verdict(0)

    def _take(self, key: str, cost: float, now: float) -> float:
        """Take ``cost`` seconds of the bucket at ``key``: 0.0, or the
        seconds until it would fit (and nothing taken)."""
        client = self.cache.client
        try:
            for _ in range(_CAS_ROUNDS):
                got = client.gets(key)
                if got is None:  # HashClient: a node in its retry window
                    raise _CacheDown("memcached node in its retry window")
                tat, cas = got
                new = max(float(tat or 0.0), now) + cost
                wait = new - now - self.window
                if wait > 1e-9:
                    return wait
                expire = self._expire(new, now)
                if tat is None:
                    if client.add(key, new, expire=expire, noreply=False):
                        return 0.0
                elif client.cas(key, new, cas, expire=expire, noreply=False):
                    return 0.0
                # another request changed it meanwhile (or the node failed:
                # the next gets tells)
        except _CacheDown:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the cache
            raise _CacheDown() from exc
        return 1.0  # a flood of this client's requests at once: refused, briefly

    def _give_back(self, taken: list[tuple[str, float]], now: float) -> None:
        """Return what a request took before another bucket refused it."""
        client = self.cache.client
        for key, cost in taken:
            try:
                for _ in range(_CAS_ROUNDS):
                    got = client.gets(key)
                    if got is None or got[0] is None:
                        break
                    tat, cas = got
                    new = float(tat) - cost
                    if client.cas(key, new, cas, expire=self._expire(new, now), noreply=False) is not False:
                        break
            except Exception:  # noqa: BLE001 - then the bucket keeps the cost
                pass

    def _expire(self, tat: float, now: float) -> int:
        # the value means nothing once the bucket is full again
        return max(1, min(_MAX_RELATIVE_EXPIRE, math.ceil(tat - now) + 1))

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning("upload limits held per process: memcached unreachable: %s: %s", type(exc).__name__, exc)
