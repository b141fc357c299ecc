"""Write benchmarks/REPORT.md from a pytest-benchmark JSON file.

Within each benchmark group the entry whose name contains ``reference`` (or
``hashlib``/``pillow``) is the baseline; every other entry gets its speed-up
against that baseline, measured in the same run.  The throughput table and
the load test results are added when given.

    python -m benchmarks.report results.json REPORT.md [--throughput T.txt] [--loadtest L.json ...]
"""
from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict

BASELINE_MARKERS = ("reference", "hashlib", "pillow")


def _baseline(entries: list[dict]) -> dict | None:
    for marker in BASELINE_MARKERS:
        for entry in entries:
            if marker in entry["name"].lower():
                return entry
    return None


def render(data: dict, throughput: str | None = None, loadtests: list[dict] = ()) -> str:
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data.get("benchmarks", []):
        groups[bench.get("group") or bench["name"]].append(bench)
    machine = data.get("machine_info", {})
    lines = [
        "# Benchmark report",
        "",
        f"Machine: {machine.get('cpu', {}).get('brand_raw', platform.processor() or 'unknown')}, "
        f"Python {machine.get('python_version', platform.python_version())}. "
        f"Generated from pytest-benchmark results dated {data.get('datetime', 'unknown')}.",
        "",
        "Speed-up = baseline median / median, both measured in the same run.",
        "",
    ]
    for group in sorted(groups):
        entries = sorted(groups[group], key=lambda b: b["stats"]["median"])
        base = _baseline(entries)
        lines += [f"## {group}", "", "| benchmark | median | ops/s | speed-up |", "|---|---:|---:|---:|"]
        for entry in entries:
            median = entry["stats"]["median"]
            ratio = f"{base['stats']['median'] / median:.2f}x" if base else "n/a"
            lines.append(f"| {entry['name']} | {median * 1e3:.3f} ms | {1 / median:,.1f} | {ratio} |")
        lines.append("")
    if throughput:
        lines += ["## copy_and_hash throughput (benchmarks.hash_throughput)", "", "```", throughput.strip(), "```", ""]
    for loadtest in loadtests:
        backend = loadtest.get("backend", "sqlite")
        lines += [
            f"## Load test on {backend} (benchmarks.loadtest, {loadtest['clients']} clients on the same machine)",
            "",
            "| phase | requests | errors | req/s | MB/s | p50 ms | p95 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in loadtest["phases"]:
            lines.append(
                f"| {row['phase']} | {row['requests']} | {row['errors']} | {row['per_second']:.1f} | "
                f"{row.get('mb_per_second', 0.0):.1f} | "
                f"{row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="pytest-benchmark --benchmark-json output")
    parser.add_argument("report", help="the Markdown file to write")
    parser.add_argument("--throughput", help="output of benchmarks.hash_throughput")
    parser.add_argument("--loadtest", action="append", default=[], help="--json output of benchmarks.loadtest (repeatable)")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        data = json.load(f)
    throughput = open(args.throughput).read() if args.throughput else None
    loadtests = []
    for path in args.loadtest:
        with open(path) as f:
            loadtests.append(json.load(f))
    with open(args.report, "w") as f:
        f.write(render(data, throughput, loadtests))
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
