"""The pieces every concern of one service shares."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from .blobstore import BlobStore
from .coordination import Coordination
from .pastecache import PasteCache
from .records import PasteInfo, paste_from_row
from .settings import Settings
from .shortlink import ShortLinks
from .uow import UnitOfWork


@dataclass(eq=False)
class Parts:
    """What the facade wires once; a bound view of the service shares all of
    it but the unit of work."""

    settings: Settings
    uow: UnitOfWork
    store: BlobStore
    links: ShortLinks
    pastecache: PasteCache
    coordination: Coordination

    def bound(self, session: Session) -> "Parts":
        return replace(self, uow=self.uow.bound(session))

    def info(self, row: Mapping, delete_token: str | None = None) -> PasteInfo:
        """A paste from its row, with its short link."""
        return paste_from_row(row, self.links.encode(row["id"]), delete_token)


class Concern:
    """One concern of the service (ingest, lookups, renditions, removal,
    maintenance), with the shared pieces it reads at hand."""

    def __init__(self, parts: Parts):
        self.parts = parts
        self.settings = parts.settings
        self.uow = parts.uow
        self.store = parts.store
        self.pastecache = parts.pastecache
