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

from pastefile.core import InvalidRequest, PasteFileError

from .multipart_upload import FORM_OVERHEAD, MultipartReceiver, MultipartUpload, boundary_from
from .server import UPLOAD_PATH, FramingChannel, FramingParser
from .tus import patch_arguments, tus_upload_id

BLOCK = 256 * 1024  # handed to the parsing thread in blocks of this size
HIGH_WATER = 8 * 1024 * 1024  # bytes queued before the socket is left unread
MAX_STREAMS = 64  # per process; past it, bodies are spooled by waitress as usual

_END = object()
_ABANDON = object()


class Abandoned(Exception):
    """The request went away before its upload was taken."""


class _Stream:
    """The consuming thread's side of one streamed body.  It holds no
    reference to the body buffer, so a request dropped mid-body can be
    collected, and the buffer's finalizer tells the thread the body ended."""

    def __init__(self, consume, wake, release, abandon_ends: bool = False):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.queued = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        # a body cut off ends its blocks (what came is kept) or fails them
        self.abandon_ends = abandon_ends
        self._wake = wake  # wakes the I/O loop when the socket may be read again
        self._release = release
        threading.Thread(target=self._consume, args=(consume,), name="pastefile-stream", daemon=True).start()

    def put(self, block: bytes) -> None:
        with self.lock:
            self.queued += len(block)
        self.queue.put(block)

    def _blocks(self):
        while (block := self.queue.get()) is not _END:
            if block is _ABANDON:
                if self.abandon_ends:
                    return
                raise Abandoned()
            self._dequeued(len(block))
            yield block

    def _consume(self, consume) -> None:
        try:
            self.result = consume(self._blocks())
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


def _parse_multipart(service, boundary: str, length: int):
    def consume(blocks) -> MultipartUpload:
        with service.receive() as writer:
            receiver = MultipartReceiver(boundary, length, writer)
            for block in blocks:
                if not receiver.closed:
                    receiver.feed(block)
            return receiver.finish()

    return consume


def _cut_off(stream: _Stream, pieces: list[bytes]) -> None:
    if pieces:
        stream.put(b"".join(pieces))
        pieces.clear()
    stream.queue.put(_ABANDON)


class StreamedBody:
    """waitress's body buffer for one streamed request, and its ``wsgi.input``.

    The I/O thread calls :meth:`append` (and ``__len__``); the request's
    task calls :meth:`getfile` once the body is complete, the view
    :meth:`result`, and waitress :meth:`close` when the request is done.
    """

    def __init__(self, stream: _Stream):
        self._stream = stream
        # pieces as waitress received them, joined once per block: a growing
        # bytearray would be copied again at each of its resizes
        self._pieces: list[bytes] = []
        self._pending = 0
        self._size = 0
        self._taken = False
        # a request dropped mid-body is never closed by waitress: what came
        # of it goes to the thread, then word that it ended
        self._finalizer = weakref.finalize(self, _cut_off, self._stream, self._pieces)

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

    def getfile(self) -> "StreamedBody":
        self._push()
        self._finalizer.detach()  # complete: nothing to cut off any more
        self._stream.queue.put(_END)
        return self

    def abandon(self) -> None:
        """The connection closed before the body was complete: the thread
        gets what came and word that it ended, now rather than at the next
        garbage collection (the I/O thread does not wait for it)."""
        self._end()

    def _end(self) -> None:
        # once: from the channel's close, waitress's close, or the finalizer
        if self._finalizer.detach() is not None:
            _cut_off(self._stream, self._pieces)

    def close(self) -> None:
        """waitress is done with the request: a result the view did not take
        is the subclass's to settle."""
        if not self._taken:
            self._end()
            self._stream.done.wait()
            self._untaken(self._stream)

    def _untaken(self, stream: _Stream) -> None:
        pass

    def _push(self) -> None:
        if self._pieces:
            block = b"".join(self._pieces)
            self._pieces.clear()  # the same list: the finalizer holds it
            self._pending = 0
            self._stream.put(block)

    # -- the app's side --------------------------------------------------
    def result(self):
        """What the consuming thread made of the whole body; raises what it raised."""
        stream = self._stream
        stream.done.wait()
        self._taken = True
        if stream.error is not None:
            raise stream.error
        return stream.result

    def read(self, size: int = -1) -> bytes:
        raise OSError("this body was consumed while it arrived; take it with result()")


class StreamedUpload(StreamedBody):
    """A multipart ``POST /`` parsed into the store while it arrives; the
    view takes the staged file part and the fields with :meth:`result` (and
    owns the staged blob from there); one not taken is discarded."""

    def __init__(self, service, boundary: str, length: int, wake, release):
        self.service = service
        super().__init__(_Stream(_parse_multipart(service, boundary, length), wake, release))

    def _untaken(self, stream: _Stream) -> None:
        if stream.result is not None:
            self.service.discard_upload(stream.result.staged)
            stream.result = None


class StreamedPatch(StreamedBody):
    """A tus ``PATCH`` appended to its upload while it arrives: a body cut
    off keeps what came (its blocks end early, then the offset is saved)."""

    def __init__(self, service, upload_id: str, offset: int, length: int | None, checksum, wake, release):
        def consume(blocks):
            return service.tus_append(upload_id, offset, blocks, length=length, checksum=checksum)

        super().__init__(_Stream(consume, wake, release, abandon_ends=True))


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
            if self.error is None and self.command == "PATCH" and not self.chunked and self.content_length:
                self._stream_patch()
                return
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

        def _stream_patch(self) -> None:
            """A tus PATCH whose headers are in order is appended while it
            arrives; anything else is left to the view (which answers it)."""
            upload_id = tus_upload_id(self.path)
            if upload_id is None:
                return
            headers = self.headers
            try:
                offset, length, checksum = patch_arguments(lambda name: headers.get(name.upper().replace("-", "_")))
            except PasteFileError:
                return
            if streams.acquire():
                body = StreamedPatch(service, upload_id, offset, length, checksum, self.wake, streams.release)
                self.body_rcv = FixedStreamReceiver(self.content_length, body)

    class StreamingChannel(FramingChannel):
        pastefile_service = service

        def parser_class(self, adj) -> StreamingParser:
            return StreamingParser(adj, wake=self.server.pull_trigger)

        def handle_close(self) -> None:
            request = self.request  # a request still arriving when the peer went
            if request is not None and request.body_rcv is not None:
                body = request.body_rcv.getbuf()
                if isinstance(body, StreamedBody):
                    body.abandon()
            super().handle_close()

        def readable(self) -> bool:
            request = self.request
            if request is not None and request.body_rcv is not None:
                body = request.body_rcv.getbuf()
                if isinstance(body, StreamedBody) and body.backlogged:
                    return False
            return super().readable()

    return StreamingChannel
