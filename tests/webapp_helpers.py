"""Shared pieces of the WebTest suites (tests/test_webapp_*.py).

The ``webapp_factory``/``webapp`` fixtures (tests/conftest.py) build apps on
SQLite or on PostgreSQL + memcached; the PostgreSQL apps commit for real, so
every test uploads unique content (``unique_text``/``unique_image``).
"""
from __future__ import annotations

import json
import uuid

import webtest
from sqlalchemy import event


from .conftest import make_image, random_text

CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
API = {"Accept": "application/json"}
BOOK_KEYS = {"url_d", "url_i", "url_s", "url_p", "filename", "size", "time", "type", "quoteurl"}
IMMUTABLE = "public, max-age=31536000, immutable"


def public(doc: dict) -> dict:
    """An upload's answer as anyone else sees the paste: without the delete
    token, which only the uploader gets."""
    return {k: v for k, v in doc.items() if k not in ("delete_token", "url_delete")}


def unique_seed() -> int:
    return uuid.uuid4().int & ((1 << 62) - 1)


def unique_text(size: int = 3000) -> bytes:
    """Plain text no other test (or earlier run on the same database) uploads."""
    head = f"pastefile webapp test {uuid.uuid4().hex}\n".encode()
    return (head + random_text(unique_seed(), size))[:size]


def unique_image(fmt: str = "PNG", size=(64, 48)) -> bytes:
    return make_image(fmt, size, seed=unique_seed())


class WebApp(webtest.TestApp):
    """A TestApp that knows its core service."""

    @property
    def registry(self):
        return self.app.registry

    @property
    def service(self):
        return self.app.registry.pastefile

    def upload(self, data: bytes, filename: str, *, status: int | str = 200, headers=None, **params):
        """POST / as the upload form does; params become form fields (w, h)."""
        return self.post(
            "/",
            params={k: str(v) for k, v in params.items()},
            upload_files=[("file", filename, data)],
            headers=headers or {},
            status=status,
        )

    def upload_json(self, data: bytes, filename: str, **params) -> dict:
        res = self.upload(data, filename, **params)
        assert res.content_type == "application/json"
        return res.json

    def count_sql(self):
        return SQLCounter(self.service.engine)


class SQLCounter:
    """Counts statements the engine sends to the database (a context manager)."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    def _listener(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def __enter__(self) -> "SQLCounter":
        event.listen(self.engine, "before_cursor_execute", self._listener)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._listener)

    @property
    def count(self) -> int:
        return len(self.statements)


class CountingInput:
    """A ``wsgi.input`` of ``total`` bytes that records how much was read."""

    def __init__(self, total: int, fill: bytes = b"a"):
        self.total = total
        self.fill = fill
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        left = self.total - self.read_bytes
        size = left if size is None or size < 0 else min(size, left)
        self.read_bytes += size
        return self.fill * size

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return [self.read(hint)]

    def __iter__(self):
        return iter(self.readlines())


def error_of(res) -> dict:
    """The ``error`` object of a JSON error response."""
    assert res.content_type == "application/json", res.content_type
    body = json.loads(res.body)
    assert set(body) == {"error"}
    return body["error"]


def assert_no_traceback(res) -> None:
    text = res.body.decode("utf-8", "replace")
    assert "Traceback" not in text
    assert 'File "' not in text
    assert ".py\", line" not in text
