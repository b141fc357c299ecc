"""Near-duplicate images: an in-memory index of pHashes by paste id.

Built from the database on first use, then topped up from it with the
pastes newer than the last ones seen (minus a window, because ids from
concurrent transactions can commit out of order).  When to top up: every
process that commits image uploads writes a new generation token to the
shared cache, so a lookup costs one cache read while nothing changed and
sees other processes' uploads as soon as they are committed; without a token
(a cold or dead cache) it re-reads at most once per ``refresh`` seconds.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pastefile.ext.hamming import HammingIndex

from .repository import to_unsigned64

Loader = Callable[[int], list[tuple[int, int]]]
# ids handed out this close below the highest seen may still be committing
REREAD_WINDOW = 1024


class SimilarIndex:
    def __init__(self, generation: Callable[[], object] = lambda: None, refresh: float = 0.5):
        """``generation()`` gives the shared token (None when unknown)."""
        self._generation = generation
        self._seen = None
        self.refresh = refresh
        self._index: HammingIndex | None = None
        self._high = 0
        self._checked = 0.0
        self._lock = threading.Lock()

    def add(self, paste_id: int, phash: int) -> None:
        """Index an upload of this process at once (others arrive by refresh)."""
        with self._lock:
            if self._index is not None:
                self._index.add(paste_id, phash)

    def discard(self, paste_id: int) -> None:
        with self._lock:
            if self._index is not None:
                self._index.discard(paste_id)

    def _current(self, load: Loader) -> HammingIndex:
        """The index, topped up from the database; call with the lock held."""
        now = time.monotonic()
        token = self._generation()
        if token is None:
            stale = now - self._checked >= self.refresh
        else:
            stale = token != self._seen
        if self._index is None or stale:
            rows = load(max(0, self._high - REREAD_WINDOW) if self._index is not None else 0)
            if self._index is None:
                self._index = HammingIndex()
            if rows:
                self._index.add_many([i for i, _ in rows], [to_unsigned64(h) for _, h in rows])
                self._high = max(self._high, max(i for i, _ in rows))
            self._checked = now
            self._seen = token
        return self._index

    def search(self, phash: int, max_distance: int, load: Loader) -> list[tuple[int, int]]:
        """(paste id, distance) within ``max_distance`` bits, nearest first;
        ``load(after_id)`` reads (paste id, signed 64-bit pHash) pairs."""
        # the index is not safe to read while another thread adds to it
        with self._lock:
            return self._current(load).search(phash, max_distance)
