"""``request.dbsession``: one SQLAlchemy session per request, joined to pyramid_tm."""
from __future__ import annotations

import zope.sqlalchemy

from pastefile.core.urls import TUS, UPLOAD

from .services import service_of


def get_tm_session(new_session, transaction_manager, request=None):
    """A session (from ``new_session``, the service's) whose commit/abort
    follows ``transaction_manager``."""
    dbsession = new_session(info={"request": request})
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


def retry_attempts(request):
    """``retry.activate_hook``: retries only for the views that write in a
    request-wide transaction, and only without a body.

    A retry needs the body buffered first (``make_body_seekable``), which
    would read a whole oversized upload before the size check could refuse
    it.  Uploads need no retry: they resolve races with ON CONFLICT.  Reads
    run no transaction to retry, and each would pay for the buffering.
    """
    if not needs_transaction(request):
        return 1
    if request.method in ("POST", "PUT") and (request.content_length or request.is_body_readable):
        return 1
    return None


def needs_transaction(request) -> bool:
    """``tm.activate_hook``: no request-wide transaction for the views the
    core serves by itself (reads, and uploads, which the group committer
    commits, and resumable uploads); other writes (a view using
    ``request.dbsession``) get one."""
    method = request.method
    if method in ("GET", "HEAD", "PUT"):
        return False
    # the raw WSGI path: this runs before the input guard has refused an
    # undecodable one, and request.path_info would raise on it
    path = request.environ.get("PATH_INFO", "")
    if path.startswith(TUS):
        return False  # resumable uploads: the core commits each step itself
    return not (method == "POST" and path in ("", UPLOAD))


def includeme(config):
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    settings.setdefault("tm.activate_hook", "pastefile.webapp.db.needs_transaction")
    settings.setdefault("retry.attempts", "3")
    settings.setdefault("retry.activate_hook", "pastefile.webapp.db.retry_attempts")
    config.include("pyramid_tm")
    config.include("pyramid_retry")
    new_session = service_of(config.registry).new_session

    def dbsession(request):
        # tests hand in a session bound to an outer, rolled-back transaction
        session = request.environ.get("app.dbsession")
        if session is None:
            session = get_tm_session(new_session, request.tm, request=request)
        return session

    config.add_request_method(dbsession, reify=True)
