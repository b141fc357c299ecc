"""The core service, created once per app and bound to each request's session."""
from __future__ import annotations

import logging

from pastefile.core import PasteFileService

log = logging.getLogger(__name__)


def pastefile_service(request) -> PasteFileService:
    """``request.pastefile``: the core service inside the request's transaction."""
    return request.registry.pastefile.bind(request.dbsession)


def includeme(config):
    service = PasteFileService(config.get_settings())
    removed = service.store.remove_stale_temp()
    if removed:
        log.info("removed %d temp files left by interrupted uploads", removed)
    config.registry.pastefile = service
    config.add_request_method(pastefile_service, "pastefile", reify=True)
