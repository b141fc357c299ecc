"""The facade programs embed: its public methods and their signatures are
frozen here, so that changing one is a deliberate edit of this file."""
from __future__ import annotations

import inspect

from pastefile.core import PasteFileService

METHODS = {
    'admit_upload': "(self, client: 'str', length: 'int | None') -> 'Verdict'",
    'bind': '(self, session: \'Session\') -> "\'PasteFileService\'"',
    'blob_bytes': "(self, info: 'PasteInfo | RenditionInfo') -> 'bytes'",
    'can_delete': "(self, filehash: 'str', token: 'str') -> 'bool'",
    'check_declared_size': "(self, length: 'int | None', overhead: 'int' = 0) -> 'None'",
    'close': "(self) -> 'None'",
    'content': "(self, info: 'PasteInfo | RenditionInfo') -> 'Content'",
    'count': "(self) -> 'tuple[int, int]'",
    'delete': "(self, filehash: 'str', token: 'str') -> 'PasteInfo'",
    'discard_upload': "(self, staged: 'StagedBlob') -> 'None'",
    'fsck': "(self, repair: 'bool' = False, grace: 'float' = 3600.0, verify: 'bool' = False) -> 'dict[str, int]'",
    'gc': "(self, grace: 'float' = 3600.0, batch: 'int' = 500) -> 'dict[str, int]'",
    'get': "(self, filehash: 'str') -> 'PasteInfo | None'",
    'get_by_id': "(self, paste_id: 'int') -> 'PasteInfo | None'",
    'get_by_symlink': "(self, symlink: 'str') -> 'PasteInfo | None'",
    'initdb': "(self) -> 'None'",
    'latest': "(self, limit: 'int' = 20, offset: 'int' = 0) -> 'list[PasteInfo]'",
    'new_session': "(self, info: 'dict | None' = None) -> 'Session'",
    'offers_size': "(self, w: 'int', h: 'int') -> 'bool'",
    'open': "(self, filehash: 'str') -> 'BinaryIO'",
    'migrate_store': "(self, to: 'str', progress: 'Callable[[int, int], None] | None' = None) -> 'dict[str, int]'",
    'open_blob': "(self, info: 'PasteInfo | RenditionInfo') -> 'BinaryIO'",
    'path': "(self, info: 'PasteInfo | RenditionInfo') -> 'str | None'",
    'readiness': "(self) -> 'Readiness'",
    'receive': "(self) -> 'Iterator[StagingWriter]'",
    'remove': "(self, filehash: 'str') -> 'PasteInfo'",
    'rendition': "(self, paste: 'PasteInfo | str', w: 'int | None' = None, h: 'int | None' = None, *, fit: 'str' = 'crop', format: 'str | None' = None, quality: 'int | None' = None, public: 'bool' = False, signature: 'str | None' = None) -> 'RenditionInfo'",
    'rendition_url': "(self, paste: 'PasteInfo', w=None, h=None, *, fit='crop', format=None, quality=None, base_url: 'str | None' = None) -> 'str'",
    'require': "(self, filehash: 'str') -> 'PasteInfo'",
    'require_current_schema': "(self) -> 'None'",
    'resize': "(self, filehash: 'str', w: 'int | None', h: 'int | None', *, public: 'bool' = False, signature: 'str | None' = None) -> 'PasteInfo'",
    'sign': "(self, filehash: 'str', spec: 'RenditionSpec') -> 'str'",
    'similar': "(self, paste: 'PasteInfo | str', max_distance: 'int | None' = None) -> 'list[tuple[PasteInfo, int]]'",
    'sweep': "(self) -> 'dict[str, int]'",
    'tus_append': "(self, upload_id: 'str', offset: 'int', chunks, *, length: 'int | None' = None, checksum: 'tuple[str, bytes] | None' = None) -> 'TusInfo'",
    'tus_create': "(self, length: 'int | None', metadata: 'str' = '', *, partial: 'bool' = False, final_of: 'list[str] | None' = None, body: 'Iterable[bytes] | None' = None, checksum: 'tuple[str, bytes] | None' = None) -> 'TusInfo'",
    'tus_info': "(self, upload_id: 'str') -> 'TusInfo'",
    'tus_paste': "(self, upload_id: 'str') -> 'PasteInfo'",
    'tus_terminate': "(self, upload_id: 'str') -> 'None'",
    'upload': "(self, fileobj: 'BinaryIO', filename: 'str | None', *, w: 'int | None' = None, h: 'int | None' = None, expires_in: 'int | None' = None) -> 'PasteInfo'",
    'upload_staged': "(self, staged: 'StagedBlob', filename: 'str | None', *, w: 'int | None' = None, h: 'int | None' = None, expires_in: 'int | None' = None) -> 'PasteInfo'",
}
PROPERTIES = ["base_url", "cache", "engine", "expire", "links", "session_factory", "settings", "store"]


def _public(kind) -> dict:
    return {name: member for name, member in inspect.getmembers(PasteFileService, kind) if not name.startswith("_")}


def test_public_methods_and_signatures_are_frozen():
    methods = _public(inspect.isfunction)
    assert sorted(methods) == sorted(METHODS)
    assert {name: str(inspect.signature(fn)) for name, fn in methods.items()} == METHODS


def test_public_properties_are_frozen():
    assert sorted(_public(lambda m: isinstance(m, property))) == PROPERTIES
