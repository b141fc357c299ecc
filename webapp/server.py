"""Several waitress processes on one listening socket (``workers = N``).

One Python process serves one core's worth of requests: the GIL lets a
single thread run Python at a time.  The app is stateless (the database
decides, the caches only remember), so N processes can share the listening
sockets, bound once here, and the kernel spreads connections among them.

``[server:main]`` in an ini file::

    use = egg:pastefile#main
    listen = 127.0.0.1:6543
    workers = 2
    threads = 16        # and any other waitress setting

The parent loads the app once (``pserve`` does), binds, forks the workers
and restarts one that dies; SIGTERM or SIGINT stops them all.  Each worker
drops the database and cache connections it inherited (see
``pastefile.core.service``) and opens its own.
"""
from __future__ import annotations

import logging
import mmap
import os
import signal
import socket
import sys
import time

import waitress
from waitress import wasyncore
from waitress.server import BaseWSGIServer

from .streaming import streaming_channel

log = logging.getLogger(__name__)

_ADDRESS_KEYS = ("listen", "host", "port", "unix_socket", "unix_socket_perms", "sockets")
RESTART_DELAY = 1.0
# a slot of a worker that is not running: never the least loaded
ABSENT = 1 << 62


def _listen_addresses(kw: dict) -> list[tuple[str, int]]:
    if kw.get("listen"):
        addresses = []
        for item in str(kw["listen"]).split():
            host, _, port = item.rpartition(":")
            addresses.append((host.strip("[]") or "0.0.0.0", int(port)))
        return addresses
    return [(kw.get("host") or "0.0.0.0", int(kw.get("port") or 8080))]


def bind_sockets(addresses: list[tuple[str, int]], backlog: int = 1024) -> list[socket.socket]:
    sockets = []
    for host, port in addresses:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def create_server(
    app, *, stream_uploads: bool = True, map: dict | None = None, balance: "Balance | None" = None, **kw
):
    """``waitress.create_server``, with large multipart uploads of a
    pastefile app staged while they arrive (:mod:`pastefile.webapp.streaming`),
    and, in a worker, connections balanced with the other workers."""
    socket_map = {} if map is None else map
    server = waitress.create_server(app, map=socket_map, **kw)
    service = getattr(getattr(app, "registry", None), "pastefile", None)
    listeners = [d for d in socket_map.values() if isinstance(d, BaseWSGIServer)]
    if stream_uploads and service is not None:
        channel = streaming_channel(service, server.adj.inbuf_overflow)
        for listener in listeners:
            listener.channel_class = channel
    if balance is not None:
        for listener in listeners:
            listener.readable = balance.gate(listener.readable, socket_map)
    return server


class Balance:
    """Open connections per worker, in memory shared by all of them.

    Workers accept from one listening socket; left to the kernel, whichever
    wakes first takes the connection, and a few keep-alive clients can all
    land on one worker while another idles (one GIL does all the work).
    A worker publishes its count at each turn of its loop and listens only
    while it has no more connections than the least loaded worker.  While
    it does not listen, its loop turns every ``RECHECK`` seconds, so it
    takes its turn again soon after the others have taken theirs.
    """

    RECHECK = 0.01

    def __init__(self, workers: int):
        self._memory = mmap.mmap(-1, 8 * workers)  # shared across fork
        self.counts = memoryview(self._memory).cast("q")
        self.slot = -1
        self.waiting = False
        for i in range(workers):
            self.counts[i] = ABSENT

    def refresh(self, socket_map: dict) -> bool:
        """Publish this worker's count; whether it should wait for the others."""
        # the map also holds the listeners and the trigger: the same number
        # in every worker
        mine = self.counts[self.slot] = len(socket_map)
        self.waiting = mine > min(self.counts)
        return self.waiting

    def gate(self, readable, socket_map: dict):
        def balanced_readable() -> bool:
            return readable() and not self.refresh(socket_map)

        return balanced_readable

    def run(self, server, socket_map: dict) -> None:
        """waitress's loop, turning sooner while this worker does not listen."""
        poll = wasyncore.poll2 if server.adj.asyncore_use_poll else wasyncore.poll
        timeout = server.adj.asyncore_loop_timeout
        try:
            while socket_map:
                poll(self.RECHECK if self.refresh(socket_map) else timeout, socket_map)
        except (SystemExit, KeyboardInterrupt):
            server.task_dispatcher.shutdown()


def run_waitress(app, *, quiet: bool = False, balance: "Balance | None" = None, **kw) -> None:
    if not quiet:
        logging.basicConfig()
    socket_map: dict = {}
    server = create_server(app, map=socket_map, balance=balance, **kw)
    if not quiet:
        server.print_listen("Serving on http://{}:{}")
    if balance is None:
        server.run()
    else:
        balance.run(server, socket_map)


def serve(app, *, workers: int = 1, **kw) -> None:
    """Serve ``app`` with waitress in ``workers`` processes (1: this one)."""
    if workers <= 1:
        run_waitress(app, **kw)
        return
    backlog = int(kw.get("backlog", 1024))
    sockets = bind_sockets(_listen_addresses(kw), backlog)
    options = {k: v for k, v in kw.items() if k not in _ADDRESS_KEYS}
    for sock in sockets:
        name = sock.getsockname()
        print(f"Serving on http://{name[0]}:{name[1]} with {workers} workers", flush=True)
    Supervisor(app, sockets, options, workers).run()


class Supervisor:
    def __init__(self, app, sockets, options: dict, workers: int):
        self.app = app
        self.sockets = sockets
        self.options = options
        self.workers = workers
        self.children: dict[int, int] = {}  # pid: its slot in the balance
        self.balance = Balance(workers)
        self.stopping = False

    def _spawn(self, slot: int) -> None:
        self.balance.counts[slot] = 0
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                self.balance.slot = slot
                run_waitress(self.app, sockets=self.sockets, quiet=True, balance=self.balance, **self.options)
            except BaseException:  # noqa: BLE001 - report, then leave without running the parent's cleanup
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = slot

    def _stop(self, signum, _frame) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self.children.pop(pid, None)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in range(self.workers):
            self._spawn(slot)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            self.balance.counts[slot] = ABSENT  # the others take its share meanwhile
            if not self.stopping:
                log.error("worker %d exited (status %d); starting another", pid, status)
                time.sleep(RESTART_DELAY)
                if not self.stopping:
                    self._spawn(slot)
        for sock in self.sockets:
            sock.close()


def serve_paste(app, global_conf=None, **kw) -> int:
    """``paste.server_runner`` ``egg:pastefile#main``: waitress's settings plus
    ``workers`` and ``stream_uploads`` (default true)."""
    workers = int(kw.pop("workers", 1))
    stream = str(kw.pop("stream_uploads", "true")).strip().lower() not in ("false", "0", "no", "off")
    serve(app, workers=workers, stream_uploads=stream, **kw)
    return 0
