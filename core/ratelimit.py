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
:class:`SharedUploadCounters` keeps counters in memcached instead, so the
allowance holds across every worker of every node; while memcached cannot
be reached it falls back to an :class:`UploadLimiter` of its own.
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


class SharedUploadCounters:
    """Counters in memcached per client and fixed window of ``window``
    seconds (the window is ``floor(time / window)``, the same on every node
    with a synchronized clock): ``uploads`` requests and ``max_bytes``
    declared bytes per window (0: that limit is off).

    A request increments its client's counters (``incr``, or ``add`` for
    the first of a window), so at most ``uploads`` are admitted per window
    whatever worker or node they reach; a refused request gives back what
    it took.  Refusals wait for the window to turn (``Retry-After``), and a
    client may send up to twice its allowance across the turn of a window.

    When memcached fails (an error, a timeout, a node in the client's retry
    window) the request is judged by a process-local :class:`UploadLimiter`
    instead, so the limits then hold per process, and a warning is logged
    at most once a minute: an upload never fails because the cache is down.
    """

    def __init__(self, cache, uploads: int, max_bytes: int, window: float = 60.0, *, clock=time.time,
                 fallback: UploadLimiter | None = None):
        # ``cache``: a MemcachedCache (its client and key scheme; counters
        # need incr/decr and to tell a miss from a failure)
        self.cache = cache
        self.uploads = uploads
        self.max_bytes = max_bytes
        self.window = window
        self.clock = clock
        self.fallback = fallback or UploadLimiter(uploads, max_bytes, window)
        self.expire = min(_MAX_RELATIVE_EXPIRE, math.ceil(window) + 1)
        self._last_warning = -math.inf

    def admit(self, client: str, length: int | None) -> Verdict:
        length = max(0, length or 0)
        if self.max_bytes and length > self.max_bytes:
            return Verdict(413)
        if not self.uploads and not self.max_bytes:
            return Verdict(0)
        now = self.clock()
        slot = math.floor(now / self.window)
        prefix = f"ratelimit:{self.window:g}:{slot}:{client}"
        try:
            if self._take(prefix, length):
                return Verdict(0)
        except _CacheDown as exc:
            self._warn(exc.__cause__ or exc)
            return self.fallback.admit(client, length)
        return Verdict(429, max(1, math.ceil((slot + 1) * self.window - now - 1e-9)))

    def _take(self, prefix: str, length: int) -> bool:
        """Count one upload of ``length`` bytes; False (and nothing counted)
        when either allowance is exceeded."""
        taken: list[tuple[str, int]] = []
        try:
            for suffix, amount, limit in ((":n", 1, self.uploads), (":b", length, self.max_bytes)):
                if not limit or not amount:
                    continue
                key = self.cache.full_key(prefix + suffix)
                count = self._incr(key, amount)
                taken.append((key, amount))
                if count > limit:
                    self._give_back(taken)
                    return False
        except _CacheDown:
            self._give_back(taken)
            raise
        return True

    def _incr(self, key: str, amount: int) -> int:
        client = self.cache.client
        try:
            count = client.incr(key, amount, noreply=False)
            if count is None:  # the first of this window (or of its node's life)
                # a decimal string: memcached's incr works on it
                if client.add(key, amount, expire=self.expire, noreply=False):
                    return amount
                count = client.incr(key, amount, noreply=False)  # another request added it
        except Exception as exc:  # noqa: BLE001 - any failure of the cache
            raise _CacheDown() from exc
        # HashClient answers False (not None) for a node in its retry window
        if count is None or count is False:
            raise _CacheDown("memcached node in its retry window")
        return int(count)

    def _give_back(self, taken: list[tuple[str, int]]) -> None:
        client = self.cache.client
        for key, amount in taken:
            try:
                client.decr(key, amount, noreply=False)
            except Exception:  # noqa: BLE001 - then the window keeps the count
                pass

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning("upload limits held per process: memcached unreachable: %s: %s", type(exc).__name__, exc)
