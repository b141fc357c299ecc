"""64 KB uploads: CPU per upload by stage, in-process.

Unique 64 KB text files (lines of text as the load comparison's upload
scenario sends, a unique first line and file name each) go as multipart
``POST /`` through pastefile's real WSGI app (``pastefile.webapp.main``,
production.ini's ``[app:main]`` with the run's database, files, cache, base
URL and key), called in-process from ``--threads`` threads after a warm-up,
in two setups:

* ``sqlite``: SQLite and the in-process cache;
* ``postgresql``: PostgreSQL (fsync on) and two memcached, started as the
  load harness starts them (benchmarks/load/procs.py).

Every answer must be a 200.  For the measured uploads only, pastefile's
functions are wrapped (module and class attributes, put back afterwards)
with ``time.thread_time`` accumulators, summed over the threads:

* the whole app call (the answer's body iterated and closed);
* ``receive_multipart`` (the multipart parse + SHA-256 staging);
* ``sniff`` as ``pastefile.core.ingest`` calls it (libmagic);
* ``GroupCommitter.submit`` (the request thread's hand-off and wait);
* ``upload_response`` (the JSON answer);
* ``Ingest.upload_staged`` (the whole ingest);
* on the writer threads ``GroupCommitter._settle`` (SQL + commit) and
  ``GroupCommitter._hand_over`` (the after-commit cache write and the
  waiters woken).

The process's own CPU (``time.process_time``) over the run is the total the
parts add up to: what no wrapper covers is "other threads" (GIL hand-offs,
the writer's queue, GC ...).  Beside it the CPU of the database server's
processes and of memcached, from /proc (clock ticks).  The reference,
measured in the same run with the same bodies and threads, is the plain
body reader doing an upload's work (``make_sniff_durable_app``: libmagic on
the head, SHA-256, a write and ``fdatasync``): its process CPU per upload.

    python -m benchmarks.upload_costs [--json benchmarks/upload_costs.json] [--uploads 3000] [--threads 8] [--smoke]
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import io
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

from benchmarks.load import config
from benchmarks.load.body_reader import make_sniff_durable_app
from benchmarks.load.procs import CLOCK_TICKS, Memcached, PostgresCluster
from tests import servers as test_servers

BODY_BYTES = 64 * 1024
WARMUP = 50
BOUNDARY = "pastefileUploadCosts5b1c0e7a9d"
LINE = b"pastefile load comparison: the quick brown fox jumps over the lazy dog 0123456789\n"
SETUPS = ("sqlite", "postgresql")
SETUP_LABELS = {
    "sqlite": "SQLite + in-process cache",
    "postgresql": "PostgreSQL (fsync on) + 2 memcached",
}

# what is wrapped: accumulator key -> (module, attribute path)
TARGETS = {
    "receive": ("pastefile.webapp.views.upload", "receive_multipart"),
    "sniff": ("pastefile.core.ingest", "sniff"),
    "submit": ("pastefile.core.groupcommit", "GroupCommitter.submit"),
    "response": ("pastefile.webapp.views.upload", "upload_response"),
    "upload_staged": ("pastefile.core.ingest", "Ingest.upload_staged"),
    "settle": ("pastefile.core.groupcommit", "GroupCommitter._settle"),
    "hand_over": ("pastefile.core.groupcommit", "GroupCommitter._hand_over"),
}

STAGES = ("framework", "receive", "sniff", "ingest_other", "handoff", "response", "writer_sql", "writer_after",
          "other_threads")
SERVERS = ("database", "memcached")
LABELS = {
    "framework": "framework: Pyramid, tweens, request, answer objects",
    "receive": "receive: multipart parse + SHA-256 staging",
    "sniff": "type sniff (libmagic)",
    "ingest_other": "ingest other: repeat check, paste built, token",
    "handoff": "hand-off to the group committer + wait",
    "response": "response: the JSON answer",
    "writer_sql": "writer: SQL + commit (_settle)",
    "writer_after": "writer: after-commit cache write + wake-ups",
    "other_threads": "other: GIL hand-offs, writer queue, GC ...",
    "database": "database server processes",
    "memcached": "memcached processes",
}


# -- the wrappers ---------------------------------------------------------------------------


class Meters:
    """``time.thread_time`` accumulators: ms per key, kept per thread (no
    lock on the hot path) and summed on demand.  A wrapped function that
    calls itself (``_settle`` retrying) counts once."""

    def __init__(self):
        self._local = threading.local()
        self._lock = threading.Lock()
        self._threads: list[dict[str, float]] = []

    def _mine(self) -> tuple[dict[str, float], dict[str, int]]:
        local = self._local
        ms = getattr(local, "ms", None)
        if ms is None:
            ms = local.ms = {}
            local.depth = {}
            with self._lock:
                self._threads.append(ms)
        return ms, local.depth

    def add(self, key: str, seconds: float) -> None:
        ms, _ = self._mine()
        ms[key] = ms.get(key, 0.0) + seconds * 1000.0

    def wrap(self, key: str, fn):
        meter = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            ms, depth = meter._mine()
            level = depth.get(key, 0)
            depth[key] = level + 1
            start = time.thread_time() if level == 0 else 0.0
            try:
                return fn(*args, **kwargs)
            finally:
                depth[key] = level
                if level == 0:
                    ms[key] = ms.get(key, 0.0) + (time.thread_time() - start) * 1000.0

        timed.__wrapped_by_upload_costs__ = True
        return timed

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        with self._lock:
            for ms in self._threads:
                for key, value in list(ms.items()):
                    out[key] = out.get(key, 0.0) + value
        return out

    def reset(self) -> None:
        with self._lock:
            for ms in self._threads:
                ms.clear()


def _owner(module: str, path: str):
    owner = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, name


def originals() -> dict[str, object]:
    """What the targets are now (the test checks they come back)."""
    out = {}
    for key, (module, path) in TARGETS.items():
        owner, name = _owner(module, path)
        out[key] = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    return out


@contextmanager
def wrapped(meters: Meters):
    """Every target wrapped with its accumulator; the originals back after."""
    saved = []
    try:
        for key, (module, path) in TARGETS.items():
            owner, name = _owner(module, path)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            saved.append((owner, name, original))
            setattr(owner, name, meters.wrap(key, original))
        yield meters
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


# -- the bodies and the WSGI calls --------------------------------------------------------------


def bodies(count: int, size: int = BODY_BYTES) -> list[tuple[str, bytes]]:
    """``count`` unique (file name, multipart body) of ``size`` bytes of text each."""
    filler = (LINE * (size // len(LINE) + 1))[:size]
    nonce = secrets.token_hex(4)
    out = []
    for i in range(count):
        key = f"unique {nonce} {i}\n".encode()
        name = f"u-{nonce}-{i}.txt"
        body = b"".join((
            f"--{BOUNDARY}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode(),
            b"Content-Type: text/plain\r\n\r\n",
            key, filler[len(key):],
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ))
        out.append((name, body))
    return out


def environ(body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "6543",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:6543",
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "benchmarks.upload_costs",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def call(app, body: bytes) -> tuple[str, bytes]:
    """One request: (status, answer body), the answer iterated and closed."""
    answer: list[str] = []

    def start_response(status, headers, exc_info=None):
        answer.append(status)
        return lambda data: None

    result = app(environ(body), start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer[0], data


def run_threads(app, items: list[tuple[str, bytes]], threads: int, meters: Meters | None = None) -> None:
    """``items`` through ``app`` from ``threads`` threads; with ``meters``
    each whole call is added under ``app``.  Raises unless every answer is
    a 200."""
    failures: list[str] = []

    def worker(part: list[tuple[str, bytes]]) -> None:
        try:
            for name, body in part:
                start = time.thread_time()
                status, data = call(app, body)
                if meters is not None:
                    meters.add("app", time.thread_time() - start)
                if not status.startswith("200"):
                    failures.append(f"{name}: {status} {data[:300]!r}")
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            failures.append(f"{type(exc).__name__}: {exc}")

    pool = [threading.Thread(target=worker, args=(items[n::threads],), name=f"upload-costs-{n}")
            for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        raise AssertionError(f"{len(failures)} uploads failed, first: {failures[0]}")


# -- servers and settings --------------------------------------------------------------------


def _ticks(pids) -> dict[int, int]:
    out = {}
    for pid in pids:
        fields = test_servers.proc_stat(pid)
        if fields is not None:
            out[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return out


def _spent_ms(before: dict[int, int], after: dict[int, int]) -> float:
    # a process born during the run (a backend the pool opened) counts from zero
    return sum(t - before.get(pid, 0) for pid, t in after.items()) * 1000.0 / CLOCK_TICKS


class Backing:
    """PostgreSQL (fsync on) and two memcached, as the load harness starts them."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.pg: PostgresCluster | None = None
        self.memcached: list[Memcached] = []

    def start(self) -> "Backing":
        try:
            self.pg = PostgresCluster(fsync=True)
            self.pg.start()
            for i in range(2):
                self.memcached.append(Memcached(os.path.join(self.workdir, f"memcached-{i}.log")).start())
        except BaseException:
            self.stop()
            raise
        return self

    def database(self, name: str) -> str:
        return self.pg.create_database(name)

    def pids(self) -> dict[str, list[int]]:
        return {"database": self.pg.pids() if self.pg else [],
                "memcached": [m.proc.pid for m in self.memcached if m.proc is not None]}

    def stop(self) -> None:
        for node in self.memcached:
            node.stop()
        self.memcached = []
        if self.pg is not None:
            try:
                self.pg.stop()
            finally:
                self.pg = None


def app_settings(setup: str, root: str, backing: Backing | None = None) -> dict[str, str]:
    """production.ini's ``[app:main]`` with the run's database, files, cache, URL and key."""
    if setup == "postgresql":
        db_url = backing.database(f"upload_costs_{secrets.token_hex(3)}")
        cache = {"pastefile.cache.backend": "memcached",
                 "pastefile.cache.servers": " ".join(m.address for m in backing.memcached)}
    else:
        db_url = f"sqlite:///{root}/pastefile.sqlite"
        cache = {"pastefile.cache.backend": "memory"}
    app = config.run_app(config.read(), db_url, os.path.join(root, "files"), "http://127.0.0.1:6543", cache)
    if setup != "postgresql":
        app.pop("pastefile.cache.servers", None)
    app.pop("use", None)
    return app


# -- the measurement ----------------------------------------------------------------------------


def parts(totals: dict[str, float], process_ms: float) -> dict[str, float]:
    """The stages (ms summed over the run) from the accumulators; they add
    up to ``process_ms``."""
    get = totals.get
    out = {
        "framework": get("app", 0.0) - get("receive", 0.0) - get("upload_staged", 0.0) - get("response", 0.0),
        "receive": get("receive", 0.0),
        "sniff": get("sniff", 0.0),
        "ingest_other": get("upload_staged", 0.0) - get("sniff", 0.0) - get("submit", 0.0),
        "handoff": get("submit", 0.0),
        "response": get("response", 0.0),
        "writer_sql": get("settle", 0.0),
        "writer_after": get("hand_over", 0.0),
    }
    out["other_threads"] = process_ms - get("app", 0.0) - get("settle", 0.0) - get("hand_over", 0.0)
    return out


def measure_setup(setup: str, workdir: str, uploads: int, threads: int, warmup: int = WARMUP,
                  backing: Backing | None = None, log=None) -> dict:
    """pastefile's CPU per upload by stage in ``setup``, and the reader's
    on the same bodies."""
    from pastefile.webapp import main as make_app

    root = os.path.join(workdir, setup)
    os.makedirs(root)
    items = bodies(warmup + uploads)
    warm, measured = items[:warmup], items[warmup:]
    meters = Meters()
    pids = backing.pids if backing is not None and setup == "postgresql" else (lambda: {})
    with wrapped(meters):
        app = make_app({}, **app_settings(setup, root, backing))
        service = app.registry.pastefile
        try:
            run_threads(app, warm, threads, meters)
            time.sleep(0.05)  # the writer's last hand-over returns
            committer = service._committer
            batches0, items0 = committer.batches, committer.items
            servers0 = {key: _ticks(p) for key, p in pids().items()}
            meters.reset()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            run_threads(app, measured, threads, meters)
            time.sleep(0.05)  # the writer's last hand-over returns
            cpu1, wall1 = time.process_time(), time.perf_counter()
            totals = meters.totals()
            # before the engine is disposed: the backends exit with their connections
            servers1 = {key: _ticks(p) for key, p in pids().items()}
            batches, committed = committer.batches - batches0, committer.items - items0
        finally:
            service.close()
    process_ms = (cpu1 - cpu0) * 1000.0
    servers_ms = {key: _spent_ms(servers0.get(key, {}), servers1[key]) for key in servers1}
    per = 1.0 / uploads
    ms = {key: value * per for key, value in parts(totals, process_ms).items()}
    server_ms = {key: servers_ms[key] * per if key in servers_ms else None for key in SERVERS}
    process = process_ms * per
    total = process + sum(v for v in server_ms.values() if v is not None)

    reader_dir = os.path.join(root, "reader")
    reader = make_sniff_durable_app({}, **{"reader.directory": reader_dir})
    run_threads(reader, warm, threads)
    r_wall0, r_cpu0 = time.perf_counter(), time.process_time()
    run_threads(reader, measured, threads)
    r_cpu1, r_wall1 = time.process_time(), time.perf_counter()
    reference = (r_cpu1 - r_cpu0) * 1000.0 * per
    result = {
        "name": setup,
        "label": SETUP_LABELS[setup],
        "uploads": uploads,
        "ms": ms,
        "servers_ms": server_ms,
        "process_ms": process,
        "parts_sum_ms": sum(ms.values()),
        "total_ms": total,
        "app_ms": totals.get("app", 0.0) * per,
        "seconds": wall1 - wall0,
        "uploads_per_s": uploads / (wall1 - wall0),
        "mean_batch": committed / batches if batches else None,
        "reference_ms": reference,
        "reference_seconds": r_wall1 - r_wall0,
        "ratio": process / reference if reference else None,
        "ratio_with_servers": total / reference if reference else None,
    }
    if log is not None:
        log(f"{setup}: {uploads} uploads in {result['seconds']:.1f} s, process {process:.2f} ms/upload, "
            f"total {total:.2f}, reader {reference:.2f}")
    return result


def measure(setups, uploads: int, threads: int, workdir: str, warmup: int = WARMUP, log=None) -> dict:
    """Every setup of ``setups`` measured in turn; PostgreSQL and memcached
    started for the ``postgresql`` one (a missing server raises)."""
    rows = []
    backing = None
    try:
        if "postgresql" in setups:
            if log is not None:
                log("starting PostgreSQL (fsync on) and 2 memcached ...")
            backing = Backing(workdir).start()
        for setup in setups:
            rows.append(measure_setup(setup, workdir, uploads, threads, warmup, backing, log))
    finally:
        if backing is not None:
            backing.stop()
    return {"stages": list(STAGES), "servers": list(SERVERS), "labels": LABELS, "setups": rows,
            "uploads": uploads, "threads": threads, "warmup": warmup, "body_bytes": BODY_BYTES}


def table(row: dict) -> list[str]:
    total = row["total_ms"]
    width = max(56, *(len(label) for label in LABELS.values()))
    lines = [f"{'stage':<{width}} {'CPU ms/upload':>13} {'share':>7}"]
    for key in STAGES:
        value = row["ms"][key]
        lines.append(f"{LABELS[key]:<{width}} {value:13.3f} {value / total:7.1%}")
    lines.append(f"{'pastefile process (sum of the above)':<{width}} {row['process_ms']:13.3f} "
                 f"{row['process_ms'] / total:7.1%}")
    for key in SERVERS:
        value = row["servers_ms"].get(key)
        if value is not None:
            lines.append(f"{LABELS[key]:<{width}} {value:13.3f} {value / total:7.1%}")
    lines += [
        f"{'total':<{width}} {total:13.3f}",
        "",
        f"{'reference: reader (sniff + SHA-256 + write + fdatasync)':<{width}} {row['reference_ms']:13.3f}",
        f"{'ratio pastefile process / reference (CPU)':<{width}} {row['ratio'] or 0:13.2f}",
        f"{'ratio pastefile with servers / reference (CPU)':<{width}} {row['ratio_with_servers'] or 0:13.2f}",
        f"{'uploads/s (wall, in-process)':<{width}} {row['uploads_per_s']:13.0f}",
    ]
    if row.get("mean_batch"):
        lines.append(f"{'uploads per group commit (mean)':<{width}} {row['mean_batch']:13.1f}")
    return lines


def postgres_available() -> bool:
    try:
        test_servers._pg_bindir()
    except test_servers.ServerError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upload_costs", description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--uploads", type=int, default=3000, help="measured uploads per setup (default 3000)")
    parser.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    parser.add_argument("--smoke", action="store_true", help="200 uploads, 2 threads; SQLite only without "
                        "PostgreSQL's binaries")
    args = parser.parse_args(argv)
    uploads, threads = (200, 2) if args.smoke else (args.uploads, args.threads)
    setups = list(SETUPS)
    if args.smoke and not postgres_available():
        setups.remove("postgresql")
    tmp = tempfile.mkdtemp(prefix="pastefile-upload-costs-")
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    loadavg_start = list(os.getloadavg())
    try:
        result = measure(setups, uploads, threads, tmp, WARMUP, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    document = {
        "tool": "benchmarks.upload_costs", "started": started, "smoke": args.smoke,
        "clock": "time.thread_time per stage, time.process_time in total, /proc ticks for the servers",
        "machine": {"cpu": config.cpu_model(), "cores": os.cpu_count(), "loadavg_start": loadavg_start,
                    "loadavg_end": list(os.getloadavg())},
        **result,
    }
    for row in result["setups"]:
        print(f"64 KB uploads, {row['label']}: CPU per upload by stage ({uploads} unique uploads from {threads} "
              f"threads after {WARMUP} warm-up, in-process WSGI)")
        print("\n".join(table(row)))
        print()
    if args.json:
        config.write_document(args.json, document)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
