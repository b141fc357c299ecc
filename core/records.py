"""What the service hands out: pastes and renditions as plain values, with
their JSON form (the keys every client reads) and the form they take in the cache."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from urllib.parse import quote

from . import mimes, urls
from .models import utcnow
from .repository import to_unsigned64
from .utils import humanize_bytes


@dataclass(frozen=True)
class PasteInfo:
    """A paste as callers see it: plain values, safe to cache and share."""

    id: int
    filehash: str
    filename: str
    symlink: str
    sha256: str
    size: int
    mimetype: str
    width: int | None
    height: int | None
    uploadtime: datetime
    parent_id: int | None = None
    resize_w: int | None = None
    resize_h: int | None = None
    inline: bool = False  # the bytes live in the blob's row, not in a file
    phash: int | None = None  # 64-bit pHash of an image
    expires: datetime | None = None
    # the secret that removes this paste: only on the upload's own answer,
    # never cached or stored (the database keeps its hash)
    delete_token: str | None = field(default=None, compare=False, repr=False)

    @property
    def type(self) -> str:
        return mimes.kind_of(self.mimetype)

    @property
    def is_image(self) -> bool:
        return self.mimetype in mimes.IMAGE_MIMES

    @property
    def is_resizable(self) -> bool:
        return self.mimetype in mimes.RESIZABLE_MIMES

    @property
    def etag(self) -> str:
        return self.sha256

    def get_url(self, subtype: str, base_url: str, is_symlink: bool = False) -> str:
        return urls.link(base_url, subtype, self.symlink if is_symlink else self.filehash)

    def url_d(self, base_url: str) -> str:
        return self.get_url(urls.DOWNLOAD, base_url)

    def url_i(self, base_url: str) -> str:
        return self.get_url(urls.RAW, base_url)

    def url_p(self, base_url: str) -> str:
        return self.get_url(urls.PREVIEW, base_url)

    def url_s(self, base_url: str) -> str:
        return self.get_url(urls.SHORT, base_url, is_symlink=True)

    def to_json(self, base_url: str) -> dict:
        """The links and facts every client reads (url_d url_i url_s url_p
        filename size time type quoteurl) plus exact values a program needs."""
        url_i = self.url_i(base_url)
        return {
            "url_d": self.url_d(base_url),
            "url_i": url_i,
            "url_s": self.url_s(base_url),
            "url_p": self.url_p(base_url),
            "filename": self.filename,
            "size": humanize_bytes(self.size),
            "time": self.uploadtime.strftime("%Y-%m-%d %H:%M:%S"),
            "type": self.type,
            "quoteurl": quote(url_i, safe=""),
            "mimetype": self.mimetype,
            "bytes": self.size,
            "width": self.width,
            "height": self.height,
            "filehash": self.filehash,
            "symlink": self.symlink,
            "sha256": self.sha256,
            "phash": None if self.phash is None else f"{self.phash:016x}",
            "expires": self.expires.strftime("%Y-%m-%d %H:%M:%S") if self.expires else None,
        } | self._delete_keys(base_url)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or utcnow())

    def _delete_keys(self, base_url: str) -> dict:
        if not self.delete_token:
            return {}
        return {"delete_token": self.delete_token, "url_delete": self.url_delete(base_url)}

    def url_delete(self, base_url: str) -> str | None:
        """Where the uploader removes the paste (GET shows a confirmation, POST deletes)."""
        if not self.delete_token:
            return None
        return urls.delete_link(base_url, self.filehash, self.delete_token)

    def to_cache(self) -> dict:
        # every field holds a plain value: a shallow copy (asdict deep-copies)
        data = {name: getattr(self, name) for name in _CACHED_FIELDS}
        data["uploadtime"] = self.uploadtime.isoformat()
        data["expires"] = self.expires.isoformat() if self.expires else None
        return data

    @classmethod
    def from_cache(cls, data: Mapping) -> "PasteInfo":
        values = dict(data)
        values["uploadtime"] = datetime.fromisoformat(values["uploadtime"])
        if values.get("expires"):
            values["expires"] = datetime.fromisoformat(values["expires"])
        return cls(**values)


_CACHED_FIELDS = tuple(f.name for f in fields(PasteInfo) if f.name != "delete_token")


@dataclass(frozen=True)
class RenditionInfo:
    """A stored resize of an image: a blob of its own, served like any other."""

    source: str  # the source blob's sha256 (hex)
    spec: str  # the normalized spec's key, e.g. "800x600-crop-jpeg-q88"
    sha256: str
    size: int
    mimetype: str
    width: int | None
    height: int | None
    inline: bool

    @property
    def etag(self) -> str:
        return self.sha256

    def to_cache(self) -> dict:
        # the same dict dataclasses.asdict gives (every field is a plain value)
        return {name: getattr(self, name) for name in _RENDITION_FIELDS}

    @classmethod
    def from_cache(cls, data: Mapping) -> "RenditionInfo":
        return cls(**data)


_RENDITION_FIELDS = tuple(f.name for f in fields(RenditionInfo))


def paste_from_row(row: Mapping, symlink: str, delete_token: str | None = None) -> PasteInfo:
    """A paste from a row with the keys of ``repository.PASTE_COLUMNS``."""
    return PasteInfo(
        id=row["id"],
        filehash=row["filehash"],
        filename=row["filename"],
        symlink=symlink,
        sha256=row["blob_sha256"].hex(),
        size=row["size"],
        mimetype=row["mimetype"],
        width=row["width"],
        height=row["height"],
        uploadtime=aware(row["uploadtime"]),
        parent_id=row["parent_id"],
        resize_w=row["resize_w"],
        resize_h=row["resize_h"],
        inline=bool(row["inline"]),
        phash=to_unsigned64(row["phash"]),
        expires=aware(row["expires"]) if row["expires"] else None,
        delete_token=delete_token,
    )


def rendition_from_row(source: bytes, spec_key: str, sha: bytes, facts: Mapping) -> RenditionInfo:
    return RenditionInfo(
        source=source.hex(), spec=spec_key, sha256=sha.hex(), size=facts["size"], mimetype=facts["mimetype"],
        width=facts["width"], height=facts["height"], inline=bool(facts["inline"]),
    )


def live(info: PasteInfo) -> PasteInfo | None:
    """An expired paste is gone for readers, even before gc removes it."""
    return None if info.expired() else info


def aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
