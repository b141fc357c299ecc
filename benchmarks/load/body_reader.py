"""The ceilings for uploads: bare WSGI apps that read the whole request body
and answer 200 with a small JSON document.

* ``make_app``: no framework, no parsing, no storage.  Whatever an upload
  costs beyond this is the cost of doing the work.
* ``make_sniff_app``: the same, plus pastefile's own content sniff
  (libmagic) of the uploaded file's head: what the type check alone costs.
* ``make_durable_app``: the same, plus SHA-256 of the body, a write to a new
  file and ``fdatasync`` before answering: what one durable write per upload
  costs, with no batching.

The two extra ones split the upload work into parts whose floor can be
measured on their own, in the same run as pastefile.
"""
from __future__ import annotations

import hashlib
import os
import tempfile

CHUNK = 256 * 1024
SNIFF_HEAD = 4096  # what pastefile hands its sniff


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


def sniff_app(environ, start_response):
    from pastefile.core.sniff import sniff

    start = bytearray()

    def keep(chunk):
        if len(start) < 2 * SNIFF_HEAD:
            start.extend(chunk[: 2 * SNIFF_HEAD - len(start)])

    total = _read(environ, keep)
    mimetype = sniff(file_head(bytes(start), environ.get("CONTENT_TYPE", "")))
    return _answer(start_response, b'{"bytes": %d, "mimetype": "%s"}' % (total, mimetype.encode()))


def durable_app(directory: str):
    def durable(environ, start_response):
        fd, path = tempfile.mkstemp(prefix="upload-", dir=directory)
        digest = hashlib.sha256()

        def store(chunk):
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

        try:
            total = _read(environ, store)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        return _answer(start_response, b'{"bytes": %d, "sha256": "%s"}' % (total, digest.hexdigest().encode()))

    return durable


def make_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_app``"""
    return app


def make_sniff_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_sniff_app``"""
    return sniff_app


def make_durable_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_durable_app`` with
    ``reader.directory`` where the bodies are kept."""
    directory = settings["reader.directory"]
    os.makedirs(directory, exist_ok=True)
    return durable_app(directory)
