"""Short links: a keyed, reversible permutation of the numeric id in base62.

Ids below 2**32 go through a 32-bit Feistel network and encode to exactly 6
characters; larger ids use a 64-bit network and 11 characters, so the length
tells the decoder which domain to invert.  Without the key, consecutive ids
give unrelated links and a link cannot be decoded.
"""
from __future__ import annotations

import functools
import hashlib
import string

ALPHABET = string.digits + string.ascii_letters
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_ROUNDS = 8
# (bits, encoded length): 62**6 > 2**32 and 62**11 > 2**64
_DOMAINS = ((32, 6), (64, 11))
# ids are signed 64-bit integers in the database
MAX_ID = (1 << 63) - 1
CACHED_LINKS = 1 << 16


class ShortLinks:
    def __init__(self, key: str | bytes):
        if isinstance(key, str):
            key = key.encode()
        if not key:
            raise ValueError("the short link key must not be empty")
        self._key = hashlib.sha256(key).digest()
        # 8 keyed hashes per link: remembered, as links are read again and again
        self.encode = functools.lru_cache(maxsize=CACHED_LINKS)(self.encode)
        self.decode = functools.lru_cache(maxsize=CACHED_LINKS)(self.decode)

    def _round(self, bits: int, rnd: int, half: int) -> int:
        width = bits // 2
        digest = hashlib.blake2b(
            half.to_bytes(8, "big"), key=self._key, digest_size=8, person=bytes([bits, rnd]) + b"pf-link"
        ).digest()
        return int.from_bytes(digest, "big") & ((1 << width) - 1)

    def _permute(self, value: int, bits: int, inverse: bool) -> int:
        width = bits // 2
        mask = (1 << width) - 1
        left, right = value >> width, value & mask
        rounds = range(_ROUNDS - 1, -1, -1) if inverse else range(_ROUNDS)
        for rnd in rounds:
            if inverse:
                left, right = right ^ self._round(bits, rnd, left), left
            else:
                left, right = right, left ^ self._round(bits, rnd, right)
        return (left << width) | right

    def encode(self, ident: int) -> str:
        if not isinstance(ident, int) or isinstance(ident, bool) or not 0 < ident <= MAX_ID:
            raise ValueError(f"id out of range: {ident!r}")
        for bits, length in _DOMAINS:
            if ident < (1 << bits):
                return _base62(self._permute(ident, bits, inverse=False), length)
        raise AssertionError("unreachable")

    def decode(self, link: str) -> int | None:
        """The id behind ``link``, or None for anything that is not a link."""
        for bits, length in _DOMAINS:
            if len(link) == length:
                value = _unbase62(link)
                if value is None or value >= (1 << bits):
                    return None
                ident = self._permute(value, bits, inverse=True)
                # a 64-bit link must not alias a 32-bit id (one id, one link)
                if ident == 0 or ident > MAX_ID or (bits == 64 and ident < (1 << 32)):
                    return None
                return ident
        return None


def _base62(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def _unbase62(text: str) -> int | None:
    value = 0
    for c in text:
        digit = _INDEX.get(c)
        if digit is None:
            return None
        value = value * 62 + digit
    return value
