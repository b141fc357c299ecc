"""benchmarks.tus_upload stays runnable: a smoke run at a tiny size (16 MiB,
rounds of 1 s), its output's fields and the sha256 checks of both pastes;
not its timings.  PostgreSQL and memcached are required (the server is
benchmarks.big_upload's pastefile-pg): without them this test fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks import report
from benchmarks.load.procs import alive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _all_stopped(pids: dict[str, list[int]]) -> bool:
    recorded = [pid for group in pids.values() for pid in group]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in recorded):
        time.sleep(0.1)
    return not [pid for pid in recorded if alive(pid)]


@pytest.mark.timeout(300)
def test_tus_upload_smoke(tmp_path):
    out = tmp_path / "tus_upload.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.tus_upload", "--size-mb", "16", "--patch-mb", "4", "--seconds", "1",
         "--clients", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    data = json.loads(out.read_text())
    assert "error" not in data and "aborted" not in data
    assert data["size_mb"] == 16 and data["patch_mb"] == 4 and data["server"] == "pastefile-pg"

    tus, post = data["large"]["tus"], data["large"]["post"]
    assert tus["status"] == 204 and tus["error"] is None and tus["patches"] == 4
    assert post["status"] == 200
    for name, result in (("tus", tus), ("post", post)):
        assert result["bytes"] == 16 << 20
        for key in ("seconds", "mbps", "server_rss_before_mb", "server_rss_peak_mb", "server_rss_growth_mb"):
            assert isinstance(result[key], (int, float)), (name, key)
        assert result["mbps"] > 0 and result["server_rss_peak_mb"] >= result["server_rss_before_mb"] > 0
        assert {"server", "client"} <= set(result["cpu_seconds"])
        # the paste holds exactly the bytes sent
        assert len(result["sha256_sent"]) == 64 and result["sha256_paste"] == result["sha256_sent"], name
        assert result["sha256_match"] is True
    assert tus["paste_url"] and tus["location"].rstrip("/").rsplit("/", 2)[-2] == "files"
    assert tus["patch_answer_wait_seconds"]["last"] is not None
    assert data["sha256_ok"] is True

    small = data["small"]
    assert small["bytes"] == 64 << 10 and small["clients"] == 2
    assert [r["kind"] for r in small["rounds"]] == ["post", "tus", "tus", "post"]
    for name in ("tus", "post"):
        assert small[name]["ok"] > 0 and small[name]["errors"] == 0 and small[name]["rps"] > 0, small[name]

    checks = data["checks"]
    assert set(checks) == {"large_ratio", "tus_rss", "small_ratio"}
    assert (checks["large_ratio"]["op"], checks["large_ratio"]["target"]) == (">=", 0.8)
    assert (checks["tus_rss"]["op"], checks["tus_rss"]["target"]) == ("<", 50.0)
    assert (checks["small_ratio"]["op"], checks["small_ratio"]["target"]) == (">=", 0.7)
    for check in checks.values():
        assert check["value"] > 0 and isinstance(check["met"], bool)
    assert data["pids"]["postgresql"] and _all_stopped(data["pids"]), "server processes left running"
    for label in ("large upload MB/s, tus / POST", "64 KiB uploads/s, tus / POST", "sha256 of the pastes"):
        assert label in proc.stdout

    text = "\n".join(report.render_tus_upload(data))
    assert "## tus vs multipart POST: 16 MiB and 64 KiB uploads (benchmarks.tus_upload)" in text
    assert "| tus, 4 PATCHes |" in text and "| multipart POST / |" in text
    assert "| tus creation-with-upload |" in text and "| 64 KiB uploads/s, tus / POST |" in text
