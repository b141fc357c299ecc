"""One render at a time per key across every node that shares the PostgreSQL
database: session-level advisory locks.

A holder keeps one pooled connection for as long as it holds the key and
gives it back unlocked.  PostgreSQL drops a session's locks when its
connection ends, so a process that dies (even SIGKILL) releases its keys.
Keys use the two-int4 form ``(FLIGHT_CLASS, hash of key)``: PostgreSQL keeps
that key space apart from the single-bigint one that
:func:`pastefile.core.repository.lock_blobs` uses, so a flight never waits
on a blob's lock or the other way round.  Two keys whose 32-bit hashes meet
only take turns, as two keys on one stripe of the flock'ed files do.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Integer, cast, func, select

from .errors import Busy, PasteFileError

log = logging.getLogger(__name__)

# the first int4 of every flight key ("pf" + 1): other users of advisory
# locks in the same database pick their own class
FLIGHT_CLASS = 0x7066_0001
# resumable uploads being appended to: one request at a time per upload
UPLOAD_CLASS = 0x7066_0002


def flight_key(key: str) -> int:
    """``key`` as a signed 32-bit int, the second half of its lock key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


class AdvisoryFlightLock:
    """``with flights(key):`` holds ``key`` for every process of every node
    on the database of ``engine``; past ``timeout`` seconds of waiting the
    caller gets :class:`~pastefile.core.errors.Busy`."""

    def __init__(self, engine: Engine, timeout: float = 60.0, lock_class: int = FLIGHT_CLASS,
                 busy: Callable[[], Exception] = lambda: Busy("the same resize is still being made; try again shortly")):
        self.engine = engine
        self.timeout = timeout
        # the first int4 of the keys: each use of these locks has its own
        self.lock_class = lock_class
        self.busy = busy

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        # int4 casts: the (int4, int4) functions, whatever type the driver sends
        args = (cast(self.lock_class, Integer), cast(flight_key(key), Integer))
        # autocommit: a session lock outlives transactions, and a waiter or a
        # holder must not sit idle in an open transaction meanwhile
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            self._acquire(conn, args)
        except PasteFileError:
            conn.close()
            raise
        except BaseException:
            # interrupted or failed mid-statement: the lock may have been
            # taken; never give such a connection back to the pool
            _drop(conn)
            raise
        try:
            yield
        finally:
            self._release(conn, args)

    def _acquire(self, conn: Connection, args) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.002
        while not conn.execute(select(func.pg_try_advisory_lock(*args))).scalar():
            if time.monotonic() >= deadline:
                raise self.busy()
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @staticmethod
    def _release(conn: Connection, args) -> None:
        try:
            conn.execute(select(func.pg_advisory_unlock(*args)))
        except Exception as exc:  # noqa: BLE001 - the work under the lock is done
            log.warning("advisory unlock failed, connection dropped instead: %s: %s", type(exc).__name__, exc)
            _drop(conn)
        except BaseException:
            _drop(conn)
            raise
        else:
            conn.close()


def _drop(conn: Connection) -> None:
    """Close ``conn``'s session, which releases every lock it holds."""
    try:
        conn.invalidate()
    finally:
        conn.close()
