"""Errors as clear HTML pages for browsers and JSON for API clients, never a traceback."""
from __future__ import annotations

import errno
import logging
import sqlite3

from pyramid.httpexceptions import HTTPException
from pyramid.response import Response
from pyramid.view import exception_view_config
from sqlalchemy import exc as sa_exc

from pastefile.core import PasteFileError
from pastefile.core.errors import InsufficientStorage, Unavailable

from ..responses import error_response

log = logging.getLogger(__name__)

# seconds a client should wait before repeating a request that got a 503
RETRY_AFTER = 5
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
# PostgreSQL SQLSTATE classes of errors that pass: connection exceptions,
# insufficient resources, operator intervention (shutdown, starting up),
# transaction rollback (serialization failure, deadlock)
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40")
_TRANSIENT_SQLSTATES = ("55P03",)  # lock_not_available


def not_found(request):
    return error_response(request, 404, "Not found", "There is no file at this address.")


def unavailable_response(request, title: str, message: str) -> Response:
    response = error_response(request, 503, title, message)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


@exception_view_config(PasteFileError)
def core_error(exc, request):
    if exc.status == 503:
        return unavailable_response(request, exc.title, exc.message)
    return error_response(request, exc.status, exc.title, exc.message)


def database_unreachable(exc: sa_exc.SQLAlchemyError) -> bool:
    """True for database errors that pass by themselves: the server is down,
    restarting or out of connections, the connection was cut, a lock or a
    serialization conflict.  A bug (a missing table, bad SQL) is not one."""
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # the pool's own: a dead connection, no connection free
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    code = getattr(orig, "pgcode", None)
    # psycopg2 reports a refused or broken connection with no SQLSTATE
    return code is None or code[:2] in _TRANSIENT_SQLSTATE_CLASSES or code in _TRANSIENT_SQLSTATES


@exception_view_config(sa_exc.SQLAlchemyError)
def database_error(exc, request):
    """503 with Retry-After while the database is unreachable; the pool
    (pre-ping, invalidation on disconnect) reconnects once it is back."""
    if not database_unreachable(exc):
        return server_error(exc, request)
    log.warning("database unavailable on %s %s: %s", request.method, request.path, str(exc).splitlines()[0])
    return unavailable_response(
        request, Unavailable.title, "The database cannot be reached right now; try again in a few seconds."
    )


@exception_view_config(OSError)
def os_error(exc, request):
    """507 when the blob store is full (the upload's temp file is already
    removed by then); any other OSError is a server error."""
    if exc.errno not in NO_SPACE:
        return server_error(exc, request)
    log.error("no space left in the blob store on %s %s: %s", request.method, request.path, exc)
    return error_response(
        request, InsufficientStorage.status, InsufficientStorage.title,
        "The server has no room for this file at the moment; nothing was stored.",
    )


@exception_view_config(HTTPException)
def http_error(exc, request):
    if exc.code < 400:
        return exc  # redirects and 304s pass through
    return error_response(request, exc.code, exc.title, exc.detail or exc.explanation)


@exception_view_config(Exception)
def server_error(exc, request):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(request, 500, "Server error", "Something went wrong on our side; nothing was stored.")
