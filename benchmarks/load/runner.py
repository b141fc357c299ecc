"""Run the load comparison: start every server once, measure each scenario
with its contenders interleaved, write medians, ratios and checks as JSON."""
from __future__ import annotations

import argparse
import atexit
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from . import config, photos
from .clients import CHILDREN, curl_upload, make_text_file, require, run_wrk, stamp
from . import s3 as s3_store
from .procs import CpuMeter, HarnessError, Memcached, PostgresCluster, PserveServer, alive, wait_idle
from .scenarios import BY_NAME, CONTENDERS, KB, MB, PASTEFILE, SCENARIOS, Scenario, evaluate, summarize

READY_PATHS = {"pyramid-min": "/hello"}
APPS = {
    "body-reader": "call:benchmarks.load.body_reader:make_app",
    "reader-sniff": "call:benchmarks.load.body_reader:make_sniff_app",
    "reader-durable": "call:benchmarks.load.body_reader:make_durable_app",
    "reader-sniff-durable": "call:benchmarks.load.body_reader:make_sniff_durable_app",
    "reader-image": "call:benchmarks.load.body_reader:make_image_app",
    "hello": "call:benchmarks.load.hello:make_app",
    "pyramid-min": "call:benchmarks.load.pyramid_min:make_app",
    "book-sqlite": "call:benchmarks.load.book_app:make_app",
    "book-pg": "call:benchmarks.load.book_app:make_app",
}
PG_SERVERS = {"pastefile-pg", "book-pg", s3_store.SERVER}
MEMCACHED_SERVERS = {"pastefile-pg", s3_store.SERVER}
SMOKE_RETRIES = 2
READ_ROUTES = ("s", "p", "j", "i")
BOOK_ROUTES = ("s", "p", "i")


class Aborted(Exception):
    """A signal or the global time bound stopped the run."""


# -- machine and versions --------------------------------------------------------

def machine_info() -> dict:
    model = config.cpu_model()
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_mb": mem, "kernel": platform.release(),
            "loadavg_start": list(os.getloadavg())}


def _first_line(argv: list[str]) -> str | None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None


def versions(pg_bindir: str | None) -> dict:
    out = {"python": platform.python_version()}
    for dist in ("waitress", "pyramid", "SQLAlchemy", "psycopg2", "pymemcache", "Flask", "Flask-SQLAlchemy",
                 "Werkzeug", "pastefile"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    if pg_bindir:
        out["postgresql"] = _first_line([os.path.join(pg_bindir, "postgres"), "--version"])
    if shutil.which("radosgw"):
        out["ceph"] = s3_store.ceph_version()
    memcached = shutil.which("memcached")
    out["memcached"] = _first_line([memcached, "-V"]) if memcached else None
    wrk = _first_line(["wrk", "-v"])
    out["wrk"] = re.sub(r"\s+Copyright.*", "", wrk) if wrk else None
    curl = _first_line(["curl", "--version"])
    out["curl"] = " ".join(curl.split()[:2]) if curl else None
    try:
        commit = subprocess.run(["git", "-C", config.ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        out["commit"] = commit.stdout.strip() if commit.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        out["commit"] = None
    return out


# -- uploads through the API (the read scenarios' files) ------------------------

def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def text_payload(key: str, size: int) -> bytes:
    line = f"{key}: a file for the read scenarios of the load comparison 0123456789\n".encode()
    return (line * (size // len(line) + 1))[:size]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Run:
    def __init__(self, args, scenarios: list[Scenario]):
        self.args = args
        self.scenarios = scenarios
        self.smoke = args.smoke
        # --smoke checks that every piece works, not how fast: contenders run
        # at the same time there, and its numbers compare nothing
        self.parallel = args.smoke
        self.nonce = secrets.token_hex(4)
        self.tmp = tempfile.mkdtemp(prefix="pastefile-load-")
        self.spool = os.path.join(self.tmp, "spool")
        os.makedirs(self.spool)
        self.servers: dict[str, PserveServer] = {}
        self.pg: PostgresCluster | None = None
        self.pg_pids: set[int] = set()
        self.memcached: list[Memcached] = []
        self.memcached_pids: list[int] = []
        # the Ceph gateway of pastefile-s3 (s3.py), when a scenario needs it
        self.gateway: s3_store.Gateway | None = None
        self.s3_memory_bytes = s3_store.DEFAULT_MEMORY_BYTES
        self.s3_part_size: str | None = None
        self.read_paths: dict[tuple[str, str], str] = {}
        self.server_section: dict[str, str] = {}
        self.cleaned = False
        self.t0 = time.monotonic()
        needed = set()
        for scenario in scenarios:
            needed |= scenario.servers()
        if args.profile:
            needed = {args.profile_server}
        self.needed = needed

    # -- servers -----------------------------------------------------------------

    def log(self, message: str) -> None:
        try:
            print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)
        except OSError:
            pass  # a full disk or a closed terminal must not stop the cleanup

    def start(self) -> None:
        if self.needed & PG_SERVERS:
            self.log("starting PostgreSQL (fsync on) ...")
            self.pg = PostgresCluster(fsync=True)
            self.pg.start()
            self.pg_pids.update(self.pg.pids())
        if self.needed & MEMCACHED_SERVERS:
            for i in range(2):
                node = Memcached(os.path.join(self.tmp, f"memcached-{i}.log")).start()
                self.memcached.append(node)
                self.memcached_pids.append(node.proc.pid)
        if s3_store.SERVER in self.needed:
            self.log(f"starting a Ceph RADOS Gateway (memstore up to {self.s3_memory_bytes >> 20} MB) ...")
            self.gateway = s3_store.Gateway(self.s3_memory_bytes, prefix=f"bench-{self.nonce}")
            self.gateway.start()
        source = config.read()
        env = config.server_env(self.tmp)
        env["TMPDIR"] = self.spool
        pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
        if not os.path.exists(pserve):
            pserve = require("pserve")
        self.server_section = config.server_section(source, 0, "<tmp>", "<server>")
        for name in sorted(self.needed):
            port = _free_port()
            server = config.server_section(source, port, self.tmp, name)
            app = self._app_section(name, source, port)
            ini = os.path.join(self.tmp, f"{name}.ini")
            config.write(ini, app, server, config.logging_sections(source, self.tmp, name))
            self.servers[name] = PserveServer(name, ini, port, os.path.join(self.tmp, f"{name}.out"), env,
                                              self.tmp, pserve)
        for server in self.servers.values():
            server.start()
        self.log(f"starting {len(self.servers)} servers: {', '.join(self.servers)}")
        for name, server in self.servers.items():
            for attempt in range(3):
                try:
                    server.wait_ready(READY_PATHS.get(name, "/"), timeout=90)
                    break
                except HarnessError as exc:
                    # the free port picked went to another process before the
                    # server bound it: the same server on another port
                    if "Address already in use" not in str(exc) or attempt == 2:
                        raise
                    self._move(name, server, source)

    def _move(self, name: str, server: PserveServer, source) -> None:
        port = _free_port()
        ini = config.read(server.ini_path)
        ini["server:main"] = config.server_section(source, port, self.tmp, name)
        if ini.has_option("app:main", "pastefile.base_url"):
            ini.set("app:main", "pastefile.base_url", f"http://127.0.0.1:{port}")
        with open(server.ini_path, "w", encoding="utf-8") as f:
            ini.write(f)
        self.log(f"{name}: port {server.port} was taken meanwhile; starting it on {port}")
        server.port = port
        server.start()

    def _database(self, name: str) -> str:
        assert self.pg is not None
        return self.pg.create_database(name)

    def _app_section(self, name: str, source, port: int) -> dict[str, str]:
        base = f"http://127.0.0.1:{port}"
        if name.startswith("pastefile-"):
            if name == "pastefile-pg":
                db_url = self._database("pastefile_bench")
                cache = {"pastefile.cache.backend": "memcached",
                         "pastefile.cache.servers": " ".join(m.address for m in self.memcached)}
            elif name == s3_store.SERVER:
                # pastefile-pg's setup on a database and a cache prefix of its own, blobs in the gateway
                db_url = self._database("pastefile_s3_bench")
                cache = {"pastefile.cache.backend": "memcached",
                         "pastefile.cache.servers": " ".join(m.address for m in self.memcached),
                         "pastefile.cache.prefix": "pastefile-s3",
                         **self.gateway.app_settings(self.s3_part_size)}
            else:
                db_url = f"sqlite:///{self.tmp}/pastefile.sqlite"
                cache = {"pastefile.cache.backend": "memory"}
            return config.run_app(source, db_url, os.path.join(self.tmp, f"{name}-files"), base, cache)
        app = {"use": APPS[name]}
        if name in ("reader-durable", "reader-sniff-durable", "reader-image"):
            app["reader.directory"] = os.path.join(self.tmp, f"{name}-files")
        if name.startswith("book-"):
            from .book_app import init_db

            db_url = self._database("book_bench") if name == "book-pg" else f"sqlite:///{self.tmp}/book.sqlite"
            init_db(db_url)
            app.update({"book.db_url": db_url, "book.upload_folder": os.path.join(self.tmp, f"{name}-files")})
        return app

    def pids(self) -> dict[str, list[int]]:
        out = {name: sorted(server.seen_pids) for name, server in self.servers.items()}
        out["memcached"] = sorted(self.memcached_pids)
        out["postgresql"] = sorted(self.pg_pids)
        if self.gateway is not None:
            out["ceph"] = self.gateway.pids()
        return out

    def cleanup(self) -> None:
        if self.cleaned:
            return
        self.cleaned = True
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        signal.alarm(0)
        CHILDREN.kill_all()
        self.log("stopping the servers ...")
        for server in self.servers.values():
            server.remember_pids()
        with ThreadPoolExecutor(max_workers=max(1, len(self.servers))) as pool:
            list(pool.map(lambda s: s.stop(), self.servers.values()))
        if self.gateway is not None:
            self.log("stopping the Ceph gateway ...")
            try:
                self.gateway.stop()
            except Exception as exc:  # noqa: BLE001 - stopping must go on
                self.log(f"stopping the Ceph gateway failed: {exc}")
        if self.memcached or self.pg is not None:
            self.log("stopping memcached and PostgreSQL ...")
        for node in self.memcached:
            node.stop()
        if self.pg is not None:
            self.pg_pids.update(self.pg.pids())
            try:
                self.pg.stop()
            except Exception as exc:  # noqa: BLE001 - stopping must go on
                self.log(f"pg_ctl stop failed: {exc}")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(alive(pid) for pid in self.pg_pids):
                time.sleep(0.05)
            for pid in self.pg_pids:
                if alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
        if not self.args.keep_temp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.log(f"kept {self.tmp}")
        self.log("stopped")

    # -- the read scenarios' files ------------------------------------------------------

    def prepare_reads(self) -> None:
        readers = [s for s in ("pastefile-sqlite", "pastefile-pg", s3_store.SERVER, "book-sqlite") if s in self.needed
                   and any(s in (CONTENDERS[c].server for c in sc.contenders) for sc in self.scenarios if sc.kind == "read")]
        count = 10 if self.smoke else self.args.read_files
        for name in readers:
            server = self.servers[name]
            self.log(f"uploading {count} files of 64 KB to {name} ...")
            routes: dict[str, list[str]] = {r: [] for r in READ_ROUTES}
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            for i in range(count):
                body, ctype = multipart(f"read-{i}.txt", text_payload(f"{self.nonce} {name} {i}", 64 * KB))
                conn.request("POST", "/", body=body, headers={"Content-Type": ctype, "Accept": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise HarnessError(f"upload to {name} answered {response.status}: {payload[:300]!r}")
                data = json.loads(payload)
                if name.startswith("pastefile-"):
                    if not data.get("symlink") or not data.get("filehash"):
                        raise HarnessError(f"no symlink/filehash in the answer of {name}: {data}")
                    routes["s"].append(_path(data["url_s"]))
                    routes["p"].append(_path(data["url_p"]))
                    routes["j"].append(f"/j/{data['filehash']}")
                    routes["i"].append(f"/i/{data['filehash']}")
                else:
                    for route in BOOK_ROUTES:
                        routes[route].append(_path(data[f"url_{route}"]))
            # each path once: the caches are warm before measuring
            for route, paths in routes.items():
                for path in paths:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    if response.status >= 400:
                        raise HarnessError(f"GET {path} on {name} answered {response.status}")
                if paths:
                    file = os.path.join(self.tmp, f"paths-{name}-{route}.txt")
                    with open(file, "w") as f:
                        f.write("\n".join(paths) + "\n")
                    self.read_paths[(name, route)] = file
            conn.close()
        if self.gateway is not None:
            self.gateway.snapshot()  # the read scenarios' objects stay; what uploads add goes

    def fixed_paths(self, path: str) -> str:
        file = os.path.join(self.tmp, f"paths-fixed{path.replace('/', '-')}.txt")
        if not os.path.exists(file):
            with open(file, "w") as f:
                f.write(path + "\n")
        return file

    # -- measuring -----------------------------------------------------------------------

    def seconds(self, scenario: Scenario | None = None) -> int:
        if not self.smoke:
            return self.args.seconds
        # smoke: long enough for a few slow uploads to finish on a busy machine
        return 2 if scenario is not None and scenario.kind in ("post", "put", "photo") else 1

    def run_one(self, scenario: Scenario, contender: str, round_: int) -> dict:
        result = self._run_one_s3_cleared(scenario, contender, round_)
        # smoke runs are 1-2 s with every contender at once: on a machine
        # busy with something else a run can end before any answer came back,
        # which says nothing about the harness; such a run is tried again
        for _ in range(SMOKE_RETRIES if self.smoke else 0):
            if result.get("requests"):
                break
            self.log(f"   {contender} answered nothing in {scenario.name}; running it again")
            result = self._run_one_s3_cleared(scenario, contender, round_)
        return result

    def _run_one_s3_cleared(self, scenario: Scenario, contender: str, round_: int) -> dict:
        """One run; after an upload run on pastefile-s3 the objects it made
        leave the gateway's RAM (memstore), outside the measured time."""
        result = self._run_one(scenario, contender, round_)
        if self.gateway is not None and CONTENDERS[contender].server == s3_store.SERVER and scenario.kind != "read":
            wait_idle(self.servers[s3_store.SERVER].pid)
            result["s3_objects_deleted"] = self.gateway.clear()
        return result

    def _run_one(self, scenario: Scenario, contender: str, round_: int) -> dict:
        spec = CONTENDERS[contender]
        server = self.servers[spec.server]
        size = scenario.size(self.smoke)
        nonce = f"{self.nonce}-{scenario.name}-{round_}"
        if scenario.kind != "large":  # the large upload settles after writing its file
            self.settle_disk()
        if scenario.kind in ("post", "put"):
            script = "upload.lua" if scenario.kind == "post" else "put.lua"
            return self._metered(spec.server, run_wrk, server.url, script, [str(size), str(scenario.dup_share), nonce],
                                 scenario.connections, self.seconds(scenario), payload_bytes=size)
        if scenario.kind == "photo":
            # camera JPEGs (photos.py), made once per run; what making them wrote settles first
            corpus = photos.corpus(self.tmp, self.smoke, self.log)
            self.settle_disk()
            return self._metered(spec.server, run_wrk, server.url, "photo.lua", [corpus.index, nonce],
                                 scenario.connections, self.seconds(scenario), payload_bytes=corpus.mean_size)
        if scenario.kind == "read":
            if spec.read_path is not None:
                paths = self.fixed_paths(spec.read_path)
            else:
                paths = self.read_paths[(spec.server, scenario.route)]
            return self._metered(spec.server, run_wrk, server.url, "read.lua", [paths], scenario.connections,
                                 self.seconds(scenario))
        if scenario.kind == "large":
            # one file, its first line rewritten before each upload; one per
            # contender when they run at the same time
            big = os.path.join(self.tmp, f"large-upload-{contender}.txt" if self.parallel else "large-upload.txt")
            if not os.path.exists(big) or os.path.getsize(big) != size:
                self.log(f"writing a {size // MB} MB file ...")
                make_text_file(big, size)
            stamp(big, f"{nonce} {contender}")
            self.settle_disk()
            timeout = max(120, size // MB)  # at least 1 MB/s
            return curl_upload(server.url, big, f"large-{nonce}.txt", server.pid,
                               os.path.join(self.tmp, "curl-response"), timeout)
        raise ValueError(scenario.kind)

    def backing_pids(self, server: str) -> list[int]:
        """The database and cache processes ``server`` talks to."""
        pids = []
        if server in PG_SERVERS and self.pg is not None:
            pids += self.pg.pids()
        if server in MEMCACHED_SERVERS:
            pids += self.memcached_pids
        return pids

    def _metered(self, server: str, run, *args, **kwargs) -> dict:
        """``run(*args, **kwargs)`` (a wrk run) with the CPU time it cost the
        server and its database and cache per request (from /proc)."""
        meter = CpuMeter(self.servers[server].pid, lambda: self.backing_pids(server))
        result = run(*args, **kwargs)
        result.update(meter.finish(result["requests"]))
        return result

    def settle_disk(self) -> None:
        """What was written before a run (an earlier run: the book app does
        not fsync; the last upload run's writeback before a read run; the
        large upload's own file) goes to disk now, not during the run."""
        if not self.parallel:
            os.sync()

    def run_scenario(self, scenario: Scenario, done: dict[str, dict[str, dict]]) -> dict:
        repeats = 1 if self.smoke else self.args.repeats
        runs: dict[str, list[dict]] = {c: [] for c in scenario.contenders}
        self.log(f"== {scenario.name}: {scenario.title}")

        def record(contender: str, result: dict, round_: int) -> None:
            result["round"] = round_
            runs[contender].append(result)
            self.log(f"   {contender:<17} {result['rps']:9.1f} req/s {result['mbps']:8.1f} MB/s "
                     f"p99 {result['p99_ms'] or 0:8.1f} ms non-2xx {result['non2xx']}{cpu_text(result)}")

        for round_ in range(repeats):
            if self.parallel:
                # smoke: every contender at once, to check the pieces quickly
                with ThreadPoolExecutor(max_workers=len(scenario.contenders)) as pool:
                    futures = {c: pool.submit(self.run_one, scenario, c, round_) for c in scenario.contenders}
                    try:
                        for contender, future in futures.items():
                            record(contender, future.result(), round_)
                    except BaseException:
                        CHILDREN.kill_all()  # do not wait for the others' runs to end
                        raise
            else:
                for contender in scenario.contenders:
                    record(contender, self.run_one(scenario, contender, round_), round_)
                    # requests still in flight when wrk stopped finish before the next run
                    wait_idle(self.servers[CONTENDERS[contender].server].pid)
        medians = {c: summarize(r) for c, r in runs.items()}
        ratios, checks = evaluate(scenario, medians, done)
        return {
            "name": scenario.name, "title": scenario.title, "kind": scenario.kind, "reference": scenario.reference,
            "metric": scenario.metric, "body_bytes": scenario.size(self.smoke), "dup_share": scenario.dup_share,
            "connections": scenario.connections, "route": scenario.route,
            "contenders": {c: {"label": CONTENDERS[c].label, "median": medians[c], "runs": runs[c]}
                           for c in scenario.contenders},
            "ratios": ratios, "checks": checks,
        }

    def profile(self, out: str) -> None:
        spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        if not os.path.exists(spy):
            spy = shutil.which("py-spy")
        if not spy:
            raise HarnessError("py-spy is not installed (pip install py-spy; it is in the test extras)")
        server = self.servers[self.args.profile_server]
        seconds = self.args.seconds
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        # a .txt name: collapsed stacks (one line per stack) of the threads on a
        # CPU, to add up; otherwise a flame graph with the waiting threads too
        fmt = ["--format", "raw"] if out.endswith(".txt") else ["--idle"]
        if self.args.profile_gil:
            fmt.append("--gil")
        argv = [spy, "record", "--subprocesses", *fmt, "-o", out, "--pid", str(server.pid),
                "--duration", str(max(1, seconds - 2))]
        self.log(f"profiling {server.name} under {self.args.profile_kb} KB uploads for {seconds}s: {' '.join(argv)}")
        # the load first, then the profiler for the seconds in the middle
        with ThreadPoolExecutor(max_workers=1) as pool:
            size = self.args.profile_kb * KB
            load = pool.submit(run_wrk, server.url, "upload.lua", [str(size), "0", f"{self.nonce}-profile"], 16,
                               seconds, payload_bytes=size)
            try:
                time.sleep(1.0)
                proc = CHILDREN.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                try:
                    out_text, _ = proc.communicate(timeout=seconds + 60)
                finally:
                    CHILDREN.done(proc)
                result = load.result()
            except BaseException:
                CHILDREN.kill_all()
                raise
        if proc.returncode != 0 or not os.path.exists(out):
            raise HarnessError(f"py-spy failed ({proc.returncode}):\n{out_text[-2000:]}")
        self.log(f"{result['rps']:.1f} uploads/s while profiling; flame graph in {out}")


def _free_port() -> int:
    from tests.servers import free_port

    return free_port()


# -- the command ------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 repeat, 1 s runs, an 8 MB large upload: checks the harness")
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of interleaved runs (default 3)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", choices=sorted(BY_NAME),
                        help="run only these scenarios: " + ", ".join(BY_NAME))
    parser.add_argument("--read-files", type=int, default=100, help="files uploaded for the read scenarios")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="abort cleanly after this long (default 60, 3 with --smoke)")
    parser.add_argument("--profile", nargs="?", const="benchmarks/profile/upload-flame.svg", metavar="SVG",
                        help="instead of measuring: py-spy flame graph of pastefile (SQLite) under 64 KB uploads")
    parser.add_argument("--profile-server", default="pastefile-sqlite", choices=PASTEFILE,
                        help="the server --profile records (default pastefile-sqlite)")
    parser.add_argument("--profile-kb", type=int, default=64, help="size of the uploads --profile sends (KB)")
    parser.add_argument("--profile-gil", action="store_true",
                        help="--profile samples only the thread holding the GIL: where the Python work goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (inis, logs, databases)")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.repeats < 1:
        parser.error("--seconds and --repeats must be at least 1")
    if args.max_minutes is None:
        args.max_minutes = 3.0 if args.smoke else 60.0
    return args


def cpu_text(row: dict) -> str:
    """CPU ms per request of the server (+ its database and cache), and how
    busy the machine was."""
    if row.get("cpu_ms") is None:
        return ""
    kernel = f" ({row['cpu_sys_share']:.0%} kernel)" if row.get("cpu_sys_share") is not None else ""
    backing = f" +{row['cpu_ms_backing']:.2f} db/cache" if row.get("cpu_ms_backing") is not None else ""
    busy = f", machine {row['machine_busy']:.0%} busy" if row.get("machine_busy") is not None else ""
    return f" | cpu {row['cpu_ms']:.2f} ms/req{kernel}{backing}{busy}"


def print_summary(results: list[dict]) -> None:
    for scenario in results:
        print(f"\n{scenario['name']}: {scenario['title']}")
        for name, row in scenario["contenders"].items():
            m = row["median"]
            extra = f" rss +{m['rss_growth_mb_max']:.1f} MB" if "rss_growth_mb_max" in m else ""
            print(f"  {name:<17} {m.get('rps', 0):9.1f} req/s {m.get('mbps', 0):8.1f} MB/s "
                  f"p50 {m.get('p50_ms') or 0:7.1f} ms p99 {m.get('p99_ms') or 0:7.1f} ms non-2xx {m['non2xx']}"
                  f"{extra}{cpu_text(m)}")
        for r in scenario["ratios"]:
            value = "n/a" if r["value"] is None else f"{r['value']:.2f}"
            target = "" if r["target"] is None else f" (target >= {r['target']}: {'met' if r['met'] else 'MISSED'})"
            print(f"  ratio {r['label']} [{r['metric']}] = {value}{target}")
        for c in scenario["checks"]:
            value = "n/a" if c["value"] is None else f"{c['value']:.1f}"
            print(f"  check {c['label']} = {value} (target {c['op']} {c['target']}: {'met' if c['met'] else 'MISSED'})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require("wrk")
        require("curl")
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scenarios = [BY_NAME[n] for n in args.only] if args.only else list(SCENARIOS)
    # a ratio against another scenario needs that one first
    scenarios.sort(key=lambda s: SCENARIOS.index(s))
    run = Run(args, scenarios)

    def on_signal(signum, frame):
        raise Aborted(f"stopped by {signal.Signals(signum).name}")

    def on_alarm(signum, frame):
        raise Aborted(f"time bound of {args.max_minutes} minutes reached")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(args.max_minutes * 60)))
    atexit.register(run.cleanup)

    started = time.time()
    document = {
        "tool": "benchmarks.load",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "seconds": run.seconds(),
        "seconds_smoke_uploads": 2 if args.smoke else None,
        "repeats": 1 if args.smoke else args.repeats,
        "wrk_threads": 2,
        "contenders_in_parallel": args.smoke,
        "machine": machine_info(),
        "scenarios": [],
    }
    status = 0
    try:
        run.start()
        document["server_section"] = run.server_section
        document["servers"] = {name: {"pid": s.pid, "url": s.url} for name, s in run.servers.items()}
        document["versions"] = versions(run.pg.bindir if run.pg else None)
        if args.profile:
            run.profile(args.profile)
        else:
            if any(s.kind == "read" for s in scenarios):
                run.prepare_reads()
            done: dict[str, dict[str, dict]] = {}
            for scenario in scenarios:
                result = run.run_scenario(scenario, done)
                done[scenario.name] = {c: row["median"] for c, row in result["contenders"].items()}
                document["scenarios"].append(result)
    except Aborted as exc:
        print(f"aborted: {exc}", file=sys.stderr)
        document["aborted"] = str(exc)
        status = 3
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        document["error"] = str(exc)
        status = 1
    finally:
        run.cleanup()
        document["pids"] = run.pids()
        document["elapsed_s"] = round(time.time() - started, 1)
        document["machine"]["loadavg_end"] = list(os.getloadavg())
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(document, f, indent=1)
    if document["scenarios"]:
        print_summary(document["scenarios"])
    if args.json:
        print(f"\nwrote {args.json} ({document['elapsed_s']} s)")
    return status
