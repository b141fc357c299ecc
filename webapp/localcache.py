"""Bounded per-process memory for answers the web front derives once:
rendered pages, and each text blob's charset."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class LocalLRU:
    """A thread-safe LRU bounded by entries and, with ``max_bytes``, by the
    length of the values it holds.  Callers keep in it only what never goes
    stale under its key (content hashes, or keys that name every input)."""

    def __init__(self, max_entries: int, max_bytes: int | None = None):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if self.max_bytes is not None:
                self._bytes += len(value) - (len(old) if old is not None else 0)
            self._items[key] = value
            while len(self._items) > self.max_entries or (
                self.max_bytes is not None and self._bytes > self.max_bytes
            ):
                _, dropped = self._items.popitem(last=False)
                if self.max_bytes is not None:
                    self._bytes -= len(dropped)
