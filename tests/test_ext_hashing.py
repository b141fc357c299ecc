"""Tests for pastefile.ext.hashing (CFFI over OpenSSL), checked against hashlib."""
from __future__ import annotations

import array
import fcntl
import hashlib
import io
import mmap
import os
import random
import select
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pastefile.ext import hashing
from pastefile.ext.hashing import (
    HEAD_SIZE,
    CopyResult,
    Hasher,
    SizeLimitExceeded,
    copy_and_hash,
)


KiB = 1024
MiB = 1024 * KiB
CHUNK = 256 * KiB  # read size of both copy paths (C buffer and Python read())

SIZES = [
    0,
    1,
    63,
    64,
    65,
    HEAD_SIZE - 1,
    HEAD_SIZE,
    HEAD_SIZE + 1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK + 7,
    3 * MiB + 123,
]


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(f"{seed}:{n}").randbytes(n)


def sha256_of(data) -> bytes:
    return hashlib.sha256(data).digest()


def write_file(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_file(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def check_result(result: CopyResult, data: bytes) -> None:
    assert isinstance(result, CopyResult)
    assert result.digest == sha256_of(data)
    assert result.hexdigest == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)
    assert result.head == data[:HEAD_SIZE]


# ---------------------------------------------------------------------------
# Source / destination kinds
# ---------------------------------------------------------------------------

SRC_KINDS = ["buffered", "raw_fileio", "fd", "bytesio"]
C_SRC_KINDS = ["buffered", "raw_fileio", "fd"]  # go through pf_copy_and_hash


class Source:
    """Opens ``path`` (holding ``data``) as one of SRC_KINDS."""

    def __init__(self, kind: str, path, data: bytes):
        self.kind = kind
        self.data = data
        if kind == "buffered":
            self.obj = open(path, "rb")
        elif kind == "raw_fileio":
            self.obj = open(path, "rb", buffering=0)
        elif kind == "fd":
            self.obj = os.open(path, os.O_RDONLY)
        elif kind == "bytesio":
            self.obj = io.BytesIO(data)
        else:  # pragma: no cover
            raise AssertionError(kind)

    def position(self) -> int:
        if self.kind == "fd":
            return os.lseek(self.obj, 0, os.SEEK_CUR)
        return self.obj.tell()

    def close(self) -> None:
        if self.kind == "fd":
            os.close(self.obj)
        else:
            self.obj.close()


@pytest.fixture
def open_source(tmp_path):
    opened = []

    def factory(kind: str, data: bytes, name: str = "src.bin") -> Source:
        path = write_file(tmp_path / name, data)
        src = Source(kind, path, data)
        opened.append(src)
        return src

    yield factory
    for src in opened:
        src.close()


@pytest.fixture
def dst_path(tmp_path):
    return tmp_path / "dst.bin"


def open_dst_fd(path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


# ---------------------------------------------------------------------------
# copy_and_hash: correctness against hashlib
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SRC_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_copy_and_hash_matches_hashlib(open_source, dst_path, kind, size):
    data = random_bytes(size)
    src = open_source(kind, data)
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(src.obj, dst)
    check_result(result, data)
    assert read_file(dst_path) == data
    # the source is left at EOF, whichever path copied it
    assert src.position() == size


@pytest.mark.parametrize("kind", SRC_KINDS)
@pytest.mark.parametrize("size", [0, 1, HEAD_SIZE + 1, CHUNK + 1])
def test_copy_and_hash_to_raw_fd(open_source, dst_path, kind, size):
    data = random_bytes(size, seed=1)
    src = open_source(kind, data)
    fd = open_dst_fd(dst_path)
    try:
        result = copy_and_hash(src.obj, fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == size
    finally:
        os.close(fd)
    check_result(result, data)
    assert read_file(dst_path) == data


def test_copy_and_hash_several_megabytes_unbuffered_dst(open_source, dst_path):
    data = random_bytes(5 * MiB + 3, seed=2)
    src = open_source("buffered", data)
    with open(dst_path, "wb", buffering=0) as dst:
        result = copy_and_hash(src.obj, dst)
    check_result(result, data)
    assert read_file(dst_path) == data


@pytest.mark.parametrize("already_read", [1, 10, 100, HEAD_SIZE, 8191, 8192, 8193, 100_000, CHUNK + 5])
@pytest.mark.parametrize("kind", ["buffered", "raw_fileio", "bytesio"])
def test_copy_and_hash_partially_read_file_object(open_source, dst_path, kind, already_read):
    """Only the bytes after the logical position are copied, even though a
    BufferedReader has read ahead of it on the descriptor."""
    data = random_bytes(2 * CHUNK + 4321, seed=3)
    src = open_source(kind, data)
    assert src.obj.read(already_read) == data[:already_read]
    if kind == "buffered" and already_read <= 100:
        # the read-ahead really happened, so the descriptor must be realigned
        assert os.lseek(src.obj.fileno(), 0, os.SEEK_CUR) > already_read
    rest = data[already_read:]
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(src.obj, dst)
    check_result(result, rest)
    assert read_file(dst_path) == rest
    assert src.obj.tell() == len(data)
    assert src.obj.read() == b""


def test_copy_and_hash_after_peek_and_seek(open_source, dst_path):
    data = random_bytes(CHUNK + 999, seed=4)
    src = open_source("buffered", data)
    src.obj.seek(777)
    src.obj.peek(10)  # fills the buffer past the logical position
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(src.obj, dst)
    check_result(result, data[777:])
    assert read_file(dst_path) == data[777:]


def test_copy_and_hash_raw_fd_at_offset(open_source, dst_path):
    data = random_bytes(CHUNK + 17, seed=5)
    src = open_source("fd", data)
    os.lseek(src.obj, 1000, os.SEEK_SET)
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(src.obj, dst)
    check_result(result, data[1000:])
    assert read_file(dst_path) == data[1000:]


@pytest.mark.parametrize("kind", SRC_KINDS)
def test_copy_and_hash_flushes_buffered_dst_first(open_source, dst_path, kind):
    data = random_bytes(CHUNK + 3, seed=6)
    src = open_source(kind, data)
    with open(dst_path, "wb") as dst:
        dst.write(b"prefix-still-in-the-buffer")
        result = copy_and_hash(src.obj, dst)
        dst.write(b"suffix")
    check_result(result, data)
    assert read_file(dst_path) == b"prefix-still-in-the-buffer" + data + b"suffix"


class ReadOnlyStream:
    """A readable object without fileno(), returning short reads."""

    def __init__(self, data: bytes, max_read: int):
        self._buf = io.BytesIO(data)
        self._max = max_read

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self._max
        return self._buf.read(min(n, self._max))


@pytest.mark.parametrize("max_read", [1, 1000, CHUNK - 1, CHUNK])
def test_copy_and_hash_python_path_short_reads(dst_path, max_read):
    data = random_bytes(CHUNK + 5000 if max_read > 1 else 5000, seed=7)
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(ReadOnlyStream(data, max_read), dst)
    check_result(result, data)
    assert read_file(dst_path) == data


WRITER = r"""
import os, random, sys, time
n, piece, delay, seed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
data = random.Random(seed).randbytes(n)
view = memoryview(data)
for start in range(0, n, piece):
    part = view[start:start + piece]
    while part:
        part = part[os.write(1, part):]
    if delay:
        time.sleep(delay)
"""


def spawn_writer(n: int, piece: int = 64 * KiB, delay: float = 0.0, seed: str = "pipe"):
    """A child process writing ``n`` deterministic bytes to a pipe.

    A separate process (not a thread) feeds the pipe, so even a GIL-holding
    bug in the extension cannot deadlock the test.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(n), str(piece), str(delay), seed],
        stdout=subprocess.PIPE,
    )
    return proc, random.Random(seed).randbytes(n)


def finish_writer(proc) -> None:
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize("as_file_object", [False, True], ids=["int-fd", "file-object"])
def test_copy_and_hash_from_pipe(dst_path, as_file_object):
    """A raw pipe descriptor goes through C; a pipe file object cannot tell()
    and falls back to read()."""
    proc, data = spawn_writer(3 * CHUNK + 11)
    try:
        src = proc.stdout if as_file_object else proc.stdout.fileno()
        with open(dst_path, "wb") as dst:
            result = copy_and_hash(src, dst)
    finally:
        finish_writer(proc)
    check_result(result, data)
    assert read_file(dst_path) == data


def test_copy_and_hash_concurrent_threads(tmp_path):
    datas = [random_bytes(CHUNK * k + k, seed=100 + k) for k in range(1, 7)]
    results: dict[int, CopyResult] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            src = write_file(tmp_path / f"s{i}", datas[i])
            with open(src, "rb") as s, open(tmp_path / f"d{i}", "wb") as d:
                results[i] = copy_and_hash(s, d)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for i, data in enumerate(datas):
        check_result(results[i], data)
        assert read_file(tmp_path / f"d{i}") == data


# ---------------------------------------------------------------------------
# copy_and_hash: the size limit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SRC_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_limit_exactly_at_size_succeeds(open_source, dst_path, kind, size):
    data = random_bytes(size, seed=8)
    src = open_source(kind, data)
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(src.obj, dst, limit=size)
    check_result(result, data)
    assert read_file(dst_path) == data


@pytest.mark.parametrize("kind", SRC_KINDS)
@pytest.mark.parametrize("size", [s for s in SIZES if s > 0])
def test_limit_one_below_size_raises(open_source, dst_path, kind, size):
    data = random_bytes(size, seed=9)
    src = open_source(kind, data)
    limit = size - 1
    with open(dst_path, "wb") as dst:
        with pytest.raises(SizeLimitExceeded) as info:
            copy_and_hash(src.obj, dst, limit=limit)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.limit == limit
    assert str(limit) in str(exc)
    written = read_file(dst_path)
    assert len(written) <= limit
    # Both paths read whole 256 KiB chunks from a regular file / BytesIO and
    # refuse the chunk that crosses the limit, so exactly the whole chunks
    # before it were written.
    expected = (limit // CHUNK) * CHUNK
    assert exc.written == expected
    assert written == data[:expected]


@pytest.mark.parametrize("kind", SRC_KINDS)
@pytest.mark.parametrize(
    "limit", [0, 1, HEAD_SIZE, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 3 * CHUNK + 99]
)
def test_limit_chunk_boundaries(open_source, dst_path, kind, limit):
    size = 3 * CHUNK + 100
    data = random_bytes(size, seed=10)
    src = open_source(kind, data)
    with open(dst_path, "wb") as dst:
        with pytest.raises(SizeLimitExceeded) as info:
            copy_and_hash(src.obj, dst, limit=limit)
    expected = (limit // CHUNK) * CHUNK
    assert info.value.written == expected
    assert read_file(dst_path) == data[:expected]


@pytest.mark.parametrize("kind", ["buffered", "bytesio"])
def test_limit_counts_from_current_position(open_source, dst_path, kind):
    data = random_bytes(CHUNK + 1000, seed=11)
    src = open_source(kind, data)
    src.obj.read(1000)
    with open(dst_path, "wb") as dst:
        result = copy_and_hash(src.obj, dst, limit=CHUNK)
    check_result(result, data[1000:])
    src.obj.seek(999)
    with open(dst_path, "wb") as dst, pytest.raises(SizeLimitExceeded) as info:
        copy_and_hash(src.obj, dst, limit=CHUNK)
    # the first whole chunk fits, the 1-byte rest crosses the limit
    assert info.value.written == CHUNK
    assert read_file(dst_path) == data[999 : 999 + CHUNK]


def test_limit_zero_with_empty_source(open_source, dst_path):
    for kind in SRC_KINDS:
        src = open_source(kind, b"", name=f"empty-{kind}")
        with open(dst_path, "wb") as dst:
            check_result(copy_and_hash(src.obj, dst, limit=0), b"")


@pytest.mark.parametrize("limit", [1 << 64, (1 << 64) - 1, 1 << 80])
def test_huge_limit_means_unlimited(open_source, dst_path, limit):
    data = random_bytes(CHUNK + 1, seed=12)
    src = open_source("buffered", data)
    with open(dst_path, "wb") as dst:
        check_result(copy_and_hash(src.obj, dst, limit=limit), data)


def test_limit_on_pipe_never_writes_past_limit(dst_path):
    """Pipe reads return arbitrary amounts; whatever was written stays below the limit."""
    limit = 200 * KiB + 3
    proc, data = spawn_writer(CHUNK * 2, piece=4096 + 17, delay=0.0)
    try:
        with open(dst_path, "wb") as dst, pytest.raises(SizeLimitExceeded) as info:
            copy_and_hash(proc.stdout.fileno(), dst, limit=limit)
    finally:
        proc.kill()  # it may block on a full pipe now that nobody reads
        proc.stdout.close()
        proc.wait(timeout=60)
    written = read_file(dst_path)
    assert len(written) <= limit
    assert info.value.written == len(written)
    assert written == data[: len(written)]


# ---------------------------------------------------------------------------
# copy_and_hash: bad arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [-1, -(1 << 70)])
def test_negative_limit_raises_value_error(open_source, dst_path, limit):
    src = open_source("buffered", b"abc")
    with open(dst_path, "wb") as dst, pytest.raises(ValueError, match="limit"):
        copy_and_hash(src.obj, dst, limit=limit)
    assert src.obj.tell() == 0  # validated before anything was read


@pytest.mark.parametrize("limit", [1.5, "10", b"10", True, False, [10]])
def test_limit_of_wrong_type_raises_type_error(open_source, dst_path, limit):
    src = open_source("buffered", b"abc")
    with open(dst_path, "wb") as dst, pytest.raises(TypeError, match="limit"):
        copy_and_hash(src.obj, dst, limit=limit)
    assert src.obj.tell() == 0
    assert read_file(dst_path) == b""


@pytest.mark.parametrize("dst", [io.BytesIO(), None, "some/path", b"bytes", 1.5, object()], ids=repr)
def test_dst_without_fileno_raises_type_error(open_source, dst):
    src = open_source("buffered", b"abc")
    with pytest.raises(TypeError, match="dst"):
        copy_and_hash(src.obj, dst)
    assert src.obj.tell() == 0


@pytest.mark.parametrize("src", [None, b"bytes", "some/path", 1.5, object(), [1, 2]], ids=repr)
def test_src_that_is_not_readable_raises_type_error(dst_path, src):
    with open(dst_path, "wb") as dst, pytest.raises(TypeError, match="src"):
        copy_and_hash(src, dst)


def test_closed_files_raise(open_source, dst_path, tmp_path):
    src = open_source("buffered", b"abc")
    closed = open(tmp_path / "closed", "wb")
    closed.close()
    with pytest.raises((ValueError, TypeError)):
        copy_and_hash(src.obj, closed)
    with open(dst_path, "wb") as dst, pytest.raises((ValueError, TypeError)):
        copy_and_hash(closed, dst)


def test_os_errors_from_c_are_raised(open_source, dst_path, tmp_path):
    data = random_bytes(1000, seed=13)
    src = open_source("fd", data)
    write_file(dst_path, b"")
    read_only = os.open(dst_path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            copy_and_hash(src.obj, read_only)
        assert info.value.errno == 9  # EBADF
    finally:
        os.close(read_only)
    write_only = os.open(tmp_path / "wo", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with open(dst_path, "wb") as dst, pytest.raises(OSError):
            copy_and_hash(write_only, dst)
    finally:
        os.close(write_only)
    # a negative descriptor is refused before C sees it
    with open(dst_path, "wb") as dst, pytest.raises(ValueError):
        copy_and_hash(-1, dst)
    with pytest.raises(ValueError):
        copy_and_hash(io.BytesIO(b"x"), -1)


def test_nonblocking_pipe_fd_without_data_raises(dst_path):
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        os.write(w, b"x" * 1000)
        with open(dst_path, "wb") as dst, pytest.raises(BlockingIOError):
            copy_and_hash(r, dst)
    finally:
        os.close(r)
        os.close(w)


def test_nonblocking_pipe_file_object_without_data_raises(dst_path):
    """The read() path must not take ``read() -> None`` (non-blocking, no data
    yet) for EOF and return a truncated result; it fails like the C path."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        os.write(w, b"x" * 1000)  # the writer stays open: this is not EOF
        with open(r, "rb", buffering=0, closefd=False) as src:
            with open(dst_path, "wb") as dst, pytest.raises(BlockingIOError):
                copy_and_hash(src, dst)
    finally:
        os.close(r)
        os.close(w)


def test_python_path_write_error(dst_path):
    write_file(dst_path, b"")
    read_only = os.open(dst_path, os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            copy_and_hash(io.BytesIO(b"abc"), read_only)
    finally:
        os.close(read_only)


# ---------------------------------------------------------------------------
# copy_and_hash releases the GIL
# ---------------------------------------------------------------------------


GATED = r"""
import hashlib, os, random, select, sys
mode, first, total, ctrl, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
data = random.Random(seed).randbytes(total) if mode == "write" else b""
digest, got = hashlib.sha256(), 0

def move(upto):
    # write: data[got:upto] to stdout; read: stdin up to upto bytes (None: EOF)
    global got
    while upto is None or got < upto:
        if mode == "write":
            got += os.write(1, data[got:upto])
        else:
            chunk = os.read(0, 1 << 16 if upto is None else min(1 << 16, upto - got))
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)

move(first)
os.write(2, b"paused\n")
ready, _, _ = select.select([ctrl], [], [], 60)  # a deadline: a held GIL fails, never hangs
os.write(2, b"go\n" if ready else b"timeout\n")
move(total if mode == "write" else None)
if mode == "read":
    os.write(2, f"{got} {digest.hexdigest()}\n".encode())
"""


def _gated(mode: str, first: int, total: int, seed: str, **popen):
    """A child that writes (``mode="write"``, to its stdout) or reads (from
    its stdin) ``first`` bytes, says ``paused`` on stderr, and goes on only
    when the parent writes to the control pipe it returns (``go``), or after
    a minute (``timeout``)."""
    ctrl_r, ctrl_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", GATED, mode, str(first), str(total), str(ctrl_r), seed],
            stderr=subprocess.PIPE, pass_fds=(ctrl_r,), **popen,
        )
    finally:
        os.close(ctrl_r)
    return proc, ctrl_w


def _copy_in_thread(src, dst_fd: int, result: dict) -> threading.Thread:
    def run() -> None:
        try:
            result["value"] = copy_and_hash(src, dst_fd)
        except BaseException as exc:  # pragma: no cover - reported by the caller
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    return worker


def _main_thread_runs_while_c_waits(proc, ctrl_w: int, worker: threading.Thread) -> None:
    """The copy is blocked in C on the paused child: the main thread reads
    the child's ``paused``, sees the copy still running and lets the child
    go on.  Were the GIL held during the C call, the main thread could do
    none of it until the child gave up waiting (``timeout``)."""
    try:
        # a deadline: a copy that failed early leaves the child waiting for bytes
        assert select.select([proc.stderr], [], [], 60)[0], "the child never paused"
        assert proc.stderr.readline() == b"paused\n"
        running = worker.is_alive()
        os.write(ctrl_w, b"g")
    finally:
        os.close(ctrl_w)
    assert proc.stderr.readline() == b"go\n", "the main thread could not run while C copied"
    assert running, "the copy ended before the child let it go on"


def test_copy_and_hash_releases_gil_on_pipe(tmp_path):
    # The writer stops after more than a pipe holds, so the copy is under
    # way (C read the rest) and cannot end (no EOF yet): C waits in read().
    total, first = 2 * MiB, 512 * KiB
    proc, ctrl_w = _gated("write", first, total, "gil", stdout=subprocess.PIPE)
    data = random.Random("gil").randbytes(total)
    assert fcntl.fcntl(proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) < first
    dst_fd = open_dst_fd(tmp_path / "gil.bin")
    result: dict = {}
    try:
        worker = _copy_in_thread(proc.stdout.fileno(), dst_fd, result)
        _main_thread_runs_while_c_waits(proc, ctrl_w, worker)
        worker.join(60)
        assert not worker.is_alive()
    finally:
        os.close(dst_fd)
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
        proc.stderr.close()
    assert "error" not in result, result.get("error")
    check_result(result["value"], data)
    assert read_file(tmp_path / "gil.bin") == data


def test_copy_and_hash_releases_gil_on_regular_file(tmp_path):
    # A real file object goes through C too.  The destination is a pipe
    # whose reader stops after more than a pipe holds: the copy is under way
    # and cannot end (the rest does not fit), so C waits in write().
    total, first = 8 * MiB, 1 * MiB
    src_path = tmp_path / "big.bin"
    block = random_bytes(MiB, seed=14)
    with open(src_path, "wb") as f:
        for _ in range(total // MiB):
            f.write(block)
    r, w = os.pipe()
    try:
        assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) < min(first, total - first)
        proc, ctrl_w = _gated("read", first, total, "unused", stdin=r)
    finally:
        os.close(r)
    result: dict = {}
    try:
        with open(src_path, "rb") as src:
            worker = _copy_in_thread(src, w, result)
            _main_thread_runs_while_c_waits(proc, ctrl_w, worker)
            worker.join(60)
            assert not worker.is_alive()
    finally:
        os.close(w)  # the reader's EOF
        assert proc.wait(timeout=60) == 0
    received = proc.stderr.read().decode().split()
    proc.stderr.close()
    assert "error" not in result, result.get("error")
    assert result["value"].size == total
    assert result["value"].digest == sha256_of(block * (total // MiB))
    assert received == [str(total), sha256_of(block * (total // MiB)).hex()]


# ---------------------------------------------------------------------------
# Hasher
# ---------------------------------------------------------------------------

ALGORITHMS = {"sha256": (hashing.sha256, hashlib.sha256), "md5": (hashing.md5, hashlib.md5)}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
@pytest.mark.parametrize("size", SIZES)
def test_hasher_matches_hashlib(name, size):
    ours, theirs = ALGORITHMS[name]
    data = random_bytes(size, seed=15)
    h = ours(data)
    assert h.digest() == theirs(data).digest()
    assert h.hexdigest() == theirs(data).hexdigest()
    h2 = Hasher(name)
    h2.update(data)
    assert h2.digest() == theirs(data).digest()


@pytest.mark.parametrize("name,size", [("sha256", 32), ("md5", 16)])
def test_hasher_attributes(name, size):
    h = Hasher(name)
    assert h.name == name
    assert h.digest_size == size
    assert len(h.digest()) == size
    assert Hasher().name == "sha256"
    assert Hasher().digest() == hashlib.sha256().digest()


def test_hasher_empty_digests():
    assert hashing.sha256().hexdigest() == hashlib.sha256().hexdigest()
    assert hashing.md5().hexdigest() == hashlib.md5().hexdigest()
    assert hashing.sha256(b"").digest() == hashlib.sha256(b"").digest()


def _buffers(data: bytes):
    yield "bytes", data
    yield "bytearray", bytearray(data)
    yield "memoryview", memoryview(data)
    yield "memoryview-slice", memoryview(b"xx" + data + b"yy")[2:-2]
    yield "numpy-uint8", np.frombuffer(data, dtype=np.uint8).copy()
    yield "readonly-numpy", np.frombuffer(data, dtype=np.uint8)
    if len(data) % 8 == 0:
        yield "numpy-float64", np.frombuffer(data, dtype=np.float64).copy()
        yield "numpy-2d", np.frombuffer(data, dtype=np.uint8).reshape(8, -1).copy()
        yield "memoryview-cast", memoryview(data).cast("Q")
    if len(data) % 4 == 0:
        yield "array-int32", array.array("i", data)


@pytest.mark.parametrize("size", [0, 8, 64, 4096, CHUNK + 8])
def test_hasher_accepts_contiguous_buffers(size):
    data = random_bytes(size, seed=16)
    expected = sha256_of(data)
    for label, buf in _buffers(data):
        h = hashing.sha256()
        h.update(buf)
        assert h.digest() == expected, label
        assert hashing.sha256(buf).digest() == expected, label
        assert hashing.md5(buf).digest() == hashlib.md5(data).digest(), label


def test_hasher_numpy_scalar_and_large_array():
    scalar = np.float64(3.25)
    assert hashing.sha256(scalar).digest() == sha256_of(scalar.tobytes())
    arr = np.arange(1_000_000, dtype=np.int64)
    assert hashing.sha256(arr).digest() == sha256_of(arr.tobytes())


def test_hasher_mmap(tmp_path):
    data = random_bytes(3 * mmap.PAGESIZE + 5, seed=17)
    path = write_file(tmp_path / "m.bin", data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        h = hashing.sha256()
        h.update(m)
        assert h.digest() == sha256_of(data)


@pytest.mark.parametrize(
    "buf",
    [
        pytest.param(lambda: memoryview(b"abcdefgh")[::2], id="memoryview-step"),
        pytest.param(lambda: memoryview(bytearray(b"abcdefgh"))[::-1], id="memoryview-reversed"),
        pytest.param(lambda: np.arange(20, dtype=np.uint8)[::3], id="numpy-step"),
        pytest.param(lambda: np.asfortranarray(np.arange(12, dtype=np.uint8).reshape(3, 4)), id="numpy-fortran"),
        pytest.param(lambda: np.arange(12, dtype=np.uint8).reshape(3, 4).T, id="numpy-transposed"),
        pytest.param(lambda: np.arange(24, dtype=np.uint8).reshape(4, 6)[:, 1:3], id="numpy-2d-slice"),
    ],
)
def test_hasher_rejects_non_contiguous_buffers(buf):
    h = hashing.sha256(b"before")
    with pytest.raises(BufferError):
        h.update(buf())
    # a refused update leaves the state untouched
    assert h.digest() == sha256_of(b"before")


@pytest.mark.parametrize("value", ["text", "", 123, 1.5, None, [1, 2], object()], ids=repr)
def test_hasher_rejects_non_buffers(value):
    h = hashing.sha256(b"before")
    with pytest.raises(TypeError):
        h.update(value)
    assert h.digest() == sha256_of(b"before")
    if value is not None:  # None means "no initial data" for the constructor
        with pytest.raises(TypeError):
            hashing.sha256(value)


def test_hasher_str_error_message():
    with pytest.raises(TypeError, match="encoded"):
        hashing.md5().update("é")


@pytest.mark.parametrize("name", ["sha1", "SHA256", "", "sha512", "blake2b"])
def test_hasher_unknown_algorithm(name):
    with pytest.raises(ValueError, match="unsupported"):
        Hasher(name)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_hasher_copy_is_independent(name):
    ours, theirs = ALGORITHMS[name]
    a = ours(b"common prefix ")
    b = a.copy()
    assert b.name == a.name
    assert b.digest() == a.digest()
    a.update(b"for a")
    b.update(b"for b, longer " * 100)
    assert a.digest() == theirs(b"common prefix for a").digest()
    assert b.digest() == theirs(b"common prefix " + b"for b, longer " * 100).digest()
    c = b.copy()
    del b  # freeing the original must not affect the clone
    c.update(b"!")
    assert c.digest() == theirs(b"common prefix " + b"for b, longer " * 100 + b"!").digest()
    a2 = a.copy()
    del a
    assert a2.digest() == theirs(b"common prefix for a").digest()


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_hasher_digest_then_more_updates(name):
    ours, theirs = ALGORITHMS[name]
    h = ours()
    ref = theirs()
    for i, part in enumerate([b"", b"a", b"bc" * 50, random_bytes(CHUNK, seed=18), b"z"]):
        h.update(part)
        ref.update(part)
        assert h.digest() == ref.digest(), i
        assert h.digest() == ref.digest(), i  # digest() does not finalise the state
        assert h.hexdigest() == ref.hexdigest(), i


def test_hasher_update_sees_buffer_contents_at_call_time():
    buf = bytearray(b"original")
    h = hashing.sha256(buf)
    buf[:] = b"mutated!"
    assert h.digest() == sha256_of(b"original")


def test_module_level_sha256_and_md5_agree_with_hashlib():
    data = random_bytes(100_000, seed=19)
    assert hashing.sha256(data).digest() == hashlib.sha256(data).digest()
    assert hashing.md5(data).digest() == hashlib.md5(data).digest()
    assert hashing.md5(data).hexdigest() == hashlib.md5(data).hexdigest()


@st.composite
def chunked_data(draw, max_size=20_000):
    data = draw(st.binary(max_size=max_size))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    kinds = draw(st.lists(st.sampled_from(["bytes", "bytearray", "memoryview", "numpy"]),
                          min_size=len(chunks), max_size=len(chunks)))
    return data, list(zip(kinds, chunks))


def _as_buffer(kind: str, chunk: bytes):
    if kind == "bytearray":
        return bytearray(chunk)
    if kind == "memoryview":
        return memoryview(chunk)
    if kind == "numpy":
        return np.frombuffer(chunk, dtype=np.uint8)
    return chunk


@settings(max_examples=150, deadline=None)
@given(chunked_data(), st.sampled_from(sorted(ALGORITHMS)), st.booleans())
def test_hasher_random_chunkings_match_hashlib(case, name, copy_midway):
    data, chunks = case
    ours, theirs = ALGORITHMS[name]
    h = ours()
    for i, (kind, chunk) in enumerate(chunks):
        h.update(_as_buffer(kind, chunk))
        if copy_midway and i == len(chunks) // 2:
            h = h.copy()
    assert h.digest() == theirs(data).digest()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=3 * HEAD_SIZE),
    limit=st.one_of(st.none(), st.integers(0, 4 * HEAD_SIZE)),
    max_read=st.integers(1, 2 * HEAD_SIZE),
)
def test_copy_and_hash_python_path_property(tmp_path, data, limit, max_read):
    dst = tmp_path / "prop.bin"
    with open(dst, "wb") as f:
        if limit is not None and len(data) > limit:
            with pytest.raises(SizeLimitExceeded) as info:
                copy_and_hash(ReadOnlyStream(data, max_read), f, limit=limit)
            written = info.value.written
            assert written <= limit
            assert read_file(dst) == data[:written]
            return
        result = copy_and_hash(ReadOnlyStream(data, max_read), f, limit=limit)
    check_result(result, data)
    assert read_file(dst) == data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3 * HEAD_SIZE), skip=st.integers(0, 3 * HEAD_SIZE))
def test_copy_and_hash_c_path_property(tmp_path, data, skip):
    src_path = write_file(tmp_path / "prop-src.bin", data)
    skip = min(skip, len(data))
    with open(src_path, "rb") as src, open(tmp_path / "prop-dst.bin", "wb") as dst:
        src.read(skip)
        result = copy_and_hash(src, dst)
    check_result(result, data[skip:])
    assert read_file(tmp_path / "prop-dst.bin") == data[skip:]


@pytest.mark.parametrize("flag", [True, False])
def test_bool_is_not_a_descriptor(flag, tmp_path):
    import io as _io

    from pastefile.ext.hashing import copy_and_hash as _copy

    with open(tmp_path / "dst", "wb") as dst:
        with pytest.raises(TypeError):
            _copy(_io.BytesIO(b"x"), flag)
        with pytest.raises(TypeError):
            _copy(flag, dst)


def test_concurrent_multi_chunk_copies_agree_with_hashlib(tmp_path):
    """Inputs over one chunk run the two-thread pipeline; several at once,
    from files and from pipes that deliver short reads."""
    import threading as _threading

    failures = []

    def work(seed):
        rng = random.Random(seed)
        for i in range(6):
            size = rng.choice([CHUNK + 1, 2 * CHUNK, 9 * CHUNK + 3, rng.randrange(CHUNK, 5 * 1024 * 1024)])
            data = rng.randbytes(size)
            src, dst = tmp_path / f"s{seed}-{i}", tmp_path / f"d{seed}-{i}"
            src.write_bytes(data)
            with open(src, "rb") as s, open(dst, "wb") as d:
                result = copy_and_hash(s, d)
            if result.digest != hashlib.sha256(data).digest() or dst.read_bytes() != data:
                failures.append(("file", seed, size))
            r_fd, w_fd = os.pipe()

            def feed(view=memoryview(data), fd=w_fd, rng=random.Random(seed * 100 + i)):
                while view:
                    view = view[os.write(fd, view[: rng.randrange(1, 70000)]) :]
                os.close(fd)

            feeder = _threading.Thread(target=feed)
            feeder.start()
            with open(dst, "wb") as d:
                result = copy_and_hash(r_fd, d)
            feeder.join()
            os.close(r_fd)
            if result.digest != hashlib.sha256(data).digest() or result.size != size:
                failures.append(("pipe", seed, size))

    threads = [_threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# ---------------------------------------------------------------------------
# Saved states: export_state() / Hasher.from_state()
# ---------------------------------------------------------------------------
# Layout, format version 1 (ext/src/hashing.c): "PFHS", version, algorithm,
# pending count n, reserved, the length in bits (u64), the chaining words
# (u32 each), the 64-byte block buffer, then 8 bytes of SHA-256 over the rest.
# Every integer is big-endian.

from pastefile.ext import reference  # noqa: E402
from pastefile.ext.hashing import STATE_SIZE  # noqa: E402

STATE_ALGOS = {"sha256": 1, "md5": 2}
MD5_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


def seal(body: bytes) -> bytes:
    """A state from its first 112 bytes: appends the check value."""
    assert len(body) == 112
    return body + hashlib.sha256(body).digest()[:8]


def craft_state(name: str, words, length: int, pending: bytes, *, version=1, reserved=0) -> bytes:
    """A format-1 state built by hand, independently of the C code."""
    chaining = b"".join(w.to_bytes(4, "big") for w in words).ljust(32, b"\0")
    body = (
        b"PFHS" + bytes([version, STATE_ALGOS[name], len(pending) % 256, reserved])
        + ((length * 8) % 2**64).to_bytes(8, "big") + chaining + pending.ljust(64, b"\0")
    )
    return seal(body)


def parse_state(state: bytes) -> dict:
    assert len(state) == STATE_SIZE
    return {
        "magic": state[:4],
        "version": state[4],
        "algo": state[5],
        "n": state[6],
        "reserved": state[7],
        "bits": int.from_bytes(state[8:16], "big"),
        "words": [int.from_bytes(state[i : i + 4], "big") for i in range(16, 48, 4)],
        "block": state[48:112],
        "check": state[112:],
    }


def test_state_size_is_fixed_and_small():
    assert STATE_SIZE == 120
    for name in STATE_ALGOS:
        for size in (0, 1, 63, 64, 65, 10_000):
            assert len(Hasher(name, random_bytes(size)).export_state()) == STATE_SIZE


@pytest.mark.parametrize("name", sorted(STATE_ALGOS))
@pytest.mark.parametrize("size", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4159])
def test_state_layout(name, size):
    data = random_bytes(size, seed=31)
    state = Hasher(name, data).export_state()
    f = parse_state(state)
    assert f["magic"] == b"PFHS"
    assert (f["version"], f["algo"], f["reserved"]) == (1, STATE_ALGOS[name], 0)
    n = size % 64
    assert f["n"] == n
    assert f["bits"] == 8 * size
    assert f["block"] == data[size - n :] + bytes(64 - n)
    assert f["check"] == hashlib.sha256(state[:112]).digest()[:8]
    if name == "md5":
        assert f["words"][4:] == [0, 0, 0, 0]
    if size < 64:  # no block hashed yet: the chaining words are the IV, big-endian
        iv = reference.SHA256_IV if name == "sha256" else MD5_IV
        assert tuple(f["words"][: len(iv)]) == iv


@pytest.mark.parametrize("name", sorted(STATE_ALGOS))
@pytest.mark.parametrize("size", [0, 1, 55, 56, 57, 63, 64, 65, 127, 128, 129, 1000])
def test_state_round_trip_at_block_boundaries(name, size):
    data = random_bytes(size + 200, seed=37)
    ours, theirs = ALGORITHMS[name]
    h = ours(data[:size])
    state = h.export_state()
    resumed = Hasher.from_state(name, state)
    assert resumed.name == name and resumed.digest_size == h.digest_size
    assert resumed.digest() == theirs(data[:size]).digest()
    assert resumed.export_state() == state
    for extra in (0, 1, 8, 55, 56, 63, 64, 65, 200):
        again = Hasher.from_state(name, state)
        again.update(data[size : size + extra])
        assert again.digest() == theirs(data[: size + extra]).digest()
    # exporting leaves the original usable
    h.update(data[size:])
    assert h.digest() == theirs(data).digest()


def test_empty_state_resumes_to_empty_digests():
    for name in STATE_ALGOS:
        resumed = Hasher.from_state(name, Hasher(name).export_state())
        assert resumed.digest() == hashlib.new(name).digest()


@settings(max_examples=120, deadline=None)
@given(chunked_data(), st.sampled_from(sorted(STATE_ALGOS)))
def test_state_chain_through_new_hashers_matches_hashlib(case, name):
    data, chunks = case
    _, theirs = ALGORITHMS[name]
    state = Hasher(name).export_state()
    seen = 0
    for kind, chunk in chunks:
        h = Hasher.from_state(name, state)  # a fresh hasher for every piece
        h.update(_as_buffer(kind, chunk))
        seen += len(chunk)
        state = h.export_state()
        assert len(state) == STATE_SIZE
        assert parse_state(state)["bits"] == 8 * seen
        assert h.digest() == theirs(data[:seen]).digest()
    assert Hasher.from_state(name, state).digest() == theirs(data).digest()


_RESUME_CHILD = r"""
import sys
from pastefile.ext.hashing import Hasher
name, state_hex, data_hex = sys.stdin.read().split("\n")[:3]
h = Hasher.from_state(name, bytes.fromhex(state_hex))
h.update(bytes.fromhex(data_hex))
print(h.export_state().hex(), h.digest().hex())
"""


def _resume_in_child(name: str, state: bytes, data: bytes) -> tuple[bytes, bytes]:
    done = subprocess.run(
        [sys.executable, "-c", _RESUME_CHILD],
        input=f"{name}\n{state.hex()}\n{data.hex()}\n",
        capture_output=True, text=True, timeout=120, check=True,
    )
    state_hex, digest_hex = done.stdout.split()
    return bytes.fromhex(state_hex), bytes.fromhex(digest_hex)


@pytest.mark.parametrize("name", sorted(STATE_ALGOS))
def test_state_resumes_in_another_process(name):
    """Upload pieces alternate between this process and fresh interpreters."""
    _, theirs = ALGORITHMS[name]
    rng = random.Random(f"processes:{name}")
    data = random_bytes(300_000, seed=41)
    cuts = sorted(rng.sample(range(1, len(data)), 5)) + [len(data)]
    # a child that only imports and re-exports must not change the state
    h = Hasher(name, data[: cuts[0]])
    state = h.export_state()
    assert _resume_in_child(name, state, b"") == (state, h.digest())
    start, in_child = cuts[0], True
    for end in cuts[1:]:
        piece = data[start:end]
        if in_child:
            state, digest = _resume_in_child(name, state, piece)
        else:
            h = Hasher.from_state(name, state)
            h.update(piece)
            state, digest = h.export_state(), h.digest()
        assert digest == theirs(data[:end]).digest()
        start, in_child = end, not in_child
    assert Hasher.from_state(name, state).digest() == theirs(data).digest()


def test_state_length_carries_past_2_to_32_bits():
    """512 MiB of input: the 32-bit low word of the bit count wraps into the
    high word between the two exports, and the resumed digest still agrees."""
    block = bytes(16 * MiB)
    below = 2**29 - 40  # bytes; 8 * below < 2**32
    h, ref = Hasher("sha256"), hashlib.sha256()
    for _ in range(below // len(block)):
        h.update(block)
        ref.update(block)
    tail = random_bytes(below % len(block), seed=43)
    h.update(tail)
    ref.update(tail)
    state = h.export_state()
    assert parse_state(state)["bits"] == 8 * below
    resumed = Hasher.from_state("sha256", state)
    more = random_bytes(100, seed=47)
    resumed.update(more)
    ref.update(more)
    after = resumed.export_state()
    assert parse_state(after)["bits"] == 8 * (below + 100) > 2**32
    assert Hasher.from_state("sha256", after).digest() == resumed.digest() == ref.digest()


_CARRY_LENGTHS = [
    2**29 - 1,  # one byte before the bit count needs its high word
    2**29 - 64,
    2**29,
    2**32 + 17,
    2**61 - 1,  # one byte before the 64-bit bit count wraps to 0
    2**61 - 200,
]


@pytest.mark.parametrize("length", _CARRY_LENGTHS)
def test_crafted_state_near_counter_carries_matches_reference(length):
    rng = random.Random(f"carry:{length}")
    words = tuple(rng.getrandbits(32) for _ in range(8))
    pending = rng.randbytes(length % 64)
    data = rng.randbytes(300)
    h = Hasher.from_state("sha256", craft_state("sha256", words, length, pending))
    for piece in (data[:1], data[1:130], data[130:]):
        h.update(piece)
    assert h.digest() == reference.sha256_resume(words, length, pending, data)
    assert parse_state(h.export_state())["bits"] == (8 * (length + len(data))) % 2**64


@settings(max_examples=60, deadline=None)
@given(
    words=st.tuples(*[st.integers(0, 2**32 - 1)] * 8),
    length=st.integers(0, 2**61 - 1),
    pending_seed=st.binary(min_size=63, max_size=63),
    data=st.binary(max_size=300),
)
def test_crafted_states_match_reference(words, length, pending_seed, data):
    pending = pending_seed[: length % 64]
    h = Hasher.from_state("sha256", craft_state("sha256", words, length, pending))
    h.update(data)
    assert h.digest() == reference.sha256_resume(words, length, pending, data)


def test_reference_resume_agrees_with_hashlib():
    data = random_bytes(1000, seed=53)
    for size in (0, 55, 56, 64, 65, 1000):
        assert reference.sha256_resume(reference.SHA256_IV, 0, b"", data[:size]) == sha256_of(data[:size])


@pytest.mark.parametrize("name", sorted(STATE_ALGOS))
def test_state_accepts_bytes_like(name):
    data = random_bytes(777, seed=59)
    state = Hasher(name, data).export_state()
    _, theirs = ALGORITHMS[name]
    for given_state in (bytearray(state), memoryview(state)):
        assert Hasher.from_state(name, given_state).digest() == theirs(data).digest()


@pytest.mark.parametrize("bad", [None, 1, 1.0, "00" * STATE_SIZE, [0] * STATE_SIZE, object()])
def test_state_of_wrong_type_raises_type_error(bad):
    with pytest.raises(TypeError):
        Hasher.from_state("sha256", bad)


@pytest.mark.parametrize("name", ["sha1", "SHA256", "", "sha512"])
def test_state_of_unknown_algorithm_raises_value_error(name):
    with pytest.raises(ValueError, match="unsupported algorithm"):
        Hasher.from_state(name, Hasher().export_state())


def test_state_name_of_wrong_type_raises_type_error():
    with pytest.raises(TypeError):
        Hasher.from_state(1, Hasher().export_state())


def _good_state(name="sha256", size=100) -> bytes:
    return Hasher(name, random_bytes(size, seed=61)).export_state()


@pytest.mark.parametrize("length", [0, 1, 4, 5, 8, 111, 112, 119, 121, 128, 240])
def test_truncated_or_too_long_states_are_refused(length):
    state = _good_state()
    bad = (state * 2)[:length]
    with pytest.raises(ValueError, match="120 bytes"):
        Hasher.from_state("sha256", bad)


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 8, 119, 121, 240])
def test_c_import_refuses_bad_lengths_without_reading_past_them(length):
    """Straight to C, without the wrapper's checks: an error, never a crash."""
    from pastefile.ext._hashing import ffi, lib

    state = _good_state()
    buf = ffi.new(f"unsigned char[{max(length, 1)}]", (state * 2)[:length])
    err = ffi.new("int *")
    assert lib.pf_hasher_import(lib.PF_SHA256, buf, length, err) == ffi.NULL
    assert err[0] in (lib.PF_ESTATE, lib.PF_ESTATE_FORMAT)


def test_c_import_refuses_unknown_algorithm_ids():
    from pastefile.ext._hashing import ffi, lib

    err = ffi.new("int *")
    for algo in (0, 3, -1, 255):
        assert lib.pf_hasher_import(algo, _good_state(), STATE_SIZE, err) == ffi.NULL
        assert err[0] == lib.PF_ESTATE_ALGO


def test_c_export_refuses_a_short_buffer():
    from pastefile.ext._hashing import ffi, lib

    out = ffi.new("unsigned char[200]")
    h = Hasher("sha256", b"abc")
    assert lib.pf_hasher_export(h._ptr, out, STATE_SIZE - 1) == lib.PF_ESTATE
    assert bytes(ffi.buffer(out, 200)) == bytes(200)  # nothing written
    assert lib.pf_hasher_export(h._ptr, out, 200) == STATE_SIZE


@pytest.mark.parametrize("name", sorted(STATE_ALGOS))
def test_every_single_bit_flip_is_refused(name):
    state = _good_state(name, 150)
    for pos in range(STATE_SIZE):
        for bit in (0, 7):
            bad = bytearray(state)
            bad[pos] ^= 1 << bit
            with pytest.raises(ValueError):
                Hasher.from_state(name, bytes(bad))


def test_wrong_magic_or_version_is_refused():
    state = _good_state()
    for body in (b"XFHS" + state[4:112], state[:4] + b"\x02" + state[5:112], state[:4] + b"\x00" + state[5:112]):
        with pytest.raises(ValueError, match="format version"):
            Hasher.from_state("sha256", seal(body))
    with pytest.raises(ValueError, match="format version"):
        Hasher.from_state("sha256", bytes(STATE_SIZE))


def test_state_of_the_other_algorithm_is_refused():
    with pytest.raises(ValueError, match="another algorithm"):
        Hasher.from_state("md5", _good_state("sha256"))
    with pytest.raises(ValueError, match="another algorithm"):
        Hasher.from_state("sha256", _good_state("md5"))


def _resealed(state: bytes, offset: int, value: bytes) -> bytes:
    body = bytearray(state[:112])
    body[offset : offset + len(value)] = value
    return seal(bytes(body))


@pytest.mark.parametrize(
    "name, offset, value",
    [
        ("sha256", 6, b"\x40"),  # n = 64: not a pending count
        ("sha256", 6, b"\xff"),
        ("sha256", 6, b"\x23"),  # n disagrees with the length (100 % 64 = 36)
        ("sha256", 6, b"\x00"),
        ("sha256", 7, b"\x01"),  # reserved byte
        ("sha256", 15, b"\x21"),  # a length that is not whole bytes
        ("sha256", 15, b"\x28"),  # 101 bytes, but n says 36
        ("sha256", 48 + 36, b"\x01"),  # a byte past the pending ones
        ("sha256", 111, b"\x01"),
        ("md5", 32, b"\x01"),  # MD5 has four chaining words, the rest is zero
        ("md5", 47, b"\x01"),
    ],
)
def test_inconsistent_fields_are_refused_even_with_a_valid_check(name, offset, value):
    state = _good_state(name, 100)
    with pytest.raises(ValueError, match="damaged or inconsistent"):
        Hasher.from_state(name, _resealed(state, offset, value))


def test_consistent_rewrite_of_the_same_state_is_accepted():
    # the checks refuse what is inconsistent, not what differs from an export
    state = _good_state("sha256", 100)
    assert Hasher.from_state("sha256", _resealed(state, 8, bytes(4))).digest() == Hasher(
        "sha256", random_bytes(100, seed=61)
    ).digest()


def test_imported_hashers_copy_and_digest_like_any_other():
    data = random_bytes(5000, seed=67)
    h = Hasher.from_state("sha256", Hasher("sha256", data[:1234]).export_state())
    c = h.copy()
    h.update(data[1234:])
    c.update(data[1234:3000])
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.digest() == sha256_of(data[:3000])
    assert Hasher.from_state("sha256", c.export_state()).digest() == c.digest()
