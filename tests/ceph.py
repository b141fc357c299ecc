"""A throwaway one-node Ceph cluster with a RADOS Gateway (S3) for the tests.

One ceph-mon (msgr v1 on a free loopback port), one ceph-osd on memstore
(objects live in RAM, capped by ``memory_bytes``) and radosgw with the beast
frontend on another free loopback port; no ceph-mgr and no cephx.  Everything
lives in one temporary directory, the daemons run in the foreground as child
processes of this one, each in a process group of its own, with their logs in
that directory.  They are stopped with SIGKILL (radosgw can hang for minutes on
SIGTERM once the mon and osd are gone), on ``stop()``, at interpreter exit
(``atexit``) and, through ``PR_SET_PDEATHSIG``, when this process dies without
running either (SIGKILL of the test run).

Needs the Debian packages ``radosgw ceph-mon ceph-osd`` (``make deps``); a
cluster that cannot start raises ServerError with the tails of its logs: tests
fail, they never skip.

Start-up takes about 0.8-1.2 s on a 2-core machine, up to ~2 s under load
(``start_seconds``); idle, the three daemons take about 130 MB RSS.

    with CephRGW() as rgw:
        s3 = rgw.client()          # boto3, path-style, checksums when required
        s3.create_bucket(Bucket="bucket")

``python -m tests.ceph`` runs one in the foreground until Ctrl-C.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from tests.servers import ServerError, free_port, proc_stat, wait_for_port

BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "monmaptool", "ceph", "radosgw-admin")
PR_SET_PDEATHSIG = 1
DIR_PREFIX = "pastefile-ceph-"

# every started gateway, stopped at interpreter exit if nobody else did
_running: set["CephRGW"] = set()


@atexit.register
def _stop_all() -> None:
    for rgw in list(_running):
        rgw.stop()


def _owner_id(pid: int) -> str | None:
    """"PID STARTTIME" of a live process (the start time tells a reused PID apart)."""
    fields = proc_stat(pid)
    return None if fields is None else f"{pid} {fields[19].decode()}"


def remove_stale_dirs(prefix: str = DIR_PREFIX) -> None:
    """Remove the temp directories named ``prefix*`` of servers whose Python
    process died without cleaning up (SIGKILL); the servers died with it
    (PR_SET_PDEATHSIG)."""
    base = tempfile.gettempdir()
    for entry in os.listdir(base):
        if not entry.startswith(prefix):
            continue
        path = os.path.join(base, entry)
        try:
            with open(os.path.join(path, "owner")) as f:
                owner = f.read().strip()
        except OSError:
            continue
        pid = owner.split()[0] if owner else ""
        if not pid.isdigit() or _owner_id(int(pid)) != owner:
            shutil.rmtree(path, ignore_errors=True)


def _die_with_parent(parent_pid: int):
    """A ``preexec_fn``: the child gets SIGKILL when its parent exits.

    Linux sends the signal when the *thread* that forked the child ends, so
    start a CephRGW from a thread that lives as long as the gateway should
    (the main thread, as pytest fixtures do)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # the parent may have died between fork and prctl
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


class CephRGW:
    """A one-node Ceph cluster serving S3 on ``endpoint_url``.

    ``access_key``/``secret_key`` belong to an S3 user (``user_id``) created at
    start.  ``memory_bytes`` caps memstore (the OSD's data, kept in RAM);
    ``lc_debug_interval`` is the length in seconds of a lifecycle "day"
    (``rgw lc debug interval``), ``None`` for real days.
    """

    access_key = "PASTEFILETESTACCESS1"
    secret_key = "pastefile-test-secret-key-0123456789abcdef"
    user_id = "pastefile"

    def __init__(self, memory_bytes: int = 1 << 30, lc_debug_interval: int | None = 10, timeout: float = 60.0):
        missing = [b for b in BINARIES if shutil.which(b) is None]
        if missing:
            raise ServerError(f"Ceph binaries not found: {' '.join(missing)} (install radosgw ceph-mon ceph-osd)")
        self.memory_bytes = memory_bytes
        self.lc_debug_interval = lc_debug_interval
        self.timeout = timeout
        self.root: str | None = None
        self._pick_ports()
        self.procs: dict[str, subprocess.Popen] = {}
        self.start_seconds: float | None = None

    def _pick_ports(self) -> None:
        self.mon_port = free_port()
        self.port = free_port()
        while self.port == self.mon_port:
            self.port = free_port()
        self.fsid = str(uuid.uuid4())

    # -- paths and configuration ------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf(self) -> str:
        return os.path.join(self.root, "ceph.conf")

    def log_path(self, name: str) -> str:
        return os.path.join(self.root, "log", f"{name}.log")

    def _write_conf(self) -> None:
        r = self.root
        lc = f"rgw lc debug interval = {self.lc_debug_interval}\n" if self.lc_debug_interval else ""
        text = f"""\
[global]
fsid = {self.fsid}
mon host = v1:127.0.0.1:{self.mon_port}
mon initial members = a
ms bind msgr2 = false
ms bind ipv6 = false
# a port taken by someone else fails at once (start() retries on others)
ms bind retry count = 1
ms bind retry delay = 1
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = {r}/keyring
run dir = {r}/run
admin socket = {r}/run/$name.asok
pid file = {r}/run/$name.pid
crash dir = {r}/crash
log file = {r}/log/$name.log
mon cluster log file = {r}/log/cluster.log
log to stderr = false
err to stderr = true
log to syslog = false
debug ms = 0
# one OSD holds every replica
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# a fresh monitor decides within milliseconds, not after paxos batching
paxos propose interval = 0.01
paxos min wait = 0.01
mon osd full ratio = 0.99
mon osd nearfull ratio = 0.97
mon osd backfillfull ratio = 0.98
osd failsafe full ratio = 0.995

[mon]
mon data = {r}/mon.$id

[osd]
osd data = {r}/osd.$id
osd objectstore = memstore
memstore device bytes = {self.memory_bytes}
osd crush update on start = false
osd class update on start = false
osd op num shards = 2
osd op num threads per shard = 1
osd max object size = 134217728

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port}
rgw data = {r}/rgw
rgw thread pool size = 32
rgw enable usage log = false
rgw enable ops log = false
rgw dns name = 127.0.0.1
rgw lifecycle work time = 00:00-23:59
{lc}"""
        with open(self.conf, "w") as f:
            f.write(text)

    # -- processes ----------------------------------------------------------------

    def _tail(self, *names: str, lines: int = 25) -> str:
        out = []
        for name in names:
            for path in (self.log_path(name), os.path.join(self.root or "", "log", f"{name}.stderr")):
                try:
                    with open(path, errors="replace") as f:
                        tail = f.read().splitlines()[-lines:]
                except OSError:
                    continue
                if tail:
                    out.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    def _run(self, *argv: str, timeout: float = 60.0, logs: tuple[str, ...] = ()) -> str:
        """Run a command to completion and return its stdout; a daemon that
        dies meanwhile ends it at once (a ``ceph`` command would otherwise
        wait for a monitor that is gone)."""
        argv = (argv[0], "--conf", self.conf, *argv[1:])
        command = " ".join(argv)
        log_dir = os.path.join(self.root, "log")
        with tempfile.TemporaryFile("w+", dir=log_dir) as out, tempfile.TemporaryFile("w+", dir=log_dir) as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.root,
                preexec_fn=_die_with_parent(os.getpid()),
            )
            deadline = time.monotonic() + timeout
            while True:
                try:
                    proc.wait(0.02)
                    break
                except subprocess.TimeoutExpired:
                    pass
                dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
                if dead or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    if dead:
                        codes = ", ".join(f"{name} with code {code}" for name, code in dead.items())
                        raise ServerError(f"{codes} exited while {command} ran\n{self._tail(*dead, *logs)}")
                    raise ServerError(f"{command} timed out after {timeout}s\n{self._tail(*logs)}")
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if proc.returncode != 0:
            raise ServerError(f"{command} failed ({proc.returncode}):\n{stdout}\n{stderr}\n{self._tail(*logs)}")
        return stdout

    def _spawn(self, name: str, *argv: str) -> subprocess.Popen:
        argv = (argv[0], "-f", "--conf", self.conf, *argv[1:])
        with open(os.path.join(self.root, "log", f"{name}.stderr"), "ab") as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.root,
                process_group=0, preexec_fn=_die_with_parent(os.getpid()),
            )
        self.procs[name] = proc
        return proc

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ServerError(f"{name} exited with code {proc.returncode}\n{self._tail(name)}")

    # -- life cycle -----------------------------------------------------------------

    def start(self, attempts: int = 3) -> "CephRGW":
        """Bootstrap the cluster and wait until S3 answers; a port taken by
        someone else between ``free_port()`` and the bind means another try
        on fresh ports (up to ``attempts``)."""
        if self.root is not None:
            raise ServerError("this CephRGW was started already")
        t0 = time.monotonic()
        remove_stale_dirs()
        for attempt in range(1, attempts + 1):
            self.root = tempfile.mkdtemp(prefix=DIR_PREFIX)
            _running.add(self)
            with open(os.path.join(self.root, "owner"), "w") as f:
                f.write(_owner_id(os.getpid()))
            try:
                self._bootstrap()
                break
            except ServerError as e:
                self.stop()
                if attempt == attempts or "Address already in use" not in str(e):
                    raise
                self._pick_ports()
            except BaseException:
                self.stop()
                raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _bootstrap(self) -> None:
        r = self.root
        for d in ("log", "run", "crash", "rgw", "mon.a", "osd.0"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        self._write_conf()
        monmap = os.path.join(r, "monmap")
        self._run("monmaptool", "--create", "--fsid", self.fsid, "--addv", "a", f"[v1:127.0.0.1:{self.mon_port}]", monmap)
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, logs=("mon.a",))
        self._spawn("mon.a", "ceph-mon", "-i", "a")
        try:
            wait_for_port(self.mon_port, 20, self.procs["mon.a"])
        except ServerError as e:
            raise ServerError(f"ceph-mon: {e}\n{self._tail('mon.a')}") from e

        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "osd", "new", osd_uuid, logs=("mon.a",)).strip()
        if osd_id != "0":
            raise ServerError(f"ceph osd new gave id {osd_id!r}, expected 0")
        self._run("ceph", "osd", "crush", "add", "osd.0", "1.0", "root=default", logs=("mon.a",))
        self._run("ceph-osd", "--mkfs", "-i", "0", "--osd-uuid", osd_uuid, logs=("osd.0",))
        self._spawn("osd.0", "ceph-osd", "-i", "0")
        self._spawn("client.rgw", "radosgw", "-n", "client.rgw")

        self._run(
            "radosgw-admin", "user", "create", f"--uid={self.user_id}", "--display-name=pastefile tests",
            f"--access-key={self.access_key}", f"--secret-key={self.secret_key}",
            timeout=self.timeout, logs=("mon.a", "osd.0"),
        )
        self._wait_ready()

    def client(self, **config):
        """A boto3 S3 client for this gateway: path-style addressing and
        checksums only when an operation requires them (newer botocore would
        otherwise send trailing CRC checksums)."""
        import boto3
        from botocore.config import Config

        options = dict(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        try:
            Config(request_checksum_calculation="when_required")
            options.update(request_checksum_calculation="when_required", response_checksum_validation="when_required")
        except TypeError:  # botocore before 1.36 has neither option
            pass
        options.update(config)
        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(**options),
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        s3 = self.client(connect_timeout=1, read_timeout=5)
        last: Exception | None = None
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    s3.list_buckets()
                    return
                except Exception as e:  # connection refused, 503 while pools are created, ...
                    last = e
                    time.sleep(0.1)
        finally:
            s3.close()
        raise ServerError(
            f"radosgw on {self.endpoint_url} not ready after {self.timeout}s: {last!r}\n"
            + self._tail("client.rgw", "osd.0", "mon.a")
        )

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items() if proc.poll() is None}

    def stop(self) -> None:
        """SIGKILL every daemon and remove the directory; idempotent."""
        procs, self.procs = self.procs, {}
        for proc in procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        _running.discard(self)

    def __enter__(self) -> "CephRGW":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    rgw = CephRGW()
    rgw.start()
    try:
        print(f"endpoint_url {rgw.endpoint_url}")
        print(f"access_key   {rgw.access_key}")
        print(f"secret_key   {rgw.secret_key}")
        print(f"directory    {rgw.root}")
        print(f"started in {rgw.start_seconds:.1f}s; Ctrl-C stops it", flush=True)
        while True:
            rgw._check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        rgw.stop()


if __name__ == "__main__":
    main()
