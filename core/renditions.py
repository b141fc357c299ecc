"""Renditions: one model for every resize of an image.

(source blob, normalized spec, encoder version) -> a result blob, stored
content-addressed like any blob, rendered once under concurrency (the
single-flight lock), bounded by the settings and, for visitors, by a
signature or a list of sizes and a cap on distinct specs per source.
"""
from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy.exc import IntegrityError

from . import metrics, repository, urls
from .blobstore import StagedBlob
from .errors import Forbidden, InvalidRequest, NotFound, UnsupportedType, Unprocessable
from .imaging import ENCODER_VERSION, ImageError, ImageTooLarge, RenditionSpec, UndecodableImage, image_facts, render
from .lookups import Lookups
from .models import utcnow
from .parts import Concern, Parts
from .pastecache import rendition_key
from .records import PasteInfo, RenditionInfo, rendition_from_row
from .settings import parse_size

if TYPE_CHECKING:
    from .ingest import Ingest


class Renditions(Concern):
    def __init__(self, parts: Parts, lookups: Lookups):
        super().__init__(parts)
        self.lookups = lookups
        self._offered_sizes = frozenset(parse_size(size) for size in self.settings.rendition_sizes)

    # -- specs and bounds -------------------------------------------------------

    def check_dimensions(self, w, h) -> None:
        """w/h as a rendition spec checks them (None: follow the aspect ratio)."""
        try:
            RenditionSpec(side(w), side(h)).validate(self.settings.max_side)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def spec(self, mimetype: str, w, h, fit: str = "crop", format: str | None = None, quality=None) -> RenditionSpec:
        spec = RenditionSpec(side(w), side(h), fit or "crop", format or None, quality)
        try:
            spec.validate(self.settings.max_side)
            return spec.normalized(mimetype)
        except ImageError as exc:
            raise UnsupportedType(str(exc)) from None
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def sign(self, filehash: str, spec: RenditionSpec) -> str:
        message = f"{filehash}/{spec.key()}".encode()
        return hmac.new(self.settings.rendition_secret.encode(), message, hashlib.sha256).hexdigest()[:32]

    def rendition_url(
        self, paste: PasteInfo, w=None, h=None, *, fit="crop", format=None, quality=None, base_url: str | None = None
    ) -> str:
        spec = self.spec(paste.mimetype, w, h, fit, format, quality)
        params = [f"w={spec.width}", f"h={spec.height}"]
        if spec.fit != "crop":
            params.append(f"fit={spec.fit}")
        if format:
            params.append(f"format={spec.format}")
        if quality:
            params.append(f"q={spec.quality}")
        if self.settings.rendition_secret:
            params.append(f"sig={self.sign(paste.filehash, spec)}")
        return urls.with_query(paste.url_i(base_url or self.settings.base_url), params)

    def _check_public(self, source: PasteInfo, spec: RenditionSpec, signature: str | None) -> None:
        """The bounds on renditions asked for by visitors rather than by the
        program embedding the service."""
        if self.settings.rendition_secret:
            if not isinstance(signature, str) or not hmac.compare_digest(signature, self.sign(source.filehash, spec)):
                raise Forbidden("this resize link is not signed by this service")
        if not self.offers_size(spec.width, spec.height):
            sizes = ", ".join(self.settings.rendition_sizes)
            raise Forbidden(f"{spec.width}x{spec.height} is not offered here; sizes: {sizes}")

    def offers_size(self, w: int, h: int) -> bool:
        return not self._offered_sizes or (w, h) in self._offered_sizes

    # -- finding or making one --------------------------------------------------

    def rendition(
        self,
        paste: PasteInfo | str,
        w: int | None = None,
        h: int | None = None,
        *,
        fit: str = "crop",
        format: str | None = None,
        quality: int | None = None,
        public: bool = False,
        signature: str | None = None,
    ) -> RenditionInfo:
        source = paste if isinstance(paste, PasteInfo) else self.lookups.require(paste)
        if not source.is_resizable:
            raise UnsupportedType(f"cannot resize {source.mimetype}")
        spec = self.spec(source.mimetype, w, h, fit, format, quality)
        if public:
            self._check_public(source, spec, signature)
        sha = bytes.fromhex(source.sha256)
        key = rendition_key(source.sha256, spec.key(), ENCODER_VERSION)
        cached = self.pastecache.rendition(key)
        if cached is not None:
            metrics.inc("rendition", outcome="served")
            return cached
        found = self._find(sha, spec, key)
        if found is not None:
            return found
        cap = self.settings.rendition_max_per_source if public else None
        if cap is not None:
            # a cheap early refusal; the count that holds is taken again
            # under the source's lock when the rendition is recorded
            with self.uow.connection() as conn:
                check_cap(repository.rendition_count(conn, sha, ENCODER_VERSION), cap)
        with self.parts.coordination.flights(key):
            # made by another thread or process while this one waited?
            found = self._find(sha, spec, key)
            if found is not None:
                return found
            try:
                info, _ = self.produce(sha, lambda: self.lookups.open_blob(source), spec, cap=cap)
            except IntegrityError:
                # the source was deleted while this rendered: its row is gone
                raise NotFound(f"no file {source.filehash!r}") from None
        return info

    def _find(self, sha: bytes, spec: RenditionSpec, key: str) -> RenditionInfo | None:
        with self.uow.connection() as conn:
            row = repository.rendition(conn, sha, spec.key(), ENCODER_VERSION)
        if row is None:
            return None
        info = rendition_from_row(sha, spec.key(), row["sha256"], row)
        self.pastecache.keep_rendition(key, info)
        metrics.inc("rendition", outcome="served")
        return info

    def produce(
        self,
        source: bytes,
        read: Callable[[], BinaryIO],
        spec: RenditionSpec,
        *,
        source_row: dict | None = None,
        staged_source: StagedBlob | None = None,
        cap: int | None = None,
    ) -> tuple[RenditionInfo, bytes]:
        """Render ``spec`` from the bytes ``read()`` opens, store the result
        as a blob and record the rendition, in one transaction with
        ``source_row`` (a source blob not yet recorded) when given.  With
        ``cap``, Forbidden when the source has that many renditions by the
        time this one would be recorded."""
        with read() as f:
            try:
                out = render(
                    f, spec, upscale=self.settings.allow_upscale, max_pixels=self.settings.max_image_pixels,
                    threads=self.settings.image_threads or None,
                )
            except (ImageTooLarge, UndecodableImage) as exc:
                raise Unprocessable(str(exc)) from None
            except ImageError as exc:
                raise UnsupportedType(str(exc)) from None
        facts = image_facts(io.BytesIO(out.data), self.settings.max_image_pixels)
        staged = self.store.stage_bytes(out.data)
        try:
            # files first, durable under their address, then the rows
            if staged_source is not None:
                self.store.commit(staged_source)
            self.store.commit(staged)
            now = utcnow()
            kept = [b for b in (staged_source, staged) if b is not None and not b.inline]
            with self.uow.writing() as conn:
                # the blobs' locks before their rows, in the order removals
                # take them; with a cap the source's too, so that concurrent
                # renditions of one source count and record one at a time
                self.parts.coordination.blob_locks.lock(
                    conn, [b.sha256 for b in kept] + ([source] if cap is not None else [])
                )
                if cap is not None:
                    repository.write_lock(conn)
                    check_cap(repository.rendition_count(conn, source, ENCODER_VERSION), cap)
                if source_row is not None:
                    repository.record_blob(conn, **source_row)
                repository.record_blob(
                    conn, staged.sha256, staged.size, out.mimetype, out.width, out.height,
                    facts.phash if facts else None, staged.data, now,
                )
                repository.record_rendition(conn, source, spec.key(), ENCODER_VERSION, staged.sha256, now)
                for blob in kept:  # files a concurrent delete took since commit() found them
                    self.store.restore(blob)
        except BaseException:
            self.store.discard(staged)
            raise
        self.store.settle(staged)
        info = RenditionInfo(
            source=source.hex(), spec=spec.key(), sha256=staged.sha256.hex(), size=staged.size,
            mimetype=out.mimetype, width=out.width, height=out.height, inline=staged.inline,
        )
        self.uow.after_commit(self.pastecache.made_rendition(info, ENCODER_VERSION, out.data))
        metrics.inc("rendition", outcome="rendered")
        return info, out.data

    # -- a paste of a resize (the /r/ route) ------------------------------------

    def resize(self, ingest: "Ingest", filehash: str, w: int | None, h: int | None, *, public: bool = False,
               signature: str | None = None) -> PasteInfo:
        """A paste holding a crop-resize, saved through ``ingest``; visitors'
        (``public``) answer no delete token and go when their source goes."""
        source = self.lookups.require(filehash)
        self.check_dimensions(w, h)
        made = self.rendition(source, w, h, public=public, signature=signature)
        with self.lookups.open_blob(made) as f:
            data = f.read()
        staged = self.store.stage_bytes(data)
        try:
            return ingest.save(
                staged, source.filename, made.mimetype, (made.width, made.height, None),
                parent_id=source.id, resize=(w, h), token=not public,
            )
        except BaseException:
            self.store.discard(staged)
            raise


def check_cap(made: int, cap: int) -> None:
    if made >= cap:
        raise Forbidden(f"this image already has {made} sizes, the most one image may have; ask for one of those")


def side(value):
    """A requested width or height; None (not given) follows the aspect ratio."""
    return 0 if value is None else value
