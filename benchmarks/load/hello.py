"""The ceiling for reads: hello world as a bare WSGI app."""
from __future__ import annotations

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [BODY]


def make_app(global_config, **settings):
    """``use = call:benchmarks.load.hello:make_app``"""
    return app
