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
per statement and per commit.

If a batch fails, its items are retried one by one, so one bad upload fails
alone.  The thread starts on first use and again in a forked child.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine

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
    ):
        self.engine = engine
        self.record = record
        self.after_commit = after_commit
        self.max_batch = max_batch
        # errors a single item may meet from a concurrent transaction (a blob
        # row removed under it): tried again, up to ``attempts`` times
        self.retry_on = retry_on
        self.attempts = attempts
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.batches = 0  # for tests and profiling: how many commits ran
        self.items = 0

    def submit(self, item: T) -> R:
        """Record ``item``; returns once its transaction has committed."""
        future: Future = Future()
        self._ensure_running().put((item, future))
        return future.result()

    def _ensure_running(self) -> queue.SimpleQueue:
        if self._thread is not None and self._pid == os.getpid():
            return self._queue
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="pastefile-group-commit", daemon=True
                )
                self._thread.start()
            return self._queue

    def close(self) -> None:
        """Stop the writer thread after the batches already queued."""
        with self._lock:
            thread, q = self._thread, self._queue
            self._thread = self._queue = None
        if thread is not None and self._pid == os.getpid():
            q.put(None)
            thread.join(10)

    def _run(self, q: queue.SimpleQueue) -> None:
        while True:
            first = q.get()
            if first is None:
                return
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
            self._commit(batch)

    def _commit(self, batch: list[tuple[T, Future]], attempt: int = 1) -> None:
        try:
            results = self._transaction([item for item, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to the waiters
            if len(batch) > 1 and isinstance(exc, Exception):
                for one in batch:  # settle each item on its own
                    self._commit([one])
            elif isinstance(exc, self.retry_on) and attempt < self.attempts:
                self._commit(batch, attempt + 1)
            else:
                for _, future in batch:
                    future.set_exception(exc)
            return
        if self.after_commit is not None:
            try:
                self.after_commit([item for item, _ in batch], results)
            except Exception:  # noqa: BLE001 - durable already; the cache is optional
                log.exception("after-commit hook failed")
        for (_, future), result in zip(batch, results):
            future.set_result(result)

    def _transaction(self, items: list[T]) -> list[R]:
        with self.engine.begin() as conn:
            results = self.record(conn, items)
        self.batches += 1
        self.items += len(items)
        return results

