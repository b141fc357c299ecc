"""Near-duplicate search over 64-bit perceptual hashes (the Cython index).

``HammingIndex`` maps integer ids to 64-bit hashes and answers "which ids
are within Hamming distance r of this hash" and "which k ids are nearest",
with multi-index hashing (four 16-bit substrings), or a straight popcount
scan when that is cheaper.  Searches release the GIL and run in parallel
with each other; adds and removes take the index exclusively.

Every argument is checked here before C sees it.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterable

from pastefile.ext import _hamming

__all__ = ["HammingIndex", "STRATEGIES"]

STRATEGIES = {"auto": _hamming.STRATEGY_AUTO, "mih": _hamming.STRATEGY_MIH, "scan": _hamming.STRATEGY_SCAN}
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


def _id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"id must be an int, not {type(value).__name__}")
    if not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("id must fit in a signed 64-bit integer")
    return value


def _hash(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"hash must be an int, not {type(value).__name__}")
    if not 0 <= value <= _UINT64_MAX:
        raise ValueError("hash must be an unsigned 64-bit value")
    return value


def _strategy(name) -> int:
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}") from None


def _packed(values, typecode: str, what: str):
    """values as a contiguous buffer of 64-bit integers (no copy when it already is one)."""
    try:
        view = memoryview(values)
    except TypeError:
        view = None
    if view is not None:
        if view.ndim == 1 and view.itemsize == 8 and view.c_contiguous and view.format in (
            ("q", "l", "<q", "<l", "=q", "=l") if typecode == "q" else ("Q", "L", "<Q", "<L", "=Q", "=L")
        ):
            return view.cast("B").cast(typecode)
        values = view.tolist()
    items = list(values)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"{what} must be ints, not {type(item).__name__}")
    try:
        return array(typecode, items)
    except OverflowError:
        kind = "signed" if typecode == "q" else "unsigned"
        raise ValueError(f"{what} must fit in {kind} 64-bit integers") from None


class HammingIndex:
    """Ids (signed 64-bit) to hashes (unsigned 64-bit), searchable by Hamming distance."""

    __slots__ = ("_core",)

    def __init__(self, items: Iterable[tuple[int, int]] | None = None):
        self._core = _hamming.HammingIndexCore()
        if items is not None:
            pairs = list(items)
            self.add_many([i for i, _ in pairs], [h for _, h in pairs])

    def __len__(self) -> int:
        return len(self._core)

    def __contains__(self, id) -> bool:
        if isinstance(id, bool) or not isinstance(id, int) or not _INT64[0] <= id <= _INT64[1]:
            return False
        return self._core.get(id) is not None

    def add(self, id: int, hash: int) -> bool:
        """File ``hash`` under ``id`` (replacing its previous hash); True if the id is new."""
        return self._core.add(_id(id), _hash(hash))

    def add_many(self, ids, hashes) -> int:
        """Add pairs in order (int sequences or 64-bit buffers such as NumPy arrays);
        returns how many ids were new."""
        id_buf = _packed(ids, "q", "ids")
        hash_buf = _packed(hashes, "Q", "hashes")
        if len(id_buf) != len(hash_buf):
            raise ValueError("ids and hashes differ in length")
        if len(id_buf) == 0:
            return 0
        return self._core.add_many(id_buf, hash_buf)

    def remove(self, id: int) -> None:
        """Forget ``id``; KeyError if it is not there."""
        if not self._core.remove(_id(id)):
            raise KeyError(id)

    def discard(self, id: int) -> bool:
        """Forget ``id`` if it is there; True if it was."""
        return self._core.remove(_id(id))

    def get(self, id: int, default=None):
        value = self._core.get(_id(id))
        return default if value is None else value

    def items(self) -> list[tuple[int, int]]:
        """Every (id, hash), in no particular order."""
        return self._core.items()

    def search(self, hash: int, radius: int, *, strategy: str = "auto") -> list[tuple[int, int]]:
        """(id, distance) for every hash within ``radius`` bits, nearest first, then by id."""
        if isinstance(radius, bool) or not isinstance(radius, int):
            raise TypeError(f"radius must be an int, not {type(radius).__name__}")
        if not 0 <= radius <= 64:
            raise ValueError(f"radius must be between 0 and 64, got {radius}")
        return self._core.search(_hash(hash), radius, _strategy(strategy))

    def nearest(self, hash: int, k: int, *, strategy: str = "auto") -> list[tuple[int, int]]:
        """The ``k`` nearest (id, distance), nearest first, ties by id."""
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, not {type(k).__name__}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        return self._core.nearest(_hash(hash), k, _strategy(strategy))
