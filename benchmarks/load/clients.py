"""The load generators: wrk with the Lua scripts in ``lua/``, and curl for one
large streamed upload.  Both run in sessions of their own so that an
interrupted run can stop them with their group."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time

from .procs import HarnessError, kill_group, tree_rss

LUA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua")
RESULT_MARK = "PASTEFILE_WRK_RESULT "
WRK_THREADS = 2


def require(tool: str, package: str | None = None) -> str:
    path = shutil.which(tool)
    if not path:
        raise HarnessError(f"{tool} is not installed (apt-get install {package or tool}; `make deps` does it)")
    return path


class Children:
    """The load-generator processes running now, for cleanup on a signal."""

    def __init__(self):
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def popen(self, argv, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, **kwargs)
        with self._lock:
            self._procs.add(proc)
        return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
            self._procs.clear()
        for proc in procs:
            if proc.poll() is None:
                kill_group(proc.pid, grace=2.0)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


CHILDREN = Children()


def parse_wrk(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise HarnessError(f"wrk printed no result line:\n{stdout[-2000:]}")


def summarize_wrk(raw: dict, payload_bytes: int = 0) -> dict:
    """Rates and latencies of one wrk run; MB/s counts ``payload_bytes`` per
    request when given (uploads), else the bytes wrk read (reads)."""
    seconds = raw["duration_us"] / 1e6 or 1e-9
    requests = raw["requests"]
    latency = raw["latency_us"]
    errors = raw["errors"]
    # uploads count every answer's status in Lua; reads rely on wrk's own
    # count of statuses >= 400 (redirects are answers there)
    non2xx = raw["non2xx"] if raw.get("non2xx") is not None else errors["status"]
    payload = payload_bytes
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": requests / seconds,
        "mbps": requests * payload / seconds / (1 << 20) if payload else raw["bytes_read"] / seconds / (1 << 20),
        "p50_ms": _ms(latency["p50"]),
        "p90_ms": _ms(latency["p90"]),
        "p99_ms": _ms(latency["p99"]),
        "max_ms": _ms(latency["max"]),
        "non2xx": non2xx,
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "errors": errors,
    }


def _ms(us):
    return None if us is None else us / 1000.0


def run_wrk(url: str, script: str, script_args: list[str], connections: int, seconds: int, timeout_s: int = 10,
            payload_bytes: int = 0) -> dict:
    wrk = require("wrk")
    argv = [
        wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", f"{timeout_s}s",
        "-s", os.path.join(LUA_DIR, script), url, "--", *script_args,
    ]
    proc = CHILDREN.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + timeout_s + 60)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, grace=1.0)
        proc.communicate()
        raise HarnessError(f"wrk did not finish: {' '.join(argv)}")
    finally:
        CHILDREN.done(proc)
    if proc.returncode != 0:
        raise HarnessError(f"wrk failed ({proc.returncode}): {' '.join(argv)}\n{out[-1500:]}\n{err[-1500:]}")
    result = summarize_wrk(parse_wrk(out), payload_bytes)
    if err.strip():
        result["stderr"] = err.strip()[-500:]
    return result


class RssSampler(threading.Thread):
    """Samples the RSS of a server's process tree until stopped."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.interval = interval
        self.before = tree_rss(pid)
        self.peak = self.before
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._halt.wait(self.interval)

    def finish(self) -> tuple[int, int]:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, tree_rss(self.pid))
        return self.before, self.peak


def make_text_file(path: str, size: int) -> None:
    """``size`` bytes of ASCII text, written in large blocks."""
    line = b"pastefile load comparison: one large streamed upload, plain text 0123456789\n"
    block = line * ((4 << 20) // len(line))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def stamp(path: str, key: str) -> None:
    """Make the file's content unique: overwrite its first line with ``key``."""
    data = (key[:70].ljust(75) + "\n").encode("ascii")
    with open(path, "r+b") as f:
        f.write(data)


def curl_upload(url: str, path: str, filename: str, server_pid: int, response_path: str, timeout_s: int) -> dict:
    """One multipart POST of ``path``, streamed from disk by curl, while the
    RSS of the server's process tree is sampled."""
    curl = require("curl")
    size = os.path.getsize(path)
    argv = [
        curl, "-sS", "-o", response_path, "-w", "%{http_code} %{time_total} %{size_upload}",
        "-H", "Accept: application/json", "-H", "Expect:", "--max-time", str(timeout_s),
        "-F", f"file=@{path};type=text/plain;filename={filename}", url + "/",
    ]
    sampler = RssSampler(server_pid)
    sampler.start()
    started = time.perf_counter()
    proc = CHILDREN.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout_s + 30)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, grace=1.0)
        out, err = proc.communicate()
    finally:
        CHILDREN.done(proc)
        before, peak = sampler.finish()
    wall = time.perf_counter() - started
    try:
        code_text, total_text, sent_text = out.split()
        code, seconds, sent = int(code_text), float(total_text), int(float(sent_text))
    except ValueError:
        code, seconds, sent = 0, wall, 0
    ok = 200 <= code < 300 and proc.returncode == 0
    return {
        "requests": 1,
        "seconds": round(seconds, 3),
        "rps": 1.0 / seconds if ok and seconds > 0 else 0.0,
        "mbps": size / seconds / (1 << 20) if ok and seconds > 0 else 0.0,
        "p50_ms": seconds * 1000,
        "p90_ms": seconds * 1000,
        "p99_ms": seconds * 1000,
        "max_ms": seconds * 1000,
        "non2xx": 0 if ok else 1,
        "socket_errors": 0 if proc.returncode == 0 else 1,
        "http_status": code,
        "bytes_sent": sent,
        "payload_bytes": size,
        "rss_before_mb": before / (1 << 20),
        "rss_peak_mb": peak / (1 << 20),
        "rss_growth_mb": (peak - before) / (1 << 20),
        **({"curl_error": err.strip()[-300:]} if err.strip() else {}),
    }
