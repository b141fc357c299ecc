"""The load comparison (benchmarks.load) runs end to end in its smoke mode,
leaves no server behind, and its results render into the report.

wrk and curl are required: without them these tests fail, they never skip.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from benchmarks import report
from benchmarks.load import config
from benchmarks.load.procs import CpuMeter, alive
from benchmarks.load.scenarios import BY_NAME, PASTEFILE, evaluate, summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS = {"pastefile-sqlite", "pastefile-pg", "book-sqlite", "book-pg", "body-reader", "reader-sniff",
           "reader-durable", "reader-sniff-durable", "hello", "pyramid-min"}


def test_load_generators_are_installed():
    assert shutil.which("wrk"), "wrk is not installed: apt-get install wrk (make deps installs it)"
    assert shutil.which("curl"), "curl is not installed: apt-get install curl (make deps installs it)"


@pytest.mark.timeout(600)  # the run itself may take up to 400 s (its subprocess timeout)
def test_smoke_run(tmp_path):
    assert shutil.which("wrk"), "wrk is not installed: apt-get install wrk (make deps installs it)"
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--smoke", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    data = json.loads(out.read_text())
    assert data["smoke"] is True and "error" not in data and "aborted" not in data
    # what keeps a smoke run short, rather than how long this one took: 1 s
    # runs (2 s uploads), one repeat, every contender at once, an 8 MB large
    # upload; and the run's own 3-minute limit never cut it off (no "aborted")
    assert data["seconds"] == 1 and data["seconds_smoke_uploads"] == 2
    assert data["repeats"] == 1 and data["contenders_in_parallel"] is True

    # every scenario ran, every contender measured something, ratios for all
    assert [s["name"] for s in data["scenarios"]] == list(BY_NAME)
    for scenario in data["scenarios"]:
        assert scenario["ratios"], f"{scenario['name']} has no ratios"
        assert all(r["value"] is not None and r["value"] > 0 for r in scenario["ratios"]), scenario["ratios"]
        assert set(scenario["contenders"]) == set(BY_NAME[scenario["name"]].contenders)
        for name, row in scenario["contenders"].items():
            assert len(row["runs"]) == 1, f"{scenario['name']} {name}: {len(row['runs'])} runs"
            median = row["median"]
            assert median["rps"] > 0 and median["mbps"] > 0, f"{scenario['name']} {name}: {median}"
            assert median["requests"] > 0
            if name in PASTEFILE and scenario["kind"] in ("post", "put", "large"):
                assert median["non2xx"] == 0, f"{scenario['name']} {name}: {median['non2xx']} non-2xx answers"
    large = {s["name"]: s for s in data["scenarios"]}["upload-1g"]
    assert large["body_bytes"] == 8 << 20
    assert all("rss_growth_mb_max" in row["median"] for row in large["contenders"].values())
    assert data["versions"]["wrk"] and data["versions"]["postgresql"] and data["versions"]["memcached"]

    # nothing left running
    pids = data["pids"]
    assert SERVERS <= set(pids) and all(pids[name] for name in SERVERS)
    assert len(pids["memcached"]) == 2 and pids["postgresql"]
    recorded = [pid for group in pids.values() for pid in group]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in recorded):
        time.sleep(0.1)
    assert not [pid for pid in recorded if alive(pid)], "server processes left running"

    # the report renders it, with charts
    charts = tmp_path / "charts"
    text = "\n".join(report.render_load(data, str(charts), str(tmp_path)))
    assert "## Load comparison" in text and "Smoke run" in text
    assert "](charts/load-upload-64k.png)" in text and "](charts/load-targets.png)" in text
    assert (charts / "load-upload-64k.png").stat().st_size > 1000
    for scenario in BY_NAME:
        assert f"### {scenario}:" in text


def test_server_section_is_production_s(tmp_path):
    source = config.read()
    section = config.server_section(source, 4321, str(tmp_path), "x")
    production = {key: source.get("server:main", key) for key in source.options("server:main")}
    changed = {"listen", "host", "port", "url_scheme", "max_request_body_size"}
    for key, value in production.items():
        if key not in changed and not value.startswith("/"):
            assert section[key] == value, key
    assert section["url_scheme"] == "http"
    assert int(section["max_request_body_size"]) == (2 << 30) + (1 << 20)
    assert "127.0.0.1:4321" in (section.get("listen", ""), f"{section.get('host')}:{section.get('port')}")


def test_ini_paths_move_into_the_run_dir(tmp_path):
    ini = tmp_path / "prod.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pastefile\npastefile.accel_redirect = /_blobs\n"
        "[server:main]\nuse = egg:pastefile#main\nhost = 0.0.0.0\nport = 80\nworkers = 4\n"
        "error_log = /var/log/pastefile/server.log\n"
        "[loggers]\nkeys = root\n[handlers]\nkeys = file\n[formatters]\nkeys = generic\n"
        "[logger_root]\nlevel = WARN\nhandlers = file\n"
        "[handler_file]\nclass = FileHandler\nargs = ('/var/log/pastefile/app.log', 'a')\nformatter = generic\n"
        "[formatter_generic]\nformat = %(asctime)s %(message)s\n"
    )
    source = config.read(str(ini))
    server = config.server_section(source, 5555, str(tmp_path), "srv")
    assert server["host"] == "127.0.0.1" and server["port"] == "5555" and "listen" not in server
    assert server["workers"] == "4" and server["use"] == "egg:pastefile#main"
    assert server["error_log"] == str(tmp_path / "srv-server.log")
    logging = config.logging_sections(source, str(tmp_path), "srv")
    assert logging["handler_file"]["args"] == f"('{tmp_path / 'srv-app.log'}', 'a')"
    assert logging["formatter_generic"]["format"] == "%(asctime)s %(message)s"
    app = config.pastefile_app(source, {"pastefile.db_url": "sqlite://"})
    assert "pastefile.accel_redirect" not in app and app["use"] == "egg:pastefile"
    out = tmp_path / "out.ini"
    config.write(str(out), app, server, logging)
    assert config.read(str(out)).get("handler_file", "args") == logging["handler_file"]["args"]


def test_medians_ratios_and_checks():
    runs = [{"rps": r, "mbps": r / 10, "p99_ms": p, "non2xx": 0, "requests": 10, "socket_errors": 0}
            for r, p in ((100, 40), (120, 60), (80, 45))]
    reader = [{"rps": 400, "mbps": 40, "p99_ms": 5, "non2xx": 0, "requests": 10, "socket_errors": 0}]
    work = [{"rps": 160, "mbps": 16, "p99_ms": 9, "non2xx": 0, "requests": 10, "socket_errors": 0}]
    book = [{"rps": 25, "mbps": 2.5, "p99_ms": 50, "non2xx": 3, "requests": 10, "socket_errors": 0}]
    medians = {"pastefile-sqlite": summarize(runs), "body-reader": summarize(reader), "book-sqlite": summarize(book),
               "reader-sniff-durable": summarize(work)}
    assert medians["pastefile-sqlite"]["rps"] == 100 and medians["pastefile-sqlite"]["p99_ms"] == 45
    assert medians["pastefile-sqlite"]["requests"] == 30
    ratios, checks = evaluate(BY_NAME["upload-64k"], medians, {})
    by_label = {r["label"]: r for r in ratios}
    # the targets are against the plain reader doing an upload's work
    assert by_label["pastefile-sqlite / reader-sniff-durable"]["value"] == 0.625
    assert by_label["pastefile-sqlite / reader-sniff-durable"]["met"] is False  # target 0.8
    assert by_label["pastefile-sqlite / body-reader"]["value"] == 0.25
    assert by_label["pastefile-sqlite / body-reader"]["met"] is None  # informational
    assert by_label["pastefile-sqlite / book-sqlite"]["value"] == 4 and by_label["pastefile-sqlite / book-sqlite"]["met"]
    assert "pastefile-pg / body-reader" not in by_label  # not measured: no ratio
    assert {(c["label"], c["met"]) for c in checks} == {("pastefile-sqlite non2xx", True), ("pastefile-sqlite p99_ms", True)}
    dup, _ = evaluate(BY_NAME["upload-64k-dup20"], {"pastefile-sqlite": summarize(runs[:1])},
                      {"upload-64k": {"pastefile-sqlite": {"rps": 50.0}}})
    assert [(r["value"], r["met"]) for r in dup] == [(2.0, True)]


def test_cpu_meter_counts_a_busy_child_per_request():
    """CPU time per request comes from /proc: a child burning CPU for a
    known while shows up in its parent's tree, divided by the requests."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys,time\nsys.stdin.readline()\n"
                             "t=time.process_time()\nwhile time.process_time()-t<0.3: pass\n"
                             "print('burnt', flush=True)\nsys.stdin.readline()\n"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        meter = CpuMeter(os.getpid(), backing_pids=lambda: [proc.pid])
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "burnt\n"
        row = meter.finish(requests=10)
    finally:
        proc.stdin.write("end\n")
        proc.stdin.flush()
        proc.wait(10)
    # the child is in this process's tree and the backing list: ~300 ms / 10
    assert 25 <= row["cpu_ms_backing"] <= 40
    assert row["cpu_ms"] >= 25
    assert 0 < row["machine_busy"] <= 1
    assert CpuMeter(os.getpid()).finish(requests=0)["cpu_ms"] is None


def _call(app, body: bytes, content_type: str, close: bool = False) -> tuple[str, dict]:
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type}
    answer = app(environ, start_response)
    payload = b"".join(answer)
    if close and hasattr(answer, "close"):
        answer.close()
    return seen["status"], json.loads(payload)


def test_reader_parts_do_their_part(tmp_path):
    """The body readers that measure one part of an upload each: the sniff
    one gives pastefile's answer for the file inside the form, the durable one
    keeps exactly the body, with its SHA-256."""
    from benchmarks.load import body_reader
    from benchmarks.load.runner import multipart
    from pastefile.core.sniff import sniff

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 40)).save(out, "PNG")
    png = out.getvalue()
    text = b"plain words on a line\n" * 500
    for content in (png, text):
        body, ctype = multipart("f.bin", content)
        status, answer = _call(body_reader.make_sniff_app({}), body, ctype)
        assert status == "200 OK" and answer["bytes"] == len(body)
        assert answer["mimetype"] == sniff(content[:4096]), answer
        status, answer = _call(body_reader.make_sniff_app({}), content, "application/octet-stream")
        assert answer["mimetype"] == sniff(content[:4096])
    assert _call(body_reader.make_sniff_app({}), png, "image/png")[1]["mimetype"] == "image/png"

    directory = tmp_path / "kept"
    app = body_reader.make_durable_app({}, **{"reader.directory": str(directory)})
    body = os.urandom(300_000)
    status, answer = _call(app, body, "application/octet-stream")
    assert status == "200 OK" and answer == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    [kept] = list(directory.iterdir())
    assert kept.read_bytes() == body
    _call(app, b"x", "application/octet-stream", close=True)
    assert list(directory.iterdir()) == [kept]  # each answer removes only its own file

    both = body_reader.make_sniff_durable_app({}, **{"reader.directory": str(tmp_path / "both")})
    form, ctype = multipart("f.png", png)
    status, answer = _call(both, form, ctype)
    assert answer == {"bytes": len(form), "sha256": hashlib.sha256(form).hexdigest(), "mimetype": "image/png"}
    assert [f.read_bytes() for f in (tmp_path / "both").iterdir()] == [form]
    _call(both, form, ctype, close=True)
    assert len(list((tmp_path / "both").iterdir())) == 1  # the closed answer took its file along
