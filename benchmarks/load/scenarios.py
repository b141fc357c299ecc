"""What the load comparison measures: contenders, scenarios, targets, and the
arithmetic that turns runs into medians, ratios and met/missed checks."""
from __future__ import annotations

import operator
import statistics
from dataclasses import dataclass

KB = 1 << 10
MB = 1 << 20
GB = 1 << 30


@dataclass(frozen=True)
class Contender:
    name: str
    server: str
    label: str
    read_path: str | None = None  # fixed path for reads (the hello worlds)


CONTENDERS = {c.name: c for c in (
    Contender("pastefile-sqlite", "pastefile-sqlite", "pastefile, SQLite + in-process cache"),
    Contender("pastefile-pg", "pastefile-pg", "pastefile, PostgreSQL (fsync on) + 2 memcached"),
    Contender("book-sqlite", "book-sqlite", "the book's Flask app, SQLite"),
    Contender("book-pg", "book-pg", "the book's Flask app, PostgreSQL"),
    Contender("body-reader", "body-reader", "bare WSGI app reading the body"),
    Contender("reader-sniff", "reader-sniff", "body reader + pastefile's libmagic sniff of the file's head"),
    Contender("reader-durable", "reader-durable", "body reader + SHA-256 + write + fdatasync, one per upload"),
    Contender("reader-sniff-durable", "reader-sniff-durable", "body reader + the sniff + the durable write"),
    Contender("reader-image", "reader-image",
              "body reader + the sniff + the durable write + Pillow open, draft and imagehash pHash"),
    Contender("pyramid-body", "pyramid-min", "minimal Pyramid view reading request.body"),
    Contender("hello", "hello", "bare WSGI hello world", read_path="/"),
    Contender("pyramid-hello", "pyramid-min", "minimal Pyramid hello view", read_path="/hello"),
    # s3.py: pastefile-pg with its blobs in a Ceph RADOS Gateway the harness starts
    Contender("pastefile-s3", "pastefile-s3", "pastefile, PostgreSQL + 2 memcached, s3 store (Ceph RGW, memstore)"),
)}

PASTEFILE = ("pastefile-sqlite", "pastefile-pg")


@dataclass(frozen=True)
class Ratio:
    numerator: str
    denominator: str
    metric: str = "rps"
    target: float | None = None  # numerator / denominator >= target
    denominator_scenario: str | None = None  # the denominator measured in another scenario
    note: str = ""


@dataclass(frozen=True)
class Check:
    contender: str
    metric: str
    op: str  # "<=", "<", "=="
    target: float


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # post | put | large | read | photo (benchmarks/load/photos.py's JPEGs)
    contenders: tuple[str, ...]
    reference: str
    metric: str = "rps"  # the rate the ratios compare: rps or mbps
    body_bytes: int = 0
    smoke_body_bytes: int = 0
    dup_share: float = 0.0
    connections: int = 16
    route: str | None = None  # reads: s, p, j, i
    ratios: tuple[Ratio, ...] = ()
    checks: tuple[Check, ...] = ()

    def size(self, smoke: bool) -> int:
        return self.smoke_body_bytes if smoke and self.smoke_body_bytes else self.body_bytes

    def servers(self) -> set[str]:
        return {CONTENDERS[c].server for c in self.contenders}


# the yardstick of uploads: the work every upload must do, done plainly
WORK = "reader-sniff-durable"


def _upload_ratios(metric: str, work_targets: tuple[float | None, float | None] | None, book_target: float | None,
                   extra=()) -> tuple[Ratio, ...]:
    """pastefile (SQLite, PostgreSQL) against the plain reader doing an
    upload's work (targets per backend, when the scenario has that reader),
    the book app and the bare body reader (informational)."""
    out = []
    if work_targets is not None:
        out += [Ratio(c, WORK, metric, t) for c, t in zip(PASTEFILE, work_targets)]
    out += [
        Ratio("pastefile-sqlite", "book-sqlite", metric, book_target),
        Ratio("pastefile-pg", "book-pg", metric, book_target),
        Ratio("pastefile-sqlite", "body-reader", metric),
        Ratio("pastefile-pg", "body-reader", metric),
        Ratio("book-sqlite", "body-reader", metric),
        Ratio("book-pg", "body-reader", metric),
    ]
    return tuple(out) + tuple(extra)


# body readers doing one part of an upload's work: what that part costs on
# its own (informational ratios, no target)
READER_PARTS = ("reader-sniff", "reader-durable", "reader-sniff-durable")


def _part_ratios(metric: str) -> list[Ratio]:
    return [Ratio(c, "body-reader", metric) for c in READER_PARTS]


def _pastefile_checks(p99: float | None = None) -> tuple[Check, ...]:
    checks = [Check(c, "non2xx", "==", 0) for c in PASTEFILE]
    if p99 is not None:
        checks += [Check(c, "p99_ms", "<=", p99) for c in PASTEFILE]
    return tuple(checks)


def _read(route: str, with_book: bool) -> Scenario:
    contenders = PASTEFILE + (("book-sqlite",) if with_book else ()) + ("hello",)
    ratios = [Ratio(c, "hello", "rps", 0.5) for c in PASTEFILE]
    if with_book:
        ratios.append(Ratio("book-sqlite", "hello"))
    return Scenario(
        name=f"read-{route}",
        title=f"GET /{route}/{{{'symlink' if route == 's' else 'filehash'}}} of cached 64 KB files, 32 connections",
        kind="read", route=route, contenders=contenders, reference="hello", connections=32,
        ratios=tuple(ratios), checks=_pastefile_checks(p99=20.0),
    )


# -- the s3 store against the file store (s3.py) ------------------------------------
# the same server but for its store: pastefile-s3 / pastefile-pg.  Blobs up to
# inline_max (production's 128 KB) live in their database row on either store:
# the 64 KB scenarios send no object to the gateway, the 1 MB ones one PUT each.

S3_PAIR = ("pastefile-pg", "pastefile-s3")
S3_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="s3-upload-64k", title="s3 vs file store: POST 64 KB multipart, unique bodies, 16 connections",
        kind="post", contenders=S3_PAIR, reference="pastefile-pg", body_bytes=64 * KB,
        ratios=(Ratio("pastefile-s3", "pastefile-pg", "rps"),),
        checks=tuple(Check(c, "non2xx", "==", 0) for c in S3_PAIR),
    ),
    Scenario(
        name="s3-upload-1m", title="s3 vs file store: POST 1 MB multipart, unique bodies, 16 connections",
        kind="post", contenders=S3_PAIR, reference="pastefile-pg", metric="mbps", body_bytes=1 * MB,
        ratios=(Ratio("pastefile-s3", "pastefile-pg", "mbps"),),
        checks=tuple(Check(c, "non2xx", "==", 0) for c in S3_PAIR),
    ),
    Scenario(
        name="s3-read-i", title="s3 vs file store: GET /i/{filehash} of cached 64 KB files, 32 connections",
        kind="read", route="i", contenders=S3_PAIR, reference="pastefile-pg", connections=32,
        ratios=(Ratio("pastefile-s3", "pastefile-pg", "rps"),),
        checks=tuple(Check(c, "non2xx", "==", 0) for c in S3_PAIR),
    ),
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="upload-64k", title="POST 64 KB multipart, unique bodies, 16 connections", kind="post",
        contenders=PASTEFILE + ("book-sqlite", "book-pg", "body-reader", "pyramid-body") + READER_PARTS,
        reference=WORK, body_bytes=64 * KB,
        ratios=_upload_ratios("rps", (0.8, 0.6), 3.0, [Ratio("pyramid-body", "body-reader"), *_part_ratios("rps")]),
        checks=_pastefile_checks(p99=50.0),
    ),
    Scenario(
        name="upload-64k-dup20", title="POST 64 KB multipart, 20% duplicate bodies, 16 connections", kind="post",
        contenders=PASTEFILE + ("book-sqlite", "book-pg", "body-reader"),
        reference="body-reader", body_bytes=64 * KB, dup_share=0.2,
        ratios=_upload_ratios("rps", None, 3.0, [
            Ratio("pastefile-sqlite", "pastefile-sqlite", "rps", 1.0, "upload-64k", "20% duplicates vs all unique"),
            Ratio("pastefile-pg", "pastefile-pg", "rps", 1.0, "upload-64k", "20% duplicates vs all unique"),
            Ratio("book-sqlite", "book-sqlite", "rps", None, "upload-64k", "20% duplicates vs all unique"),
            Ratio("book-pg", "book-pg", "rps", None, "upload-64k", "20% duplicates vs all unique"),
        ]),
        checks=_pastefile_checks(p99=50.0),
    ),
    Scenario(
        name="upload-1m", title="POST 1 MB multipart, unique bodies, 16 connections", kind="post",
        contenders=PASTEFILE + ("book-sqlite", "book-pg", "body-reader") + READER_PARTS,
        reference=WORK, metric="mbps", body_bytes=1 * MB,
        ratios=_upload_ratios("mbps", (0.9, 0.9), None, _part_ratios("mbps")), checks=_pastefile_checks(),
    ),
    Scenario(
        name="upload-1g", title="one 1 GB multipart POST streamed from a file (curl)", kind="large",
        contenders=PASTEFILE + ("book-sqlite", "body-reader"),
        reference="body-reader", metric="mbps", body_bytes=1 * GB, smoke_body_bytes=8 * MB, connections=1,
        ratios=(
            Ratio("pastefile-sqlite", "body-reader", "mbps", 0.8),
            Ratio("pastefile-pg", "body-reader", "mbps", 0.8),
            Ratio("book-sqlite", "body-reader", "mbps"),
        ),
        checks=_pastefile_checks() + tuple(Check(c, "rss_growth_mb", "<", 50.0) for c in PASTEFILE),
    ),
    Scenario(
        name="put-64k", title="PUT /{name} 64 KB raw body, unique bodies, 16 connections", kind="put",
        contenders=PASTEFILE + ("body-reader", "pyramid-body"),
        reference="body-reader", body_bytes=64 * KB,
        ratios=(
            Ratio("pastefile-sqlite", "body-reader"),
            Ratio("pastefile-pg", "body-reader"),
            Ratio("pyramid-body", "body-reader"),
        ),
        checks=_pastefile_checks(),
    ),
    _read("s", with_book=True),
    _read("p", with_book=True),
    _read("j", with_book=False),
    _read("i", with_book=True),
    Scenario(
        name="hello", title="GET hello world, 32 connections: the framework floor", kind="read",
        contenders=("hello", "pyramid-hello"), reference="hello", connections=32,
        ratios=(Ratio("pyramid-hello", "hello"),),
    ),
) + S3_SCENARIOS

# camera JPEGs (photos.py): pastefile's whole image upload (sniff, location
# stripping, size, orientation and pHash, the durable write) against a
# reader doing the same image work plainly; no target (the issue sets none)
PHOTO_WORK = "reader-image"
PHOTO_SCENARIO = Scenario(
    name="upload-photo",
    title="POST camera JPEGs of 0.2-4 MB (up to 12 MP, EXIF, half with GPS) multipart, unique bodies, 8 connections",
    kind="photo", contenders=PASTEFILE + (PHOTO_WORK, WORK), reference=PHOTO_WORK, connections=8,
    ratios=(
        Ratio("pastefile-sqlite", PHOTO_WORK),
        Ratio("pastefile-pg", PHOTO_WORK),
        Ratio(PHOTO_WORK, WORK, note="the image work's share: open + draft + pHash on top of the upload's work"),
        # the server's CPU per upload, steadier than the rates on a shared machine (below 1: pastefile spends less)
        Ratio("pastefile-sqlite", PHOTO_WORK, "cpu_ms"),
        Ratio("pastefile-pg", PHOTO_WORK, "cpu_ms"),
    ),
    checks=tuple(Check(c, "non2xx", "==", 0) for c in PASTEFILE + (PHOTO_WORK,)),
)

SCENARIOS += (PHOTO_SCENARIO,)

BY_NAME = {s.name: s for s in SCENARIOS}


# -- arithmetic ------------------------------------------------------------------

MEDIAN_KEYS = ("rps", "mbps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "seconds", "rss_growth_mb",
               "cpu_ms", "cpu_sys_share", "cpu_ms_backing", "machine_busy")
SUM_KEYS = ("requests", "non2xx", "socket_errors")


def summarize(runs: list[dict]) -> dict:
    """Medians of the rates and latencies over the repeats; totals of the
    counts; the worst RSS growth."""
    out: dict = {"repeats": len(runs)}
    for key in MEDIAN_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = statistics.median(values)
    for key in SUM_KEYS:
        out[key] = sum(r.get(key, 0) for r in runs)
    growth = [r["rss_growth_mb"] for r in runs if r.get("rss_growth_mb") is not None]
    if growth:
        out["rss_growth_mb_max"] = max(growth)
    return out


_OPS = {"<=": operator.le, "<": operator.lt, "==": operator.eq, ">=": operator.ge}


def evaluate(scenario: Scenario, medians: dict[str, dict], other: dict[str, dict[str, dict]]) -> tuple[list, list]:
    """Ratios and checks of one scenario from the medians of its contenders
    (``other`` holds the medians of scenarios already measured)."""
    ratios = []
    for ratio in scenario.ratios:
        source = other.get(ratio.denominator_scenario, {}) if ratio.denominator_scenario else medians
        num = medians.get(ratio.numerator, {}).get(ratio.metric)
        den = source.get(ratio.denominator, {}).get(ratio.metric)
        if num is None or den is None:
            continue
        value = num / den if den else None
        label = f"{ratio.numerator} / {ratio.denominator}"
        if ratio.denominator_scenario:
            label = f"{ratio.numerator}: {scenario.name} / {ratio.denominator_scenario}"
        ratios.append({
            "label": label, "numerator": ratio.numerator, "denominator": ratio.denominator,
            "denominator_scenario": ratio.denominator_scenario, "metric": ratio.metric,
            "value": value, "target": ratio.target, "op": ">=" if ratio.target is not None else None,
            "met": None if ratio.target is None or value is None else value >= ratio.target,
            "note": ratio.note,
        })
    checks = []
    for check in scenario.checks:
        row = medians.get(check.contender)
        if row is None:
            continue
        metric = "rss_growth_mb_max" if check.metric == "rss_growth_mb" else check.metric
        value = row.get(metric)
        checks.append({
            "label": f"{check.contender} {check.metric}", "contender": check.contender, "metric": check.metric,
            "value": value, "op": check.op, "target": check.target,
            "met": None if value is None else _OPS[check.op](value, check.target),
        })
    return ratios, checks
