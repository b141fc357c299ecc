"""Load test of a running pastefile server: uploads/s, reads/s, latency percentiles.

    python -m benchmarks.loadtest                 # starts its own embedded server
    python -m benchmarks.loadtest --url http://127.0.0.1:6543 --clients 8

Without ``--url`` it serves the app with waitress (8 threads) in a child
process, over a temp SQLite database and the in-process cache, or with
``--backend postgresql`` over a throwaway PostgreSQL cluster (run with
fsync off, as in the tests) and two memcached nodes.  Phases, each
bounded by ``--seconds`` and ``--max-requests``:

  upload   POST / with distinct small PNGs (multipart, JSON answer)
  preview  GET /p/{filehash} of uploaded files (warm cache)
  raw      GET /i/{filehash} (bytes, ETag)
  resize   GET /i/{filehash}?w=64&h=64 (cached variants)
  post-NMB / put-NMB   large uploads (--large-mb), two clients, MB/s

Only loopback addresses are accepted: this is a tool for this machine.
The clients run in this process and share the CPU with the server.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from urllib.parse import urlsplit

import psycopg2
from PIL import Image

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def png(seed: int, size=(96, 64)) -> bytes:
    rng = random.Random(seed)
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Phase:
    def __init__(self, name: str):
        self.name = name
        self.latencies: list[float] = []
        self.errors = 0
        self.bytes = 0
        self.lock = threading.Lock()
        self.elapsed = 0.0

    def record(self, seconds: float, ok: bool, nbytes: int = 0) -> None:
        with self.lock:
            if ok:
                self.latencies.append(seconds)
                self.bytes += nbytes
            else:
                self.errors += 1

    def summary(self) -> dict:
        lat = sorted(self.latencies)

        def pct(p):
            return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")

        return {
            "phase": self.name,
            "requests": len(lat),
            "errors": self.errors,
            "per_second": len(lat) / self.elapsed if self.elapsed else 0.0,
            "mb_per_second": self.bytes / (1 << 20) / self.elapsed if self.elapsed else 0.0,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "mean_ms": statistics.fmean(lat) * 1000 if lat else float("nan"),
        }


def run_phase(name, host, port, clients, seconds, max_requests, make_request, on_success=None) -> Phase:
    phase = Phase(name)
    counter = iter(range(max_requests))
    counter_lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while time.monotonic() < deadline:
            with counter_lock:
                n = next(counter, None)
            if n is None:
                break
            method, path, body, headers, expect = make_request(n)
            start = time.perf_counter()
            nbytes = 0
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                nbytes = len(body or b"") + len(payload)
                ok = response.status == expect
                if ok and on_success is not None:
                    on_success(payload)
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            phase.record(time.perf_counter() - start, ok, nbytes)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.elapsed = time.perf_counter() - start
    return phase


def large_uploads(host, port, args) -> list[Phase]:
    """Streaming throughput: multipart POST and raw PUT of distinct large files,
    two clients at a time."""
    size = args.large_mb << 20
    base = random.Random(5).randbytes(size)

    def distinct(n: int) -> bytes:
        return n.to_bytes(8, "big") + base[8:]

    def post(n):
        body, ctype = multipart(distinct(2 * n), f"large{n}.bin")
        return "POST", "/", body, {"Content-Type": ctype, "Accept": "application/json"}, 200

    def put(n):
        return "PUT", f"/large{n}.bin", distinct(2 * n + 1), {"Accept": "application/json"}, 200

    return [
        run_phase(f"post-{args.large_mb}MB", host, port, 2, args.seconds * 6, args.large_count, post),
        run_phase(f"put-{args.large_mb}MB", host, port, 2, args.seconds * 6, args.large_count, put),
    ]


def start_server(settings: dict) -> tuple[subprocess.Popen, str]:
    """The app under waitress (8 threads) in a child process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import json, sys, waitress\n"
        "from pastefile.webapp import main\n"
        "app = main({}, **json.loads(sys.argv[1]))\n"
        f"waitress.serve(app, host='127.0.0.1', port={port}, threads=8, _quiet=True, "
        "max_request_body_size=4 << 30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(settings)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/latest")
            conn.getresponse().read()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


@contextlib.contextmanager
def own_server(backend: str):
    """A server of our own on ``backend``: embedded SQLite with the in-process
    cache, or a throwaway PostgreSQL cluster with two memcached nodes."""
    with contextlib.ExitStack() as stack:
        tmp = tempfile.mkdtemp(prefix="pastefile-load-")
        stack.callback(shutil.rmtree, tmp, True)
        settings = {
            "pastefile.storage_root": f"{tmp}/files",
            "pastefile.auto_migrate": "true",
            "pastefile.allowed_types": "image/* text/* application/octet-stream",
            "pastefile.max_upload_size": "2G",
        }
        if backend == "sqlite":
            settings["pastefile.db_url"] = f"sqlite:///{tmp}/load.sqlite"
            settings["pastefile.cache.backend"] = "memory"
        else:
            from tests.servers import Memcached, PostgresCluster

            cluster = PostgresCluster().start()
            stack.callback(cluster.stop)
            nodes = []
            for _ in range(2):
                nodes.append(Memcached(memory_mb=256).start())
                stack.callback(nodes[-1].stop)
            conn = psycopg2.connect(host="127.0.0.1", port=cluster.port, user=cluster.user, dbname="postgres")
            conn.autocommit = True
            conn.cursor().execute("CREATE DATABASE pastefile_load")
            conn.close()
            settings["pastefile.db_url"] = cluster.url("pastefile_load")
            settings["pastefile.cache.backend"] = "memcached"
            settings["pastefile.cache.servers"] = " ".join(node.address for node in nodes)
        proc, url = start_server(settings)
        stack.callback(proc.wait, 10)
        stack.callback(proc.terminate)
        yield url


def run_phases(host: str, port: int, args) -> list[Phase]:
    payloads = [png(i) for i in range(min(args.max_requests, 4000))]
    uploaded: list[str] = []

    def upload(n):
        body, ctype = multipart(payloads[n], f"load{n}.png")
        return "POST", "/", body, {"Content-Type": ctype, "Accept": "application/json"}, 200

    def remember(payload: bytes) -> None:
        uploaded.append(json.loads(payload)["filehash"])  # list.append is atomic

    results = [run_phase("upload", host, port, args.clients, args.seconds, len(payloads), upload, remember)]
    if not uploaded:
        raise SystemExit("no upload succeeded")
    for name, template in (("preview", "/p/{}"), ("raw", "/i/{}"), ("resize", "/i/{}?w=64&h=64")):

        def request(n, template=template):
            return "GET", template.format(uploaded[n % len(uploaded)]), None, {"Accept": "text/html"}, 200

        results.append(run_phase(name, host, port, args.clients, args.seconds, args.max_requests, request))
    if args.large_mb:
        results += large_uploads(host, port, args)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server on this machine (default: start one)")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="for the server started here: embedded SQLite, or PostgreSQL + 2 memcached nodes",
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound per phase")
    parser.add_argument("--max-requests", type=int, default=2000, help="request bound per phase")
    parser.add_argument("--large-mb", type=int, default=64, help="size of the large-upload phases (0: skip)")
    parser.add_argument("--large-count", type=int, default=6, help="uploads in each large-upload phase")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(own_server(args.backend))
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK:
            raise SystemExit("the load test only targets servers on this machine (loopback)")
        results = run_phases(parts.hostname, parts.port or 80, args)

    rows = [r.summary() for r in results]
    print(f"{'phase':12} {'requests':>9} {'errors':>7} {'req/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row['phase']:12} {row['requests']:9d} {row['errors']:7d} {row['per_second']:9.1f} "
            f"{row['mb_per_second']:8.1f} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['p99_ms']:8.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clients": args.clients, "backend": args.url or args.backend, "phases": rows}, f, indent=2)
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
