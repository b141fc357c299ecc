"""The s3 store's benchmarks stay runnable: benchmarks.big_upload at a small
size and the s3-* scenarios of the load comparison in its smoke mode, each
starting its own Ceph gateway.  Only the output's fields are checked, not
the timings.

Ceph (radosgw, ceph-mon, ceph-osd), wrk and curl are required: without them
these tests fail, they never skip.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks import report
from benchmarks.load.procs import alive
from benchmarks.load.scenarios import BY_NAME

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S3_SCENARIOS = ["s3-upload-64k", "s3-upload-1m", "s3-read-i"]


def _all_stopped(pids: dict[str, list[int]]) -> bool:
    recorded = [pid for group in pids.values() for pid in group]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in recorded):
        time.sleep(0.1)
    return not [pid for pid in recorded if alive(pid)]


@pytest.mark.timeout(400)
def test_big_upload_small(tmp_path):
    out = tmp_path / "big_upload.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.big_upload", "--size-mb", "16", "--part-size", "5M", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    data = json.loads(out.read_text())
    assert "error" not in data and "aborted" not in data
    assert data["size_mb"] == 16 and data["s3_part_size"] == "5M"
    assert set(data["results"]) == {"pastefile-pg", "pastefile-s3"}
    for name, result in data["results"].items():
        assert result["status"] == 200, (name, result)
        assert result["bytes"] == 16 << 20 and result["filehash"]
        for key in ("seconds", "send_seconds", "answer_wait_seconds", "mbps", "server_rss_before_mb",
                    "server_rss_peak_mb", "server_rss_growth_mb"):
            assert isinstance(result[key], (int, float)), (name, key)
        assert result["server_rss_peak_mb"] >= result["server_rss_before_mb"] > 0
        assert {"server", "client"} <= set(result["cpu_seconds"])
    s3 = data["results"]["pastefile-s3"]
    assert "gateway_rss_growth_mb" in s3 and s3["s3_objects_deleted"] >= 1 and "gateway" in s3["cpu_seconds"]
    direct = data["gateway_direct"]
    assert direct["part_size"] == 5 << 20 and direct["parts"] == 4 and direct["mbps"] > 0
    assert data["ratio_s3_to_gateway_direct"] > 0
    assert data["ratio"]["label"] == "s3 MB/s / file MB/s" and data["ratio"]["value"] > 0
    assert data["ratio"]["target"] == 0.5 and isinstance(data["ratio"]["met"], bool)
    assert set(data["rss_checks"]) == {"pastefile-pg", "pastefile-s3"}
    assert data["versions"]["ceph"]
    assert data["pids"]["ceph"] and _all_stopped(data["pids"]), "server processes left running"
    assert "s3 MB/s / file MB/s" in proc.stdout

    text = "\n".join(report.render_big_upload(data))
    assert "## 16 MiB upload: s3 store vs file store" in text
    assert "| pastefile-s3 | 200 |" in text and "| s3 MB/s / file MB/s |" in text
    assert "| gateway-direct (boto3 multipart, 5 MiB parts, no pastefile) |" in text


@pytest.mark.timeout(400)
def test_s3_load_scenarios_smoke(tmp_path):
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--smoke", "--only", *S3_SCENARIOS, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    data = json.loads(out.read_text())
    assert "error" not in data and "aborted" not in data
    assert [s["name"] for s in data["scenarios"]] == S3_SCENARIOS
    for scenario in data["scenarios"]:
        assert scenario["reference"] == "pastefile-pg"
        assert set(scenario["contenders"]) == set(BY_NAME[scenario["name"]].contenders) == {"pastefile-pg",
                                                                                             "pastefile-s3"}
        for name, row in scenario["contenders"].items():
            median = row["median"]
            for key in ("rps", "mbps", "p50_ms", "p99_ms", "requests", "non2xx"):
                assert key in median, (scenario["name"], name, key)
            assert median["non2xx"] == 0, (scenario["name"], name, median)
        [ratio] = scenario["ratios"]
        assert ratio["label"] == "pastefile-s3 / pastefile-pg" and ratio["value"] is not None
        assert ratio["metric"] == BY_NAME[scenario["name"]].metric
        if scenario["kind"] == "post":
            assert all("s3_objects_deleted" in run for run in scenario["contenders"]["pastefile-s3"]["runs"])
    assert data["versions"]["ceph"]
    assert data["pids"]["ceph"] and len(data["pids"]["memcached"]) == 2
    assert _all_stopped(data["pids"]), "server processes left running"
    assert "ratio pastefile-s3 / pastefile-pg" in proc.stdout

    text = "\n".join(report.render_load(data, None, str(tmp_path)))
    for scenario in S3_SCENARIOS:
        assert f"### {scenario}:" in text
