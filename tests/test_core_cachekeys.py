"""The cache keys are shared through memcached with other versions of
pastefile during a rolling deploy: their spelling is frozen here."""
from __future__ import annotations

from pastefile.core import pastecache


def test_cache_keys_are_spelled_as_deployed():
    sha = bytes(range(32))
    assert pastecache.paste_keys(7, "abcd.txt") == ["paste:fh:abcd.txt", "paste:id:7"]
    assert pastecache.PASTE_BY_FILEHASH.format(filehash="abcd.txt") == "paste:fh:abcd.txt"
    assert pastecache.PASTE_BY_ID.format(paste_id=7) == "paste:id:7"
    assert pastecache.LATEST.format(limit=20, offset=40) == "latest:20:40"
    assert pastecache.named_key(sha, "cat.jpg") == f"named:{sha.hex()}:cat.jpg"
    assert pastecache.blobdata_key(sha.hex()) == f"blobdata:{sha.hex()}"
    assert pastecache.rendition_key(sha.hex(), "80x60-crop-png", 3) == f"rend:{sha.hex()}:80x60-crop-png:3"
    assert pastecache.SIMILAR_GENERATION == "similar:generation"
