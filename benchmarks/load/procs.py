"""Processes of the load comparison: pserve servers in their own process
groups, memcached, process trees and their RSS read from /proc."""
from __future__ import annotations

import ctypes
import http.client
import os
from collections.abc import Callable
import signal
import subprocess
import time

from tests import servers as test_servers

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class HarnessError(RuntimeError):
    """Something the harness needs is missing or broke; the run stops."""


# -- /proc --------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, fields in test_servers.all_proc_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    if not alive(pid):
        return []
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def rss_bytes(pids) -> int:
    """Resident set size summed over ``pids`` (those that still exist)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree_rss(pid: int) -> int:
    return rss_bytes(process_tree(pid))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """User + system CPU time consumed so far by ``pids``."""
    ticks = 0
    for pid in pids:
        fields = test_servers.proc_stat(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU time a run costs: the server's process tree and, apart, the
    database and cache processes it talks to, per answered request; the
    kernel's share of the server's time (system calls, page copies, futex
    wake-ups); and how busy the whole machine was (1.0 = every core all the
    time), which tells a CPU-bound run from one that waits."""

    def __init__(self, server_pid: int, backing_pids: Callable[[], list[int]] = list):
        self.server_pid = server_pid
        self.backing_pids = backing_pids
        self.before = (self._times(process_tree(server_pid)), self._times(backing_pids()), system_cpu())

    @staticmethod
    def _times(pids) -> dict[int, tuple[int, int]]:
        """(user, system) clock ticks of each pid that still exists."""
        out = {}
        for pid in pids:
            fields = test_servers.proc_stat(pid)
            if fields is not None:
                out[pid] = (int(fields[11]), int(fields[12]))
        return out

    @staticmethod
    def _spent(before: dict, after: dict) -> tuple[float, float]:
        # a process born during the run (a database backend the pool opened,
        # a restarted worker) counts from zero
        user = sum(u - before.get(pid, (0, 0))[0] for pid, (u, _) in after.items())
        system = sum(s - before.get(pid, (0, 0))[1] for pid, (_, s) in after.items())
        return user / CLOCK_TICKS, system / CLOCK_TICKS

    def finish(self, requests: int) -> dict:
        server_after, backing_after = self._times(process_tree(self.server_pid)), self._times(self.backing_pids())
        busy, total = system_cpu()
        server_before, backing_before, (busy0, total0) = self.before
        user, system = self._spent(server_before, server_after)
        backing = sum(self._spent(backing_before, backing_after))
        per = 1000.0 / requests if requests else None
        return {
            "cpu_ms": None if per is None else (user + system) * per,
            "cpu_sys_share": system / (user + system) if user + system > 0 else None,
            "cpu_ms_backing": None if per is None or not backing_after else backing * per,
            # the tick counts are sampled apart: a saturated machine may read a hair over 1
            "machine_busy": min(1.0, (busy - busy0) / (total - total0)) if total > total0 else None,
        }


def wait_idle(pid: int, busy_share: float = 0.05, window: float = 0.25, timeout: float = 10.0) -> float:
    """Wait until the process tree of ``pid`` uses less than ``busy_share``
    of a core over ``window`` seconds (or ``timeout`` passes); returns the
    seconds waited."""
    started = time.monotonic()
    pids = process_tree(pid)
    before = cpu_seconds(pids)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        pids = process_tree(pid)
        now = cpu_seconds(pids)
        if now - before < busy_share * window:
            break
        before = now
    return time.monotonic() - started


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    fields = test_servers.proc_stat(pid)
    return fields is not None and fields[0] != b"Z"


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (zombies waiting for
    their parent to reap them do not count)."""
    return bool(test_servers.group_members(pgid))


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left after ``grace``."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(path: str, limit: int = 3000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


# -- servers ------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when the thread that started it
    ends, so not even a SIGKILLed harness leaves pserve servers behind.
    Start servers from the main thread only.  memcached loses this when it
    changes user (``-u nobody`` as root), and PostgreSQL is started by
    pg_ctl: after a SIGKILL those two stay up."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class PserveServer:
    """``pserve <ini>`` in a new session (its own process group)."""

    def __init__(self, name: str, ini_path: str, port: int, log_path: str, env: dict, cwd: str, pserve: str):
        self.name = name
        self.ini_path = ini_path
        self.port = port
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.pserve = pserve
        self.proc: subprocess.Popen | None = None
        self.seen_pids: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.pserve, self.ini_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True, preexec_fn=die_with_parent,
            )
        self.seen_pids.add(self.proc.pid)

    def wait_ready(self, path: str, timeout: float) -> None:
        """Until an HTTP GET of ``path`` answers below 500."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise HarnessError(f"{self.name} exited with code {code} before answering:\n{log_tail(self.log_path)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
                if status < 500:
                    self.remember_pids()
                    return
                last = f"HTTP {status}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise HarnessError(f"{self.name} not ready after {timeout:.0f}s ({last}):\n{log_tail(self.log_path)}")

    def tree(self) -> list[int]:
        return process_tree(self.pid) if self.proc is not None else []

    def remember_pids(self) -> None:
        self.seen_pids.update(self.tree())

    def stop(self) -> None:
        if self.proc is None:
            return
        self.remember_pids()
        kill_group(self.proc.pid)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # a worker that left the group would survive the group signal
        for pid in self.seen_pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class Memcached(test_servers.Memcached):
    """tests.servers.Memcached, started in a session of its own."""

    def __init__(self, log_path: str, memory_mb: int = 64):
        super().__init__(memory_mb)
        self.log_path = log_path

    def start(self) -> "Memcached":
        argv = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", str(self.memory_mb), "-t", "2"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)
        test_servers.wait_for_port(self.port, 15, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc.pid)
            self.proc.wait()
        self.proc = None


class PostgresCluster(test_servers.PostgresCluster):
    """tests.servers.PostgresCluster that also reports its server pids."""

    def postmaster_pid(self) -> int | None:
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def pids(self) -> list[int]:
        pid = self.postmaster_pid()
        return process_tree(pid) if pid else []

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)
