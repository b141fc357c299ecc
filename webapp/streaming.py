"""Large multipart uploads staged while their body is still arriving.

waitress reads a whole request body before it calls the app, and spools a
body larger than ``inbuf_overflow`` to a temp file.  For a multipart ``POST
/`` that means every byte is written twice and the app's work (parse, hash,
write, fsync) only starts once the last byte is in.  Here the server's
channel swaps waitress's spool for a :class:`StreamedUpload`: waitress's I/O
thread appends to it as usual, and blocks of the body go to a thread that
parses them into the store as they come, the writeback to disk starting on
the way (see :class:`~pastefile.core.StagingWriter`).  When the
request is complete the view takes the staged file part from
``wsgi.input`` and goes on as with any upload: fsync, commit, link.

A body arrives faster than the disk takes it: past ``HIGH_WATER`` bytes
queued, the channel stops reading that socket (TCP holds the client back)
until the thread has caught up.  A request that never reaches the view
(a client that hangs up, a tween that answers first) discards what was
staged.
"""
from __future__ import annotations

import queue
import threading
import weakref

from waitress.receiver import FixedStreamReceiver

from pastefile.core import InvalidRequest

from .multipart_upload import FORM_OVERHEAD, MultipartReceiver, MultipartUpload, boundary_from
from .server import UPLOAD_PATH, FramingChannel, FramingParser

BLOCK = 256 * 1024  # handed to the parsing thread in blocks of this size
HIGH_WATER = 8 * 1024 * 1024  # bytes queued before the socket is left unread
MAX_STREAMS = 64  # per process; past it, bodies are spooled by waitress as usual

_END = object()
_ABANDON = object()


class Abandoned(Exception):
    """The request went away before its upload was taken."""


class _Stream:
    """The parsing thread's side of one streamed upload.  It holds no
    reference to the :class:`StreamedUpload`, so a request dropped mid-body
    can be collected, and its finalizer tells the thread to give up."""

    def __init__(self, service, boundary: str, length: int, wake, release):
        self.service = service
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.queued = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.upload: MultipartUpload | None = None
        self.error: BaseException | None = None
        self._wake = wake  # wakes the I/O loop when the socket may be read again
        self._release = release
        threading.Thread(
            target=self._consume, args=(boundary, length), name="pastefile-stream", daemon=True
        ).start()

    def put(self, block: bytes) -> None:
        with self.lock:
            self.queued += len(block)
        self.queue.put(block)

    def _consume(self, boundary: str, length: int) -> None:
        try:
            with self.service.receive() as writer:
                receiver = MultipartReceiver(boundary, length, writer)
                while (block := self.queue.get()) is not _END:
                    if block is _ABANDON:
                        raise Abandoned()
                    self._dequeued(len(block))
                    if not receiver.closed:
                        receiver.feed(block)
                self.upload = receiver.finish()
        except BaseException as exc:  # noqa: BLE001 - handed to the view
            self.error = exc
        finally:
            self.done.set()
            self._release()
            self._drop_queue()
            self._resume()

    def _dequeued(self, n: int) -> None:
        with self.lock:
            was = self.queued > HIGH_WATER
            self.queued -= n
            resume = was and self.queued <= HIGH_WATER // 2
        if resume:
            self._resume()

    def _resume(self) -> None:
        try:
            self._wake()
        except OSError:
            pass  # the server is closing

    def _drop_queue(self) -> None:
        try:
            while True:
                self.queue.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            self.queued = 0


class StreamedUpload:
    """waitress's body buffer for one streamed upload, and its ``wsgi.input``.

    The I/O thread calls :meth:`append` (and ``__len__``); the request's
    task calls :meth:`getfile` once the body is complete, the view
    :meth:`result`, and waitress :meth:`close` when the request is done.
    """

    def __init__(self, service, boundary: str, length: int, wake, release):
        self._stream = _Stream(service, boundary, length, wake, release)
        # pieces as waitress received them, joined once per block: a growing
        # bytearray would be copied again at each of its resizes
        self._pieces: list[bytes] = []
        self._pending = 0
        self._size = 0
        self._taken = False
        # a request dropped mid-body is never closed by waitress
        self._finalizer = weakref.finalize(self, self._stream.queue.put, _ABANDON)

    # -- waitress's side (the I/O thread) --------------------------------
    def append(self, data: bytes) -> None:
        n = len(data)
        self._size += n
        if self._stream.done.is_set():
            return  # failed early: the rest of the body is read and dropped
        self._pieces.append(data)
        self._pending += n
        if self._pending >= BLOCK:
            self._push()

    def __len__(self) -> int:
        return self._size

    @property
    def backlogged(self) -> bool:
        return self._stream.queued > HIGH_WATER

    def getfile(self) -> "StreamedUpload":
        self._push()
        self._stream.queue.put(_END)
        return self

    def close(self) -> None:
        """waitress is done with the request: discard an upload the view
        did not take."""
        self._finalizer.detach()
        stream = self._stream
        if not self._taken:
            stream.queue.put(_ABANDON)
            stream.done.wait()
            if stream.upload is not None:
                stream.service.discard_upload(stream.upload.staged)
                stream.upload = None

    def _push(self) -> None:
        if self._pieces:
            block = b"".join(self._pieces)
            self._pieces, self._pending = [], 0
            self._stream.put(block)

    # -- the app's side --------------------------------------------------
    def result(self) -> MultipartUpload:
        """The staged file part and the fields, once the whole body is in;
        raises what the parse raised (``InvalidRequest``, too large ...).
        The caller owns the staged blob from here on."""
        stream = self._stream
        stream.done.wait()
        self._taken = True
        if stream.error is not None:
            raise stream.error
        return stream.upload

    def read(self, size: int = -1) -> bytes:
        raise OSError("this body was parsed while it arrived; take it with result()")


class _Streams:
    """How many uploads this process is streaming: one thread each."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self.lock = threading.Lock()

    def acquire(self) -> bool:
        with self.lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.active -= 1


def streaming_channel(service, threshold: int, limit: int = MAX_STREAMS) -> type[FramingChannel]:
    """A :class:`~pastefile.webapp.server.FramingChannel` class that streams
    multipart ``POST /`` bodies longer than ``threshold`` into ``service``'s
    store."""
    streams = _Streams(limit)
    largest = service.settings.max_upload_size + FORM_OVERHEAD

    class StreamingParser(FramingParser):
        def __init__(self, adj, wake=None):
            super().__init__(adj, service)
            self.wake = wake

        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if self.error is not None or not (
                self.command == "POST"
                and self.path == UPLOAD_PATH
                and not self.chunked
                and threshold < self.content_length <= largest
            ):
                return
            try:
                boundary = boundary_from(self.headers.get("CONTENT_TYPE", ""))
            except InvalidRequest:
                return  # not a form: the view says so
            if streams.acquire():
                body = StreamedUpload(service, boundary, self.content_length, self.wake, streams.release)
                self.body_rcv = FixedStreamReceiver(self.content_length, body)

    class StreamingChannel(FramingChannel):
        pastefile_service = service

        def parser_class(self, adj) -> StreamingParser:
            return StreamingParser(adj, wake=self.server.pull_trigger)

        def readable(self) -> bool:
            request = self.request
            if request is not None and request.body_rcv is not None:
                body = request.body_rcv.getbuf()
                if isinstance(body, StreamedUpload) and body.backlogged:
                    return False
            return super().readable()

    return StreamingChannel
