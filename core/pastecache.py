"""Every cache entry the service keeps, what writes it and what purges it.

The key strings below are shared with other versions of pastefile through
memcached during a rolling deploy: change one only with ``KEY_VERSION``.

==========================  =====================================  ==========================================
key                         written by                             purged by
==========================  =====================================  ==========================================
``paste:fh:<filehash>``     lookups (read-through), uploads        removal (the paste, its children)
``paste:id:<id>``           lookups (read-through), uploads        removal (the paste, its children)
``latest:<limit>:<off>``    lookups (read-through)                 expiry only (``LATEST_EXPIRE`` seconds)
``named:<sha256>:<name>``   uploads kept until deleted             never: a hint the database confirms
``blobdata:<sha256>``       uploads, renditions, reads of bytes    removal of the blob
``rend:<src>:<spec>:<enc>`` renditions (made or found)             removal of the source blob
``similar:generation``      image uploads, removals                replaced, never purged
==========================  =====================================  ==========================================

Beside the shared cache a process keeps blob bytes (immutable under their
hash) and, in front of memcached, paste rows for ``LOCAL_ROW_TTL`` seconds;
a removal in any process clears those rows through the removals announcement.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import repository
from .cache import Cache, MemoryCache
from .coordination import Announcements, new_token
from .records import PasteInfo, RenditionInfo
from .repository import NewPaste
from .settings import Settings
from .similar import SimilarIndex

PASTE_BY_FILEHASH = "paste:fh:{filehash}"
PASTE_BY_ID = "paste:id:{paste_id}"
LATEST = "latest:{limit}:{offset}"
# a token in the shared cache that changes whenever image uploads commit
SIMILAR_GENERATION = "similar:generation"

LATEST_EXPIRE = 10  # seconds; the list changes with every upload
# seconds a paste row stays in a process in front of a shared cache: the most
# a removal is seen late by a host that does not share the storage root
LOCAL_ROW_TTL = 2


def paste_keys(paste_id: int, filehash: str) -> list[str]:
    return [PASTE_BY_FILEHASH.format(filehash=filehash), PASTE_BY_ID.format(paste_id=paste_id)]


def named_key(sha256: bytes, filename: str) -> str:
    # only a hint that such a paste exists: the database has the last word
    return f"named:{sha256.hex()}:{filename}"


def blobdata_key(sha256_hex: str) -> str:
    return f"blobdata:{sha256_hex}"


def rendition_key(source_hex: str, spec_key: str, encoder: int) -> str:
    return f"rend:{source_hex}:{spec_key}:{encoder}"


_NOT_LOOKED = object()


class PasteCache:
    """The shared cache (``backend``), this process's copies in front of it,
    and the near-duplicate index, kept in step with uploads and removals."""

    def __init__(self, backend: Cache, settings: Settings, removals: Announcements, images: Announcements):
        self.backend = backend
        self.expire = settings.cache_expire
        self.variant_max = settings.cache_variant_max
        self.removals = removals
        self.images = images
        # content-addressed bytes are immutable: a small per-process copy
        # saves a round trip to memcached on every read of a hot blob
        self.local_bytes = MemoryCache(prefix="local", max_entries=4096, max_bytes=settings.cache_local_bytes)
        # with a shared cache (memcached), paste rows are also kept here for
        # LOCAL_ROW_TTL seconds: a cached read then costs no round trip.  A
        # removal anywhere is seen at once through the removals announcement.
        self.local_rows = (
            None if isinstance(backend, MemoryCache) else MemoryCache(prefix="rows", max_entries=8192, max_bytes=16 << 20)
        )
        self._removals_seen: object = _NOT_LOOKED
        self.similar = self.new_similar_index()

    def new_similar_index(self) -> SimilarIndex:
        return SimilarIndex(self.images.token)

    def after_fork(self) -> None:
        self.backend.after_fork()
        self.local_bytes.after_fork()
        if self.local_rows is not None:
            self.local_rows.after_fork()
        # its lock may have been held by a thread that does not exist here
        self.similar = self.new_similar_index()

    # -- paste rows ------------------------------------------------------------

    def row(self, key: str, load: Callable[[Any], dict | None], arg) -> dict | None:
        """``load(arg)`` (itself read through the shared cache), kept in this
        process for a moment when the shared cache is another service."""
        local = self.local_rows
        if local is None:
            return load(arg)
        data = local.get(key)
        if data is None:
            data = load(arg)
            if data:
                local.set(key, data, LOCAL_ROW_TTL)
        return data

    def sync_removals(self) -> None:
        """Drop the rows cached in this process when any process removed
        pastes since this one last looked (one stat per lookup)."""
        seen = self.removals.token()
        # an unknown token (the shared cache is down) vouches for nothing:
        # rows kept now must not outlive it, so they go on every look
        if seen is None or seen != self._removals_seen:
            if self._removals_seen is not _NOT_LOOKED:
                (self.local_rows if self.local_rows is not None else self.backend).clear()
            self._removals_seen = seen

    def has_named(self, sha256: bytes, filename: str) -> bool:
        """Whether an upload kept until deleted has these bytes under this name (a hint)."""
        return bool(self.backend.get(named_key(sha256, filename)))

    def remember(self, items: list[NewPaste], infos: list[PasteInfo]) -> None:
        """One cache write for a committed batch of uploads: their pastes and
        the bytes of small ones (a new upload is usually viewed at once)."""
        mapping: dict[str, Any] = {}
        for item, info in zip(items, infos):
            if info.phash is not None:
                self.similar.add(info.id, info.phash)
                mapping[SIMILAR_GENERATION] = new_token()
            data = info.to_cache()
            if info.expires is None:
                mapping[named_key(item.sha256, item.filename)] = 1
            mapping[PASTE_BY_FILEHASH.format(filehash=info.filehash)] = data
            mapping[PASTE_BY_ID.format(paste_id=info.id)] = data
            if info.inline and item.data is not None and len(item.data) <= self.variant_max:
                mapping[blobdata_key(info.sha256)] = item.data
        self.backend.set_many(mapping, self.expire)
        if SIMILAR_GENERATION in mapping:
            # before the links are handed out: every process's next lookup
            # of near duplicates sees these images
            self.images.announce(written=mapping)

    # -- blob bytes --------------------------------------------------------------

    def blob_bytes(self, sha256_hex: str) -> bytes | None:
        """A blob's bytes from this process's memory, else the shared cache."""
        key = blobdata_key(sha256_hex)
        data = self.local_bytes.get(key)
        if data is None:
            data = self.backend.get(key)
            if data is not None:
                self.local_bytes.set(key, data)
        return data

    def keep_blob_bytes(self, sha256_hex: str, data: bytes) -> None:
        """Bytes read from the database: shared when small, and kept here."""
        key = blobdata_key(sha256_hex)
        if len(data) <= self.variant_max:
            self.backend.set(key, data, self.expire)
        self.local_bytes.set(key, data)

    # -- renditions --------------------------------------------------------------

    def rendition(self, key: str) -> RenditionInfo | None:
        data = self.backend.get(key)
        return RenditionInfo.from_cache(data) if data is not None else None

    def keep_rendition(self, key: str, info: RenditionInfo) -> None:
        self.backend.set(key, info.to_cache(), self.expire)

    def made_rendition(self, info: RenditionInfo, encoder: int, data: bytes) -> Callable[[], None]:
        """What to write once a new rendition is committed: its record and,
        when small and inline, its bytes."""
        mapping: dict[str, Any] = {rendition_key(info.source, info.spec, encoder): info.to_cache()}
        if info.inline and len(data) <= self.variant_max:
            mapping[blobdata_key(info.sha256)] = data
        return lambda: self.backend.set_many(mapping, self.expire)

    # -- removal -------------------------------------------------------------------

    def forget(self, removed: repository.Removed, released: repository.Released) -> None:
        """Purge what a removal took, in every cache, and tell other processes."""
        keys = []
        for paste_id, filehash, _ in removed.pastes:
            keys += paste_keys(paste_id, filehash)
            self.similar.discard(paste_id)
        for paste_id, filehash in removed.children:  # their parent_id changed
            keys += paste_keys(paste_id, filehash)
        for sha in released.blobs:
            keys.append(blobdata_key(sha.hex()))
            self.local_bytes.delete(blobdata_key(sha.hex()))
        keys += [rendition_key(src.hex(), spec, enc) for src, spec, enc in released.renditions]
        if keys:
            self.backend.delete_many(keys)
            self.removals.announce()
        if removed.pastes:
            self.backend.set(SIMILAR_GENERATION, new_token(), self.expire)
