"""Finding pastes and serving their content: by filehash, id or short link,
the latest uploads, counts, the bytes (a file, an inline row, a path for
sendfile) and near-duplicate images."""
from __future__ import annotations

import dataclasses
import io
from typing import BinaryIO

from sqlalchemy import func, select

from . import repository
from .cache import Cache
from .cache import cache as read_through
from .content import Content
from .errors import InvalidRequest, NotFound
from .models import Blob, PasteFile
from .parts import Concern
from .pastecache import LATEST, LATEST_EXPIRE, PASTE_BY_FILEHASH, PASTE_BY_ID
from .records import PasteInfo, RenditionInfo, live
from .utils import is_filehash

MAX_LATEST = 100
MAX_SIMILAR = 50


class Lookups(Concern):

    # what the @cache loaders below read through
    @property
    def cache(self) -> Cache:
        return self.pastecache.backend

    @property
    def expire(self) -> int:
        return self.pastecache.expire

    # -- rows, read through the cache ----------------------------------------------

    @read_through(PASTE_BY_FILEHASH, max_retry=5)
    def _paste_by_filehash(self, filehash: str) -> dict | None:
        with self.uow.connection() as conn:
            row = repository.paste_by_filehash(conn, filehash)
            return self.parts.info(row).to_cache() if row is not None else None

    @read_through(PASTE_BY_ID, max_retry=5)
    def _paste_by_id(self, paste_id: int) -> dict | None:
        with self.uow.connection() as conn:
            row = repository.paste_by_id(conn, paste_id)
            return self.parts.info(row).to_cache() if row is not None else None

    def _pastes_by_ids(self, ids: list[int]) -> dict[int, dict]:
        with self.uow.connection() as conn:
            return {row["id"]: self.parts.info(row).to_cache() for row in repository.pastes_by_ids(conn, ids)}

    def _pastes(self, ids: list[int]) -> dict[int, dict]:
        """Cached records of ``ids``: one get_many, the misses in one query."""
        return self._paste_by_id.many(self, ids, self._pastes_by_ids)

    @read_through(LATEST, expire=LATEST_EXPIRE)
    def _latest_ids(self, limit: int, offset: int) -> list[int]:
        with self.uow.transaction() as session:
            return list(
                session.scalars(
                    select(PasteFile.id).order_by(PasteFile.id.desc()).limit(limit).offset(offset)
                )
            )

    # -- pastes ---------------------------------------------------------------------

    def get(self, filehash: str) -> PasteInfo | None:
        if not isinstance(filehash, str) or not is_filehash(filehash):
            return None
        self.pastecache.sync_removals()
        data = self.pastecache.row(f"fh:{filehash}", self._paste_by_filehash, filehash)
        return live(PasteInfo.from_cache(data)) if data else None

    def get_by_id(self, paste_id: int) -> PasteInfo | None:
        self.pastecache.sync_removals()
        data = self.pastecache.row(f"id:{paste_id}", self._paste_by_id, paste_id)
        return live(PasteInfo.from_cache(data)) if data else None

    def get_by_symlink(self, symlink: str) -> PasteInfo | None:
        paste_id = self.parts.links.decode(symlink) if isinstance(symlink, str) else None
        return self.get_by_id(paste_id) if paste_id else None

    def require(self, filehash: str) -> PasteInfo:
        info = self.get(filehash)
        if info is None:
            raise NotFound(f"no file {filehash!r}")
        return info

    def latest(self, limit: int = 20, offset: int = 0) -> list[PasteInfo]:
        if not 1 <= limit <= MAX_LATEST or offset < 0:
            raise InvalidRequest(f"limit must be 1..{MAX_LATEST} and offset >= 0")
        self.pastecache.sync_removals()
        ids = self._latest_ids(limit, offset)
        found = self._pastes(ids)
        return [p for p in (PasteInfo.from_cache(found[i]) for i in ids if i in found) if not p.expired()]

    def count(self) -> tuple[int, int]:
        with self.uow.transaction() as session:
            return (
                session.scalar(select(func.count()).select_from(PasteFile)),
                session.scalar(select(func.count()).select_from(Blob)),
            )

    # -- content ----------------------------------------------------------------------

    def content(self, info: PasteInfo | RenditionInfo) -> Content:
        """What to serve: the bytes of an inline blob (as :meth:`blob_bytes`
        finds them), else the file the store keeps."""
        if info.inline:
            # blob_bytes's own steps, one call less on every cached read
            data = self.pastecache.blob_bytes(info.sha256)
            return Content.of_bytes(data if data is not None else self._row_bytes(info))
        content = self.parts.store.content(info.sha256)
        return dataclasses.replace(content, opener=self._checked_opener(content.open, info))

    def path(self, info: PasteInfo | RenditionInfo) -> str | None:
        return None if info.inline else self.parts.store.path(bytes.fromhex(info.sha256))

    def open(self, filehash: str) -> BinaryIO:
        return self.open_blob(self.require(filehash))

    def open_blob(self, info: PasteInfo | RenditionInfo) -> BinaryIO:
        if info.inline:
            return io.BytesIO(self.blob_bytes(info))
        return self._checked_opener(lambda: self.parts.store.open(bytes.fromhex(info.sha256)), info)()

    def _checked_opener(self, opener, info: PasteInfo | RenditionInfo):
        """``opener`` that answers NotFound when the blob has gone because
        its pastes were removed meanwhile (a row kept for a moment on
        another node may still name it); a blob still on record whose
        bytes are missing stays an error."""
        def open_checked() -> BinaryIO:
            try:
                return opener()
            except FileNotFoundError:
                with self.uow.connection() as conn:
                    recorded = repository.has_blob(conn, bytes.fromhex(info.sha256))
                if not recorded:
                    raise NotFound("this file was deleted") from None
                raise

        return open_checked

    def blob_bytes(self, info: PasteInfo | RenditionInfo) -> bytes:
        """From this process's memory, the shared cache, else its row.  Bytes
        under a content hash never change, so keeping them per process is
        always correct (a removed paste is refused by its lookup before its
        bytes are asked for)."""
        data = self.pastecache.blob_bytes(info.sha256)
        return data if data is not None else self._row_bytes(info)

    def _row_bytes(self, info: PasteInfo | RenditionInfo) -> bytes:
        """An inline blob's bytes from its row, then kept in the caches."""
        with self.uow.connection() as conn:
            data = repository.blob_data(conn, bytes.fromhex(info.sha256))
        if data is None:
            raise NotFound(f"the bytes of blob {info.sha256[:16]} are missing")
        self.pastecache.keep_blob_bytes(info.sha256, data)
        return data

    # -- near duplicates ----------------------------------------------------------------

    def _image_hashes(self, after_id: int) -> list[tuple[int, int]]:
        with self.uow.connection() as conn:
            return repository.image_hashes(conn, after_id)

    def similar(self, paste: PasteInfo | str, max_distance: int | None = None) -> list[tuple[PasteInfo, int]]:
        source = paste if isinstance(paste, PasteInfo) else self.require(paste)
        if max_distance is None:
            max_distance = self.parts.settings.similar_distance
        if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= 64:
            raise InvalidRequest("the distance must be an integer between 0 and 64")
        if source.phash is None:
            return []
        index = self.pastecache.similar
        hits = [(i, d) for i, d in index.search(source.phash, max_distance, self._image_hashes) if i != source.id]
        hits = hits[:MAX_SIMILAR]
        found = self._pastes([i for i, _ in hits])
        return [(p, d) for p, d in ((PasteInfo.from_cache(found[i]), d) for i, d in hits if i in found)
                if not p.expired()]
