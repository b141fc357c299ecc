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

Every connection, streamed uploads or not, is read by a :class:`FramingChannel`:
waitress's parser with the framing rules of RFC 9112 it leaves out (see
:class:`FramingParser`).
"""
from __future__ import annotations

import logging
import mmap
import os
import re
import signal
import socket
import sys
import time

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError, TransferEncodingNotImplemented
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask
from waitress.utilities import RequestEntityTooLarge

from pastefile.core import TooLarge
from pastefile.core.urls import UPLOAD

from . import metrics
from .multipart_upload import FORM_OVERHEAD

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


# -- request framing (RFC 9112) ----------------------------------------------

UPLOAD_PATH = UPLOAD  # POST here: a multipart upload (the "home" route)
PUT_PATH = re.compile(r"/[^/]+")  # PUT here: a raw upload (the "put" route, /{filename})
# the fields a front end frames or routes a request by: they must read the
# same to it and to waitress
FRAMING_FIELDS = (b"transfer-encoding", b"content-length", b"host")


def app_path(path: str, url_prefix: str = "") -> str:
    """The ``PATH_INFO`` waitress's task hands the app for ``path``."""
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    if url_prefix:
        if path == url_prefix:
            return ""
        if path.startswith(url_prefix + "/"):
            return path[len(url_prefix) :]
    return path


def _since_1_1(version: str) -> bool:
    """Whether an HTTP version ("1.0", "1.1", "" for none) is 1.1 or later."""
    major, _, minor = version.partition(".")
    return bool(version) and (int(major), int(minor or 0)) >= (1, 1)


def field_names(header_plus: bytes) -> tuple[list[bytes], set[bytes]]:
    """The lower-case names of the header fields after the request line, in
    order, and the names of those continued on an obs-fold line.  "_" reads
    as "-": waitress drops such a field, a front end may not."""
    names: list[bytes] = []
    folded: set[bytes] = set()
    for line in header_plus.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            if names:
                folded.add(names[-1])
        elif line:
            names.append(line.split(b":", 1)[0].strip().lower().replace(b"_", b"-"))
    return names, folded


class FramingParser(HTTPRequestParser):
    """waitress's request parser, plus the framing rules of RFC 9112 it leaves out.

    waitress frames a request with both ``Content-Length`` and
    ``Transfer-Encoding: chunked`` by the chunks (however the coding is
    spelled: folded, tab-padded) and an HTTP/1.0 one by ``Content-Length``
    whatever its ``Transfer-Encoding``; a front end that reads the other
    header passes a request hidden in the body on to it (§6.1, §6.3).  Such
    requests, obs-folded framing fields and an HTTP/1.1 request without
    exactly one ``Host`` (§3.2; waitress joins two into one value that links
    are then built from) are answered 400.  Every error answer closes the
    connection; what followed the bad request is dropped, never parsed as
    a request.

    A request expecting ``100 Continue`` whose declared length is over
    waitress's ``max_request_body_size``, or over ``service``'s upload limit
    by the views' own rule, gets its 413 at once instead of an invitation to
    send a body that would be refused (waitress would then never answer a
    request over its own limit).
    """

    def __init__(self, adj, service=None):
        super().__init__(adj)
        self.pastefile_service = service

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        if self.completed and self.error is not None:
            # waitress would still send 100 Continue, and mark the request
            # incomplete again to wait for its body
            self.expect_continue = False
            # the error answer closes the connection: say so alone (waitress
            # adds "Keep-Alive" beside "close" for an HTTP/1.0 keep-alive
            # request), and what follows is not a request (it may be the one
            # smuggled in a body)
            self.headers["CONNECTION"] = "close"
            self.connection_close = True
            return len(data)
        return consumed

    def parse_header(self, header_plus: bytes) -> None:
        try:
            super().parse_header(header_plus)
        except TransferEncodingNotImplemented:
            self.check_framing(header_plus)  # with a Content-Length: 400, not 501
            raise
        self.check_framing(header_plus)
        if self.expect_continue and self.content_length > 0:
            refusal = self.declared_too_large()
            if refusal is not None:
                self.error = RequestEntityTooLarge(refusal)
                self.completed = True

    def check_framing(self, header_plus: bytes) -> None:
        """Raise ``ParsingError`` (a 400) for a request whose framing or host
        a front end might read otherwise."""
        names, folded = field_names(header_plus)
        for name in FRAMING_FIELDS:
            if name in folded:
                raise ParsingError(f"{name.decode()} continued on an obs-fold line")
        since_1_1 = _since_1_1(self.version)
        if b"transfer-encoding" in names:
            if b"content-length" in names:
                raise ParsingError("both Content-Length and Transfer-Encoding")
            if not since_1_1:
                raise ParsingError("Transfer-Encoding in an HTTP/1.0 request")
        hosts = names.count(b"host")
        if hosts > 1:
            raise ParsingError("more than one Host")
        if hosts == 0 and since_1_1:
            raise ParsingError("no Host in an HTTP/1.1 request")

    def declared_too_large(self) -> str | None:
        """Why the upload view would refuse this request by its declared
        length alone; None when it would not (or is not an upload)."""
        service = self.pastefile_service
        if service is None:
            return None
        path = app_path(self.path, self.adj.url_prefix)
        if self.command == "POST" and path == UPLOAD_PATH:
            overhead = FORM_OVERHEAD
        elif self.command == "PUT" and PUT_PATH.fullmatch(path):
            overhead = 0
        else:
            return None
        try:
            service.check_declared_size(self.content_length, overhead)
        except TooLarge as exc:
            return str(exc)
        return None


class KeepAliveTask(WSGITask):
    """waitress's task, except that an HTTP/1.1 response that has no body
    (204, 304) keeps its connection: waitress closes every response sent
    without a Content-Length, though these need none to end (RFC 9112), and
    a tus client's PATCHes (each answered 204) would each pay for a new
    connection, and a cut-off body on a kept-alive connection would be lost
    with it."""

    _bodyless = False

    def build_response_header(self):
        self._bodyless = (
            self.version == "1.1" and not self.has_body and not self.close_on_finish
            and self.request.headers.get("CONNECTION", "").lower() != "close"
        )
        try:
            return super().build_response_header()
        finally:
            self._bodyless = False

    def set_close_on_finish(self) -> None:
        if self._bodyless:
            return  # only the missing Content-Length asked for it
        super().set_close_on_finish()


class FramingChannel(HTTPChannel):
    """waitress's channel, reading every request with a :class:`FramingParser`."""

    task_class = KeepAliveTask

    # whose upload limit applies to requests expecting 100 Continue (not
    # ``service``: that is the method waitress's task thread calls)
    pastefile_service = None
    framing_lost = False  # a refused request is queued: read nothing more

    def parser_class(self, adj) -> FramingParser:
        # waitress makes each request's parser with ``self.parser_class(adj)``
        return FramingParser(adj, self.pastefile_service)

    def received(self, data: bytes) -> bool:
        if self.framing_lost:
            return False
        result = super().received(data)
        with self.requests_lock:
            # the error answer closes the connection; until then (with
            # channel_request_lookahead) nothing more is read as requests
            if self.requests and self.requests[-1].error is not None:
                self.framing_lost = True
        return result

    def readable(self) -> bool:
        return not self.framing_lost and super().readable()


def framing_channel(service=None) -> type[FramingChannel]:
    """A :class:`FramingChannel` class held to ``service``'s upload limit."""
    return type("FramingChannel", (FramingChannel,), {"pastefile_service": service})


def create_server(
    app, *, stream_uploads: bool = True, map: dict | None = None, balance: "Balance | None" = None, **kw
):
    """``waitress.create_server`` reading requests with a :class:`FramingChannel`,
    with large multipart uploads of a pastefile app staged while they arrive
    (:mod:`pastefile.webapp.streaming`), and, in a worker, connections
    balanced with the other workers."""
    socket_map = {} if map is None else map
    server = waitress.create_server(app, map=socket_map, **kw)
    service = getattr(getattr(app, "registry", None), "pastefile", None)
    listeners = [d for d in socket_map.values() if isinstance(d, BaseWSGIServer)]
    if stream_uploads and service is not None:
        from .streaming import streaming_channel  # it builds on this module's classes

        channel = streaming_channel(service, server.adj.inbuf_overflow)
    else:
        channel = framing_channel(service)
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
            metrics.worker_exited(pid)  # its counts stay in the totals
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
