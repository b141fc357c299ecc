"""Group commit: one transaction, and one flush to disk, for many uploads.

Request threads hand their rows to :meth:`GroupCommitter.submit` and wait.
One writer thread takes everything queued, records it in one transaction and
commits once; the database's flush then covers every upload in the batch,
and each waiter gets its rows back only after that commit returned.  While
one batch commits the next one gathers, so the flush rate bounds batches,
not uploads.

SQLite has a single writer: without this, concurrent uploads queue for its
lock (sleeping in its busy handler) and pay one WAL flush each.
PostgreSQL merges concurrent flushes itself, but still saves a round trip
per statement and per commit; there ``writers`` threads commit batches side
by side, so one batch's statements travel while another waits for its flush.

Several processes (waitress workers) on one SQLite file each have a writer
thread.  Left to SQLite, the one that finds the database locked sleeps in
its busy handler (1, 2, 5, 10 ... 100 ms) however soon the lock is free; with
``lock_path`` the writers queue on an ``flock`` of that file instead, which
wakes the next one the moment the lock is released, and each gathers its
batch only once it holds the lock, so what queued meanwhile rides along.

If a batch fails, its items are retried one by one, so one bad upload fails
alone.  The thread starts on first use and again in a forked child.
"""
from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine

from . import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64


class GroupCommitter(Generic[T, R]):
    """Runs ``record(conn, items) -> results`` (one result per item, in
    order) for batches of submitted items, each batch in one transaction.

    ``after_commit(items, results)`` runs on the writer thread once a batch
    is durable (e.g. one batched cache write for all of it).
    """

    def __init__(
        self,
        engine: Engine,
        record: Callable[[Connection, Sequence[T]], list[R]],
        *,
        after_commit: Callable[[list[T], list[R]], None] | None = None,
        max_batch: int = MAX_BATCH,
        retry_on: tuple[type[BaseException], ...] = (),
        attempts: int = 3,
        lock_path: str | None = None,
        writers: int = 1,
    ):
        self.engine = engine
        self.record = record
        self.after_commit = after_commit
        self.max_batch = max_batch
        # errors a single item may meet from a concurrent transaction (a blob
        # row removed under it): tried again, up to ``attempts`` times
        self.retry_on = retry_on
        self.attempts = attempts
        self.lock_path = lock_path
        if writers < 1:
            raise ValueError("writers must be at least 1")
        self.writers = writers
        self._lock = threading.Lock()
        self._local = threading.local()
        self._queue: queue.SimpleQueue | None = None
        self._threads: list[threading.Thread] = []
        self._pid = 0
        self.batches = 0  # for tests and profiling: how many commits ran
        self.items = 0

    def submit(self, item: T) -> R:
        """Record ``item``; returns once its transaction has committed."""
        future: Future = Future()
        self._ensure_running().put((item, future))
        return metrics.timed("group_commit_wait", future.result)

    def _ensure_running(self) -> queue.SimpleQueue:
        if self._threads and self._pid == os.getpid():
            return self._queue
        with self._lock:
            if not self._threads or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._threads = [
                    threading.Thread(
                        target=self._run, args=(self._queue,), name=f"pastefile-group-commit-{n}", daemon=True
                    )
                    for n in range(self.writers)
                ]
                for thread in self._threads:
                    thread.start()
            return self._queue

    def close(self) -> None:
        """Stop the writer threads after the batches already queued."""
        with self._lock:
            threads, q = self._threads, self._queue
            self._threads, self._queue = [], None
        if threads and self._pid == os.getpid():
            for _ in threads:
                q.put(None)
            for thread in threads:
                thread.join(10)

    def _run(self, q: queue.SimpleQueue) -> None:
        # opened by the writer thread of this process: a descriptor inherited
        # across fork would share its lock with the parent
        lock_fd = -1
        if self.lock_path is not None:
            lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                first = q.get()
                if first is None:
                    return
                if lock_fd >= 0:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX)
                try:
                    settled = self._settle(self._gather(q, first))
                finally:
                    if lock_fd >= 0:
                        fcntl.flock(lock_fd, fcntl.LOCK_UN)
                # the cache write and the wake-ups need no lock
                for batch, outcome in settled:
                    self._hand_over(batch, outcome)
        finally:
            self._drop_connection()
            if lock_fd >= 0:
                os.close(lock_fd)

    def _gather(self, q: queue.SimpleQueue, first) -> list:
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                nxt = q.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                q.put(None)  # stop after this batch
                break
            batch.append(nxt)
        metrics.observe("group_commit_batch", len(batch))
        return batch

    def _settle(self, batch: list[tuple[T, Future]], attempt: int = 1) -> list[tuple[list, list | BaseException]]:
        """Commit ``batch``: [(items, results or the exception)], one entry per
        transaction that settled some of them."""
        try:
            return [(batch, self._transaction([item for item, _ in batch]))]
        except BaseException as exc:  # noqa: BLE001 - handed to the waiters
            if len(batch) > 1 and isinstance(exc, Exception):
                # settle each item on its own
                return [entry for one in batch for entry in self._settle([one])]
            if isinstance(exc, self.retry_on) and attempt < self.attempts:
                return self._settle(batch, attempt + 1)
            return [(batch, exc)]

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a dead connection is dropped either way
                log.debug("closing a writer connection failed", exc_info=True)

    def _hand_over(self, batch: list[tuple[T, Future]], outcome: list | BaseException) -> None:
        if isinstance(outcome, BaseException):
            for _, future in batch:
                future.set_exception(outcome)
            return
        if self.after_commit is not None:
            try:
                self.after_commit([item for item, _ in batch], outcome)
            except Exception:  # noqa: BLE001 - durable already; the cache is optional
                log.exception("after-commit hook failed")
        for (_, future), result in zip(batch, outcome):
            future.set_result(result)

    def _transaction(self, items: list[T]) -> list[R]:
        # each writer keeps its connection between batches: no pool checkout
        # (nor pre-ping round trip) per batch; after a failure it takes a
        # fresh one from the pool, which checks it
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.engine.connect()
        try:
            with conn.begin():
                results = self.record(conn, items)
        except BaseException:
            self._drop_connection()
            raise
        with self._lock:
            self.batches += 1
            self.items += len(items)
        return results

