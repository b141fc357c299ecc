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
