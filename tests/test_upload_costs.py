"""benchmarks.upload_costs at smoke size: the stages of a 64 KB upload are
measured in both setups (SQLite, and PostgreSQL + memcached: a missing
server fails the test), add up to the process's CPU, the reader reference
is measured, and pastefile's functions are the originals again afterwards."""
from __future__ import annotations

import math

import pytest

from benchmarks import report, upload_costs

UPLOADS, THREADS = 200, 2


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    before = upload_costs.originals()
    result = upload_costs.measure(list(upload_costs.SETUPS), UPLOADS, THREADS, str(tmp_path_factory.mktemp("costs")))
    return before, result


def _setup(result: dict, name: str) -> dict:
    return next(row for row in result["setups"] if row["name"] == name)


def test_wrappers_are_removed(measured):
    before, _ = measured
    after = upload_costs.originals()
    assert after == before
    assert not any(getattr(fn, "__wrapped_by_upload_costs__", False) for fn in after.values())


def test_both_setups_measured(measured):
    _, result = measured
    assert [row["name"] for row in result["setups"]] == list(upload_costs.SETUPS)
    for row in result["setups"]:
        assert row["uploads"] == UPLOADS
        assert set(row["ms"]) == set(upload_costs.STAGES)


@pytest.mark.parametrize("name", upload_costs.SETUPS)
def test_stages_positive_and_add_up(measured, name):
    _, result = measured
    row = _setup(result, name)
    ms = row["ms"]
    for key in ("framework", "receive", "sniff", "response", "writer_sql", "writer_after"):
        assert ms[key] > 0, (key, ms)
    assert ms["handoff"] >= 0 and ms["ingest_other"] >= 0, ms
    # the threads' own clocks do not add up to more than the process's
    assert ms["other_threads"] > -0.05 * row["process_ms"], ms
    assert math.isclose(sum(ms.values()), row["process_ms"], rel_tol=1e-6)
    assert math.isclose(row["parts_sum_ms"], row["process_ms"], rel_tol=1e-6)
    servers = sum(v for v in row["servers_ms"].values() if v is not None)
    assert math.isclose(row["total_ms"], row["process_ms"] + servers, rel_tol=1e-6)
    # the app call holds most of the process's time; a 64 KB upload costs
    # a fraction of a millisecond to some tens of them
    assert row["app_ms"] > 0.5 * ms["framework"]
    assert 0.1 < row["process_ms"] < 100, row["process_ms"]
    assert row["reference_ms"] > 0
    assert row["ratio"] > 0 and math.isclose(row["ratio"], row["process_ms"] / row["reference_ms"])


def test_servers_measured_for_postgresql(measured):
    _, result = measured
    sqlite, pg = _setup(result, "sqlite"), _setup(result, "postgresql")
    assert sqlite["servers_ms"] == {"database": None, "memcached": None}
    assert pg["servers_ms"]["database"] > 0
    assert pg["servers_ms"]["memcached"] >= 0
    assert pg["ratio_with_servers"] >= pg["ratio"]


def test_table_and_report(measured):
    _, result = measured
    for row in result["setups"]:
        lines = upload_costs.table(row)
        assert any(line.startswith(upload_costs.LABELS["sniff"]) for line in lines)
        assert any(line.startswith("ratio pastefile process / reference") for line in lines)
    doc = {"started": "now", "smoke": True, "machine": {"cpu": "x", "cores": 2, "loadavg_start": [1.0]}, **result}
    text = "\n".join(report.render_upload_costs(doc))
    assert "## 64 KB uploads: CPU per upload by stage" in text
    assert "PostgreSQL (fsync on) + 2 memcached" in text


def test_meters_count_a_recursive_call_once_and_unwrap_on_error():
    meters = upload_costs.Meters()

    def spin(n):
        total = sum(range(20000))
        return total if n == 0 else spin(n - 1)

    spin = meters.wrap("spin", spin)
    import time

    start = time.thread_time()
    spin(5)
    spent = (time.thread_time() - start) * 1000.0
    assert 0 < meters.totals()["spin"] <= spent * 1.01 + 0.01

    before = upload_costs.originals()
    with pytest.raises(RuntimeError):
        with upload_costs.wrapped(upload_costs.Meters()):
            assert upload_costs.originals() != before
            raise RuntimeError("stop")
    assert upload_costs.originals() == before
