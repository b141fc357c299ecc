"""Streaming SHA-256/MD5 and one-pass copy-and-hash over OpenSSL (CFFI).

The C functions run with the GIL released.  This wrapper validates every
argument before C sees it and turns C error codes into Python exceptions.

A :class:`Hasher`'s running state can be saved with ``export_state()`` and
resumed with ``Hasher.from_state()``, in another process or on another host:
resumable uploads keep it between chunks instead of re-reading the data.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import BinaryIO

from pastefile.ext._hashing import ffi, lib

__all__ = [
    "HEAD_SIZE",
    "STATE_SIZE",
    "CopyResult",
    "Hasher",
    "HashingWriter",
    "SizeLimitExceeded",
    "copy_and_hash",
    "sha256",
    "md5",
]

HEAD_SIZE = 4096
_CHUNK = 256 * 1024
_ALGORITHMS = {"sha256": lib.PF_SHA256, "md5": lib.PF_MD5}
UNLIMITED = (1 << 64) - 1
# Bytes in an exported hasher state, for every algorithm (format version 1).
STATE_SIZE = lib.PF_STATE_SIZE


class SizeLimitExceeded(ValueError):
    """The source held more than ``limit`` bytes; nothing past the limit was written."""

    def __init__(self, limit: int, written: int):
        super().__init__(f"input exceeds the limit of {limit} bytes")
        self.limit = limit
        self.written = written


def _raise_for(rc: int) -> None:
    if rc == lib.PF_ENOMEM:
        raise MemoryError("out of memory in the hashing extension")
    if rc == lib.PF_ECRYPTO:
        raise RuntimeError("OpenSSL digest operation failed")
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc))
    raise RuntimeError(f"unexpected return code {rc}")


class Hasher:
    """A streaming digest like ``hashlib.sha256()``.

    ``update`` accepts any C-contiguous buffer (bytes, bytearray, memoryview,
    mmap, numpy arrays) and hashes it in place, without a copy.
    """

    __slots__ = ("_ptr", "name")

    def __init__(self, name: str = "sha256", data=None):
        try:
            algo = _ALGORITHMS[name]
        except KeyError:
            raise ValueError(f"unsupported algorithm {name!r}; use one of {sorted(_ALGORITHMS)}") from None
        ptr = lib.pf_hasher_new(algo)
        if ptr == ffi.NULL:
            raise MemoryError("cannot allocate a digest context")
        self._ptr = ffi.gc(ptr, lib.pf_hasher_free)
        self.name = name
        if data is not None:
            self.update(data)

    @property
    def digest_size(self) -> int:
        return lib.pf_hasher_size(self._ptr)

    def update(self, data) -> None:
        if type(data) is bytes:
            # CFFI passes bytes straight through as a pointer: no view needed
            rc = lib.pf_hasher_update(self._ptr, data, len(data))
            if rc != 0:
                _raise_for(rc)
            return
        if isinstance(data, str):
            raise TypeError("Strings must be encoded before hashing")
        view = memoryview(data)
        if not view.c_contiguous:
            raise BufferError("update() needs a C-contiguous buffer")
        if view.nbytes == 0:
            return
        buf = ffi.from_buffer(view)
        rc = lib.pf_hasher_update(self._ptr, ffi.cast("const unsigned char *", buf), view.nbytes)
        if rc != 0:
            _raise_for(rc)

    def digest(self) -> bytes:
        out = ffi.new("unsigned char[64]")
        outlen = ffi.new("unsigned int *")
        rc = lib.pf_hasher_digest(self._ptr, out, outlen)
        if rc != 0:
            _raise_for(rc)
        return ffi.buffer(out, outlen[0])[:]

    def hexdigest(self) -> str:
        return self.digest().hex()

    def export_state(self) -> bytes:
        """The running state as ``STATE_SIZE`` (120) bytes, for ``from_state``.

        A fixed, versioned, big-endian layout with a check value (described
        in ext/src/hashing.c), valid on any host running the same format.
        It holds up to 63 bytes of the input not yet hashed, so store it
        like the data itself.
        """
        out = ffi.new(f"unsigned char[{STATE_SIZE}]")
        rc = lib.pf_hasher_export(self._ptr, out, STATE_SIZE)
        if rc != STATE_SIZE:
            _raise_for(rc)
        return ffi.buffer(out, STATE_SIZE)[:]

    @classmethod
    def from_state(cls, name: str, state) -> "Hasher":
        """A new hasher that continues where the one that exported ``state`` stopped.

        Raises ValueError when ``state`` is not an exported ``name`` state:
        wrong size, another format version or algorithm, or damaged.
        """
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        try:
            algo = _ALGORITHMS[name]
        except KeyError:
            raise ValueError(f"unsupported algorithm {name!r}; use one of {sorted(_ALGORITHMS)}") from None
        if isinstance(state, str) or not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"state must be bytes, not {type(state).__name__}")
        state = bytes(state)
        if len(state) != STATE_SIZE:
            raise ValueError(f"a hasher state is {STATE_SIZE} bytes, not {len(state)}")
        err = ffi.new("int *")
        ptr = lib.pf_hasher_import(algo, state, STATE_SIZE, err)
        if ptr == ffi.NULL:
            rc = err[0]
            if rc == lib.PF_ESTATE_FORMAT:
                raise ValueError("not a hasher state of this format version")
            if rc == lib.PF_ESTATE_ALGO:
                raise ValueError(f"the state is of another algorithm, not {name}")
            if rc == lib.PF_ESTATE:
                raise ValueError("the hasher state is damaged or inconsistent")
            _raise_for(rc)
        clone = cls.__new__(cls)
        clone._ptr = ffi.gc(ptr, lib.pf_hasher_free)
        clone.name = name
        return clone

    def copy(self) -> "Hasher":
        clone = Hasher.__new__(Hasher)
        ptr = lib.pf_hasher_copy(self._ptr)
        if ptr == ffi.NULL:
            raise MemoryError("cannot copy a digest context")
        clone._ptr = ffi.gc(ptr, lib.pf_hasher_free)
        clone.name = self.name
        return clone


def sha256(data=None) -> Hasher:
    return Hasher("sha256", data)


def md5(data=None) -> Hasher:
    return Hasher("md5", data)


@dataclass(frozen=True, slots=True)
class CopyResult:
    digest: bytes  # raw SHA-256, 32 bytes
    size: int
    head: bytes  # the first HEAD_SIZE bytes, for content sniffing

    @property
    def hexdigest(self) -> str:
        return self.digest.hex()


def _is_fd(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _given_fd(name: str, value) -> int | None:
    """``value`` as a raw descriptor, None if it is an object; bools and
    negative numbers are refused rather than taken as stdin/stdout or EBADF."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a file descriptor or a file object, not bool")
    if not _is_fd(value):
        return None
    if value < 0:
        raise ValueError(f"{name} descriptor must be >= 0")
    return value


def _source_fd(src) -> int | None:
    """The descriptor to read from directly, or None to fall back to read()."""
    fd = _given_fd("src", src)
    if fd is not None:
        return fd
    try:
        fd = src.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    # A buffered reader may have read ahead of its logical position; align the
    # descriptor with it so no byte is lost or hashed twice.
    try:
        pos = src.tell()
        os.lseek(fd, pos, os.SEEK_SET)
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return fd


def _dest_fd(dst) -> int:
    fd = _given_fd("dst", dst)
    if fd is not None:
        return fd
    try:
        fd = dst.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        raise TypeError("dst must be a file descriptor or an object with fileno()") from None
    flush = getattr(dst, "flush", None)
    if flush is not None:
        flush()
    return fd


def _check_limit(limit: int | None) -> int:
    if limit is None:
        return UNLIMITED
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError("limit must be an int or None")
    if limit < 0:
        raise ValueError("limit must be >= 0")
    return min(limit, UNLIMITED)


def copy_and_hash(src: BinaryIO | int, dst: BinaryIO | int, limit: int | None = None) -> CopyResult:
    """Copy ``src`` to ``dst`` until EOF, hashing in the same pass.

    ``src`` is a descriptor or a file object; one with a real ``fileno()`` is
    read by C with the GIL released, anything else (BytesIO, sockets'
    makefile, ...) through its ``read()``.  ``dst`` must have a descriptor.
    Raises :class:`SizeLimitExceeded` when the source holds more than
    ``limit`` bytes, without writing the chunk that crossed it.
    """
    c_limit = _check_limit(limit)
    dst_fd = _dest_fd(dst)
    src_fd = _source_fd(src)
    if src_fd is None:
        if not hasattr(src, "read"):
            raise TypeError("src must be a file descriptor or a readable file object")
        return _copy_and_hash_python(src, dst_fd, c_limit)

    digest = ffi.new("unsigned char[32]")
    size = ffi.new("uint64_t *")
    head = ffi.new(f"unsigned char[{HEAD_SIZE}]")
    head_len = ffi.new("size_t *")
    rc = lib.pf_copy_and_hash(src_fd, dst_fd, c_limit, digest, size, head, HEAD_SIZE, head_len)
    if rc == 0 and not _is_fd(src):
        # keep the file object's position in step with its descriptor
        src.seek(0, os.SEEK_END)
    if rc == lib.PF_ELIMIT:
        raise SizeLimitExceeded(c_limit, size[0])
    if rc != 0:
        _raise_for(rc)
    return CopyResult(ffi.buffer(digest, 32)[:], size[0], ffi.buffer(head, head_len[0])[:])


class HashingWriter:
    """Push-style copy-and-hash: ``write`` chunks as they arrive (e.g. from a
    streaming multipart parser), then ``result()``.

    Same contract as :func:`copy_and_hash`: SHA-256 and the first
    ``HEAD_SIZE`` bytes in the same pass, and :class:`SizeLimitExceeded`
    for the chunk that would cross ``limit``, before any of it is written.
    """

    __slots__ = ("_fd", "_limit", "_hasher", "_head", "size")

    def __init__(self, dst, limit: int | None = None):
        self._limit = _check_limit(limit)
        self._fd = _dest_fd(dst)
        self._hasher = Hasher("sha256")
        self._head = bytearray()
        self.size = 0

    def write(self, chunk) -> int:
        view = memoryview(chunk).cast("B")
        n = len(view)
        if n > self._limit - self.size:
            raise SizeLimitExceeded(self._limit, self.size)
        if len(self._head) < HEAD_SIZE:
            self._head += view[: HEAD_SIZE - len(self._head)]
        self._hasher.update(view)
        while view:
            try:
                written = os.write(self._fd, view)
            except InterruptedError:
                continue
            view = view[written:]
        self.size += n
        return n

    def result(self) -> CopyResult:
        return CopyResult(self._hasher.digest(), self.size, bytes(self._head))


def _copy_and_hash_python(src, dst_fd: int, limit: int) -> CopyResult:
    writer = HashingWriter(dst_fd, limit)
    while True:
        chunk = src.read(_CHUNK)
        if chunk is None:
            # a non-blocking source with nothing yet is not the end of the file
            raise BlockingIOError("src is non-blocking and has no data ready")
        if not chunk:
            break
        writer.write(chunk)
    return writer.result()
