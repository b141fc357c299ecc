"""development.ini and production.ini load into working apps; the
environment overrides their settings."""
from __future__ import annotations

import configparser
import os

import pytest
import webtest
from pyramid.paster import get_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _app(ini: str, monkeypatch, tmp_path, **env):
    monkeypatch.setenv("PASTEFILE_DB_URL", f"sqlite:///{tmp_path / 'ini.sqlite'}")
    monkeypatch.setenv("PASTEFILE_STORAGE_ROOT", str(tmp_path / "files"))
    monkeypatch.setenv("PASTEFILE_AUTO_MIGRATE", "true")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = get_app(os.path.join(ROOT, ini), "main")
    return app


@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_ini_loads_and_serves(ini, monkeypatch, tmp_path, memcached_nodes):
    servers = " ".join(node.address for node in memcached_nodes)
    app = _app(ini, monkeypatch, tmp_path, PASTEFILE_CACHE_SERVERS=servers, PASTEFILE_SYMLINK_KEY="from-env")
    service = app.registry.pastefile
    try:
        assert service.settings.db_url.endswith("ini.sqlite")
        assert service.settings.symlink_key == "from-env"
        test = webtest.TestApp(app)
        doc = test.post("/", upload_files=[("file", "a.txt", b"hello from " + ini.encode())],
                        headers={"Accept": "application/json"}).json
        assert test.get(f"/i/{doc['filehash']}").body == b"hello from " + ini.encode()
    finally:
        service.close()


def test_production_settings():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, "production.ini"))
    app = parser["app:main"]
    assert app["pastefile.cache.backend"] == "memcached"
    assert len(app["pastefile.cache.servers"].split()) >= 2
    assert app["pastefile.db_url"].startswith("postgresql")
    server = parser["server:main"]
    assert server["trusted_proxy"]
    # enough requests in flight across the workers for group commit to batch
    assert int(server["workers"]) * int(server["threads"]) >= 8
    # logs go to stderr (the journal), so no log folder must exist first
    assert parser["logger_root"]["handlers"].strip() == "console"
    assert parser["handler_console"]["args"].strip() == "(sys.stderr,)"


def test_production_logging_starts_without_a_log_folder(tmp_path):
    """The logging section loads as pserve loads it, on a machine with no
    /var/log/pastefile, and what the app logs reaches stderr."""
    import subprocess
    import sys

    script = (
        "import logging, logging.config; "
        f"logging.config.fileConfig({os.path.join(ROOT, 'production.ini')!r}, disable_existing_loggers=False); "
        "logging.getLogger('pastefile.test').warning('hello from production logging')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "hello from production logging" in done.stderr and "pastefile.test" in done.stderr
