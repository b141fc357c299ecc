"""The upload page's resumable uploads (tus) in headless Chromium, against a
real server process (``pserve`` of production.ini's server section, as the
fault tests run it) that is SIGKILLed in the middle of an upload and
started again on the same port, database and storage root.

* A 200 MB file at or above ``pastefile.tus.page_threshold`` goes up in
  8 MiB PATCHes to /files/; the server is killed (its whole process group)
  once it has acknowledged some bytes but less than half, restarted, and
  the page finishes on its own (tus-js-client retries, then resumes from
  the server's offset); the paste's download link hashes to the file's
  SHA-256, and the page's list keeps its delete link.
* A file under the threshold still goes up as a plain POST / (no
  ``tus_upload`` row).
* An upload paused, the page reloaded and the same file chosen again goes
  on in the same ``tus_upload`` row.

A request the kill cuts off keeps the upload's lease (60 s in the core), so
the page meets 423 for up to a minute after the restart, longer than
tus-js-client's own retries last: the page waits it out, and the kill test
takes about that minute more.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid

import pytest
from selenium.webdriver.common.by import By

from ..fault_harness import MB, Pserve, download_sha256, request, write_ini
from ..servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BIG = 200 * MB
THRESHOLD = "32M"
TUS = {"Tus-Resumable": "1.0.0"}

CARD_JS = """
const card = [...document.querySelectorAll('#results > .card')]
  .find((c) => (c.querySelector('.filename') || {}).title === arguments[0]);
if (!card) return null;
const link = card.querySelector('.link-d');
const error = card.querySelector('.card__error');
const bar = card.querySelector('.progress__bar');
return {
  state: card.dataset.state || '',
  transport: card.dataset.transport || '',
  url_d: link ? link.getAttribute('href') : null,
  error: error && !error.hidden ? error.textContent : null,
  label: (card.querySelector('.progress__label') || {}).textContent || null,
  percent: bar ? Number(bar.value) : null,
  paused: Boolean(card.querySelector('.progress__pause')),
};
"""

STORED_JS = "return JSON.parse(window.localStorage.getItem('pastefile.uploads.v1') || '[]');"
FINGERPRINTS_JS = "return Object.keys(window.localStorage).filter((k) => k.startsWith('tus::'));"


@pytest.fixture(scope="module")
def tus_server(tmp_path_factory):
    """pserve on a free port with a SQLite database and a storage root of
    its own; the test may kill and start it again (same ini, same port)."""
    directory = tmp_path_factory.mktemp("tus-server")
    port = free_port()
    settings = {
        "pastefile.base_url": f"http://127.0.0.1:{port}",
        "pastefile.symlink_key": "tus-page-test-key",
        "pastefile.db_url": f"sqlite:///{directory}/pf.sqlite",
        "pastefile.storage_root": f"{directory}/files",
        "pastefile.auto_migrate": "true",
        "pastefile.cache.backend": "memory",
        "pastefile.cache.prefix": f"tus{uuid.uuid4().hex[:8]}",
        "pastefile.allowed_types": "*",
        "pastefile.max_upload_size": "300M",
        "pastefile.tus.page_threshold": THRESHOLD,
    }
    server = Pserve(write_ini(str(directory), port, settings), port, str(directory))
    server.database = f"{directory}/pf.sqlite"
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tus_rows(server: Pserve) -> list[tuple]:
    """(id, offset, length, filehash) of every row of ``tus_upload``."""
    conn = sqlite3.connect(f"file:{server.database}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute('SELECT id, "offset", length, filehash FROM tus_upload').fetchall()
    finally:
        conn.close()


def acknowledged(server: Pserve, upload_id: str) -> int | None:
    """The upload's offset as HEAD tells it (None while nobody answers)."""
    status, headers, _ = request("HEAD", f"{server.url}/files/{upload_id}", headers=TUS, timeout=5)
    return int(headers["upload-offset"]) if status == 200 else None


def random_file(path, size: int) -> str:
    """``size`` random bytes written 1 MiB at a time; their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // MB):
            block = os.urandom(MB)
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def card(browser, name: str) -> dict | None:
    """The state of the page's card of the file ``name``."""
    return browser.execute_script(CARD_JS, name)


def wait_done(browser, name: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = card(browser, name)
        if state and state["state"] in ("done", "error"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"the upload did not finish in {timeout}s: {state}")


def console_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_large_upload_survives_a_server_kill(tus_server, browser, tmp_path):
    path = tmp_path / "big.bin"
    started = time.monotonic()
    sha256 = random_file(path, BIG)
    made = time.monotonic() - started
    before = {row[0] for row in tus_rows(tus_server)}

    browser.get(tus_server.url + "/")
    browser.execute_script("window.localStorage.clear();")
    browser.get_log("browser")  # start the console log from here
    assert browser.execute_script("return typeof window.tus === 'object' && window.tus.isSupported")
    started = time.monotonic()
    browser.find_element(By.ID, "file-input").send_keys(str(path))

    # the server has acknowledged some bytes, but less than half
    upload_id, offset, deadline = None, None, time.monotonic() + 60
    while time.monotonic() < deadline:
        if upload_id is None:
            fresh = [row[0] for row in tus_rows(tus_server) if row[0] not in before]
            upload_id = fresh[0] if fresh else None
        if upload_id is not None:
            offset = acknowledged(tus_server, upload_id)
            if offset:
                break
        time.sleep(0.02)
    assert upload_id and offset, f"no bytes acknowledged in 60s: {card(browser, path.name)}"
    assert offset < BIG // 2, f"{offset} bytes acknowledged before the kill could happen"
    assert card(browser, path.name)["transport"] == "tus"

    killed_at = time.monotonic()
    tus_server.kill()
    tus_server.start()
    down = time.monotonic() - killed_at
    offset_after_restart = acknowledged(tus_server, upload_id)
    assert offset_after_restart is not None and offset <= offset_after_restart < BIG

    state = wait_done(browser, path.name, 240)
    elapsed = time.monotonic() - started
    assert state["state"] == "done", (state, console_errors(browser), tus_server.console_tail())
    status, digest = download_sha256(state["url_d"], timeout=120)
    assert (status, digest) == (200, sha256)

    # the page's list keeps the paste with the delete link the completing
    # PATCH carried; the fingerprint kept for resuming is gone
    stored = browser.execute_script(STORED_JS)
    assert len(stored) == 1 and stored[0]["url_d"] == state["url_d"], stored
    assert stored[0].get("url_delete"), stored
    assert browser.execute_script(FINGERPRINTS_JS) == []
    rows = {row[0]: row for row in tus_rows(tus_server)}
    assert rows[upload_id][1] == BIG and rows[upload_id][3], rows[upload_id]
    # the requests the kill failed show in the console (refused connections,
    # 423 while a killed request's lease lasts); no script error does
    errors = console_errors(browser)
    assert not [e for e in errors if "Failed to load resource" not in e], errors
    refused = sum("ERR_CONNECTION_REFUSED" in e or "ERR_EMPTY_RESPONSE" in e for e in errors)
    locked = sum("(Locked)" in e for e in errors)
    print(f"\n[tus page] file {BIG // MB} MiB made in {made:.1f}s; killed at offset {offset} "
          f"({offset_after_restart} after restart), down {down:.1f}s; upload done in {elapsed:.1f}s "
          f"(failed requests: {refused} refused, {locked} locked)")


def test_small_file_goes_up_as_a_plain_post(tus_server, browser, tmp_path):
    path = tmp_path / "small.bin"
    sha256 = random_file(path, 2 * MB)
    before = tus_rows(tus_server)

    browser.get(tus_server.url + "/")
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    state = wait_done(browser, path.name, 60)
    assert state["state"] == "done", (state, console_errors(browser))
    assert state["transport"] == ""
    assert tus_rows(tus_server) == before  # no tus_upload row was made
    assert download_sha256(state["url_d"]) == (200, sha256)


def test_paused_upload_resumes_after_a_reload(tus_server, browser, tmp_path):
    """Pause, reload the page, choose the same file again: the upload goes
    on from the server's offset (the same tus_upload row), not from zero."""
    path = tmp_path / "resumed.bin"
    sha256 = random_file(path, 96 * MB)
    before = {row[0] for row in tus_rows(tus_server)}

    browser.get(tus_server.url + "/")
    browser.execute_script("window.localStorage.clear();")
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    upload_id, deadline = None, time.monotonic() + 60
    while time.monotonic() < deadline and upload_id is None:
        fresh = [row[0] for row in tus_rows(tus_server) if row[0] not in before]
        upload_id = fresh[0] if fresh else None
        time.sleep(0.02)
    assert upload_id, card(browser, path.name)
    browser.find_element(By.CSS_SELECTOR, "#results .progress__pause").click()
    assert card(browser, path.name)["state"] == "paused"
    # the request the pause cut off settles on the server; then nothing moves
    time.sleep(1.5)
    offset = acknowledged(tus_server, upload_id)
    time.sleep(1)
    assert acknowledged(tus_server, upload_id) == offset
    assert offset < 96 * MB, "the upload finished before it could be paused"
    assert len(browser.execute_script(FINGERPRINTS_JS)) == 1  # kept for resuming

    browser.refresh()
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    state = wait_done(browser, path.name, 120)
    assert state["state"] == "done", (state, console_errors(browser))
    assert {row[0] for row in tus_rows(tus_server)} - before == {upload_id}  # no second upload
    assert download_sha256(state["url_d"], timeout=120) == (200, sha256)
    assert browser.execute_script(FINGERPRINTS_JS) == []
    print(f"\n[tus page] paused at offset {offset} of {96 * MB}, resumed after a reload")
