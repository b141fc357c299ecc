"""Settings from a plain dict (an ini file's app section), with defaults.

Every key ``pastefile.some.name`` can be overridden by the environment
variable ``PASTEFILE_SOME_NAME``.  Values arrive as strings from ini files and
are converted here; a bad value raises :class:`SettingsError` naming the key.

The web front's keys (``accel_redirect``, ``page_security_headers``) are
fields here too, so the environment reaches them like any other.  With
``pastefile.environment = production`` (production.ini) a placeholder or
development short-link key is refused: links made with a published key can
be decoded and enumerated by anyone.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from .mimes import DEFAULT_ALLOWED_TYPES


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""

    def __init__(self, key: str, message: str):
        super().__init__(f"setting {key!r}: {message}")
        self.key = key


PREFIX = "pastefile."
DEV_SYMLINK_KEY = "pastefile-development-key-change-me"
# keys shipped in this repository (the default, development.ini's and
# production.ini's placeholder): never a production secret
PLACEHOLDER_SYMLINK_KEYS = frozenset({DEV_SYMLINK_KEY, "development-only-key", "change-me-in-production"})
ENVIRONMENTS = ("development", "production")
STRIP_LEVELS = ("location", "all", "none")
# field name prefixes that stand for a dotted group: cache_servers <-> pastefile.cache.servers
_GROUPS = ("cache_", "rate_limit_", "s3_", "store_", "tus_")
STORES = ("file", "s3")
S3_SERVE = ("proxy", "redirect")


def env_name(key: str) -> str:
    return key.upper().replace(".", "_")


def to_bool(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(key, f"expected a boolean, got {value!r}")


def _to_int(key: str, value, minimum: int = 0) -> int:
    try:
        number = int(str(value).strip().replace("_", ""))
    except ValueError:
        raise SettingsError(key, f"expected an integer, got {value!r}") from None
    if number < minimum:
        raise SettingsError(key, f"must be >= {minimum}, got {number}")
    return number


def _to_size(key: str, value) -> int:
    """Byte sizes: ``1048576``, ``512k``, ``100M``, ``2G``."""
    text = str(value).strip().lower().removesuffix("b")
    factor = 1
    for suffix, mult in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)):
        if text.endswith(suffix):
            text, factor = text[:-1], mult
            break
    return _to_int(key, text, minimum=1) * factor


def parse_size(text: str) -> tuple[int, int] | None:
    """``"800x600"`` -> (800, 600); a side may be 0 (follow the aspect ratio)."""
    w, sep, h = str(text).strip().lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or not (int(w) or int(h)):
        return None
    return int(w), int(h)


def _to_list(value) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(part for part in str(value).replace(",", " ").split() if part)


@dataclass(frozen=True)
class Settings:
    db_url: str = "sqlite:///var/pastefile.sqlite"
    storage_root: str = "var/files"
    base_url: str = "http://localhost:6543"
    symlink_key: str = DEV_SYMLINK_KEY
    max_upload_size: int = 100 << 20
    allowed_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    max_side: int = 4096
    allow_upscale: bool = False
    cache_backend: str = "memory"
    cache_servers: tuple[str, ...] = ("127.0.0.1:11211",)
    cache_prefix: str = "pastefile"
    cache_expire: int = 24 * 3600
    cache_memory_size: int = 10000
    cache_memory_bytes: int = 64 << 20
    cache_local_bytes: int = 32 << 20
    cache_variant_max: int = 512 << 10
    # blobs up to this size live in their database row (0: always files)
    inline_max: int = 128 << 10
    auto_migrate: bool = False
    # threads per process that commit upload batches (group commit); 0: one.
    # More let PostgreSQL batches overlap their round trips, at the price of
    # smaller batches: each commit costs the server CPU whatever its size
    commit_writers: int = 0
    # images: a source above this many pixels is refused (per call, from its header)
    max_image_pixels: int = 100_000_000
    # threads of the resampler per call; 0 = every core
    image_threads: int = 0
    # renditions asked for over HTTP: the sizes allowed ("320x240 800x0"; empty:
    # any up to max_side), how many distinct specs one source may have, and a
    # secret that makes /i/?w=&h= links need the signature the service hands out
    rendition_sizes: tuple[str, ...] = ()
    rendition_max_per_source: int = 32
    rendition_secret: str = ""
    # the longest expiry an upload may ask for, in seconds
    max_expiry: int = 365 * 24 * 3600
    # near-duplicate images: the Hamming distance between pHashes that counts
    similar_distance: int = 8
    # what the web front shows to anyone: the list of recent uploads
    # (/latest) and other uploads that look like an image (/j/, preview
    # page); off, only the operator's CLI lists them
    public_latest: bool = False
    public_similar: bool = False
    # metadata removed from uploaded images, losslessly (container segments
    # rewritten, pixels untouched): "location" (GPS and the fields that
    # identify a person or a device), "all" (everything rendering does not
    # need), "none"
    strip_metadata: str = "location"
    # the web front: nginx's internal location aliased to storage_root, which
    # then sends the bytes (empty: the app sends them itself)
    accel_redirect: str = ""
    # CSP, framing and referrer headers on the app's own HTML pages
    page_security_headers: bool = True
    # "production" refuses placeholder secrets at start-up
    environment: str = "development"
    # per client address and window (seconds): uploads, and bytes uploaded (0: no limit)
    rate_limit_uploads: int = 0
    rate_limit_bytes: int = 0
    rate_limit_window: int = 60
    # where blobs live: "file" (under storage_root) or "s3" (an
    # S3-compatible object store; storage_root then only holds this node's
    # scratch files).  While blobs move between stores (pastefile
    # migrate-store), store.fallback names the old one: reads look there for
    # what has not moved yet
    store: str = "file"
    store_fallback: str = ""
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    # empty: the standard AWS chain (AWS_ACCESS_KEY_ID, shared config, ...)
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # "proxy": the app streams objects; "redirect": a 302 to a presigned GET
    s3_serve: str = "proxy"
    s3_part_size: int = 16 << 20
    # resumable uploads (tus): seconds an unfinished upload is kept (gc
    # removes it after), and the size from which the upload page uses them
    tus_expire: int = 24 * 3600
    tus_page_threshold: int = 32 << 20
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def keys(cls) -> dict[str, str]:
        """Map each ini key (``pastefile.cache.servers``) to its field name."""
        mapping = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            name = f.name
            for group in _GROUPS:
                if name.startswith(group):
                    name = group[:-1] + "." + name[len(group):]
                    break
            mapping[PREFIX + name] = f.name
        return mapping

    @classmethod
    def from_dict(cls, settings: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from ``settings`` overlaid with ``environ`` (default ``os.environ``)."""
        source = dict(settings or {})
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        known_keys = cls.keys()
        for key, name in known_keys.items():
            raw = environ.get(env_name(key), source.get(key))
            if raw is None:
                continue
            values[name] = _convert(key, name, raw)
        extra = {k: str(v) for k, v in source.items() if k not in known_keys}
        obj = cls(**values, extra=extra)
        obj.validate()
        return obj

    def validate(self) -> None:
        if self.cache_backend not in ("memcached", "memory", "null"):
            raise SettingsError(PREFIX + "cache.backend", f"expected memcached, memory or null, got {self.cache_backend!r}")
        if self.cache_backend == "memcached" and not self.cache_servers:
            raise SettingsError(PREFIX + "cache.servers", "list at least one host:port")
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(PREFIX + "environment", f"expected development or production, got {self.environment!r}")
        if not self.symlink_key.strip():
            raise SettingsError(PREFIX + "symlink_key", "must not be empty")
        if self.environment == "production" and self.is_placeholder_key():
            raise SettingsError(
                PREFIX + "symlink_key",
                "a production start needs a secret of its own, not the placeholder or development key shipped "
                "with pastefile: set PASTEFILE_SYMLINK_KEY (e.g. $(openssl rand -hex 32))",
            )
        if not self.db_url:
            raise SettingsError(PREFIX + "db_url", "must not be empty")
        for size in self.rendition_sizes:
            if parse_size(size) is None:
                raise SettingsError(PREFIX + "rendition_sizes", f"expected WIDTHxHEIGHT entries, got {size!r}")
        if self.strip_metadata not in STRIP_LEVELS:
            raise SettingsError(PREFIX + "strip_metadata", f"expected one of {', '.join(STRIP_LEVELS)}, got {self.strip_metadata!r}")
        if self.similar_distance > 64:
            raise SettingsError(PREFIX + "similar_distance", "must be between 0 and 64")
        if self.store not in STORES:
            raise SettingsError(PREFIX + "store", f"expected file or s3, got {self.store!r}")
        if self.store_fallback and (self.store_fallback not in STORES or self.store_fallback == self.store):
            raise SettingsError(PREFIX + "store.fallback", f"expected the other store than {self.store!r}, got {self.store_fallback!r}")
        if "s3" in (self.store, self.store_fallback) and not self.s3_bucket:
            raise SettingsError(PREFIX + "s3.bucket", "the s3 store needs a bucket")
        if self.s3_serve not in S3_SERVE:
            raise SettingsError(PREFIX + "s3.serve", f"expected proxy or redirect, got {self.s3_serve!r}")
        if self.s3_part_size < 5 << 20:
            raise SettingsError(PREFIX + "s3.part_size", "must be at least 5M (the smallest part S3 takes)")
        if "://" not in self.db_url:
            raise SettingsError(PREFIX + "db_url", f"expected an SQLAlchemy URL, got {self.db_url!r}")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def is_placeholder_key(self) -> bool:
        """True for a short-link key published with pastefile (or a variant of one)."""
        key = self.symlink_key.strip()
        return key in PLACEHOLDER_SYMLINK_KEYS or "change-me" in key.lower()


_INT_FIELDS = {
    "max_side": 1,
    "cache_expire": 0,
    "cache_memory_size": 1,
    "max_image_pixels": 1,
    "image_threads": 0,
    "commit_writers": 0,
    "rendition_max_per_source": 1,
    "similar_distance": 0,
    "max_expiry": 1,
    "rate_limit_uploads": 0,
    "rate_limit_window": 1,
    "tus_expire": 1,
}
_SIZE_FIELDS = {"max_upload_size", "cache_variant_max", "cache_memory_bytes", "cache_local_bytes", "s3_part_size",
                "tus_page_threshold"}
_ZERO_SIZE_FIELDS = {"inline_max", "rate_limit_bytes"}
_BOOL_FIELDS = {"allow_upscale", "auto_migrate", "page_security_headers", "public_latest", "public_similar"}
_LIST_FIELDS = {"allowed_types", "cache_servers", "rendition_sizes"}


def _convert(key: str, name: str, raw: object) -> object:
    if name in _INT_FIELDS:
        return _to_int(key, raw, _INT_FIELDS[name])
    if name in _SIZE_FIELDS:
        return _to_size(key, raw)
    if name in _ZERO_SIZE_FIELDS:
        return 0 if str(raw).strip() == "0" else _to_size(key, raw)
    if name in _BOOL_FIELDS:
        return to_bool(key, raw)
    if name in _LIST_FIELDS:
        return _to_list(raw)
    if name in ("strip_metadata", "store", "store_fallback", "s3_serve"):
        return str(raw).strip().lower()
    return str(raw).strip()
