"""pastefile's embeddable core: ingest, dedupe, storage, short links, cache.

No web framework is imported here; see :class:`PasteFileService`.
"""
from .blobstore import StagedBlob, StagingWriter
from .content import Content
from .errors import (
    Busy,
    EmptyFile,
    Forbidden,
    InvalidRequest,
    NotFound,
    PasteFileError,
    TooLarge,
    Unprocessable,
    UnsupportedType,
)
from .imaging import RenditionSpec
from .service import PasteFileService, PasteInfo, RenditionInfo
from .settings import Settings, SettingsError
from .utils import humanize_bytes

__all__ = [
    "Busy",
    "Content",
    "EmptyFile",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "PasteFileError",
    "PasteFileService",
    "PasteInfo",
    "RenditionInfo",
    "RenditionSpec",
    "Settings",
    "SettingsError",
    "StagedBlob",
    "StagingWriter",
    "TooLarge",
    "Unprocessable",
    "UnsupportedType",
    "humanize_bytes",
]
