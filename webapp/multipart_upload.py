"""Streaming ``multipart/form-data`` uploads.

The body is parsed as it arrives (``multipart.PushMultipartParser``) and the
``file`` part goes straight into a staged blob, hashed on the way: no second
temp file as with a buffering form parser.  Small text fields (``w``, ``h``)
may come before or after the file.

:class:`MultipartReceiver` is fed chunks; :func:`receive_multipart` pulls
them from a file object.  The server's streaming receiver
(:mod:`pastefile.webapp.streaming`) feeds one while the body is still on the
wire.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from multipart import MultipartError, PushMultipartParser, parse_options_header

from pastefile.core import InvalidRequest, StagedBlob, StagingWriter

READ_SIZE = 256 * 1024
MAX_FIELD_SIZE = 1024
MAX_PARTS = 16
FILE_FIELD = "file"
# multipart framing allowed around the file itself
FORM_OVERHEAD = 64 * 1024
FORM_REQUIRED = "send the file in a multipart form field named 'file'"


@dataclass
class MultipartUpload:
    staged: StagedBlob
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


def boundary_from(content_type: str) -> str:
    mimetype, options = parse_options_header(content_type)
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise InvalidRequest(FORM_REQUIRED)
    return options["boundary"]


class MultipartReceiver:
    """Push parser: :meth:`feed` body chunks, then :meth:`finish`.

    The ``file`` part is written to ``writer`` (a :class:`StagingWriter`);
    the other parts are kept as short text fields.  Errors are
    :class:`InvalidRequest`; the caller owns ``writer`` and discards it.
    """

    def __init__(self, boundary: str, length: int, writer: StagingWriter):
        self.writer = writer
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self._parser = PushMultipartParser(boundary, content_length=length, max_segment_count=MAX_PARTS)
        self._part = None
        self._buffer = bytearray()
        self._is_file = False

    def feed(self, chunk) -> None:
        try:
            self._events(self._parser.parse(chunk))
        except MultipartError as exc:
            raise InvalidRequest(f"malformed multipart body: {exc}") from None

    def finish(self) -> MultipartUpload:
        """The staged file part; raises on a truncated or fileless body."""
        try:
            if not self._parser.closed:
                self._events(self._parser.parse(b""))
            if not self._parser.closed:
                self._parser.close()  # raises on a truncated body
        except MultipartError as exc:
            raise InvalidRequest(f"malformed multipart body: {exc}") from None
        if self.filename is None:
            raise InvalidRequest(FORM_REQUIRED)
        return MultipartUpload(self.writer.finish(), self.filename, self.fields)

    @property
    def closed(self) -> bool:
        return self._parser.closed

    def _events(self, events) -> None:
        for event in events:
            if event is None:  # end of a part
                if not self._is_file:
                    self.fields[self._part.name] = self._buffer.decode("utf-8", "replace")
                self._part, self._buffer, self._is_file = None, bytearray(), False
            elif isinstance(event, (bytes, bytearray, memoryview)):
                if self._is_file:
                    self.writer.write(event)
                else:
                    self._buffer += event
                    if len(self._buffer) > MAX_FIELD_SIZE:
                        raise InvalidRequest(f"form field {self._part.name!r} is too long")
            else:
                self._part = event
                self._is_file = event.name == FILE_FIELD and event.filename is not None
                if self._is_file:
                    if self.filename is not None:
                        raise InvalidRequest("send one file per request")
                    self.filename = event.filename


def receive_multipart(request, body, service) -> MultipartUpload:
    """Parse ``body`` (a file object) into a staged ``file`` part and fields."""
    boundary = boundary_from(request.headers.get("Content-Type", ""))
    length = request.content_length if request.content_length is not None else -1
    with service.receive() as writer:
        receiver = MultipartReceiver(boundary, length, writer)
        while not receiver.closed:
            chunk = body.read(READ_SIZE)
            if not chunk:
                break
            receiver.feed(chunk)
        return receiver.finish()
