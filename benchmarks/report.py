"""Write benchmarks/REPORT.md from a pytest-benchmark JSON file.

Within each benchmark group the entry whose name contains ``reference`` (or
``hashlib``/``pillow``) is the baseline; every other entry gets its speed-up
against that baseline, measured in the same run.

    python -m benchmarks.report benchmarks/results.json benchmarks/REPORT.md
"""
from __future__ import annotations

import json
import platform
import sys
from collections import defaultdict

BASELINE_MARKERS = ("reference", "hashlib", "pillow")


def _baseline(entries: list[dict]) -> dict | None:
    for marker in BASELINE_MARKERS:
        for entry in entries:
            if marker in entry["name"].lower():
                return entry
    return None


def render(data: dict) -> str:
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
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        data = json.load(f)
    with open(argv[1], "w") as f:
        f.write(render(data))
    print(f"wrote {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
