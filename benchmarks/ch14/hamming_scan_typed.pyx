# cython: language_level=3
"""The radius scan of hamming_scan.py with C types.

``radius_scan`` takes the same input (any iterable of Python ints, each
0 <= h < 2**64) and gives the same list; each hash is converted to a C
uint64 once and the popcount is the compiler's builtin.  Values outside the
64-bit range raise OverflowError instead of being counted.

``radius_scan_packed`` scans hashes already packed as native uint64 (any
contiguous buffer of 8-byte unsigned items: array('Q'), a NumPy uint64
array), as the index stores them, to show what the conversion from Python
ints costs.  It reads the buffer through the plain buffer protocol rather
than a typed memoryview, which keeps the generated C (and the compile) small.
"""
from cpython.buffer cimport PyBUF_ANY_CONTIGUOUS, PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint64_t

NATIVE_U64 = {b"Q", b"@Q", b"L", b"@L"}  # with itemsize 8


cdef extern from *:
    int popcount64 "__builtin_popcountll" (unsigned long long x) nogil


def radius_scan(hashes, uint64_t query, long radius):
    cdef list out = []
    cdef Py_ssize_t position = 0
    cdef uint64_t h
    cdef long distance
    for item in hashes:
        h = item
        distance = popcount64(h ^ query)
        if distance <= radius:
            out.append((position, distance))
        position += 1
    return out


def radius_scan_packed(hashes, uint64_t query, long radius):
    cdef Py_buffer view
    cdef const uint64_t *data
    cdef list out = []
    cdef Py_ssize_t position, count
    cdef long distance
    PyObject_GetBuffer(hashes, &view, PyBUF_ANY_CONTIGUOUS | PyBUF_FORMAT)
    try:
        if view.itemsize != 8 or view.format not in NATIVE_U64:
            raise TypeError("radius_scan_packed needs a buffer of native unsigned 64-bit integers")
        data = <const uint64_t *>view.buf
        count = view.len // 8
        for position in range(count):
            distance = popcount64(data[position] ^ query)
            if distance <= radius:
                out.append((position, distance))
    finally:
        PyBuffer_Release(&view)
    return out
