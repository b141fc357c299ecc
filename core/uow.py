"""The unit of work: where the service's reads and writes run.

Unbound, the service owns its engine and runs short transactions of its own,
committed on leaving each block.  Bound to a caller's session (a web request
under pyramid_tm), everything runs in that session's transaction, which its
owner commits or rolls back; what must wait for that (cache writes, removing
files) is hooked to the session's commit or rollback.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from . import db


class UnitOfWork:
    def __init__(self, engine: Engine, session_factory: sessionmaker, session: Session | None = None):
        self.engine = engine
        self.session_factory = session_factory
        self.session = session

    def bound(self, session: Session) -> "UnitOfWork":
        """The same engine, running in ``session``'s transaction."""
        return UnitOfWork(self.engine, self.session_factory, session)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """An ORM session in a transaction: the bound one, else one committed on leaving."""
        if self.session is not None:
            yield self.session
            return
        with self.session_factory() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A connection in a write transaction: the bound session's (committed
        by its owner), else one committed on leaving the block."""
        if self.session is not None:
            yield self.session.connection()
            return
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for reads: the bound session's, or one from the pool."""
        if self.session is not None:
            yield self.session.connection()
            return
        with self.engine.connect() as conn:
            yield conn

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once what was just written is committed (at once when
        unbound: the block that wrote has committed already)."""
        if self.session is not None:
            db.after_commit(self.session, fn)
        else:
            fn()

    def after_rollback(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` if the bound session's transaction rolls back; unbound,
        a failed block has rolled back already and raised."""
        if self.session is not None:
            db.after_rollback(self.session, fn)
