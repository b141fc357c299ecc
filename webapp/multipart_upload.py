"""Streaming ``multipart/form-data`` uploads.

The body is parsed as it is read (``multipart.PushMultipartParser``) and the
``file`` part goes straight into a staged blob, hashed on the way: no second
temp file as with a buffering form parser.  Small text fields (``w``, ``h``)
may come before or after the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from multipart import MultipartError, PushMultipartParser, parse_options_header

from pastefile.core import InvalidRequest
from pastefile.core.blobstore import StagedBlob

READ_SIZE = 256 * 1024
MAX_FIELD_SIZE = 1024
MAX_PARTS = 16
FILE_FIELD = "file"


@dataclass
class MultipartUpload:
    staged: StagedBlob
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


def boundary_of(request) -> str:
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise InvalidRequest("send the file in a multipart form field named 'file'")
    return options["boundary"]


def receive_multipart(request, body, service) -> MultipartUpload:
    """Parse ``body`` (a file object) into a staged ``file`` part and fields."""
    boundary = boundary_of(request)
    length = request.content_length if request.content_length is not None else -1
    fields: dict[str, str] = {}
    staged: StagedBlob | None = None
    filename = None
    try:
        with service.receive() as writer, PushMultipartParser(
            boundary, content_length=length, max_segment_count=MAX_PARTS
        ) as parser:
            part, buffer, is_file = None, bytearray(), False
            while not parser.closed:
                chunk = body.read(READ_SIZE)
                for event in parser.parse(chunk or b""):
                    if event is None:  # end of a part
                        if not is_file:
                            fields[part.name] = buffer.decode("utf-8", "replace")
                        part, buffer, is_file = None, bytearray(), False
                    elif isinstance(event, (bytes, bytearray, memoryview)):
                        if is_file:
                            writer.write(event)
                        else:
                            buffer += event
                            if len(buffer) > MAX_FIELD_SIZE:
                                raise InvalidRequest(f"form field {part.name!r} is too long")
                    else:
                        part = event
                        is_file = part.name == FILE_FIELD and part.filename is not None
                        if is_file and filename is not None:
                            raise InvalidRequest("send one file per request")
                        if is_file:
                            filename = part.filename
                if not chunk and not parser.closed:
                    parser.close()  # raises on a truncated body
            if filename is None:
                raise InvalidRequest("send the file in a multipart form field named 'file'")
            staged = writer.finish()
    except MultipartError as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from None
    return MultipartUpload(staged, filename, fields)
