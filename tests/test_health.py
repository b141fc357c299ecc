"""``/healthz`` and ``/readyz``, and start-up refusing a schema behind the code."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

import pastefile.webapp
from pastefile.core import PasteFileService, db
from pastefile.core.health import SchemaBehind, head_revision

from .conftest import settings_for, webapp_settings
from .servers import free_port
from .webapp_helpers import WebApp


def _closed_port_address() -> str:
    # free_port() binds and closes: nothing listens there afterwards
    return f"127.0.0.1:{free_port()}"


def test_healthz_answers_without_dependencies(webapp):
    with webapp.count_sql() as sql:
        res = webapp.get("/healthz")
    assert res.json == {"status": "ok"}
    assert res.headers["Cache-Control"] == "no-store"
    assert sql.count == 0


def test_readyz_ok(webapp):
    res = webapp.get("/readyz")
    assert res.status_int == 200
    assert res.json["status"] == "ready"
    assert res.json["checks"] == {"database": "ok", "store": "ok", "cache": "ok"}
    assert "reasons" not in res.json
    assert res.headers["Cache-Control"] == "no-store"
    # the store probe leaves nothing behind
    assert os.listdir(webapp.service.store.temp_dir) == []


def test_readyz_dead_cache_is_degraded_but_ready(webapp_factory):
    app = webapp_factory(**{"pastefile.cache.backend": "memcached", "pastefile.cache.servers": _closed_port_address()})
    for _ in range(2):  # also once the client has marked the node dead
        res = app.get("/readyz")
        assert res.status_int == 200
        assert res.json["checks"] == {"database": "ok", "store": "ok", "cache": "degraded"}


def test_readyz_schema_behind_is_unavailable(request, backend, tmp_path):
    """The database answers but its schema is not the head revision (as after
    a restore of an old dump while the app runs)."""
    if backend == "sqlite":
        settings = settings_for("sqlite", tmp_path)
    else:
        settings = webapp_settings(request, backend, tmp_path, **{
            "pastefile.db_url": request.getfixturevalue("fresh_pg_url"), "pastefile.auto_migrate": "true"})
    app = WebApp(pastefile.webapp.main({}, **settings))
    try:
        assert app.get("/readyz").status_int == 200
        with app.service.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
        res = app.get("/readyz", status=503)
        assert res.headers["Retry-After"].isdigit()
        assert res.json["status"] == "unavailable"
        assert res.json["checks"]["database"] == "failing"
        assert res.json["reasons"] == [f"database schema at revision 0004, code needs {head_revision()}"]
        # a revision this code does not know is newer (a rolled-back deploy):
        # start-up lets it through, and so does readiness
        with app.service.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'f0f0f0f0'"))
        assert app.get("/readyz").json["checks"]["database"] == "ok"
        settings["pastefile.auto_migrate"] = "false"
        newer = pastefile.webapp.main({}, **settings)
        newer.registry.pastefile.close()
    finally:
        app.service.close()


def test_readyz_database_gone_is_unavailable(request, backend, tmp_path):
    if backend == "sqlite":
        settings = settings_for("sqlite", tmp_path)
    else:
        # nothing listens there: the app starts (it may come up before its
        # database) and readiness says why it cannot serve
        settings = webapp_settings(request, backend, tmp_path,
                                   **{"pastefile.db_url": f"postgresql://nobody@{_closed_port_address()}/gone"})
    app = WebApp(pastefile.webapp.main({}, **settings))
    try:
        if backend == "sqlite":
            assert app.get("/readyz").status_int == 200
            app.service.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                path = app.service.engine.url.database + suffix
                if os.path.exists(path):
                    os.unlink(path)
        res = app.get("/readyz", status=503)
        assert res.headers["Retry-After"].isdigit()
        assert res.json["checks"]["database"] == "failing"
        assert res.json["checks"]["store"] == "ok"
        reason = "database schema at revision none" if backend == "sqlite" else "database unreachable"
        assert len(res.json["reasons"]) == 1 and res.json["reasons"][0].startswith(reason)
        # liveness does not depend on the database
        assert app.get("/healthz").json == {"status": "ok"}
    finally:
        app.service.close()


def test_readyz_store_not_writable_is_unavailable(webapp):
    # tests run as root, where a read-only mode stops nothing: a file where
    # the temp dir should be makes creating a temp file fail for anyone
    temp_dir = webapp.service.store.temp_dir
    aside = temp_dir + ".aside"
    os.rename(temp_dir, aside)
    try:
        with open(temp_dir, "w"):
            pass
        res = webapp.get("/readyz", status=503)
        assert res.headers["Retry-After"].isdigit()
        assert res.json["checks"] == {"database": "ok", "store": "failing", "cache": "ok"}
        assert len(res.json["reasons"]) == 1 and res.json["reasons"][0].startswith("blob store not writable")
    finally:
        os.unlink(temp_dir)
        os.rename(aside, temp_dir)
    assert webapp.get("/readyz").status_int == 200


@pytest.fixture
def behind_settings(request, backend, tmp_path) -> dict:
    """Settings of an app whose database is at revision 0004, auto_migrate off."""
    if backend == "sqlite":
        settings = settings_for("sqlite", tmp_path, **{"pastefile.auto_migrate": "false"})
    else:
        settings = webapp_settings(request, backend, tmp_path,
                                   **{"pastefile.db_url": request.getfixturevalue("fresh_pg_url")})
    engine = db.make_engine(settings["pastefile.db_url"])
    try:
        db.upgrade(engine, "0004")
    finally:
        engine.dispose()
    return settings


def test_start_up_refuses_a_schema_behind_then_starts_after_initdb(behind_settings):
    with pytest.raises(SchemaBehind) as info:
        pastefile.webapp.main({}, **behind_settings)
    message = str(info.value)
    assert "\n" not in message
    assert "revision 0004" in message and "initdb" in message and "pastefile.auto_migrate = true" in message

    service = PasteFileService(behind_settings)
    try:
        service.initdb()
    finally:
        service.close()
    app = WebApp(pastefile.webapp.main({}, **behind_settings))
    try:
        assert app.get("/readyz").json["checks"]["database"] == "ok"
    finally:
        app.service.close()


def test_auto_migrate_brings_a_schema_behind_to_head(behind_settings):
    app = WebApp(pastefile.webapp.main({}, **{**behind_settings, "pastefile.auto_migrate": "true"}))
    try:
        assert app.get("/readyz").status_int == 200
        assert db.current_revision(app.service.engine) == head_revision()
    finally:
        app.service.close()


def test_start_up_refuses_an_empty_database(request, backend, tmp_path):
    if backend == "sqlite":
        settings = settings_for("sqlite", tmp_path, **{"pastefile.auto_migrate": "false"})
    else:
        settings = webapp_settings(request, backend, tmp_path,
                                   **{"pastefile.db_url": request.getfixturevalue("fresh_pg_url")})
    with pytest.raises(SchemaBehind, match="revision none .*initdb"):
        pastefile.webapp.main({}, **settings)


def test_readiness_from_the_facade(service):
    readiness = service.readiness()
    assert readiness.ready
    assert readiness.checks == {"database": "ok", "store": "ok", "cache": "ok"}
    assert readiness.to_json() == {"status": "ready", "checks": readiness.checks}


def test_both_routes_are_in_the_openapi_document(webapp):
    paths = webapp.get("/openapi.json").json["paths"]
    assert paths["/healthz"]["get"]["operationId"] == "getHealth"
    readyz = paths["/readyz"]["get"]["responses"]
    assert {"200", "503"} <= set(readyz) and "Retry-After" in readyz["503"]["headers"]
