"""tus resumable uploads against the multipart ``POST /``, on the same server in the same run.

    python -m benchmarks.tus_upload [--size-mb 1024] [--seconds 5] [--clients 4] [--json benchmarks/tus_upload.json]

The server is benchmarks.big_upload's pastefile-pg (PostgreSQL with fsync
on, two memcached nodes, blobs as files) under ``pserve`` with
production.ini's ``[server:main]``, started once for both parts:

1. One large upload (``--size-mb``, default 1 GiB), body generated while it
   is sent as benchmarks.big_upload generates it (base64 text, each MiB
   numbered and marked with the run's nonce, never held whole):

   * tus: ``POST /files/`` with ``Upload-Length``, then ``PATCH``es of
     ``--patch-mb`` (32 MiB), each a request of its own on one keep-alive
     connection; the server appends each body while it arrives.  The SHA-256
     of the body is computed in a pass of its own after the upload, outside
     the timing as for the POST (its time reported as ``client_hash_seconds``),
     and checked against the paste's ``sha256`` (``GET /files/{id}``).
   * POST: one streamed multipart ``POST /`` of the same size
     (benchmarks.big_upload's upload); its expected SHA-256 is computed in a
     pass of its own after the upload, outside the timing, and checked
     against the paste's ``sha256`` (``GET /j/{filehash}``).

   The tus upload goes first, each after ``sync`` and an idle server.
   Seconds from the first byte of the first request to the end of the last
   answer; MB/s = MiB / seconds.  Server RSS (pserve and its workers summed)
   is sampled every 100 ms as in benchmarks.big_upload: growth = peak during
   the upload - value before it.

2. 64 KiB uploads, ``--clients`` threads each with a keep-alive
   ``http.client`` connection, each request's content unique, for
   ``--seconds`` per round: tus creation-with-upload (``POST /files/`` with
   ``Upload-Length``, ``Content-Type: application/offset+octet-stream`` and
   the whole body: 201 with ``X-Paste-Url``) against multipart ``POST /``
   with ``Accept: application/json`` (200).  After a short warm-up of each,
   two rounds in the order POST, tus, tus, POST; rate = successful uploads
   / seconds over both rounds.

Targets: large tus MB/s / POST MB/s >= 0.8, server RSS growth during the tus
upload < 50 MB, 64 KiB tus uploads/s / POST uploads/s >= 0.7.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import datetime as dt
import hashlib
import http.client
import json
import os
import signal
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

from benchmarks.big_upload import (
    FILE_SERVER, MIB, SAMPLE_SECONDS, RssWatch, _own_cpu, body_parts, finish_run, random_block, upload,
)
from benchmarks.load.procs import HarnessError, wait_idle
from benchmarks.load.runner import Aborted, Run, machine_info, multipart, versions

TUS_VERSION = "1.0.0"
OFFSET_TYPE = "application/offset+octet-stream"
KIB = 1 << 10
SMALL_BYTES = 64 * KIB
LARGE_RATIO_TARGET = 0.8
RSS_TARGET_MB = 50.0
SMALL_RATIO_TARGET = 0.7
ROUND_ORDER = ("post", "tus", "tus", "post")


def _metadata(filename: str) -> str:
    return "filename " + base64.b64encode(filename.encode()).decode()


def _split(parts, size: int):
    """The pieces of ``parts`` in consecutive runs of ``size`` bytes: yields
    one generator per run (each to be consumed before the next)."""
    parts = iter(parts)
    carry: list[memoryview] = []

    def run():
        room = size
        while room > 0:
            piece = carry.pop() if carry else next(parts, None)
            if piece is None:
                return
            piece = memoryview(piece)
            if len(piece) > room:
                carry.append(piece[room:])
                piece = piece[:room]
            room -= len(piece)
            yield piece

    while True:
        first = carry[-1] if carry else next(parts, None)
        if first is None:
            return
        if not carry:
            carry.append(memoryview(first))
        yield run()


# -- 1. the large upload --------------------------------------------------------------

def tus_upload(port: int, size: int, patch_size: int, nonce: str, block: bytes, watch: RssWatch,
               timeout: float) -> dict:
    """``size`` bytes over tus in PATCHes of ``patch_size`` on one keep-alive
    connection.  The body's hash is taken in a pass of its own after the
    timing, as for the POST it is compared with."""
    patches: list[dict] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    cpu_before, client_before = watch.cpu(), _own_cpu()
    watch.start()
    started = time.perf_counter()
    status, error, paste_url, location = None, None, None, None
    try:
        conn.request("POST", "/files/", headers={
            "Tus-Resumable": TUS_VERSION, "Upload-Length": str(size), "Upload-Metadata": _metadata(f"tus-{nonce}.txt"),
        })
        response = conn.getresponse()
        response.read()
        status = response.status
        location = response.getheader("Location")
        created = time.perf_counter()
        if status != 201 or not location:
            error = f"creation answered {status} (Location {location!r})"
        else:
            path = urlsplit(location).path
            offset = 0
            for run in _split(body_parts(size, nonce, block), patch_size):
                n = min(patch_size, size - offset)
                t0 = time.perf_counter()
                conn.putrequest("PATCH", path)
                conn.putheader("Tus-Resumable", TUS_VERSION)
                conn.putheader("Upload-Offset", str(offset))
                conn.putheader("Content-Type", OFFSET_TYPE)
                conn.putheader("Content-Length", str(n))
                conn.endheaders()
                for piece in run:
                    conn.send(piece)
                t1 = time.perf_counter()
                response = conn.getresponse()
                text = response.read()
                t2 = time.perf_counter()
                status = response.status
                patches.append({"bytes": n, "send_seconds": round(t1 - t0, 4), "answer_wait_seconds": round(t2 - t1, 4)})
                new_offset = response.getheader("Upload-Offset")
                if status != 204 or new_offset != str(offset + n):
                    error = (f"PATCH at offset {offset} answered {status}, Upload-Offset {new_offset!r}: "
                             f"{text[:300].decode(errors='replace')}")
                    break
                offset += n
                paste_url = response.getheader("X-Paste-Url") or paste_url
        done = time.perf_counter()
    finally:
        conn.close()
        watch.finish()
    cpu_after, client_after = watch.cpu(), _own_cpu()
    seconds = done - started
    if error is None and not paste_url:
        error = "the last PATCH carried no X-Paste-Url"
    ok = error is None
    h0 = time.perf_counter()
    sent_sha256 = body_sha256(size, nonce, block) if ok else None
    hash_seconds = time.perf_counter() - h0
    sends = [p["send_seconds"] for p in patches]
    waits = [p["answer_wait_seconds"] for p in patches]
    return {
        "status": status,
        "bytes": size,
        "patch_bytes": patch_size,
        "patches": len(patches),
        "seconds": round(seconds, 3),
        "creation_seconds": round(created - started, 4),
        "mbps": size / MIB / seconds if ok else 0.0,
        "patch_send_seconds": {"median": _median(sends), "max": max(sends, default=None)},
        "patch_answer_wait_seconds": {"median": _median(waits[:-1]), "max": max(waits[:-1], default=None),
                                      "last": waits[-1] if waits else None},
        "client_hash_seconds": round(hash_seconds, 3),
        "location": location,
        "paste_url": paste_url,
        "sha256_sent": sent_sha256,
        "error": error,
        "rss_samples": watch.samples,
        "server_rss_before_mb": watch.before["server"] / MIB,
        "server_rss_peak_mb": watch.peak["server"] / MIB,
        "server_rss_growth_mb": (watch.peak["server"] - watch.before["server"]) / MIB,
        "cpu_seconds": {**{group: round(cpu_after[group] - cpu_before[group], 2) for group in cpu_before},
                        "client": round(client_after - client_before, 2)},
    }


def _median(values):
    return round(statistics.median(values), 4) if values else None


def paste_sha256(port: int, path: str) -> str | None:
    """The ``sha256`` in a paste's JSON: ``/files/{id}`` of a complete tus
    upload, or ``/j/{filehash}``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Accept": "application/json", "Tus-Resumable": TUS_VERSION})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise HarnessError(f"GET {path} answered {response.status}: {payload[:300]!r}")
    return json.loads(payload).get("sha256")


def body_sha256(size: int, nonce: str, block: bytes) -> str:
    hasher = hashlib.sha256()
    for piece in body_parts(size, nonce, block):
        hasher.update(piece)
    return hasher.hexdigest()


# -- 2. many small uploads --------------------------------------------------------------

class SmallClient(threading.Thread):
    """One keep-alive connection sending unique 64 KiB uploads until ``deadline``."""

    def __init__(self, port: int, kind: str, tag: str, block: bytes, deadline: float, timeout: float = 30.0):
        super().__init__(daemon=True, name=f"small-{tag}")
        self.port, self.kind, self.tag, self.block = port, kind, tag, block
        self.deadline, self.timeout = deadline, timeout
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.sent = 0

    def _body(self) -> bytes:
        mark = f"{self.sent:012d} {self.tag} ".encode()
        self.sent += 1
        return mark + self.block[len(mark):]

    def _request(self, conn: http.client.HTTPConnection) -> str | None:
        """One upload; None when it succeeded, else what went wrong."""
        data = self._body()
        if self.kind == "tus":
            conn.request("POST", "/files/", data, headers={
                "Tus-Resumable": TUS_VERSION, "Upload-Length": str(len(data)), "Content-Type": OFFSET_TYPE,
                "Upload-Metadata": _metadata(f"small-{self.tag}-{self.sent}.txt"),
            })
            response = conn.getresponse()
            response.read()
            if response.status == 201 and response.getheader("X-Paste-Url"):
                return None
        else:
            body, content_type = multipart(f"small-{self.tag}-{self.sent}.txt", data)
            conn.request("POST", "/", body, headers={"Content-Type": content_type, "Accept": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return None
        return f"HTTP {response.status}"

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            while time.perf_counter() < self.deadline:
                t0 = time.perf_counter()
                try:
                    failure = self._request(conn)
                except (OSError, http.client.HTTPException) as exc:
                    failure = type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if failure is None:
                    self.latencies.append(time.perf_counter() - t0)
                else:
                    self.errors[failure] = self.errors.get(failure, 0) + 1
        finally:
            conn.close()


def small_round(port: int, kind: str, clients: int, seconds: float, tag: str, block: bytes,
                server_pid: int) -> dict:
    watch = RssWatch({"server": [server_pid]})
    cpu_before, client_before = watch.cpu(), _own_cpu()
    started = time.perf_counter()
    threads = [SmallClient(port, kind, f"{tag}-{i}", block, started + seconds) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu_after, client_after = watch.cpu(), _own_cpu()
    latencies = sorted(x for t in threads for x in t.latencies)
    errors: dict[str, int] = {}
    for thread in threads:
        for key, count in thread.errors.items():
            errors[key] = errors.get(key, 0) + count
    return {
        "kind": kind, "seconds": round(elapsed, 3), "ok": len(latencies), "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50), "p99_ms": _percentile(latencies, 0.99),
        "cpu_seconds": {"server": round(cpu_after["server"] - cpu_before["server"], 2),
                        "client": round(client_after - client_before, 2)},
    }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000, 2)


def small_uploads(port: int, server_pid: int, clients: int, seconds: float, nonce: str) -> dict:
    block = random_block(SMALL_BYTES)
    warmup = max(0.5, min(2.0, seconds / 2))
    for kind in ("post", "tus"):
        small_round(port, kind, clients, warmup, f"{nonce}-warm-{kind}", block, server_pid)
    rounds = [small_round(port, kind, clients, seconds, f"{nonce}-{kind}-{i}", block, server_pid)
              for i, kind in enumerate(ROUND_ORDER)]
    out: dict = {"bytes": SMALL_BYTES, "clients": clients, "seconds_per_round": seconds, "warmup_seconds": warmup,
                 "rounds": rounds}
    for kind in ("tus", "post"):
        mine = [r for r in rounds if r["kind"] == kind]
        total_ok, total_s = sum(r["ok"] for r in mine), sum(r["seconds"] for r in mine)
        errors = sum(sum(r["errors"].values()) for r in mine)
        out[kind] = {"ok": total_ok, "errors": errors, "seconds": round(total_s, 3),
                     "rps": total_ok / total_s if total_s else 0.0,
                     "p50_ms": _median([r["p50_ms"] for r in mine if r["p50_ms"] is not None]),
                     "p99_ms": max((r["p99_ms"] for r in mine if r["p99_ms"] is not None), default=None),
                     "cpu_seconds_per_upload": {
                         side: round(sum(r["cpu_seconds"][side] for r in mine) / total_ok * 1000, 2) if total_ok else None
                         for side in ("server", "client")}}
    return out


# -- the run --------------------------------------------------------------------------

def _check(label: str, value, op: str, target: float) -> dict:
    met = None if value is None else (value >= target if op == ">=" else value < target)
    return {"label": label, "value": value, "op": op, "target": target, "met": met}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tus_upload", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="the large upload's size in MiB (default 1024)")
    parser.add_argument("--patch-mb", type=int, default=32, help="the tus PATCH size in MiB (default 32)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="seconds of each round of 64 KiB uploads (default 5; 4 rounds)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the 64 KiB uploads (default 4)")
    parser.add_argument("--json", default="benchmarks/tus_upload.json", help="write the result here")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="abort cleanly after this long")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (inis, logs, databases)")
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.patch_mb < 1:
        parser.error("--size-mb and --patch-mb must be at least 1")
    if args.seconds <= 0 or args.clients < 1:
        parser.error("--seconds must be positive and --clients at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size, patch_size = args.size_mb * MIB, args.patch_mb * MIB
    run = Run(argparse.Namespace(smoke=False, profile=None, keep_temp=args.keep_temp, read_files=0,
                                 seconds=0, repeats=1), [])
    run.needed = {FILE_SERVER}

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
    document: dict = {
        "tool": "benchmarks.tus_upload",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "size_mb": args.size_mb,
        "patch_mb": args.patch_mb,
        "server": FILE_SERVER,
        "server_label": "pastefile, PostgreSQL (fsync on) + 2 memcached, file store",
        "sample_interval_s": SAMPLE_SECONDS,
        "machine": machine_info(),
        "large": {},
        "small": {},
        "checks": {},
    }
    status = 0
    block = random_block()
    timeout = max(600.0, args.size_mb)
    try:
        run.start()
        server = run.servers[FILE_SERVER]
        document["versions"] = versions(run.pg.bindir if run.pg else None)
        roots = {"server": [server.pid]}

        os.sync()
        wait_idle(server.pid)
        run.log(f"tus: {args.size_mb} MiB in PATCHes of {args.patch_mb} MiB ...")
        tus = tus_upload(server.port, size, patch_size, f"{run.nonce}-tus", block, RssWatch(roots), timeout)
        document["large"]["tus"] = tus
        if tus["error"]:
            raise HarnessError(f"tus upload: {tus['error']}")
        tus["sha256_paste"] = paste_sha256(server.port, urlsplit(tus["location"]).path)
        tus["sha256_match"] = tus["sha256_paste"] == tus["sha256_sent"]
        run.log(f"   tus: {tus['seconds']:.1f} s, {tus['mbps']:.1f} MB/s, server RSS +{tus['server_rss_growth_mb']:.1f} MB, "
                f"sha256 {'matches' if tus['sha256_match'] else 'DIFFERS'}")

        os.sync()
        wait_idle(server.pid)
        run.log(f"POST: {args.size_mb} MiB multipart ...")
        post = upload(server.port, size, f"{run.nonce}-post", block, RssWatch(roots), timeout)
        document["large"]["post"] = post
        if post["status"] != 200:
            raise HarnessError(f"POST / answered {post['status']}: {post['answer']}")
        post["sha256_sent"] = body_sha256(size, f"{run.nonce}-post", block)
        post["sha256_paste"] = paste_sha256(server.port, f"/j/{post['filehash']}")
        post["sha256_match"] = post["sha256_paste"] == post["sha256_sent"]
        run.log(f"   POST: {post['seconds']:.1f} s, {post['mbps']:.1f} MB/s, server RSS +{post['server_rss_growth_mb']:.1f} MB, "
                f"sha256 {'matches' if post['sha256_match'] else 'DIFFERS'}")

        os.sync()
        wait_idle(server.pid)
        run.log(f"64 KiB uploads: {args.clients} clients, rounds of {args.seconds:g} s ({', '.join(ROUND_ORDER)}) ...")
        small = small_uploads(server.port, server.pid, args.clients, args.seconds, run.nonce)
        document["small"] = small
        run.log(f"   tus {small['tus']['rps']:.1f}/s, POST {small['post']['rps']:.1f}/s")

        large_ratio = tus["mbps"] / post["mbps"] if post["mbps"] else None
        small_ratio = small["tus"]["rps"] / small["post"]["rps"] if small["post"]["rps"] else None
        document["checks"] = {
            "large_ratio": _check("large upload MB/s, tus / POST", large_ratio, ">=", LARGE_RATIO_TARGET),
            "tus_rss": _check("server RSS growth during the tus upload, MB", tus["server_rss_growth_mb"], "<",
                              RSS_TARGET_MB),
            "small_ratio": _check("64 KiB uploads/s, tus / POST", small_ratio, ">=", SMALL_RATIO_TARGET),
        }
        document["sha256_ok"] = bool(tus["sha256_match"] and post["sha256_match"])
        if not document["sha256_ok"]:
            raise HarnessError("a paste's sha256 differs from the body sent")
    except Aborted as exc:
        print(f"aborted: {exc}", file=sys.stderr)
        document["aborted"] = str(exc)
        status = 3
    except (HarnessError, OSError, http.client.HTTPException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        document["error"] = str(exc)
        status = 1
    finally:
        finish_run(run, document, started, args.json)
    print_summary(document)
    if args.json:
        print(f"wrote {args.json} ({document['elapsed_s']} s)")
    return status


def print_summary(document: dict) -> None:
    large = document.get("large", {})
    print(f"\n{document['size_mb']} MiB upload to {document['server']}: tus in {document['patch_mb']} MiB PATCHes "
          "vs multipart POST /")
    for name, r in large.items():
        sha = {True: "sha256 ok", False: "sha256 MISMATCH"}.get(r.get("sha256_match"), "sha256 not checked")
        print(f"  {name:<4} {r['seconds']:7.1f} s {r['mbps']:7.1f} MB/s  server RSS +{r['server_rss_growth_mb']:.1f} MB  "
              f"CPU s: " + ", ".join(f"{g} {v:.1f}" for g, v in r.get("cpu_seconds", {}).items()) + f"  {sha}")
    tus = large.get("tus")
    if tus and tus.get("patches"):
        print(f"  tus  {tus['patches']} PATCHes: send median {tus['patch_send_seconds']['median']} s, answer after "
              f"median {tus['patch_answer_wait_seconds']['median']} s, last {tus['patch_answer_wait_seconds']['last']} s; "
              f"client hashing {tus['client_hash_seconds']} s")
    small = document.get("small", {})
    if small.get("rounds"):
        print(f"{small['bytes'] // KIB} KiB uploads, {small['clients']} clients, {len(small['rounds'])} rounds of "
              f"{small['seconds_per_round']:g} s")
        for name in ("tus", "post"):
            r = small[name]
            print(f"  {name:<4} {r['rps']:7.1f} uploads/s ({r['ok']} ok, {r['errors']} errors) p50 {r['p50_ms']} ms "
                  f"p99 {r['p99_ms']} ms; CPU ms per upload: server {r['cpu_seconds_per_upload']['server']}, "
                  f"client {r['cpu_seconds_per_upload']['client']}")
    for check in document.get("checks", {}).values():
        value = "n/a" if check["value"] is None else f"{check['value']:.2f}"
        print(f"  {check['label']} = {value} (target {check['op']} {check['target']:g}: "
              f"{'met' if check['met'] else 'MISSED'})")
    if "sha256_ok" in document:
        print(f"  sha256 of the pastes = the bodies sent: {'yes' if document['sha256_ok'] else 'NO'}")


if __name__ == "__main__":
    raise SystemExit(main())
