"""Fixtures for the headless browser tests.

``live_server`` runs the real pastefile WSGI app under waitress on a free
port of 127.0.0.1, backed by a throwaway SQLite database and storage
directory.  ``browser`` is a headless Chromium driven through the system
chromedriver.  Neither fixture skips: a missing browser is a test failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..servers import LiveServer

CHROMIUM = os.environ.get("PASTEFILE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PASTEFILE_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts" / "browser"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Serve the app on 127.0.0.1:<free port>; yields the base URL."""
    from pastefile.webapp import main

    tmp = tmp_path_factory.mktemp("live-server")
    settings = {
        "pastefile.db_url": f"sqlite:///{tmp}/pf.sqlite",
        "pastefile.storage_root": f"{tmp}/files",
        "pastefile.cache.backend": "memory",
        "pastefile.auto_migrate": "true",
        "pastefile.base_url": "",
    }
    with LiveServer(main({}, **settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium (selenium) with a fresh profile directory."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not _executable(path)]
    if missing:
        pytest.fail(
            "The browser tests need Chromium and its chromedriver, but these are missing "
            f"or not executable: {', '.join(missing)}. Install them (Debian: "
            "`apt-get install chromium chromium-driver`) or point PASTEFILE_CHROMIUM / "
            "PASTEFILE_CHROMEDRIVER at them.",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("The browser tests need selenium>=4.20 (pip install 'selenium>=4.20').", pytrace=False)

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go (tests/artifacts/browser, gitignored)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(autouse=True)
def fresh_storage(live_server, browser):
    """Each test starts without the upload list an earlier test left in
    this browser's localStorage (the browser lives for the whole session)."""
    browser.get(live_server + "/static/favicon.svg")
    browser.execute_script("window.localStorage.clear();")
    yield
