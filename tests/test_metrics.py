"""``GET /metrics``: what uploads and reads count, who may read it, and the
sums over the workers of a real ``pserve`` (not one worker's share)."""
from __future__ import annotations

import os
import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import webtest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

import pastefile.webapp
from pastefile.core import SettingsError
from pastefile.core import metrics as core_metrics
from pastefile.core.cache import MemcachedCache
from pastefile.core.errors import Unavailable
from pastefile.webapp.metrics import EXPORTER, allowed, parse_allow

from .conftest import settings_for
from .fault_harness import Pserve, put, request, write_ini
from .servers import free_port
from .webapp_helpers import API, unique_image, unique_text

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def samples(text: str) -> dict:
    """{(sample name, sorted label pairs): value} of an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: dict, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


def scrape(app, **environ) -> dict:
    res = app.get("/metrics", extra_environ={**LOCAL, **environ})
    assert res.status_int == 200
    assert res.headers["Content-Type"].startswith("text/plain")
    return samples(res.text)


@pytest.fixture
def app(tmp_path):
    settings = settings_for("sqlite", tmp_path, **{"pastefile.max_upload_size": "64k"})
    wsgi = pastefile.webapp.main({}, **settings)
    yield webtest.TestApp(wsgi, extra_environ=LOCAL)
    wsgi.registry.pastefile.close()


def test_uploads_and_reads_change_the_counters(app):
    before = scrape(app)
    text = unique_text(2000)
    created = app.put("/a.txt", params=text, headers=API).json
    app.put("/a.txt", params=text, headers=API)  # the same bytes, the same name: the earlier paste
    app.post("/", upload_files=[("file", "b.txt", unique_text(1000))], headers=API)
    app.put("/big.txt", params=unique_text(70000), headers=API, status=413)
    image = app.put("/c.png", params=unique_image("PNG", (64, 48)), headers=API).json
    app.get(f"/j/{created['filehash']}", headers=API)
    app.get(f"/j/{created['filehash']}", headers=API)
    app.get("/j/nosuchfile", headers=API, status=404)
    for _ in range(2):  # made once, then served as made
        app.get(f"/i/{image['filehash']}", params={"w": "32", "h": "24"})
    after = scrape(app)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("pastefile_uploads_total", outcome="created") == 3
    assert delta("pastefile_uploads_total", outcome="repeat") == 1
    assert delta("pastefile_uploads_total", outcome="refused") == 1
    assert delta("pastefile_uploads_refused_total", status="413") == 1
    png_size = len(app.get(f"/i/{image['filehash']}").body)
    assert delta("pastefile_upload_bytes_total") == 2000 + 2000 + 1000 + png_size
    assert delta("pastefile_renditions_total", outcome="rendered") == 1
    assert delta("pastefile_renditions_total", outcome="served") == 1
    assert delta("pastefile_http_requests_total", route="put", status="2xx") == 3
    assert delta("pastefile_http_requests_total", route="put", status="4xx") == 1
    assert delta("pastefile_http_requests_total", route="home", status="2xx") == 1
    assert delta("pastefile_http_requests_total", route="meta", status="2xx") == 2
    assert delta("pastefile_http_requests_total", route="meta", status="4xx") == 1
    assert delta("pastefile_http_requests_total", route="raw", status="2xx") == 2
    assert delta("pastefile_http_request_duration_seconds_count", route="meta") == 3
    assert delta("pastefile_http_requests_total", route="metrics", status="2xx") == 1
    # one commit per upload here (none concurrent), each waited for
    for name in ("pastefile_group_commit_batch_size_count", "pastefile_group_commit_wait_seconds_count",
                 "pastefile_cache_lookups_total"):
        assert total(after, name) > total(before, name), name
    assert delta("pastefile_store_errors_total") == 0


def test_untrusted_addresses_get_404(app, tmp_path):
    res = app.get("/metrics", extra_environ={"REMOTE_ADDR": "203.0.113.7"}, headers=API, status=404)
    assert res.json["error"]["status"] == 404
    assert app.get("/metrics", extra_environ={"REMOTE_ADDR": "::1"}).status_int == 200
    wide = pastefile.webapp.main({}, **settings_for("sqlite", tmp_path / "wide", **{
        "pastefile.metrics_allow": "10.0.0.0/8 203.0.113.0/24"}))
    try:
        wide_app = webtest.TestApp(wide)
        assert wide_app.get("/metrics", extra_environ={"REMOTE_ADDR": "203.0.113.7"}).status_int == 200
        wide_app.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=404)
    finally:
        wide.registry.pastefile.close()


def test_store_and_cache_failures_count(app):
    before = scrape(app)
    # a 503 from the blob store, as the tween sees it once the error view answered
    request = webtest.TestRequest.blank("/i/x", method="GET")
    request.exception = Unavailable("the object store cannot be reached")
    EXPORTER.request_done(request, 503, 0.01)
    # a memcached node that does not answer: served without it, counted
    assert MemcachedCache([f"127.0.0.1:{free_port()}"], connect_timeout=0.1).get("k") is None
    after = scrape(app)
    assert value(after, "pastefile_store_errors_total") - value(before, "pastefile_store_errors_total") == 1
    assert value(after, "pastefile_cache_errors_total", op="get") > value(before, "pastefile_cache_errors_total", op="get")


def test_the_core_counts_nothing_without_a_recorder():
    previous = core_metrics.install(None)
    try:
        core_metrics.inc("rendition", outcome="rendered")
        assert core_metrics.timed("group_commit_wait", lambda: 7) == 7
    finally:
        core_metrics.install(previous)


def test_allow_setting():
    assert parse_allow("*") is None and allowed(None, "198.51.100.1")
    networks = parse_allow(None)
    assert allowed(networks, "127.0.0.1") and allowed(networks, "::1") and allowed(networks, "::ffff:127.0.0.1")
    assert not allowed(networks, "127.0.0.2") and not allowed(networks, "") and not allowed(networks, None)
    assert allowed(parse_allow("192.0.2.0/24"), "192.0.2.99")
    with pytest.raises(SettingsError):
        parse_allow("localhost")


# -- a real pserve with two workers ---------------------------------------------------


def _serve(tmp_path, **app: str) -> Pserve:
    port = free_port()
    settings = {
        "pastefile.base_url": f"http://127.0.0.1:{port}",
        "pastefile.symlink_key": f"metrics-test-{uuid.uuid4().hex}",
        "pastefile.db_url": f"sqlite:///{tmp_path / 'pastefile.sqlite'}",
        "pastefile.storage_root": str(tmp_path / "files"),
        "pastefile.cache.backend": "memory",
        "pastefile.auto_migrate": "true",
        **app,
    }
    server = Pserve(write_ini(str(tmp_path), port, settings, {"workers": "2"}), port, str(tmp_path))
    return server.start()


def _scrape_url(url: str) -> dict:
    status, headers, body = request("GET", url + "/metrics", timeout=30)
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain")
    return samples(body.decode())


def _pids_with_counts(directory: str) -> set[int]:
    """Workers whose own file counts an upload."""
    pids = set()
    for name in os.listdir(directory):
        match = re.fullmatch(r"counter_(\d+)\.db", name)
        if not match:
            continue
        for family in multiprocess.MultiProcessCollector.merge([os.path.join(directory, name)]):
            if family.name == "pastefile_uploads" and any(s.value for s in family.samples):
                pids.add(int(match.group(1)))
    return pids


def _open_metrics_dir(pid: int):
    """The directory of the multiprocess file ``pid`` has open."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if re.search(r"/counter_\d+\.db$", target):
            return Path(target).parent
    raise AssertionError(f"worker {pid} has no multiprocess file open")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("where", ["setting", "temporary", "environment"])
def test_pserve_workers_report_the_sum(tmp_path, where, monkeypatch):
    directory = tmp_path / "metrics"
    app_settings = {"pastefile.metrics_dir": str(directory)} if where == "setting" else {}
    if where == "setting":
        directory.mkdir()
        (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    elif where == "environment":
        directory.mkdir()
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    server = _serve(tmp_path, **app_settings)
    try:
        workers = server.workers()
        assert len(workers) == 2
        count = 40
        # one connection per upload, 8 at a time: the workers share them
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: put(server.url, f"m{i}.txt", unique_text(1500)), range(count)))
        assert [status for status, _ in answers] == [200] * count, answers[:3]
        if where == "temporary":
            directory = _open_metrics_dir(min(workers))
        assert not (directory / "counter_999999.db").exists()
        assert _pids_with_counts(str(directory)) == workers  # both workers took uploads
        for _ in range(4):  # whichever worker answers
            found = _scrape_url(server.url)
            assert value(found, "pastefile_uploads_total", outcome="created") == count
            assert value(found, "pastefile_http_requests_total", route="put", status="2xx") == count
        # a worker that dies leaves its counts in the sums
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (len(server.workers()) < 2 or victim in server.workers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.workers()) == 2
        for _ in range(4):
            assert value(_scrape_url(server.url), "pastefile_uploads_total", outcome="created") == count
        status, _, _ = request("GET", server.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert status == 404  # nginx's client, as waitress's trusted_proxy settings name it
    finally:
        server.stop()
    assert "Traceback" not in open(server.console, errors="replace").read()
    # made by the parent for its workers, removed when it exits; one named
    # by the setting or the environment stays
    assert directory.exists() == (where != "temporary")
