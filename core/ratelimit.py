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
:class:`pastefile.core.coordination.UploadCounters`; a shared one (counters
in memcached) replaces it there.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


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
