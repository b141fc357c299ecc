"""Access logs: one line per request on ``pastefile.access`` in the combined
log format plus the request id and duration, the id echoed as
``X-Request-Id``, and the app's error logs tagged with the same id."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

import pastefile.webapp

from .conftest import settings_for
from .servers import LiveServer
from .webapp_helpers import API, WebApp, unique_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<size>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)" '
    r'rid=(?P<rid>[A-Za-z0-9._-]{1,64}) dur=(?P<dur>\d+\.\d{3})$'
)
NEW_ID = re.compile(r"^[0-9a-f]{32}$")


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


@pytest.fixture
def access_lines():
    logger = logging.getLogger("pastefile.access")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def app(tmp_path):
    test = WebApp(pastefile.webapp.main({}, **settings_for("sqlite", tmp_path)))
    yield test
    test.service.close()


def one_line(lines: Lines) -> re.Match:
    taken = lines.take()
    assert len(taken) == 1, taken
    match = LINE.match(taken[0])
    assert match, taken[0]
    return match


def test_one_line_per_request_in_the_combined_format(app, access_lines):
    res = app.get("/healthz?probe=1", headers={"User-Agent": "curl/8.5.0", "Referer": "http://elsewhere/x"},
                  extra_environ={"REMOTE_ADDR": "203.0.113.7"})
    line = one_line(access_lines)
    assert line["addr"] == "203.0.113.7"
    assert line["request"] == "GET /healthz?probe=1 HTTP/1.0"
    assert line["status"] == "200" and line["size"] == str(len(res.body))
    assert line["referer"] == "http://elsewhere/x" and line["agent"] == "curl/8.5.0"
    assert NEW_ID.match(line["rid"]) and res.headers["X-Request-Id"] == line["rid"]
    assert float(line["dur"]) < 60

    # an upload, a 404 and the guard's own 405: one line each, each its own id
    doc = app.upload(unique_text(), "a.txt", headers=API).json
    post = one_line(access_lines)
    assert post["request"] == "POST / HTTP/1.0" and post["status"] == "200" and post["agent"] == "-"
    app.get(f"/p/{doc['filehash']}")
    assert one_line(access_lines)["status"] == "200"
    app.get("/p/" + "0" * 64, status=404)
    assert one_line(access_lines)["status"] == "404"
    res = app.request("/", method="TRACE", status=405)
    line = one_line(access_lines)
    assert line["request"].startswith("TRACE / ") and line["status"] == "405"
    assert res.headers["X-Request-Id"] == line["rid"] != post["rid"]
    # HEAD sends no body: no byte count
    app.head("/healthz")
    assert one_line(access_lines)["size"] == "-"


def test_a_sane_request_id_is_echoed(app, access_lines):
    for rid in ("abc", "req-2026.12.04_0001", "A" * 64):
        res = app.get("/healthz", headers={"X-Request-Id": rid})
        assert res.headers["X-Request-Id"] == rid
        assert one_line(access_lines)["rid"] == rid


@pytest.mark.parametrize("rid", ["", "A" * 65, "has space", "semi;colon", "quo\"te", "caf\xe9", "a/b"])
def test_an_insane_request_id_is_replaced(app, access_lines, rid):
    res = app.get("/healthz", headers={"X-Request-Id": rid})
    line = one_line(access_lines)
    assert NEW_ID.match(res.headers["X-Request-Id"]) and line["rid"] == res.headers["X-Request-Id"]
    assert res.headers["X-Request-Id"] != rid


def test_fields_cannot_break_the_line(app, access_lines):
    app.get("/healthz", headers={"User-Agent": 'evil" 200 0 "x\\', "Referer": "r\x01\xe9"})
    line = one_line(access_lines)
    assert line["agent"] == 'evil\\" 200 0 \\"x\\\\' and line["referer"] == "r\\x01\\xe9"
    # the path as the client sent it, percent-encoded: UTF-8 or not (the guard's 400)
    app.get("/p/caf%C3%A9%20x", status="*")
    assert one_line(access_lines)["request"] == "GET /p/caf%C3%A9%20x HTTP/1.0"
    app.get("/p/%FF%22", status=400)
    line = one_line(access_lines)
    assert line["request"] == "GET /p/%FF%22 HTTP/1.0" and line["status"] == "400"


def test_delete_tokens_stay_out_of_the_log(app, access_lines):
    doc = app.upload(unique_text(), "doomed.txt", headers=API).json
    access_lines.take()
    token = doc["delete_token"]
    app.get(doc["url_delete"])
    app.post(doc["url_delete"], headers={**API, "Referer": doc["url_delete"]})
    lines = access_lines.take()
    assert len(lines) == 2 and not any(token in line for line in lines)
    assert f"/x/{doc['filehash']}/[token] " in lines[0]
    assert f'"http://localhost/x/{doc["filehash"]}/[token]"' in lines[1]


def test_errors_the_app_logs_carry_the_request_id(app, access_lines, caplog, monkeypatch):
    from pastefile.webapp.views import health

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(health, "json_response", broken)
    with caplog.at_level(logging.ERROR, logger="pastefile.webapp.views.errors"):
        res = app.get("/healthz", headers={**API, "X-Request-Id": "trace-me-1"}, status=500)
    assert res.headers["X-Request-Id"] == "trace-me-1"
    records = [r for r in caplog.records if r.name == "pastefile.webapp.views.errors"]
    assert len(records) == 1 and records[0].request_id == "trace-me-1"
    assert records[0].getMessage().endswith("rid=trace-me-1")
    assert one_line(access_lines)["status"] == "500"
    # outside a request nothing is added
    logging.getLogger("pastefile.webapp.views.errors").error("no request")
    assert caplog.records[-1].getMessage() == "no request"


def test_a_live_request_logs_the_client_address(tmp_path, access_lines):
    app = pastefile.webapp.main({}, **settings_for("sqlite", tmp_path))
    try:
        with LiveServer(app) as server:
            req = urllib.request.Request(f"{server.url}/healthz?a=%20b", headers={
                "User-Agent": "live-test/1", "X-Request-Id": "live-1"})
            with urllib.request.urlopen(req, timeout=30) as response:
                body = response.read()
                assert response.headers["X-Request-Id"] == "live-1"
            req = urllib.request.Request(f"{server.url}/p/{'0' * 64}", headers={"Accept": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(req, timeout=30)
            assert missing.value.code == 404
            rid = missing.value.headers["X-Request-Id"]
    finally:
        app.registry.pastefile.close()
    first, second = (LINE.match(line) for line in access_lines.take())
    assert first["addr"] == "127.0.0.1" and second["addr"] == "127.0.0.1"
    # the request target as the client sent it
    assert first["request"] == "GET /healthz?a=%20b HTTP/1.1"
    assert first["status"] == "200" and first["size"] == str(len(body))
    assert first["agent"] == "live-test/1" and first["rid"] == "live-1"
    assert second["status"] == "404" and second["rid"] == rid and NEW_ID.match(rid)


@pytest.mark.parametrize("ini", ["production.ini", "development.ini"])
def test_ini_files_send_the_access_log_to_stderr_alone(ini, tmp_path):
    """As pserve loads the logging section: the access line on stderr as is
    (no timestamp or level before it), on a machine without a log folder."""
    line = '127.0.0.1 - - [04/Dec/2026:21:00:00 +0000] "GET /p/x HTTP/1.1" 200 1234 "-" "curl/8" rid=abc dur=0.003'
    script = (
        "import logging, logging.config; "
        f"logging.config.fileConfig({os.path.join(ROOT, ini)!r}, disable_existing_loggers=False); "
        f"logging.getLogger('pastefile.access').info('%s', {line!r})"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [line]
