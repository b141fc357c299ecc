"""What the core counts, told to whoever listens (a port; no exporter here).

The core calls the module-level functions below at the events worth
counting; they do nothing until an application installs a recorder with
:func:`install` (the web app installs one backed by Prometheus).  A
recorder has ``inc(name, amount=1, **labels)`` and
``observe(name, value, **labels)``; it ignores names it does not know, and
must never raise into the core's work.

Events (name: labels):

* ``upload`` observed with the upload's size in bytes: ``outcome`` is
  ``created`` (a new paste) or ``repeat`` (the same bytes under the same
  name: the earlier paste answers)
* ``rendition``: ``outcome`` is ``rendered`` (made now) or ``served``
  (already made: from the cache or the database)
* ``cache``: ``result`` is ``hit`` or ``miss`` (read-through lookups)
* ``cache_error``: ``op`` (a cache server failed; served without it)
* ``group_commit_batch`` observed with a batch's number of uploads
* ``group_commit_wait`` observed with the seconds an upload waited for its commit
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class Recorder(Protocol):
    def inc(self, name: str, amount: float = 1, **labels: str) -> None: ...

    def observe(self, name: str, value: float, **labels: str) -> None: ...


class NoRecorder:
    """The default: counts nothing."""

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        pass

    def observe(self, name: str, value: float, **labels: str) -> None:
        pass


_recorder: Recorder = NoRecorder()


def install(recorder: Recorder | None) -> Recorder:
    """Send the core's events to ``recorder`` (None: to nobody); the one it replaces."""
    global _recorder
    previous, _recorder = _recorder, recorder if recorder is not None else NoRecorder()
    return previous


def recorder() -> Recorder:
    return _recorder


def inc(name: str, amount: float = 1, **labels: str) -> None:
    try:
        _recorder.inc(name, amount, **labels)
    except Exception:  # noqa: BLE001 - counting never fails the work it counts
        pass


def observe(name: str, value: float, **labels: str) -> None:
    try:
        _recorder.observe(name, value, **labels)
    except Exception:  # noqa: BLE001
        pass


def timed(name: str, fn: Callable[..., Any], *args: Any, **labels: str) -> Any:
    """``fn(*args)``, its duration in seconds observed as ``name`` (even when it raises)."""
    start = time.perf_counter()
    try:
        return fn(*args)
    finally:
        observe(name, time.perf_counter() - start, **labels)
