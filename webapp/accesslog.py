"""Access logs: one line per request, in the combined log format plus the
request's id and how long the app took, to the logger ``pastefile.access``::

    127.0.0.1 - - [04/Dec/2026:21:00:00 +0000] "GET /p/x HTTP/1.1" 200 1234 "-" "curl/8" rid=abc dur=0.003

Every request gets an id: the client's (or the proxy's) ``X-Request-Id``
when it is sane, at most 64 characters of ``[A-Za-z0-9._-]``, else a new
one of 32 hex digits (the process's random prefix and a counter: unique
across processes and nodes, not secret).  It goes back as the ``X-Request-Id`` response header, and
while the request runs it is in :data:`request_id` (a context variable), so
the errors the app logs about the request carry it too (:func:`tag_logger`).

The client address is ``REMOTE_ADDR``: waitress puts the client named by
``X-Forwarded-For`` there when the request comes from its trusted proxy.
The byte count is the body's ``Content-Length`` ("-" when unknown, empty or
for HEAD), and the duration runs from the request reaching the app to the
response leaving it, before waitress sends the body.  Delete tokens
(``/x/<filehash>/<token>``) are left out of the request line and the
referer: the database keeps only their hash, and neither should the logs.
"""
from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import threading
import time
from urllib.parse import quote

from pastefile.core.urls import DELETE

log = logging.getLogger("pastefile.access")

#: the id of the request being served, or None outside a request
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pastefile_request_id", default=None)

HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# quotes, backslashes and anything outside printable ASCII, escaped as \xNN
# (as Apache does): a header cannot end the field or forge a log line
_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')
_DELETE_TOKEN = re.compile(rf"(/{DELETE}/[^/?#\s]+/)[^/?#\s]+")


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it may serve as a request id, else None."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return None


class _RequestIds:
    """New request ids: 32 hex digits, a random 64-bit prefix of this
    process (made again in a forked child) and a counter.  Unique across
    processes and nodes as a random id is, for a fraction of uuid4's cost."""

    def __init__(self):
        self.restart()
        os.register_at_fork(after_in_child=self.restart)

    def restart(self) -> None:
        self.prefix = os.urandom(8).hex()
        # next() on a count is atomic under the GIL: no two threads share a value
        self.counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


new_request_id = _RequestIds().new


def _escape_char(match: re.Match) -> str:
    char = match.group()
    if char in '"\\':
        return "\\" + char
    return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8" if ord(char) > 0xFF else "latin-1"))


def _escape(text: str) -> str:
    return _UNSAFE.sub(_escape_char, text)


def _field(value: str | None) -> str:
    return _escape(value) if value else "-"


# the last second formatted, and its text: one gmtime and format a second
_clf_cache: tuple[int, str] = (-1, "")


def _clf_time(when: float) -> str:
    global _clf_cache
    second = int(when)
    cached = _clf_cache  # one read: other threads replace the pair whole
    if cached[0] == second:
        return cached[1]
    t = time.gmtime(second)
    text = f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]"
    _clf_cache = (second, text)
    return text


def _target(environ) -> str:
    """The request target as the client sent it (waitress keeps it as
    REQUEST_URI), else rebuilt from the path and query string."""
    target = environ.get("REQUEST_URI")
    if not target:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        try:
            raw = path.encode("latin-1")  # WSGI's strings hold the bytes sent
        except UnicodeEncodeError:
            raw = path.encode("utf-8")
        target = quote(raw, safe="/;:@&=+$,!~*'()%")
        query = environ.get("QUERY_STRING")
        if query:
            target += "?" + query
    return _without_token(target)


_DELETE_PART = f"/{DELETE}/"


def _without_token(text: str) -> str:
    return _DELETE_TOKEN.sub(r"\1[token]", text) if _DELETE_PART in text else text


def access_line(environ, status: int, size: int | None, rid: str, started: float, duration: float) -> str:
    """One request in the combined log format, plus ``rid=`` and ``dur=`` (seconds)."""
    request_line = f"{environ.get('REQUEST_METHOD', '-')} {_target(environ)} {environ.get('SERVER_PROTOCOL', '-')}"
    referer = environ.get("HTTP_REFERER")
    if referer:
        referer = _without_token(referer)
    return (
        f"{environ.get('REMOTE_ADDR') or '-'} - - {_clf_time(started)} \"{_escape(request_line)}\" "
        f"{status} {size if size else '-'} \"{_field(referer)}\" \"{_field(environ.get('HTTP_USER_AGENT'))}\" "
        f"rid={rid} dur={duration:.3f}"
    )


def _body_size(request, response) -> int | None:
    if request.method == "HEAD":
        return None
    return response.content_length


def access_log_tween_factory(handler, registry):
    tag_logger(logging.getLogger("pastefile.webapp.views.errors"))

    def access_log_tween(request):
        environ = request.environ
        rid = sane_request_id(environ.get("HTTP_X_REQUEST_ID")) or new_request_id()
        started = time.time()
        clock = time.perf_counter()
        token = request_id.set(rid)
        status, size = 500, None
        try:
            response = handler(request)
            # no view sets it: appended, without WebOb's scan of the header list
            response.headerlist.append((HEADER, rid))
            status, size = response.status_int, _body_size(request, response)
            return response
        finally:
            request_id.reset(token)
            if log.isEnabledFor(logging.INFO):
                _log_line(access_line(environ, status, size, rid, started, time.perf_counter() - clock))

    return access_log_tween


def _log_line(line: str) -> None:
    """``log.info("%s", line)``, for less than half its cost: no walk up the
    stack for the caller (the record names this function instead), and the
    record a copy of one the logging module made in this thread."""
    log.handle(_record(line))


_LOG_LINE_NO = _log_line.__code__.co_firstlineno
_LogRecord = logging.LogRecord
_thread_records = threading.local()
_forks = itertools.count()
_fork_generation = [next(_forks)]
os.register_at_fork(after_in_child=lambda: _fork_generation.__setitem__(0, next(_forks)))


def _record(line: str) -> logging.LogRecord:
    """The access line's record.  All but its message and times are the
    same for every line a thread of a process logs (logger, level, place,
    thread, process), so it starts as a copy of a record ``makeRecord``
    made once per thread, rather than recomputing them; with a record
    factory of someone else's (``logging.setLogRecordFactory``) each record
    is the factory's own."""
    now = time.time()
    made = getattr(_thread_records, "made", None)
    if made is None or made[0] != _fork_generation[0] or logging.getLogRecordFactory() is not _LogRecord:
        record = log.makeRecord(log.name, logging.INFO, __file__, _LOG_LINE_NO, "%s", (line,), None, "_log_line")
        if type(record) is _LogRecord:
            _thread_records.made = (_fork_generation[0], dict(record.__dict__))
        return record
    fields = made[1]
    record = _LogRecord.__new__(_LogRecord)
    record.__dict__.update(fields)
    record.args = (line,)
    record.created = now
    record.msecs = int((now - int(now)) * 1000) + 0.0
    record.relativeCreated = fields["relativeCreated"] + (now - fields["created"]) * 1000
    return record


class RequestIdFilter(logging.Filter):
    """Adds `` rid=<id>`` to a record logged while a request is served (and
    sets ``record.request_id``), whatever the formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None and getattr(record, "request_id", None) is None:
            record.request_id = rid
            if isinstance(record.msg, str):
                record.msg = f"{record.msg} rid={rid}"
        return True


_FILTER = RequestIdFilter()


def tag_logger(logger: logging.Logger) -> None:
    """Records logged on ``logger`` during a request carry its id (once,
    however many apps are made)."""
    logger.addFilter(_FILTER)
