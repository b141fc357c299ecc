"""Readiness: whether this process can serve now (database and its schema,
blob store, cache), and the start-up rule for a schema behind the code."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from . import db
from .parts import Parts

log = logging.getLogger(__name__)

OK = "ok"
DEGRADED = "degraded"
FAILING = "failing"


class SchemaBehind(RuntimeError):
    """The database's schema is older than this code; serving it would fail
    on the first query that needs a newer column."""


@functools.lru_cache(maxsize=1)
def _revisions() -> tuple[str, tuple[str, ...]]:
    """(head, every known revision): read once, the scripts do not change in a process."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    return script.get_current_head(), tuple(rev.revision for rev in script.walk_revisions())


def head_revision() -> str:
    return _revisions()[0]


def _behind(revision: str | None) -> bool:
    """Whether a database at ``revision`` (None: no schema) is older than this
    code.  A revision the code does not know is newer (a rolled-back deploy):
    not behind, so it starts and is ready."""
    head, known = _revisions()
    return revision is None or (revision != head and revision in known)


@dataclass(frozen=True)
class Readiness:
    """Each check's state (``ok``, ``degraded`` or ``failing``) and why the
    service is not ready; a degraded cache slows it but leaves it ready."""

    checks: dict[str, str]
    reasons: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return FAILING not in self.checks.values()

    def to_json(self) -> dict:
        out: dict = {"status": "ready" if self.ready else "unavailable", "checks": dict(self.checks)}
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out


def _schema_revision(parts: Parts) -> str | None:
    """The revision the database is at (None: no schema); SQLAlchemyError if unreachable."""
    with parts.uow.engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            conn.rollback()  # PostgreSQL refuses anything more in the failed transaction
            if conn.dialect.has_table(conn, "alembic_version"):
                raise
            return None


def readiness(parts: Parts) -> Readiness:
    checks: dict[str, str] = {}
    reasons: list[str] = []
    try:
        revision = _schema_revision(parts)
    except SQLAlchemyError as exc:
        checks["database"] = FAILING
        reasons.append(f"database unreachable: {type(exc).__name__}")
    else:
        checks["database"] = FAILING if _behind(revision) else OK
        if _behind(revision):
            reasons.append(f"database schema at revision {revision or 'none'}, code needs {head_revision()}")
    try:
        parts.store.probe_writable()
    except OSError as exc:
        checks["store"] = FAILING
        reasons.append(f"blob store not writable: {exc.strerror or type(exc).__name__}")
    else:
        checks["store"] = OK
    # a dead cache costs speed, not correctness: never a reason to be unready
    checks["cache"] = OK if parts.pastecache.backend.reachable() else DEGRADED
    return Readiness(checks, reasons)


def require_current_schema(parts: Parts) -> None:
    """Raise SchemaBehind when the database's schema is older than the code.

    A database that cannot be reached is let through (the app serves and
    readiness reports it); so is a revision this code does not know, which
    is newer: a rolled-back deploy must still start.
    """
    try:
        revision = _schema_revision(parts)
    except SQLAlchemyError:
        log.warning("could not read the schema revision at start-up", exc_info=True)
        return
    if not _behind(revision):
        return
    raise SchemaBehind(
        f"the database schema is at revision {revision or 'none'} but this code needs {head_revision()}: "
        "run `pastefile -c YOUR.ini initdb`, or set pastefile.auto_migrate = true"
    )
