"""The benchmark tools stay runnable: report rendering and a tiny load test."""
from __future__ import annotations

import json

from benchmarks import loadtest, report


def test_report_ratios_against_baseline(tmp_path):
    results = {
        "datetime": "now",
        "machine_info": {"python_version": "3.11"},
        "benchmarks": [
            {"name": "test_reference_loop", "group": "g", "stats": {"median": 0.2}},
            {"name": "test_fast", "group": "g", "stats": {"median": 0.1}},
        ],
    }
    text = report.render(results, "(a) 1 MB/s", [{"clients": 2, "backend": "postgresql", "phases": [
        {"phase": "upload", "requests": 3, "errors": 0, "per_second": 1.5, "p50_ms": 1, "p95_ms": 2, "p99_ms": 3}
    ]}])
    assert "| test_fast | 100.000 ms | 10.0 | 2.00x |" in text
    assert "| test_reference_loop | 200.000 ms | 5.0 | 1.00x |" in text
    assert "(a) 1 MB/s" in text and "| upload | 3 | 0 | 1.5 | 0.0 |" in text
    assert "## Load test on postgresql" in text


def test_loadtest_small_run(tmp_path):
    out = tmp_path / "load.json"
    args = ["--clients", "2", "--seconds", "5", "--max-requests", "20", "--large-mb", "2", "--large-count", "2"]
    assert loadtest.main([*args, "--json", str(out)]) == 0
    phases = {p["phase"]: p for p in json.loads(out.read_text())["phases"]}
    assert set(phases) == {"upload", "preview", "raw", "resize", "post-2MB", "put-2MB"}
    assert phases["put-2MB"]["mb_per_second"] > 0
    assert all(p["requests"] > 0 and p["errors"] == 0 for p in phases.values())


def test_loadtest_on_postgresql_and_memcached(tmp_path):
    out = tmp_path / "load-pg.json"
    args = ["--backend", "postgresql", "--clients", "2", "--seconds", "5", "--max-requests", "10", "--large-mb", "0"]
    assert loadtest.main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["backend"] == "postgresql"
    assert all(p["requests"] > 0 and p["errors"] == 0 for p in result["phases"])
