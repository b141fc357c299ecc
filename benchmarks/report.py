"""Write benchmarks/REPORT.md from a pytest-benchmark JSON file.

Within each benchmark group the entry whose name contains ``reference`` (or
``hashlib``/``pillow``) is the baseline; every other entry gets its speed-up
against that baseline, measured in the same run; a group with several
``reference`` entries gets one speed-up column per reference.  The
throughput table, the load test results and the load comparison
(benchmarks.load, with PNG charts under ``--charts-dir``) are added when
given; the large upload on both stores (benchmarks.big_upload) when its
JSON exists (``--big-upload``, default big_upload.json beside the report);
tus against the multipart POST (benchmarks.tus_upload) likewise
(``--tus-upload``, default tus_upload.json beside the report); the CPU of
a photo upload by stage (benchmarks.photo_costs) likewise
(``--photo-costs``, default photo_costs.json beside the report); the CPU
of a 64 KB upload by stage (benchmarks.upload_costs) likewise
(``--upload-costs``, default upload_costs.json beside the report).

    python -m benchmarks.report results.json REPORT.md [--throughput T.txt] [--loadtest L.json ...]
        [--load load.json [--charts-dir DIR]] [--big-upload big_upload.json] [--tus-upload tus_upload.json]
        [--photo-costs photo_costs.json] [--upload-costs upload_costs.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from collections import defaultdict

BASELINE_MARKERS = ("reference", "hashlib", "pillow")


def _baseline(entries: list[dict]) -> dict | None:
    for marker in BASELINE_MARKERS:
        for entry in entries:
            if marker in entry["name"].lower():
                return entry
    return None


def _baselines(entries: list[dict]) -> list[dict]:
    references = sorted((e for e in entries if "reference" in e["name"].lower()), key=lambda e: e["name"])
    if len(references) > 1:
        return references
    base = _baseline(entries)
    return [base] if base else []


def _short_name(entry: dict) -> str:
    name = entry["name"]
    return name[name.lower().index("reference") + len("reference"):].strip("_-[]") or name


def render(data: dict, throughput: str | None = None, loadtests: list[dict] = (), load: dict | None = None,
           charts_dir: str | None = None, report_dir: str = ".", big_upload: dict | None = None,
           tus_upload: dict | None = None, photo_costs: dict | None = None,
           upload_costs: dict | None = None) -> str:
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
        bases = _baselines(entries)
        if len(bases) > 1:
            heads = [f"speed-up vs {_short_name(base)}" for base in bases]
            lines += [f"## {group}", "", f"| benchmark | median | ops/s | {' | '.join(heads)} |",
                      "|---|---:|---:|" + "---:|" * len(bases)]
        else:
            lines += [f"## {group}", "", "| benchmark | median | ops/s | speed-up |", "|---|---:|---:|---:|"]
        for entry in entries:
            median = entry["stats"]["median"]
            ratios = [f"{base['stats']['median'] / median:.2f}x" for base in bases] or ["n/a"]
            lines.append(f"| {entry['name']} | {median * 1e3:.3f} ms | {1 / median:,.1f} | {' | '.join(ratios)} |")
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
    if load is not None:
        lines += render_load(load, charts_dir, report_dir)
    if big_upload is not None:
        lines += render_big_upload(big_upload)
    if tus_upload is not None:
        lines += render_tus_upload(tus_upload)
    if photo_costs is not None:
        lines += render_photo_costs(photo_costs, load)
    if upload_costs is not None:
        lines += render_upload_costs(upload_costs)
    return "\n".join(lines)


def _beside(path: str | None, report_dir: str, name: str) -> dict | None:
    """A document named on the command line, else ``name`` beside the report
    when there is one."""
    path = path or os.path.join(report_dir, name)
    if not os.path.exists(path) and path == os.path.join(report_dir, name):
        return None
    with open(path) as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="pytest-benchmark --benchmark-json output")
    parser.add_argument("report", help="the Markdown file to write")
    parser.add_argument("--throughput", help="output of benchmarks.hash_throughput")
    parser.add_argument("--loadtest", action="append", default=[], help="--json output of benchmarks.loadtest (repeatable)")
    parser.add_argument("--load", help="--json output of benchmarks.load (the load comparison)")
    parser.add_argument("--charts-dir", help="where the load comparison's PNG charts go (default: charts/ beside the report)")
    parser.add_argument("--big-upload", help="--json output of benchmarks.big_upload (default: big_upload.json beside "
                        "the report, when it exists)")
    parser.add_argument("--tus-upload", help="--json output of benchmarks.tus_upload (default: tus_upload.json beside "
                        "the report, when it exists)")
    parser.add_argument("--photo-costs", help="--json output of benchmarks.photo_costs (default: photo_costs.json "
                        "beside the report, when it exists)")
    parser.add_argument("--upload-costs", help="--json output of benchmarks.upload_costs (default: upload_costs.json "
                        "beside the report, when it exists)")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        data = json.load(f)
    throughput = open(args.throughput).read() if args.throughput else None
    loadtests = []
    for path in args.loadtest:
        with open(path) as f:
            loadtests.append(json.load(f))
    load = None
    report_dir = os.path.dirname(os.path.abspath(args.report))
    charts_dir = args.charts_dir or os.path.join(report_dir, "charts")
    if args.load:
        with open(args.load) as f:
            load = json.load(f)
    big_upload = _beside(args.big_upload, report_dir, "big_upload.json")
    tus_upload = _beside(args.tus_upload, report_dir, "tus_upload.json")
    photo_costs = _beside(args.photo_costs, report_dir, "photo_costs.json")
    upload_costs = _beside(args.upload_costs, report_dir, "upload_costs.json")
    with open(args.report, "w") as f:
        f.write(render(data, throughput, loadtests, load, charts_dir, report_dir, big_upload, tus_upload,
                       photo_costs, upload_costs))
    print(f"wrote {args.report}")
    return 0


# -- the load comparison (benchmarks.load) -------------------------------------------

VERSION_KEYS = ("python", "waitress", "pyramid", "SQLAlchemy", "psycopg2", "pymemcache", "Flask", "Flask-SQLAlchemy",
                "Werkzeug", "postgresql", "memcached", "ceph", "wrk", "curl", "commit")
METRIC_NAMES = {"rps": "req/s", "mbps": "MB/s", "p99_ms": "p99 ms", "non2xx": "non-2xx",
                "rss_growth_mb": "RSS growth MB (worst run)", "cpu_ms": "server CPU ms per request"}


def _num(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _verdict(met) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


def _target_text(op: str, target) -> str:
    return f"{op} {target:g}" if target is not None else ""


def load_charts(load: dict, charts_dir: str) -> dict[str, str]:
    """One bar chart per scenario (its rate per contender, reference in grey)
    and one of the target ratios.  Returns {scenario or "targets": png path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(charts_dir, exist_ok=True)
    out = {}
    for scenario in load.get("scenarios", []):
        metric = scenario["metric"]
        names = list(scenario["contenders"])
        values = [scenario["contenders"][n]["median"].get(metric) or 0.0 for n in names]
        colors = ["#999999" if n == scenario["reference"] else "#1f77b4" if n.startswith("pastefile")
                  else "#ff7f0e" for n in names]
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.3))
        bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
        ax.bar_label(bars, labels=[_num(v) for v in values[::-1]], padding=3, fontsize=8)
        ax.set_xlabel(METRIC_NAMES[metric] + " (median)")
        ax.set_title(f"{scenario['name']}: {scenario['title']}", fontsize=9)
        ax.margins(x=0.15)
        fig.tight_layout()
        path = os.path.join(charts_dir, f"load-{scenario['name']}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out[scenario["name"]] = path
    targets = [(f"{s['name']}: {r['label']}", r["value"], r["target"]) for s in load.get("scenarios", [])
               for r in s["ratios"] if r["target"] is not None and r["value"] is not None]
    if targets:
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(targets) + 1.5))
        labels = [t[0] for t in targets][::-1]
        measured = [t[1] / t[2] for t in targets][::-1]
        colors = ["#2ca02c" if m >= 1 else "#d62728" for m in measured]
        bars = ax.barh(labels, measured, color=colors)
        ax.bar_label(bars, labels=[f"{t[1]:.2f} / {t[2]:g}" for t in targets][::-1], padding=3, fontsize=7)
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xlabel("measured ratio / target ratio (1 = target met)")
        ax.set_title("Load comparison: ratios against their targets", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(x=0.2)
        fig.tight_layout()
        path = os.path.join(charts_dir, "load-targets.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out["targets"] = path
    return out


def render_load(load: dict, charts_dir: str | None = None, report_dir: str = ".") -> list[str]:
    charts = load_charts(load, charts_dir) if charts_dir else {}

    def image(key: str, alt: str) -> list[str]:
        if key not in charts:
            return []
        return [f"![{alt}]({os.path.relpath(charts[key], report_dir)})", ""]

    machine = load.get("machine", {})
    server = load.get("server_section", {})
    lines = [
        "## Load comparison (benchmarks.load)",
        "",
        f"Run {load.get('started', '?')}: {load.get('repeats')} interleaved rounds of {load.get('seconds')} s per "
        f"contender, medians shown; wrk with {load.get('wrk_threads', 2)} threads (16 connections for uploads, 32 "
        "for reads) and curl for the single large upload, on the same machine as the servers, over 127.0.0.1. "
        "Every server runs under `pserve` with the `[server:main]` section of production.ini "
        f"(`{', '.join(f'{k} = {v}' for k, v in server.items() if k not in ('listen', 'host', 'port'))}`).",
        "",
        "The `reader-*` contenders are the bare body reader doing one part of an upload's work each (pastefile's "
        "libmagic sniff of the file's head; SHA-256, a write and `fdatasync` per upload; both): their ratios to "
        "the body reader show what that part alone costs on this machine, against the upload targets.",
        "",
    ]
    if load.get("smoke"):
        lines += ["**Smoke run**: 1 s runs with every contender at the same time; these numbers check the harness "
                  "and compare nothing.", ""]
    if load.get("aborted") or load.get("error"):
        lines += [f"**Incomplete run**: {load.get('aborted') or load.get('error')}", ""]
    lines += [
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('memory_mb', '?')} MB; "
        f"load average {', '.join(f'{x:.2f}' for x in machine.get('loadavg_start', []))} at the start, "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_end', []))} at the end.",
        "",
        "| component | version |",
        "|---|---|",
    ]
    versions = load.get("versions", {})
    for key in VERSION_KEYS:
        if versions.get(key):
            lines.append(f"| {key} | {versions[key]} |")
    lines.append("")

    targeted = []
    for scenario in load.get("scenarios", []):
        for r in scenario["ratios"]:
            if r["target"] is not None:
                targeted.append((scenario["name"], f"{r['label']} ({METRIC_NAMES[r['metric']]})", _num(r["value"], 2),
                                 _target_text(">=", r["target"]), _verdict(r["met"])))
        for c in scenario["checks"]:
            targeted.append((scenario["name"], f"{c['contender']} {METRIC_NAMES.get(c['metric'], c['metric'])}",
                             _num(c["value"]), _target_text(c["op"], c["target"]), _verdict(c["met"])))
    if targeted:
        met = sum(1 for t in targeted if t[4] == "met")
        lines += [f"### Targets: {met} of {len(targeted)} met", ""]
        lines += image("targets", "ratios against targets")
        lines += ["| scenario | measure | value | target | |", "|---|---|---:|---|---|"]
        lines += [f"| {' | '.join(t)} |" for t in targeted]
        lines.append("")

    for scenario in load.get("scenarios", []):
        size = scenario.get("body_bytes") or 0
        details = [f"reference: {scenario['reference']}"]
        if size:
            details.append(f"body {size // 1024} KB" if size < (1 << 20) else f"body {size >> 20} MB")
        if scenario.get("dup_share"):
            details.append(f"{scenario['dup_share']:.0%} duplicates")
        if scenario["kind"] == "read":
            details.append("non-2xx counts answers >= 400 (the redirects of /s/ are answers)")
        if scenario["kind"] == "large":
            details.append("one request per run: req/s is 1 / its seconds, p50 = p99 = its time")
        if scenario["kind"] == "photo":
            details.append("the JPEGs of benchmarks/load/photos.py round-robin; MB/s counts their mean size per request")
        lines += [f"### {scenario['name']}: {scenario['title']}", "", "; ".join(details) + ".", ""]
        lines += image(scenario["name"], scenario["name"])
        large = scenario["kind"] == "large"
        head = "| contender | what | req/s | MB/s | p50 ms | p99 ms | non-2xx | socket errors |"
        rule = "|---|---|---:|---:|---:|---:|---:|---:|"
        if large:
            head += " RSS growth MB (worst) |"
            rule += "---:|"
        lines += [head, rule]
        for name, row in scenario["contenders"].items():
            m = row["median"]
            cells = [name, row.get("label", ""), _num(m.get("rps")), _num(m.get("mbps")), _num(m.get("p50_ms")),
                     _num(m.get("p99_ms")), str(m.get("non2xx", 0)), str(m.get("socket_errors", 0))]
            if large:
                cells.append(_num(m.get("rss_growth_mb_max")))
            lines.append(f"| {' | '.join(cells)} |")
        lines.append("")
        if scenario["ratios"]:
            lines += ["| ratio | of | value | target | |", "|---|---|---:|---|---|"]
            for r in scenario["ratios"]:
                lines.append(f"| {r['label']} | {METRIC_NAMES[r['metric']]} | {_num(r['value'], 2)} | "
                             f"{_target_text('>=', r['target'])} | {_verdict(r['met']) if r['target'] is not None else ''} |")
            lines.append("")
    return lines



# -- the large upload on both stores (benchmarks.big_upload) -----------------------------

def render_big_upload(doc: dict) -> list[str]:
    machine = doc.get("machine", {})
    lines = [
        f"## {doc.get('size_mb', '?')} MiB upload: s3 store vs file store (benchmarks.big_upload)",
        "",
        f"Run {doc.get('started', '?')}: one {doc.get('request', 'upload')}, generated while sent, to pastefile on "
        "PostgreSQL + memcached with its blobs as files (pastefile-pg) and in a one-node Ceph RADOS Gateway "
        f"(pastefile-s3, memstore: objects in the gateway's RAM; s3 part size {doc.get('s3_part_size', '?')}), "
        "one after the other, on the same machine. Seconds from the first byte sent to the end of the answer. "
        f"Server RSS: VmRSS of pserve and its workers summed, sampled every {doc.get('sample_interval_s', 0.1):g} s; "
        "growth = peak during the upload - value before it. The gateway's RSS grows with the data it keeps in RAM.",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; load average "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_start', []))} at the start, "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_end', []))} at the end.",
        "",
    ]
    if doc.get("aborted") or doc.get("error"):
        lines += [f"**Incomplete run**: {doc.get('aborted') or doc.get('error')}", ""]
    lines += ["| server | HTTP | seconds | MB/s | body sent in s | answer after s | server RSS growth MB | "
              "gateway RSS growth MB | CPU s: server / gateway / client |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in doc.get("results", {}).items():
        cpu = r.get("cpu_seconds", {})
        lines.append(f"| {name} | {r.get('status')} | {_num(r.get('seconds'), 2)} | {_num(r.get('mbps'))} | "
                     f"{_num(r.get('send_seconds'), 2)} | {_num(r.get('answer_wait_seconds'), 2)} | "
                     f"{_num(r.get('server_rss_growth_mb'))} | {_num(r.get('gateway_rss_growth_mb'))} | "
                     f"{_num(cpu.get('server'))} / {_num(cpu.get('gateway'))} / {_num(cpu.get('client'))} |")
    direct = doc.get("gateway_direct")
    if direct:
        cpu = direct.get("cpu_seconds", {})
        lines.append(f"| gateway-direct (boto3 multipart, {direct['part_size'] >> 20} MiB parts, no pastefile) | | "
                     f"{_num(direct.get('seconds'), 2)} | {_num(direct.get('mbps'))} | | | | | "
                     f"- / {_num(cpu.get('gateway'))} / {_num(cpu.get('client'))} |")
    lines.append("")
    rows = []
    ratio = doc.get("ratio")
    if ratio:
        rows.append((ratio["label"], _num(ratio["value"], 2), _target_text(">=", ratio["target"]),
                     _verdict(ratio["met"])))
    if doc.get("ratio_s3_to_gateway_direct") is not None:
        rows.append(("pastefile-s3 MB/s / gateway-direct MB/s", _num(doc["ratio_s3_to_gateway_direct"], 2), "", ""))
    for name, check in doc.get("rss_checks", {}).items():
        rows.append((f"{name} server RSS growth MB", _num(check["value"]), _target_text(check["op"], check["target"]),
                     _verdict(check["met"])))
    if rows:
        lines += ["| measure | value | target | |", "|---|---:|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in rows]
        lines.append("")
    return lines


# -- tus against the multipart POST (benchmarks.tus_upload) ------------------------------

def render_tus_upload(doc: dict) -> list[str]:
    machine = doc.get("machine", {})
    small = doc.get("small", {})
    lines = [
        f"## tus vs multipart POST: {doc.get('size_mb', '?')} MiB and 64 KiB uploads (benchmarks.tus_upload)",
        "",
        f"Run {doc.get('started', '?')} on one server, {doc.get('server', '?')} ({doc.get('server_label', '')}). "
        f"Large: one upload generated while sent, over tus (POST /files/, then {doc.get('patch_mb', '?')} MiB "
        "PATCHes on one keep-alive connection, appended while they arrive) and as one streamed multipart POST /; "
        "seconds from the first byte sent to the end of the last answer; server RSS = VmRSS of pserve and its "
        f"workers summed, sampled every {doc.get('sample_interval_s', 0.1):g} s, growth = peak - value before. "
        f"Small: {small.get('bytes', 65536) >> 10} KiB uploads, each unique, from {small.get('clients', '?')} "
        "keep-alive clients: tus creation-with-upload (one POST /files/ with the whole body, 201) vs multipart "
        f"POST / (200), rounds of {small.get('seconds_per_round', 0):g} s in the order "
        f"{', '.join(r.get('kind', '?') for r in small.get('rounds', []))} after a warm-up.",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; load average "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_start', []))} at the start, "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_end', []))} at the end.",
        "",
    ]
    if doc.get("aborted") or doc.get("error"):
        lines += [f"**Incomplete run**: {doc.get('aborted') or doc.get('error')}", ""]
    large = doc.get("large", {})
    if large:
        lines += ["| large upload | seconds | MB/s | server RSS growth MB | CPU s: server / client | sha256 of the paste |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, r in large.items():
            cpu = r.get("cpu_seconds", {})
            sha = {True: "= body sent", False: "**differs**"}.get(r.get("sha256_match"), "not checked")
            label = f"tus, {r.get('patches', '?')} PATCHes" if name == "tus" else "multipart POST /"
            lines.append(f"| {label} | {_num(r.get('seconds'), 2)} | {_num(r.get('mbps'))} | "
                         f"{_num(r.get('server_rss_growth_mb'))} | {_num(cpu.get('server'))} / "
                         f"{_num(cpu.get('client'))} | {sha} |")
        lines.append("")
    if small.get("tus") and small.get("post"):
        lines += ["| 64 KiB uploads | uploads/s | ok | errors | p50 ms | p99 ms | server CPU ms per upload |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, label in (("tus", "tus creation-with-upload"), ("post", "multipart POST /")):
            r = small[name]
            lines.append(f"| {label} | {_num(r.get('rps'))} | {_num(r.get('ok'))} | {_num(r.get('errors'))} | "
                         f"{_num(r.get('p50_ms'))} | {_num(r.get('p99_ms'))} | "
                         f"{_num(r.get('cpu_seconds_per_upload', {}).get('server'), 2)} |")
        lines.append("")
    checks = doc.get("checks", {})
    if checks:
        lines += ["| measure | value | target | |", "|---|---:|---|---|"]
        for check in checks.values():
            lines.append(f"| {check['label']} | {_num(check['value'], 2)} | "
                         f"{_target_text(check['op'], check['target'])} | {_verdict(check['met'])} |")
        lines.append("")
    return lines



# -- photo uploads by stage (benchmarks.photo_costs) --------------------------------------

def render_photo_costs(doc: dict, load: dict | None = None) -> list[str]:
    machine = doc.get("machine", {})
    photos = doc.get("photos", [])
    total = doc.get("total_ms") or 0
    lines = [
        "## Photo uploads: CPU per upload by stage (benchmarks.photo_costs)",
        "",
        f"Run {doc.get('started', '?')}: the {len(photos)} JPEGs of the upload-photo scenario (mean "
        f"{(doc.get('mean_bytes') or 0) / 1e6:.2f} MB, {sum(1 for p in photos if p.get('gps'))} with GPS), each "
        "uploaded unique in-process through pastefile's own ingest steps on a SQLite service (production.ini's "
        "settings, `strip_metadata = location`), stage by stage and once whole (`PasteFileService.upload`); "
        f"{doc.get('clock', 'process_time')} per stage, the median of {doc.get('repeats', '?')} per photo, the "
        "mean over the photos. The reference does the image work plainly on the same bytes: Pillow open + "
        f"`draft` + `imagehash.phash`. Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores.",
        "",
    ]
    if doc.get("smoke"):
        lines += ["**Smoke run**: three small photos, one upload each; the numbers compare nothing.", ""]
    lines += ["| stage | CPU ms per upload | share of the whole upload |", "|---|---:|---:|"]
    for key in doc.get("stages", []):
        value = doc["mean_ms"][key]
        lines.append(f"| {doc['labels'].get(key, key)} | {_num(value, 2)} | {value / total:.1%} |" if total else
                     f"| {doc['labels'].get(key, key)} | {_num(value, 2)} | |")
    lines += [
        f"| **sum of the stages** | {_num(doc.get('stages_sum_ms'), 2)} | |",
        f"| **whole upload** (PasteFileService.upload) | {_num(total, 2)} | 100% |",
        "",
        "| image work | CPU ms per upload |",
        "|---|---:|",
        f"| pastefile: decode + facts + pHash | {_num(doc.get('image_work_ms'), 2)} |",
        f"| reference: Pillow open + draft + imagehash pHash | {_num(doc.get('reference_ms'), 2)} |",
        f"| ratio pastefile / reference | {_num(doc.get('image_work_to_reference'), 2)} |",
        "",
    ]
    scenario = next((s for s in (load or {}).get("scenarios", []) if s.get("kind") == "photo"), None)
    if scenario is not None:
        lines += ["Under load (upload-photo above): the server's CPU per upload, over HTTP, with the form parsing.",
                  "", "| contender | uploads/s | server CPU ms per upload | database + cache CPU ms |",
                  "|---|---:|---:|---:|"]
        for name, row in scenario["contenders"].items():
            m = row["median"]
            lines.append(f"| {name} | {_num(m.get('rps'))} | {_num(m.get('cpu_ms'), 2)} | "
                         f"{_num(m.get('cpu_ms_backing'), 2)} |")
        lines.append("")
    if photos:
        lines += ["| photo | size | MB | CPU ms: sum of stages | whole upload | reference |",
                  "|---|---|---:|---:|---:|---:|"]
        for p in photos:
            lines.append(f"| {p['name']}{' (GPS)' if p.get('gps') else ''} | {p['width']}x{p['height']} | "
                         f"{p['bytes'] / 1e6:.2f} | {_num(p['stages_sum_ms'], 1)} | {_num(p['total_ms'], 1)} | "
                         f"{_num(p['reference_ms'], 1)} |")
        lines.append("")
    return lines


# -- 64 KB uploads by stage (benchmarks.upload_costs) ------------------------------------

def render_upload_costs(doc: dict) -> list[str]:
    machine = doc.get("machine", {})
    setups = doc.get("setups", [])
    labels = doc.get("labels", {})
    lines = [
        "## 64 KB uploads: CPU per upload by stage (benchmarks.upload_costs)",
        "",
        f"Run {doc.get('started', '?')}: {doc.get('uploads', '?')} unique {(doc.get('body_bytes') or 0) >> 10} KB "
        f"text files per setup as multipart `POST /` through pastefile's WSGI app, called in-process from "
        f"{doc.get('threads', '?')} threads after {doc.get('warmup', '?')} warm-up uploads (production.ini's "
        "`[app:main]` with the run's database, files and cache). The stages are `time.thread_time` accumulators "
        "around pastefile's functions (the whole app call, `receive_multipart`, libmagic's `sniff`, "
        "`GroupCommitter.submit`, `upload_response`, `Ingest.upload_staged`; on the writer threads `_settle` and "
        "`_hand_over`), summed over the threads; \"other\" is the process's CPU (`time.process_time`) that no "
        "wrapper covers, so the stages add up to it. The servers' CPU is read from /proc (clock ticks). The "
        "reference, in the same run with the same bodies and threads, is the plain body reader doing an upload's "
        "work (`make_sniff_durable_app`: libmagic on the head, SHA-256, a write and `fdatasync`): its process CPU. "
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, load average "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_start', []))} at the start: the numbers are "
        "indicative.",
        "",
    ]
    if doc.get("smoke"):
        lines += ["**Smoke run**: 200 uploads from 2 threads; the numbers compare nothing.", ""]
    if not setups:
        return lines
    lines += ["| stage | " + " | ".join(f"{s.get('label', s['name'])} CPU ms | share" for s in setups) + " |",
              "|---|" + "---:|---:|" * len(setups)]

    def row(label: str, values) -> str:
        cells = []
        for setup, value in zip(setups, values):
            total = setup.get("total_ms") or 0
            cells += [_num(value, 3), f"{value / total:.1%}" if value is not None and total else ""]
        return f"| {label} | {' | '.join(cells)} |"

    for key in doc.get("stages", []):
        lines.append(row(labels.get(key, key), [s["ms"].get(key) for s in setups]))
    lines.append(row("**pastefile process** (sum of the above)", [s.get("process_ms") for s in setups]))
    for key in doc.get("servers", []):
        values = [s.get("servers_ms", {}).get(key) for s in setups]
        if any(v is not None for v in values):
            lines.append(row(labels.get(key, key), values))
    lines.append(row("**total**", [s.get("total_ms") for s in setups]))
    lines += [
        "",
        "| setup | reference CPU ms per upload | pastefile process / reference | with the servers / reference "
        "| uploads/s (in-process) | uploads per commit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in setups:
        lines.append(f"| {s.get('label', s['name'])} | {_num(s.get('reference_ms'), 3)} | {_num(s.get('ratio'), 2)} | "
                     f"{_num(s.get('ratio_with_servers'), 2)} | {_num(s.get('uploads_per_s'))} | "
                     f"{_num(s.get('mean_batch'), 1)} |")
    lines.append("")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
