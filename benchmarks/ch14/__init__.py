"""The chapter 14 comparison on one of pastefile's kernels.

The Hamming-distance radius scan of the near-duplicate index (every stored
64-bit hash against the query, popcount of the xor, keep those within the
radius), three ways: plain Python (``hamming_scan.py``), that very file
compiled by Cython unchanged, and a typed Cython version
(``hamming_scan_typed.pyx``).  ``build.build()`` compiles the two extension
modules into a directory of the caller's choosing and loads all three.
"""
