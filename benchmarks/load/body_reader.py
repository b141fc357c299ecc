"""The ceiling for uploads: a bare WSGI app that reads the whole request body
and answers 200 with a small JSON document.  No framework, no parsing, no
storage: whatever an upload costs beyond this is the cost of doing the work."""
from __future__ import annotations

CHUNK = 256 * 1024


def app(environ, start_response):
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    total = 0
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        total += len(chunk)
        remaining -= len(chunk)
    body = b'{"bytes": %d}' % total
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def make_app(global_config, **settings):
    """``use = call:benchmarks.load.body_reader:make_app``"""
    return app
