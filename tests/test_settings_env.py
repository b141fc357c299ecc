"""Every pastefile.* key follows its environment variable, the web front's
too; a production start refuses a placeholder short-link key."""
from __future__ import annotations

import os

import pytest
import webtest
from pyramid.paster import get_app

import pastefile.webapp
from pastefile.core import Settings, SettingsError
from pastefile.core.settings import DEV_SYMLINK_KEY, env_name

from .conftest import only_file_stores, settings_for
from .webapp_helpers import API, BROWSER, unique_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDERS = ["change-me-in-production", "development-only-key", DEV_SYMLINK_KEY, "CHANGE-ME-please"]


@pytest.fixture(autouse=True)
def _no_outside_overrides(monkeypatch):
    """Only the variables a test sets: none from the shell running the suite."""
    for name in list(os.environ):
        if name.startswith("PASTEFILE_"):
            monkeypatch.delenv(name)


def _env_value(name: str, default) -> str:
    special = {"db_url": "sqlite:///other.sqlite", "cache_backend": "null", "allowed_types": "image/png",
               "cache_servers": "h:1", "rendition_sizes": "10x10", "environment": "production",
               "strip_metadata": "all", "store": "s3", "store_fallback": "s3", "s3_serve": "redirect",
               "s3_part_size": "8M"}
    if name in special:
        return special[name]
    if isinstance(default, bool):
        return "false" if default else "true"
    if isinstance(default, int):
        return "7"
    return "from-env"


def test_every_key_follows_its_environment_variable():
    keys = Settings.keys()
    assert {"pastefile.accel_redirect", "pastefile.page_security_headers", "pastefile.environment",
            "pastefile.cache.servers"} <= set(keys)
    defaults = Settings()
    for key, name in keys.items():
        environ = {"PASTEFILE_SYMLINK_KEY": "a-real-secret-0123456789", env_name(key): _env_value(name, getattr(defaults, name))}
        if name in ("store", "store_fallback"):
            environ["PASTEFILE_S3_BUCKET"] = "blobs"  # the s3 store needs one
        settings = Settings.from_dict({}, environ=environ)
        assert getattr(settings, name) != getattr(defaults, name), key


def test_web_front_keys_from_ini_and_environment():
    s = Settings.from_dict({"pastefile.accel_redirect": "/ini", "pastefile.page_security_headers": "false"}, environ={})
    assert s.accel_redirect == "/ini" and s.page_security_headers is False
    s = Settings.from_dict(
        {"pastefile.accel_redirect": "/ini", "pastefile.page_security_headers": "false"},
        environ={"PASTEFILE_ACCEL_REDIRECT": "/env", "PASTEFILE_PAGE_SECURITY_HEADERS": "on"},
    )
    assert s.accel_redirect == "/env" and s.page_security_headers is True
    assert "pastefile.accel_redirect" not in s.extra
    with pytest.raises(SettingsError) as info:
        Settings.from_dict({}, environ={"PASTEFILE_PAGE_SECURITY_HEADERS": "sometimes"})
    assert info.value.key == "pastefile.page_security_headers"


@only_file_stores
def test_accel_redirect_from_environment(webapp_factory, monkeypatch):
    monkeypatch.setenv("PASTEFILE_ACCEL_REDIRECT", "/_env_blobs")
    app = webapp_factory(**{"pastefile.inline_max": "0"})
    data = unique_text(5000)
    doc = app.put("/accel.txt", params=data, headers=API).json
    res = app.get(f"/i/{doc['filehash']}")
    assert res.headers["X-Accel-Redirect"].startswith("/_env_blobs/")
    assert res.body == b""


def test_page_security_headers_from_environment(webapp_factory, monkeypatch):
    monkeypatch.setenv("PASTEFILE_PAGE_SECURITY_HEADERS", "false")
    app = webapp_factory()
    assert "Content-Security-Policy" not in app.get("/", headers=BROWSER).headers
    monkeypatch.setenv("PASTEFILE_PAGE_SECURITY_HEADERS", "true")
    # the environment wins over the ini file, as for every key
    app = webapp_factory(**{"pastefile.page_security_headers": "false"})
    assert "frame-ancestors 'none'" in app.get("/", headers=BROWSER).headers["Content-Security-Policy"]


def _production(tmp_path, **extra) -> dict:
    settings = settings_for("sqlite", tmp_path, **{"pastefile.environment": "production"})
    settings.update(extra)
    return settings


@pytest.mark.parametrize("key", PLACEHOLDERS + ["", "   "])
def test_production_refuses_placeholder_keys(tmp_path, key):
    with pytest.raises(SettingsError) as info:
        pastefile.webapp.main({}, **_production(tmp_path, **{"pastefile.symlink_key": key}))
    assert info.value.key == "pastefile.symlink_key"
    if key.strip():
        assert "PASTEFILE_SYMLINK_KEY" in str(info.value)


def test_production_refuses_a_missing_key(tmp_path):
    settings = _production(tmp_path)
    del settings["pastefile.symlink_key"]
    with pytest.raises(SettingsError, match="PASTEFILE_SYMLINK_KEY"):
        pastefile.webapp.main({}, **settings)


def test_production_starts_with_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("PASTEFILE_SYMLINK_KEY", "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6")
    app = pastefile.webapp.main({}, **_production(tmp_path, **{"pastefile.symlink_key": "change-me-in-production"}))
    try:
        assert app.registry.pastefile.settings.is_production
        test = webtest.TestApp(app)
        doc = test.post("/", upload_files=[("file", "p.txt", unique_text())], headers=API).json
        assert test.get(f"/s/{doc['symlink']}", status=302)
    finally:
        app.registry.pastefile.close()


def test_development_and_library_use_keep_the_default_key(tmp_path):
    for settings in ({}, {"pastefile.environment": "development"}):
        s = Settings.from_dict(settings, environ={})
        assert s.symlink_key == DEV_SYMLINK_KEY and not s.is_production
    with pytest.raises(SettingsError) as info:
        Settings.from_dict({"pastefile.environment": "staging"}, environ={})
    assert info.value.key == "pastefile.environment"


def _ini_app(ini: str, monkeypatch, tmp_path, **env):
    monkeypatch.setenv("PASTEFILE_DB_URL", f"sqlite:///{tmp_path / 'ini.sqlite'}")
    monkeypatch.setenv("PASTEFILE_STORAGE_ROOT", str(tmp_path / "files"))
    monkeypatch.setenv("PASTEFILE_AUTO_MIGRATE", "true")
    monkeypatch.setenv("PASTEFILE_CACHE_BACKEND", "memory")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return get_app(os.path.join(ROOT, ini), "main")


def test_production_ini_refuses_its_placeholder(monkeypatch, tmp_path):
    with pytest.raises(SettingsError, match="PASTEFILE_SYMLINK_KEY"):
        _ini_app("production.ini", monkeypatch, tmp_path)
    app = _ini_app("production.ini", monkeypatch, tmp_path, PASTEFILE_SYMLINK_KEY="a-secret-of-our-own-0123456789")
    app.registry.pastefile.close()


def test_development_ini_starts_with_its_key(monkeypatch, tmp_path):
    app = _ini_app("development.ini", monkeypatch, tmp_path)
    try:
        assert app.registry.pastefile.settings.symlink_key == "development-only-key"
    finally:
        app.registry.pastefile.close()
    # the environment makes any ini a production start
    with pytest.raises(SettingsError, match="placeholder"):
        _ini_app("development.ini", monkeypatch, tmp_path, PASTEFILE_ENVIRONMENT="production")


def test_privacy_settings():
    s = Settings.from_dict({}, environ={})
    assert s.public_latest is False and s.public_similar is False and s.strip_metadata == "location"
    s = Settings.from_dict({"pastefile.public_latest": "true", "pastefile.strip_metadata": "ALL"}, environ={})
    assert s.public_latest is True and s.strip_metadata == "all"
    with pytest.raises(SettingsError) as info:
        Settings.from_dict({"pastefile.strip_metadata": "gps"}, environ={})
    assert info.value.key == "pastefile.strip_metadata"
