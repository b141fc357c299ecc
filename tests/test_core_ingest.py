"""Staging in memory or on disk, group commit, sniffing once, and the
byte-bounded in-process cache."""
from __future__ import annotations

import io
import os
import threading
import time

import magic
import pytest
from sqlalchemy import text

from pastefile.core import PasteFileService
from pastefile.core.blobstore import StagingWriter
from pastefile.core.cache import MemoryCache
from pastefile.core.groupcommit import GroupCommitter
from pastefile.core.sniff import sniff
from pastefile.ext.hashing import SizeLimitExceeded, sha256

from .conftest import make_image, random_text, settings_for

# -- staging ----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 10000])
@pytest.mark.parametrize("chunk", [1000, 4096, 7000])
def test_staging_in_memory_until_inline_max_then_file(tmp_path, size, chunk):
    data = os.urandom(size)
    with StagingWriter(str(tmp_path), None, inline_max=4096) as writer:
        for i in range(0, size, chunk):
            writer.write(data[i : i + chunk])
        staged = writer.finish()
    assert staged.sha256 == sha256(data).digest() and staged.size == size
    assert staged.head == data[:4096]
    if size <= 4096:
        assert staged.inline and staged.data == data and staged.path is None
        assert os.listdir(tmp_path) == []
    else:
        assert not staged.inline and staged.data is None
        with open(staged.path, "rb") as f:
            assert f.read() == data
    with staged.open() as f:
        assert f.read() == data


@pytest.mark.parametrize("size", [100, 4096, 4097, 300_000])
@pytest.mark.parametrize("source", ["bytesio", "file", "unseekable"])
def test_staging_copy_from_any_source(tmp_path, size, source):
    data = os.urandom(size)
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    temp = tmp_path / "tmp"
    temp.mkdir()
    src = {"bytesio": lambda: io.BytesIO(data), "file": lambda: open(path, "rb")}.get(source)
    fileobj = src() if src else _Unseekable(data)
    with fileobj, StagingWriter(str(temp), None, inline_max=4096) as writer:
        staged = writer.copy_from(fileobj)
    assert staged.sha256 == sha256(data).digest() and staged.size == size
    assert staged.inline == (size <= 4096)
    with staged.open() as f:
        assert f.read() == data


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        return self._buf.readinto(b)


def test_staging_limit_applies_in_memory_and_on_disk(tmp_path):
    with pytest.raises(SizeLimitExceeded):
        with StagingWriter(str(tmp_path), 100, inline_max=4096) as writer:
            writer.write(b"x" * 101)
    with pytest.raises(SizeLimitExceeded):
        with StagingWriter(str(tmp_path), 5000, inline_max=4096) as writer:
            writer.write(b"x" * 4000)
            writer.write(b"x" * 1001)
    assert os.listdir(tmp_path) == []


# -- group commit -----------------------------------------------------------


def _sqlite_service(tmp_path, **extra) -> PasteFileService:
    return PasteFileService(settings_for("sqlite", tmp_path, **extra))


def _until(condition, what: str, deadline: float = 30.0) -> None:
    """Waits for ``condition()``; fails the test past the deadline."""
    give_up = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < give_up, f"never happened: {what}"
        time.sleep(0.001)


def _flock_waiters(path: str) -> int:
    """Processes or threads blocked in flock() on ``path`` (``->`` lines of /proc/locks)."""
    inode = os.stat(path).st_ino
    with open("/proc/locks") as f:
        return sum(1 for line in f if "->" in line.split() and "FLOCK" in line.split()
                   and any(field.endswith(f":{inode}") for field in line.split()))


def test_concurrent_uploads_share_commits(tmp_path):
    import fcntl

    svc = _sqlite_service(tmp_path)
    holder = None
    try:
        n = 40
        barrier = threading.Barrier(n)
        results = [None] * n

        def upload(i):
            barrier.wait()
            results[i] = svc.upload(io.BytesIO(random_text(1000 + i)), f"f{i}.txt")

        # the writer lock held, as another worker's writer would: the writer
        # thread takes one upload and waits for the lock, the rest queue
        holder = os.open(svc._committer.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(holder, fcntl.LOCK_EX)
        threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        _until(lambda: svc._committer._queue is not None and svc._committer._queue.qsize() == n - 1,
               "the other uploads queued behind the first")
        os.close(holder)
        holder = None
        for t in threads:
            t.join()
        assert len({r.id for r in results}) == n
        assert svc.count() == (n, n)
        # the writer gathers its batch once it holds the lock: all forty in one commit
        assert svc._committer.items == n and svc._committer.batches == 1
        # each got its own row back, durable: a new connection sees them all
        with svc.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM paste_file")).scalar() == n
        for i, r in enumerate(results):
            assert svc.get(r.filehash) == r
            with svc.open(r.filehash) as f:
                assert f.read() == random_text(1000 + i)
    finally:
        if holder is not None:
            os.close(holder)
        svc.close()


def test_a_failing_item_fails_alone(tmp_path):
    svc = _sqlite_service(tmp_path)
    gate = threading.Event()
    calls = []

    def record(conn, items):
        calls.append(list(items))
        if len(calls) == 1:
            gate.wait(60)  # let the others queue behind the first batch (set once they did)
        if "bad" in items:
            raise ValueError("bad item")
        conn.execute(text("SELECT 1"))
        return [f"ok {item}" for item in items]

    seen = []
    committer = GroupCommitter(svc.engine, record, after_commit=lambda items, results: seen.append(items))
    try:
        out, errors = {}, {}

        def submit(item):
            try:
                out[item] = committer.submit(item)
            except ValueError as exc:
                errors[item] = exc

        first = threading.Thread(target=submit, args=("first",))
        first.start()
        _until(lambda: calls, "the first batch was recorded")
        others = [threading.Thread(target=submit, args=(x,)) for x in ("a", "bad", "b")]
        for t in others:
            t.start()
        _until(lambda: committer._queue.qsize() == 3, "three more queued behind the first batch")
        gate.set()
        for t in [first, *others]:
            t.join()
        assert out == {"first": "ok first", "a": "ok a", "b": "ok b"}
        assert list(errors) == ["bad"]
        # the queued three were tried together, then one by one
        assert sorted(calls[1]) == ["a", "b", "bad"] and len(calls) == 5
        assert sorted(x for batch in seen for x in batch) == ["a", "b", "first"]
    finally:
        committer.close()
        svc.close()


def test_sqlite_writers_queue_on_the_lock_file(tmp_path):
    """The committers of several processes on one SQLite file take turns on
    an flock beside it (not SQLite's sleeping busy handler): an upload waits
    while another holder has it and commits as soon as it is released."""
    import fcntl

    svc = _sqlite_service(tmp_path)
    try:
        lock_path = svc._committer.lock_path
        assert lock_path == str(tmp_path / "pastefile.sqlite") + "-writer.lock"
        svc.upload(io.BytesIO(random_text(80)), "first.txt")
        holder = os.open(lock_path, os.O_RDWR)
        fcntl.flock(holder, fcntl.LOCK_EX)  # as another worker's writer would
        done = threading.Event()
        result = {}

        def upload():
            result["paste"] = svc.upload(io.BytesIO(random_text(81)), "second.txt")
            done.set()

        thread = threading.Thread(target=upload)
        thread.start()
        # the upload's writer waits in flock() for the held lock
        _until(lambda: _flock_waiters(lock_path) == 1, "a writer waiting on the lock file")
        assert not done.is_set()
        assert svc.count() == (1, 1)
        os.close(holder)  # releases the lock
        assert done.wait(10)
        thread.join()
        assert svc.get(result["paste"].filehash) == result["paste"]
        assert svc.count() == (2, 2)
    finally:
        svc.close()


def test_forked_child_uploads_through_its_own_committer(tmp_path):
    svc = _sqlite_service(tmp_path)
    try:
        parent = svc.upload(io.BytesIO(random_text(70)), "parent.txt")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child = svc.upload(io.BytesIO(random_text(71)), "child.txt")
                code = 0 if svc.get(child.filehash) == child and svc.get(parent.filehash) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert svc.count() == (2, 2)
        svc.upload(io.BytesIO(random_text(72)), "after.txt")
        assert svc.count() == (3, 3)
    finally:
        svc.close()


# -- sniffing ---------------------------------------------------------------

CORPUS = {
    "prose": random_text(1, 20000),
    "short prose": random_text(2, 300),
    "html": b"<!DOCTYPE html><html><head><title>t</title></head><body>" + random_text(3, 6000) + b"</body></html>",
    "late html": random_text(4, 1500).replace(b" ", b"\n") + b"\n<html><body><script>alert(1)</script></body></html>\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><script>alert(1)</script></svg>\n' * 40,
    "xml": b'<?xml version="1.0"?>\n<root>' + b"<a>1</a>" * 800 + b"</root>\n",
    "json": b'{"a": [' + b", ".join(b"%d" % i for i in range(2000)) + b"]}\n",
    "shell": b"#!/bin/sh\n" + b"echo hello\n" * 400,
    "pdf": b"%PDF-1.4\n" + random_text(5, 3000) + b"\n%%EOF\n",
    "png": make_image("PNG", (64, 64), seed=1),
    "jpeg": make_image("JPEG", (64, 64), seed=2),
    "binary": bytes(range(256)) * 40,
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_sniff_agrees_with_libmagic_on_the_head(name):
    data = CORPUS[name]
    expected = magic.Magic(mime=True).from_buffer(data[:4096])
    got = sniff(data[:4096], data=data)
    if got != expected:
        # prose may be read from a shorter prefix: only text kinds may differ,
        # never an active type
        assert got.startswith("text/") and expected.startswith("text/"), (got, expected)
        assert expected not in ("text/html", "text/xml", "image/svg+xml")


def test_sniff_keeps_active_types():
    for name, kind in (("html", "text/html"), ("svg", "image/svg+xml"), ("late html", "text/html")):
        data = CORPUS[name]
        assert sniff(data[:4096], data=data) == kind, name


def test_sniff_in_threads_has_one_handle_each():
    results, handles = [], []

    def go():
        from pastefile.core import sniff as module

        results.append(sniff(CORPUS["png"][:4096]))
        handles.append(module._handle())  # kept alive, so ids cannot be reused

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["image/png"] * 4 and len({id(h) for h in handles}) == 4


# -- in-process cache bound -------------------------------------------------


def test_memory_cache_is_bounded_by_bytes():
    cache = MemoryCache(max_entries=1000, max_bytes=10_000)
    for i in range(20):
        cache.set(f"k{i}", b"x" * 1000)
    assert cache.bytes <= 10_000
    assert cache.get("k19") == b"x" * 1000 and cache.get("k0") is None
    cache.set("huge", b"x" * 20_000)  # larger than the whole cache: not kept
    assert cache.get("huge") is None and cache.bytes <= 10_000
    cache.set("k19", {"small": 1})
    cache.delete("k18")
    cache.clear()
    assert cache.bytes == 0


def test_a_repeated_upload_is_answered_from_a_read(tmp_path):
    """The same bytes under the same name: the earlier paste, found by one
    read without going through the writer; after that paste is deleted, the
    same upload makes a new one."""
    svc = _sqlite_service(tmp_path)
    try:
        data = random_text(9090, 3000)
        first = svc.upload(io.BytesIO(data), "again.txt")
        committed = svc._committer.items
        again = svc.upload(io.BytesIO(data), "again.txt")
        assert again.id == first.id and again.filehash == first.filehash and again.delete_token is None
        assert svc._committer.items == committed
        other_name = svc.upload(io.BytesIO(data), "other.txt")
        assert other_name.id != first.id and svc._committer.items == committed + 1
        svc.delete(first.filehash, first.delete_token)
        fresh = svc.upload(io.BytesIO(data), "again.txt")
        assert fresh.id not in (first.id, other_name.id) and fresh.delete_token
        with svc.open(fresh.filehash) as f:
            assert f.read() == data
    finally:
        svc.close()
