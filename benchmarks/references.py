"""Plain-Python references the hot paths are measured against."""
from __future__ import annotations

import hashlib

COPY_CHUNK = 256 * 1024  # the C loop's read size


def python_copy_and_hash(src, dst) -> tuple[bytes, int]:
    """A shutil.copyfileobj-style loop that also hashes: (sha256 digest, size)."""
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = src.read(COPY_CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        dst.write(chunk)
        total += len(chunk)
    return digest.digest(), total
