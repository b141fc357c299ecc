"""Hamming-distance radius scan over a list of 64-bit hashes, in plain Python.

This file is also compiled by Cython exactly as it is (see build.py), so it
keeps to what both CPython and Cython accept and carries no Cython hints.
"""


def radius_scan(hashes, query, radius):
    """(position, distance) of every hash within ``radius`` bits of ``query``, in input order."""
    out = []
    position = 0
    for h in hashes:
        distance = (h ^ query).bit_count()
        if distance <= radius:
            out.append((position, distance))
        position += 1
    return out
