"""Engines, sessions and schema migrations (Alembic) for both backends."""
from __future__ import annotations

import os
from collections.abc import Callable
from importlib.resources import files

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from . import pgcopy

AFTER_COMMIT_KEY = "pastefile.after_commit"


def make_engine(url: str, **kwargs) -> Engine:
    """An engine with the per-backend settings pastefile relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg2":
        event.listen(engine, "connect", pgcopy.create_stage)
    return engine


def writer_lock_path(engine: Engine) -> str | None:
    """For a SQLite file, a lock file beside it that the group committers of
    every process queue on (see groupcommit.py); None for other databases."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return os.path.abspath(url.database) + "-writer.lock"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; FKs are off by default.
    # FULL flushes the WAL at every commit: in WAL mode NORMAL may lose the
    # last commits on power loss, and a link must never outlive its row.
    # Group commit (groupcommit.py) keeps that to one flush per batch.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=FULL")
    # 32 MiB of pages per connection instead of SQLite's 2 MiB: the paste
    # and blob B-trees are keyed by random hashes, so once the database
    # outgrows the default, nearly every insert reads pages back in
    cur.execute("PRAGMA cache_size=-32768")
    cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


AFTER_ROLLBACK_KEY = "pastefile.after_rollback"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction commits; drop it on rollback.

    Works for sessions pastefile owns and for a caller's session (pyramid_tm).
    """
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


def after_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` if the session's transaction rolls back instead."""
    session.info.setdefault(AFTER_ROLLBACK_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop(AFTER_ROLLBACK_KEY, None)
    callbacks = session.info.pop(AFTER_COMMIT_KEY, None)
    for callback in callbacks or ():
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)
    for callback in session.info.pop(AFTER_ROLLBACK_KEY, None) or ():
        callback()


def alembic_config(engine_or_url: Engine | str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("pastefile.core") / "migrations"))
    if isinstance(engine_or_url, str):
        config.set_main_option("sqlalchemy.url", engine_or_url.replace("%", "%%"))
    else:
        config.attributes["engine"] = engine_or_url
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (creates it on an empty database)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
