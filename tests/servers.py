"""Throwaway PostgreSQL and memcached servers on free loopback ports.

PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` system user (through ``runuser``) in a directory it owns.
A server that cannot start raises: tests fail, they never skip.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"server exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# -- /proc --------------------------------------------------------------------


def proc_stat(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid,
    pgrp, ...), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces
    return stat[stat.rindex(b")") + 2 :].split()


def all_proc_stats():
    """(pid, stat fields) of every process there is now."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := proc_stat(entry)) is not None:
            yield int(entry), fields


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    return [pid for pid, fields in all_proc_stats() if int(fields[2]) == pgid and fields[0] != b"Z"]


def children(pid: int) -> set[int]:
    """The direct children of ``pid`` (none once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def _pg_bindir() -> str:
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found and os.path.exists(os.path.join(os.path.dirname(os.path.realpath(found)), "postgres")):
            return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[-3]))
    if not candidates:
        raise ServerError("PostgreSQL server binaries not found (install the postgresql package)")
    return os.path.dirname(candidates[-1])


class PostgresCluster:
    user = "pastefile"

    def __init__(self, fsync: bool = False):
        """``fsync=True`` runs with fsync, synchronous_commit and full_page_writes
        on, as a production server would; the default trades durability for speed."""
        self.fsync = fsync
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="pastefile-pg-")
        self.datadir = os.path.join(self.root, "data")
        self.socketdir = self.root
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chmod(self.root, 0o700)
        self.log = os.path.join(self.root, "server.log")

    def _run(self, *cmd: str) -> None:
        argv = [os.path.join(self.bindir, cmd[0]), *cmd[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log) as f:
                    log = f.read()[-2000:]
            raise ServerError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}\n{log}")

    def start(self) -> "PostgresCluster":
        self._run("initdb", "-D", self.datadir, "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start_server()
        return self

    def _server_options(self) -> str:
        durability = "on" if self.fsync else "off"
        return (
            f"-p {self.port} -k {self.socketdir} -c listen_addresses=127.0.0.1 "
            f"-c fsync={durability} -c synchronous_commit={durability} -c full_page_writes={durability} "
            "-c max_connections=200"
        )

    def start_server(self) -> None:
        """Start the server of the existing cluster (again), on the same port."""
        self._run("pg_ctl", "-D", self.datadir, "-l", self.log, "-o", self._server_options(), "-w", "-t", "60", "start")
        wait_for_port(self.port)

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server and keep the cluster (``pg_ctl stop -m mode``):
        ``fast`` ends every session, ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast", down: float = 0.0) -> None:
        """Stop, stay down for ``down`` seconds, start on the same port."""
        self.stop_server(mode)
        time.sleep(down)
        self.start_server()

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class Memcached:
    def __init__(self, memory_mb: int = 64):
        binary = shutil.which("memcached") or "/usr/bin/memcached"
        if not os.path.exists(binary):
            raise ServerError("memcached not found (install the memcached package)")
        self.binary = binary
        self.memory_mb = memory_mb
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Memcached":
        argv = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", str(self.memory_mb), "-t", "2"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, 15, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; ``restart()`` brings it back on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> "Memcached":
        """Start again on the same port (empty, as a restarted memcached is)."""
        self.kill()
        return self.start()

    def stats(self) -> dict[str, str]:
        """The node's ``stats`` (get_hits, curr_items, ...) as strings."""
        out = {}
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        for line in data.decode().splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = parts[2]
        return out

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"flush_all\r\n")
            s.recv(64)


class LiveServer:
    """A WSGI app served by waitress on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app, threads: int = 4, **kw):
        from pastefile.webapp.server import create_server

        self._map: dict = {}
        self.server = create_server(app, map=self._map, host="127.0.0.1", port=0, threads=threads, **kw)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="pastefile-live-server", daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        from waitress import wasyncore

        # close every channel from inside the server loop so that the loop
        # sees an empty map and returns, then stop the worker threads
        try:
            self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self._map, ignore_all=True))
        except OSError:
            # the trigger is closed already: the loop has ended (or is ending)
            # on its own; whatever is left in the map is closed from here
            self.thread.join(timeout=10)
            wasyncore.close_all(self._map, ignore_all=True)
        self.thread.join(timeout=10)
        self.server.task_dispatcher.shutdown(timeout=5)
        if self.thread.is_alive():
            raise ServerError("the live server thread did not stop")
