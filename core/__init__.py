"""pastefile's embeddable core: ingest, dedupe, storage, short links, cache.

No web framework is imported here; see :class:`PasteFileService`.
"""
from .errors import EmptyFile, InvalidRequest, NotFound, PasteFileError, TooLarge, UnsupportedType
from .service import PasteFileService, PasteInfo, Variant
from .settings import Settings, SettingsError
from .utils import humanize_bytes

__all__ = [
    "EmptyFile",
    "InvalidRequest",
    "NotFound",
    "PasteFileError",
    "PasteFileService",
    "PasteInfo",
    "Settings",
    "SettingsError",
    "TooLarge",
    "UnsupportedType",
    "Variant",
    "humanize_bytes",
]
