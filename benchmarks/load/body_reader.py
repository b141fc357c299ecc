"""The ceilings for uploads: bare WSGI apps that read the whole request body
and answer 200 with a small JSON document.

* ``make_app``: no framework, no parsing, no storage.  Whatever an upload
  costs beyond this is the cost of doing the work.
* ``make_sniff_app``: the same, plus pastefile's own content sniff
  (libmagic) of the uploaded file's head: what the type check alone costs.
* ``make_durable_app``: the same, plus SHA-256 of the body, a write to a new
  file and ``fdatasync`` before answering: what one durable write per upload
  costs, with no batching.  The file is removed after the answer is sent.
* ``make_sniff_durable_app``: both of these in each request.
* ``make_image_app``: the sniff and the durable write, plus an image
  upload's work done plainly: Pillow opens the file, a JPEG is decoded at
  reduced size (``draft``, the target pastefile's image facts use) and
  imagehash computes its pHash.

The extra ones split the upload work into parts whose floor can be
measured on their own, in the same run as pastefile.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile

CHUNK = 256 * 1024
SNIFF_HEAD = 4096  # what pastefile hands its sniff
# pastefile.core.imaging's JPEG decode for the pHash: greyscale, at least 256x256
DRAFT_MODE, DRAFT_SIZE = "L", (256, 256)


def _read(environ, each=None) -> int:
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    total = 0
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        if each is not None:
            each(chunk)
        total += len(chunk)
        remaining -= len(chunk)
    return total


def _answer(start_response, body: bytes):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    return _answer(start_response, b'{"bytes": %d}' % _read(environ))


def file_head(body_start: bytes, content_type: str) -> bytes:
    """The first bytes of the uploaded file: after the first part's headers
    of a multipart body, the body itself otherwise."""
    if content_type.startswith("multipart/form-data"):
        end = body_start.find(b"\r\n\r\n")
        if end >= 0:
            body_start = body_start[end + 4:]
    return body_start[:SNIFF_HEAD]


def file_part(body: bytes | bytearray, content_type: str) -> bytes | bytearray:
    """The uploaded file: the first part of a multipart body, the body itself otherwise."""
    if not content_type.startswith("multipart/form-data"):
        return body
    start = body.find(b"\r\n\r\n")
    end = body.rfind(b"\r\n--")
    return body[start + 4 : end] if 0 <= start < end else body


def image_work(data: bytes) -> dict:
    """What an image upload's facts cost, done plainly: open, reduced
    decode, pHash (imagehash)."""
    import imagehash
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if img.format == "JPEG":
            img.draft(DRAFT_MODE, DRAFT_SIZE)
        value = imagehash.phash(img)
    return {"width": width, "height": height, "phash": str(value)}


def part_app(sniff: bool = False, directory: str | None = None, image: bool = False):
    """A body reader that also sniffs the file's head as pastefile does
    (``sniff``) and/or keeps the body in a new file under ``directory``,
    hashed, flushed with ``fdatasync`` before the answer, and/or (``image``)
    keeps the body in memory for ``image_work`` on its file."""
    if sniff:
        from pastefile.core.sniff import sniff as sniff_head

    def reader(environ, start_response):
        start = bytearray()
        whole = bytearray() if image else None
        digest = hashlib.sha256()
        fd, path = -1, None
        if directory is not None:
            fd, path = tempfile.mkstemp(prefix="upload-", dir=directory)

        def each(chunk):
            if whole is not None:
                whole.extend(chunk)
            if sniff and len(start) < 2 * SNIFF_HEAD:
                start.extend(chunk[: 2 * SNIFF_HEAD - len(start)])
            if fd >= 0:
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]

        try:
            answer = {"bytes": _read(environ, each)}
            if fd >= 0:
                os.fdatasync(fd)
                answer["sha256"] = digest.hexdigest()
        finally:
            if fd >= 0:
                os.close(fd)
        if sniff:
            answer["mimetype"] = sniff_head(file_head(bytes(start), environ.get("CONTENT_TYPE", "")))
        if whole:  # a GET (the harness's readiness check) has no image
            answer.update(image_work(file_part(whole, environ.get("CONTENT_TYPE", ""))))
        body = _answer(start_response, json.dumps(answer).encode())
        return body if path is None else _Removed(body, path)

    return reader


class _Removed(list):
    """The answer of a durable reader: its file goes once the answer is
    sent, outside the measured request, so a long run does not fill the disk."""

    def __init__(self, body, path: str):
        super().__init__(body)
        self.path = path

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def make_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_app``"""
    return app


def make_sniff_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_sniff_app``"""
    return part_app(sniff=True)


def _directory(settings) -> str:
    directory = settings["reader.directory"]
    os.makedirs(directory, exist_ok=True)
    return directory


def make_durable_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_durable_app`` with
    ``reader.directory`` where the bodies are kept."""
    return part_app(directory=_directory(settings))


def make_sniff_durable_app(global_config, **settings):
    """Both parts in one request; ``reader.directory`` as for the durable one."""
    return part_app(sniff=True, directory=_directory(settings))


def make_image_app(global_config, **settings):
    """The sniff, the durable write and ``image_work`` in each request;
    ``reader.directory`` as for the durable one."""
    return part_app(sniff=True, directory=_directory(settings), image=True)
