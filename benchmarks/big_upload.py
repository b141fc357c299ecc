"""One large upload on the file store and on the s3 store: MB/s and the server's RSS growth.

    python -m benchmarks.big_upload [--size-mb 1024] [--json benchmarks/big_upload.json] [--part-size 16M]

The servers are those of the load comparison (benchmarks.load): pastefile-pg
(PostgreSQL with fsync on, two memcached nodes, blobs as files) and
pastefile-s3 (the same, blobs in a one-node Ceph RADOS Gateway started here,
memstore sized for the upload and its copies), each under ``pserve`` with
production.ini's ``[server:main]``.

The body is a multipart ``POST /`` with a Content-Length, the upload the
server parses into the store while it arrives (webapp/streaming.py).  It is
generated while it is sent, never held whole: a random 1 MiB block repeated,
each MiB starting with its number and the run's nonce, so no two MiB (and no
two uploads) are alike.  The block is random bytes in base64 lines: plain
text, a type pastefile takes (it refuses application/octet-stream).  The seconds run from the first byte sent to the
end of the answer; MB/s = MiB / seconds.  The RSS of the server's process
tree (``VmRSS`` of /proc/<pid>/status, pserve and its workers summed) is
sampled every 100 ms: growth = the largest sum during the upload minus the
sum just before it.  The gateway's RSS is reported beside it (memstore keeps
the objects in RAM: it grows with the data by design), and the CPU seconds
the server, the gateway and this client used during the upload.

For scale, the same body also goes straight to the gateway, without
pastefile (``gateway-direct``): a boto3 multipart upload of the same part
size from this process, one part at a time as pastefile sends them; what
the gateway alone takes on this machine bounds the s3 store's MB/s.

Targets: s3 MB/s / file MB/s >= 0.5, RSS growth < 100 MB on both stores.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import datetime as dt
import http.client
import json
import os
import signal
import sys
import threading
import time
import uuid

from benchmarks.load import s3 as s3_store
from benchmarks.load.procs import HarnessError, cpu_seconds, process_tree, wait_idle
from benchmarks.load.runner import Aborted, Run, machine_info, versions

MIB = 1 << 20
FILE_SERVER = "pastefile-pg"
S3_SERVER = s3_store.SERVER
SERVERS = (FILE_SERVER, S3_SERVER)
RATIO_TARGET = 0.5
RSS_TARGET_MB = 100.0
SAMPLE_SECONDS = 0.1


def body_parts(size: int, nonce: str, block: bytes):
    """``size`` bytes: ``block`` (1 MiB) again and again, the first bytes
    of each MiB replaced by its number and ``nonce``.  Yields views, no copy
    of the block."""
    view = memoryview(block)
    sent, number = 0, 0
    while sent < size:
        mark = f"{number:012d} {nonce} ".encode()
        n = min(len(block), size - sent)
        if n <= len(mark):
            yield mark[:n]
        else:
            yield mark
            yield view[len(mark):n]
        sent += n
        number += 1


def random_block(size: int = MIB) -> bytes:
    """``size`` bytes of random base64 text in lines of 76 characters."""
    text = base64.encodebytes(os.urandom(size))  # lines of 76 + newline
    return text[:size - 1] + b"\n"


def vm_rss(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RssWatch(threading.Thread):
    """Every ``interval`` seconds, the summed VmRSS of each group of process
    trees; ``peak`` holds the largest sum seen per group.  The trees' pids
    are looked up again every ``TREE_EVERY`` samples only (a walk of all of
    /proc costs more than reading a few status files), and at the end."""

    TREE_EVERY = 10

    def __init__(self, roots: dict[str, list[int]], interval: float = SAMPLE_SECONDS):
        super().__init__(daemon=True, name="rss-watch")
        self.roots = roots
        self.interval = interval
        self.samples = 0
        self.pids = self._trees()
        self.before = self.sample()
        self.peak = dict(self.before)
        self._halt = threading.Event()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each group's process trees (those alive now)."""
        return {group: cpu_seconds({pid for root in roots for pid in process_tree(root)})
                for group, roots in self.roots.items()}

    def _trees(self) -> dict[str, set[int]]:
        return {group: {pid for root in roots for pid in process_tree(root)} for group, roots in self.roots.items()}

    def sample(self) -> dict[str, int]:
        return {group: sum(vm_rss(pid) for pid in pids) for group, pids in self.pids.items()}

    def _record(self) -> None:
        now = self.sample()
        self.samples += 1
        for group, value in now.items():
            self.peak[group] = max(self.peak[group], value)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            if self.samples % self.TREE_EVERY == self.TREE_EVERY - 1:
                self.pids = self._trees()
            self._record()

    def finish(self) -> None:
        self._halt.set()
        self.join()
        self.pids = self._trees()
        self._record()


def upload(port: int, size: int, nonce: str, block: bytes, watch: RssWatch, timeout: float) -> dict:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big-{nonce}.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    cpu_before, client_before = watch.cpu(), _own_cpu()
    watch.start()
    started = time.perf_counter()
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.putheader("Accept", "application/json")
        conn.endheaders()
        conn.send(head)
        for part in body_parts(size, nonce, block):
            conn.send(part)
        conn.send(tail)
        sent = time.perf_counter()
        response = conn.getresponse()
        payload = response.read()
        done = time.perf_counter()
    finally:
        conn.close()
        watch.finish()
    cpu_after, client_after = watch.cpu(), _own_cpu()
    seconds = done - started
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = {"text": payload[:300].decode(errors="replace")}
    return {
        "status": response.status,
        "bytes": size,
        "seconds": round(seconds, 3),
        "send_seconds": round(sent - started, 3),
        "answer_wait_seconds": round(done - sent, 3),
        "mbps": size / MIB / seconds if response.status == 200 else 0.0,
        "filehash": answer.get("filehash"),
        "answer": None if response.status == 200 else answer,
        "rss_samples": watch.samples,
        "server_rss_before_mb": watch.before["server"] / MIB,
        "server_rss_peak_mb": watch.peak["server"] / MIB,
        "server_rss_growth_mb": (watch.peak["server"] - watch.before["server"]) / MIB,
        **({"gateway_rss_before_mb": watch.before["gateway"] / MIB,
            "gateway_rss_peak_mb": watch.peak["gateway"] / MIB,
            "gateway_rss_growth_mb": (watch.peak["gateway"] - watch.before["gateway"]) / MIB}
           if "gateway" in watch.before else {}),
        "cpu_seconds": {**{group: round(cpu_after[group] - cpu_before[group], 2) for group in cpu_before},
                        "client": round(client_after - client_before, 2)},
    }


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def direct_upload(gateway: s3_store.Gateway, size: int, part_size: int, nonce: str, block: bytes) -> dict:
    """The body as a multipart upload straight to the gateway (boto3, one
    part at a time), for scale: MB/s and CPU seconds of the gateway and of
    this process."""
    s3 = gateway.rgw.client()
    roots = {"gateway": list(gateway.daemon_pids().values())}
    watch = RssWatch(roots)
    key = f"direct/{nonce}"
    cpu_before, client_before = watch.cpu(), _own_cpu()
    started = time.perf_counter()
    try:
        upload_id = s3.create_multipart_upload(Bucket=s3_store.BUCKET, Key=key)["UploadId"]
        parts, pending, number = [], [], 0
        pending_bytes = 0

        def flush():
            nonlocal pending, pending_bytes, number
            number += 1
            body = b"".join(pending)
            etag = s3.upload_part(Bucket=s3_store.BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                                  Body=body, ContentLength=len(body))["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
            pending, pending_bytes = [], 0

        for piece in body_parts(size, nonce, block):
            pending.append(bytes(piece))
            pending_bytes += len(piece)
            if pending_bytes >= part_size:
                flush()
        if pending:
            flush()
        s3.complete_multipart_upload(Bucket=s3_store.BUCKET, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
        seconds = time.perf_counter() - started
    finally:
        cpu_after, client_after = watch.cpu(), _own_cpu()
        s3.close()
    return {
        "bytes": size,
        "part_size": part_size,
        "parts": len(parts),
        "seconds": round(seconds, 3),
        "mbps": size / MIB / seconds,
        "cpu_seconds": {"gateway": round(cpu_after["gateway"] - cpu_before["gateway"], 2),
                        "client": round(client_after - client_before, 2)},
    }


def _size(text: str) -> int:
    """``16M``, ``5242880``, ``512k``: bytes, as pastefile reads ``s3.part_size``."""
    text = text.strip().lower().removesuffix("b")
    for suffix, factor in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)):
        if text.endswith(suffix):
            return int(text[:-1]) * factor
    return int(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.big_upload", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="the upload's size in MiB (default 1024)")
    parser.add_argument("--json", default="benchmarks/big_upload.json", help="write the result here")
    parser.add_argument("--part-size", help="pastefile.s3.part_size of the s3 server (default: the setting's, 16M)")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="abort cleanly after this long")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (inis, logs, databases)")
    args = parser.parse_args(argv)
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.size_mb * MIB
    # the load harness's servers, without its scenarios
    run = Run(argparse.Namespace(smoke=False, profile=None, keep_temp=args.keep_temp, read_files=0,
                                 seconds=0, repeats=1), [])
    run.needed = set(SERVERS)
    # the staged multipart upload, the object copied from it, memstore's ~2x
    run.s3_memory_bytes = max(s3_store.DEFAULT_MEMORY_BYTES, 5 * size)
    run.s3_part_size = args.part_size

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
        "tool": "benchmarks.big_upload",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "size_mb": args.size_mb,
        "request": "multipart POST / with a Content-Length (parsed into the store while it arrives)",
        "s3_part_size": args.part_size or "16M (default)",
        "sample_interval_s": SAMPLE_SECONDS,
        "machine": machine_info(),
        "results": {},
    }
    status = 0
    block = random_block()
    try:
        run.start()
        document["servers"] = {name: {"pid": run.servers[name].pid, "label": label} for name, label in (
            (FILE_SERVER, "file store"), (S3_SERVER, "s3 store (Ceph RGW, memstore)"))}
        document["versions"] = versions(run.pg.bindir if run.pg else None)
        document["s3_memstore_bytes"] = run.s3_memory_bytes
        for name in SERVERS:
            server = run.servers[name]
            os.sync()  # what came before goes to disk now, not during the upload
            wait_idle(server.pid)
            roots = {"server": [server.pid]}
            if name == S3_SERVER:
                roots["gateway"] = list(run.gateway.daemon_pids().values())
            run.log(f"{name}: uploading {args.size_mb} MiB ...")
            result = upload(server.port, size, f"{run.nonce}-{name}", block, RssWatch(roots),
                            timeout=max(600.0, args.size_mb))
            run.log(f"   {name}: HTTP {result['status']}, {result['seconds']:.1f} s, {result['mbps']:.1f} MB/s, "
                    f"server RSS +{result['server_rss_growth_mb']:.1f} MB")
            document["results"][name] = result
            if result["status"] != 200:
                raise HarnessError(f"{name} answered {result['status']}: {result['answer']}")
            if name == S3_SERVER:
                wait_idle(server.pid)
                result["s3_objects_deleted"] = run.gateway.clear()
        part_size = _size(args.part_size) if args.part_size else 16 * MIB
        run.log(f"gateway-direct: uploading {args.size_mb} MiB in parts of {part_size // MIB} MiB with boto3 ...")
        direct = direct_upload(run.gateway, size, part_size, f"{run.nonce}-direct", block)
        run.log(f"   gateway-direct: {direct['seconds']:.1f} s, {direct['mbps']:.1f} MB/s")
        document["gateway_direct"] = direct
        # informational: how close the s3 store comes to what the gateway takes alone in this run
        document["ratio_s3_to_gateway_direct"] = document["results"][S3_SERVER]["mbps"] / direct["mbps"]
        run.gateway.clear()
        file_mbps = document["results"][FILE_SERVER]["mbps"]
        s3_mbps = document["results"][S3_SERVER]["mbps"]
        ratio = s3_mbps / file_mbps if file_mbps else None
        document["ratio"] = {"label": "s3 MB/s / file MB/s", "value": ratio, "target": RATIO_TARGET,
                             "met": None if ratio is None else ratio >= RATIO_TARGET}
        document["rss_checks"] = {
            name: {"value": document["results"][name]["server_rss_growth_mb"], "op": "<", "target": RSS_TARGET_MB,
                   "met": document["results"][name]["server_rss_growth_mb"] < RSS_TARGET_MB}
            for name in SERVERS}
    except Aborted as exc:
        print(f"aborted: {exc}", file=sys.stderr)
        document["aborted"] = str(exc)
        status = 3
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        document["error"] = str(exc)
        status = 1
    finally:
        finish_run(run, document, started, args.json)
    print_summary(document)
    if args.json:
        print(f"wrote {args.json} ({document['elapsed_s']} s)")
    return status


def finish_run(run, document: dict, started: float, json_path: str | None) -> None:
    """Stop the run's servers and write its document, also after an error."""
    signal.alarm(0)
    run.cleanup()
    document["pids"] = run.pids()
    document["elapsed_s"] = round(time.time() - started, 1)
    document["machine"]["loadavg_end"] = list(os.getloadavg())
    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(document, f, indent=1)


def print_summary(document: dict) -> None:
    print(f"\n{document['size_mb']} MiB multipart POST / (s3 part size {document['s3_part_size']})")
    for name, r in document["results"].items():
        gateway = f", gateway RSS +{r['gateway_rss_growth_mb']:.0f} MB" if "gateway_rss_growth_mb" in r else ""
        print(f"  {name:<13} HTTP {r['status']} {r['seconds']:7.1f} s {r['mbps']:7.1f} MB/s "
              f"(sent in {r['send_seconds']:.1f} s, answer {r['answer_wait_seconds']:.1f} s later) "
              f"server RSS +{r['server_rss_growth_mb']:.1f} MB{gateway}")
    for name, r in document["results"].items():
        print(f"  {name:<13} CPU seconds during the upload: "
              + ", ".join(f"{group} {value:.1f}" for group, value in r.get("cpu_seconds", {}).items()))
    direct = document.get("gateway_direct")
    if direct:
        print(f"  gateway-direct (boto3 multipart, {direct['part_size'] // MIB} MiB parts, no pastefile) "
              f"{direct['seconds']:7.1f} s {direct['mbps']:7.1f} MB/s; CPU seconds: "
              + ", ".join(f"{group} {value:.1f}" for group, value in direct["cpu_seconds"].items()))
        if document.get("ratio_s3_to_gateway_direct") is not None:
            print(f"  ratio pastefile-s3 MB/s / gateway-direct MB/s = {document['ratio_s3_to_gateway_direct']:.2f} "
                  "(no target)")
    ratio = document.get("ratio")
    if ratio:
        value = "n/a" if ratio["value"] is None else f"{ratio['value']:.2f}"
        print(f"  ratio {ratio['label']} = {value} (target >= {ratio['target']}: {'met' if ratio['met'] else 'MISSED'})")
    for name, check in document.get("rss_checks", {}).items():
        print(f"  check {name} server RSS growth = {check['value']:.1f} MB "
              f"(target < {check['target']:g}: {'met' if check['met'] else 'MISSED'})")


if __name__ == "__main__":
    raise SystemExit(main())
