"""The core service, created once per app and bound to each request's session."""
from __future__ import annotations

import logging

from pastefile.core import PasteFileService

log = logging.getLogger(__name__)


def service_of(registry) -> PasteFileService:
    """The app's core service, for code that has the registry but no request
    (tween factories, the server); the one place that knows where it is kept."""
    return registry.pastefile


def pastefile_service(request) -> PasteFileService:
    """``request.pastefile``: the core service.

    It runs its own short transactions: uploads through its group committer
    (one commit, one flush, for all concurrent uploads), lookups on a pooled
    connection after the cache.  A view that must write in the request's
    transaction binds it: ``request.pastefile.bind(request.dbsession)``.
    """
    return request.registry.pastefile


def includeme(config):
    service = PasteFileService(config.get_settings())
    try:
        swept = service.sweep()
    except Exception:  # noqa: BLE001 - the database may be down; serve anyway
        log.warning("could not settle what interrupted uploads left; pastefile fsck --repair will", exc_info=True)
    else:
        if any(swept.values()):
            log.info("settled interrupted uploads: %(stale_temp)d temp files and %(orphan_files)d "
                     "files without a row removed", swept)
    config.registry.pastefile = service
    config.add_request_method(pastefile_service, "pastefile", reify=True)
