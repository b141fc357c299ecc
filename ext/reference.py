"""Plain NumPy/Python references for the Cython kernels' algorithms.

Slow and simple, written from the algorithms' descriptions, for tests and
benchmarks to check the kernels against.  Nothing at run time imports it:
the service needs the compiled modules and does not fall back to these.
NumPy is needed for the hashes; it is a test dependency, not a runtime one.
"""
from __future__ import annotations

import math

from PIL import Image

DCT_BITS = 20


# ---------------------------------------------------------------------------
# Perceptual hashes
# ---------------------------------------------------------------------------


def dct_table() -> list[list[int]]:
    """DCT-II basis for 8 frequencies over 32 samples, scaled by 2**DCT_BITS, rounded half up."""
    return [
        [math.floor(math.cos(math.pi * u * (2 * n + 1) / 64) * 2**DCT_BITS + 0.5) for n in range(32)]
        for u in range(8)
    ]


def gray_thumbnail(image: Image.Image, size: tuple[int, int], row_step: int = 1):
    """Luminance, one row in ``row_step`` (middle of each band), Lanczos to ``size``."""
    import numpy as np

    gray = np.asarray(image.convert("L"))
    if row_step > 1:
        count = gray.shape[0] // row_step
        gray = gray[row_step // 2 : row_step // 2 + count * row_step : row_step]
    small = Image.fromarray(np.ascontiguousarray(gray), "L").resize(size, Image.Resampling.LANCZOS)
    return np.asarray(small)


def _bits_to_int(bits) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bool(bit))
    return value


def phash_of_thumbnail(pixels) -> int:
    """pHash of a 32x32 grey array: exact integer 2-D DCT, 8x8 low block > median."""
    import numpy as np

    table = np.array(dct_table(), dtype=np.int64)
    p = np.asarray(pixels, dtype=np.int64).reshape(32, 32)
    coeffs = table @ p @ table.T  # axis 0 then axis 1; exact in int64
    low = coeffs.reshape(-1)
    ordered = np.sort(low)
    twice_median = ordered[31] + ordered[32]
    return _bits_to_int(2 * low > twice_median)


def dhash_of_thumbnail(pixels) -> int:
    """dHash of an 8-row, 9-column grey array: each pixel brighter than its left neighbour."""
    import numpy as np

    p = np.asarray(pixels, dtype=np.int32).reshape(8, 9)
    return _bits_to_int((p[:, 1:] > p[:, :-1]).reshape(-1))


def phash(image: Image.Image, row_step: int = 1) -> int:
    return phash_of_thumbnail(gray_thumbnail(image, (32, 32), row_step))


def dhash(image: Image.Image, row_step: int = 1) -> int:
    return dhash_of_thumbnail(gray_thumbnail(image, (9, 8), row_step))


# ---------------------------------------------------------------------------
# Near-duplicate index
# ---------------------------------------------------------------------------


class BruteForceIndex:
    """HammingIndex's behaviour by comparing the query with every hash."""

    def __init__(self):
        self._hashes: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, id) -> bool:
        return id in self._hashes

    def add(self, id: int, hash: int) -> bool:
        new = id not in self._hashes
        self._hashes[id] = hash
        return new

    def discard(self, id: int) -> bool:
        return self._hashes.pop(id, None) is not None

    def get(self, id: int, default=None):
        return self._hashes.get(id, default)

    def items(self) -> list[tuple[int, int]]:
        return list(self._hashes.items())

    def _all(self, hash: int) -> list[tuple[int, int]]:
        return sorted(
            ((id, (h ^ hash).bit_count()) for id, h in self._hashes.items()),
            key=lambda pair: (pair[1], pair[0]),
        )

    def search(self, hash: int, radius: int) -> list[tuple[int, int]]:
        return [pair for pair in self._all(hash) if pair[1] <= radius]

    def nearest(self, hash: int, k: int) -> list[tuple[int, int]]:
        return self._all(hash)[:k]


# ---------------------------------------------------------------------------
# Container walks for metadata removal (the references of _metastrip)
# ---------------------------------------------------------------------------
# Each returns (segments, end, status): segments as (kind, offset, length),
# end the offset after the last one (or where the next would have started),
# status one of the WALK_* values below.

WALK_DONE, WALK_TRUNCATED, WALK_MALFORMED, WALK_NOT_CONTAINER = 0, 1, 2, 3
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def jpeg_segments(buf) -> tuple[list[tuple[int, int, int]], int, int]:
    """JPEG markers from SOI to the first SOS or EOI, fill bytes skipped."""
    data = bytes(buf)
    if data[:2] != b"\xff\xd8":
        return [], 0, WALK_NOT_CONTAINER
    segments = [(0xD8, 0, 2)]
    pos = 2
    while True:
        if pos >= len(data):
            return segments, pos, WALK_TRUNCATED
        if data[pos] != 0xFF:
            return segments, pos, WALK_MALFORMED
        start = pos
        while start + 1 < len(data) and data[start + 1] == 0xFF:
            start += 1
        if start + 1 >= len(data):
            return segments, pos, WALK_TRUNCATED
        marker = data[start + 1]
        if marker in (0x00, 0xD8):
            return segments, pos, WALK_MALFORMED
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:
            length = 2
        else:
            if start + 4 > len(data):
                return segments, pos, WALK_TRUNCATED
            field = int.from_bytes(data[start + 2 : start + 4], "big")
            if field < 2:
                return segments, pos, WALK_MALFORMED
            length = 2 + field
            if start + length > len(data):
                return segments, pos, WALK_TRUNCATED
        segments.append((marker, start, length))
        pos = start + length
        if marker in (0xDA, 0xD9):
            return segments, pos, WALK_DONE


def png_chunks(buf) -> tuple[list[tuple[int, int, int]], int, int]:
    """PNG chunks after the signature, up to and including IEND."""
    data = bytes(buf)
    if data[:8] != _PNG_SIGNATURE:
        return [], 0, WALK_NOT_CONTAINER
    chunks = []
    pos = 8
    while True:
        if len(data) - pos < 8:
            return chunks, pos, WALK_TRUNCATED
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if size >= 2**31 or not (kind.isascii() and kind.isalpha()):
            return chunks, pos, WALK_MALFORMED
        if len(data) - pos < 12 + size:
            return chunks, pos, WALK_TRUNCATED
        chunks.append((int.from_bytes(kind, "big"), pos, 12 + size))
        pos += 12 + size
        if kind == b"IEND":
            return chunks, pos, WALK_DONE


def riff_chunks(buf) -> tuple[list[tuple[int, int, int]], int, int]:
    """RIFF chunks after the 12-byte header, up to the end the header declares."""
    data = bytes(buf)
    if len(data) < 12 or data[:4] != b"RIFF":
        return [], 0, WALK_NOT_CONTAINER
    declared = 8 + int.from_bytes(data[4:8], "little")
    if declared < 12:
        return [], 12, WALK_MALFORMED
    limit = min(declared, len(data))
    # running past the declared end is an error; past the data, a cut file
    short = WALK_MALFORMED if declared <= len(data) else WALK_TRUNCATED
    chunks = []
    pos = 12
    while pos < declared:
        if pos + 8 > limit:
            return chunks, pos, short
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > limit:
            return chunks, pos, short
        length = min(8 + size + size % 2, limit - pos)
        chunks.append((int.from_bytes(data[pos : pos + 4], "big"), pos, length))
        pos += length
    return chunks, pos, WALK_DONE


# ---------------------------------------------------------------------------
# SHA-256 from an arbitrary running state
# ---------------------------------------------------------------------------
# hashlib cannot start from a given state, so tests of crafted hasher states
# (message lengths past 2**32 bits, which no test can afford to hash) check
# them against this FIPS 180-4 implementation instead.

_SHA256_K = [
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
]
SHA256_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF


def sha256_compress(h: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """One 64-byte block into the eight chaining words."""
    w = [int.from_bytes(block[i : i + 4], "big") for i in range(0, 64, 4)]
    for t in range(16, 64):
        s0 = _rotr(w[t - 15], 7) ^ _rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = _rotr(w[t - 2], 17) ^ _rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & 0xFFFFFFFF)
    a, b, c, d, e, f, g, hh = h
    for t in range(64):
        t1 = hh + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _SHA256_K[t] + w[t]
        t2 = (_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        a, b, c, d, e, f, g, hh = (t1 + t2) & 0xFFFFFFFF, a, b, c, (d + t1) & 0xFFFFFFFF, e, f, g
    return tuple((x + y) & 0xFFFFFFFF for x, y in zip(h, (a, b, c, d, e, f, g, hh)))


def sha256_resume(h: tuple[int, ...], length: int, pending: bytes, data: bytes) -> bytes:
    """SHA-256 digest of a message whose first ``length`` bytes left the
    chaining words ``h`` and ``pending`` (``length % 64`` bytes) unhashed,
    followed by ``data``.  The length field wraps modulo 2**64 bits, as
    OpenSSL's counter does.  ``sha256_resume(SHA256_IV, 0, b"", m)`` is
    ``hashlib.sha256(m).digest()``.
    """
    assert len(pending) == length % 64
    buf = pending + data
    bits = ((length + len(data)) * 8) % 2**64
    buf += b"\x80" + b"\x00" * ((55 - len(buf)) % 64) + bits.to_bytes(8, "big")
    for i in range(0, len(buf), 64):
        h = sha256_compress(h, buf[i : i + 64])
    return b"".join(x.to_bytes(4, "big") for x in h)
