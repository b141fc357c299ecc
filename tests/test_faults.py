"""Faults with real processes and real signals (issue #8, hardening).

A real server (``pserve`` with production.ini's ``[server:main]``: two
waitress workers of 16 threads) over PostgreSQL with fsync on and two
memcached nodes, while N clients upload files of 1 KB..2 MB (a fifth of
them duplicates):

* the load alone: every link downloads and re-hashes, one blob per content;
* a memcached node killed in the middle, then restarted;
* PostgreSQL stopped and started again on the same port;
* the server SIGKILLed while uploads are in flight, then restarted;
* a storage root on an 8 MB tmpfs that fills up;
* clients that hang up in the middle of a large upload.

``make test`` runs them at smoke size (8 clients, 200 files); ``make soak``
(``FAULTS_SCALE=soak``) at 32 clients and 10,000 files.  Every server
binary is required: a missing one fails the test, nothing is skipped.
Each test prints its numbers (``pytest -s`` shows them).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy import text

from pastefile.core import db

from .fault_harness import (
    KB,
    MB,
    Corpus,
    Item,
    Load,
    Pserve,
    blob_files,
    check_store,
    deleted_files_open,
    download_sha256,
    expected_rows,
    files_open_under,
    problems,
    put,
    run_cli,
    scale,
    temp_files,
    upload,
    verify_links,
    write_ini,
)
from .servers import Memcached, PostgresCluster, ServerError, free_port, proc_stat

pytestmark = [pytest.mark.postgresql, pytest.mark.memcached]

SCALE = scale()
# each runs loads, server restarts and repairs: longer than the default per-test timeout
pytestmark.append(pytest.mark.timeout(1200 if SCALE.name == "smoke" else 6 * 3600))
INLINE_MAX = 128 * KB  # the default: smaller blobs live in their row


def note(test: str, **numbers) -> None:
    print(f"\n[faults:{SCALE.name}] {test}: " + " ".join(f"{k}={v}" for k, v in numbers.items()))


# -- servers --------------------------------------------------------------------


def _stop_cluster(cluster: PostgresCluster) -> None:
    try:
        cluster.stop()
    except ServerError:
        # already down (a test stopped it and failed before starting it again)
        shutil.rmtree(cluster.root, ignore_errors=True)


def _durable_cluster():
    cluster = PostgresCluster(fsync=True)
    try:
        cluster.start()
        yield cluster
    finally:
        _stop_cluster(cluster)


@pytest.fixture(scope="module")
def durable_pg():
    """A PostgreSQL cluster with fsync, synchronous_commit and full_page_writes on."""
    yield from _durable_cluster()


@pytest.fixture
def own_pg():
    """A durable cluster of this test's own: the test stops and starts it."""
    yield from _durable_cluster()


@pytest.fixture
def memcached_pair():
    nodes = []
    try:
        for _ in range(2):
            nodes.append(Memcached().start())
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@contextmanager
def migrated_database(cluster: PostgresCluster):
    """A fresh database with the schema; yields (url, engine for checks)."""
    name = f"faults_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(user=cluster.user, host="127.0.0.1", port=cluster.port, dbname=name)
    janitor.init()
    url = cluster.url(name)
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        try:
            janitor.drop()
        except Exception:  # noqa: BLE001 - the cluster may be gone already
            pass


@pytest.fixture
def launch(tmp_path):
    """``launch(app_settings)`` serves production.ini's server section with
    these app settings on a free port; every server is stopped afterwards."""
    started: list[Pserve] = []

    def make(app: dict, name: str = "server") -> Pserve:
        directory = tmp_path / name
        directory.mkdir()
        port = free_port()
        settings = {
            "pastefile.base_url": f"http://127.0.0.1:{port}",
            "pastefile.symlink_key": "faults-test-key",
            "pastefile.cache.prefix": f"faults{uuid.uuid4().hex[:8]}",
            **app,
        }
        server = Pserve(write_ini(str(directory), port, settings), port, str(directory))
        started.append(server)
        return server.start()

    yield make
    for server in reversed(started):
        server.stop()


def app_settings(url: str, storage: str, memcached: list[Memcached], **extra) -> dict:
    return {
        "pastefile.db_url": url,
        "pastefile.storage_root": storage,
        "pastefile.cache.backend": "memcached",
        "pastefile.cache.servers": " ".join(node.address for node in memcached),
        **{f"pastefile.{k}": str(v) for k, v in extra.items()},
    }


def load_timeout(files: int) -> float:
    return 120 + files * 0.5


def fsck(server: Pserve) -> dict:
    """``pastefile fsck --grace 0``: every orphan counts, however young."""
    proc = run_cli(server.ini, "fsck", "--grace", "0")
    assert proc.returncode == 0, f"pastefile fsck exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def files_expected(results) -> int:
    """Distinct contents above the inline limit: the blob files there should be."""
    return len({r.sha256 for r in results if r.ok and r.item.size > INLINE_MAX})


# -- the load ---------------------------------------------------------------------


def test_load_loses_and_corrupts_nothing(durable_pg, memcached_pair, launch, tmp_path):
    corpus = Corpus(SCALE.files)
    storage = str(tmp_path / "files")
    with migrated_database(durable_pg) as (url, engine):
        server = launch(app_settings(url, storage, memcached_pair))
        started = time.monotonic()
        results = Load(server.url, corpus.items, SCALE.clients).start().wait(load_timeout(len(corpus)))
        elapsed = time.monotonic() - started
        failed = [(r.item.index, r.status, str(r.answer)[:200]) for r in results if not r.ok]
        assert len(results) == len(corpus) and not failed, failed[:5]

        links = verify_links(results, SCALE.clients)
        assert links == {"ok": len(corpus), "lost": 0, "corrupt": 0, "failed": 0, "wrong_answer": 0,
                         "links": len(corpus)}

        # one blob per distinct content, one paste per distinct (content, name)
        distinct, pastes = expected_rows(results)
        report = check_store(storage, engine)
        assert report["blob_rows"] == distinct, report
        assert report["paste_rows"] == pastes, report
        assert report["files"] == files_expected(results), report
        assert not problems(report), report
        assert distinct < len(corpus)  # the duplicates were there
        checked = fsck(server)
        assert checked["orphan_files"] == 0 and checked["missing_files"] == 0, checked
        held = {pid: files_open_under(pid, storage) for pid in server.workers()}
        assert len(held) == 2 and not any(held.values()), held
        assert not server.unhandled_errors()
        megabytes = sum(r.item.size for r in results) / MB
        note("load", clients=SCALE.clients, uploads=len(results), failed=len(failed), distinct=distinct,
             blob_rows=report["blob_rows"], paste_rows=report["paste_rows"], files=report["files"],
             lost=links["lost"], corrupt=links["corrupt"], MB=f"{megabytes:.0f}",
             seconds=f"{elapsed:.1f}", uploads_per_s=f"{len(results) / elapsed:.0f}")


# -- memcached --------------------------------------------------------------------


def test_memcached_killed_and_restarted_mid_load(durable_pg, memcached_pair, launch, tmp_path):
    corpus = Corpus(SCALE.files)
    storage = str(tmp_path / "files")
    victim = memcached_pair[0]
    with migrated_database(durable_pg) as (url, engine):
        server = launch(app_settings(url, storage, memcached_pair))
        load = Load(server.url, corpus.items, SCALE.clients, read_back=True).start()
        load.wait_for(len(corpus) // 3)
        used_before = victim.stats()
        victim.kill()
        killed_at = load.done
        load.wait_for(2 * len(corpus) // 3)
        victim.restart()
        restarted_at = load.done
        results = load.wait(load_timeout(len(corpus)))

        failed_uploads = [(r.item.index, r.status, str(r.answer)[:200]) for r in results if not r.ok]
        failed_reads = [(r.item.index, r.read_status) for r in results if r.ok and r.read_status != 200]
        assert int(used_before["cmd_set"]) > 0 and int(used_before["get_hits"]) > 0, used_before  # it was in use
        assert not failed_uploads, failed_uploads[:5]
        assert not failed_reads, failed_reads[:5]
        links = verify_links(results, SCALE.clients)
        assert links["ok"] == len(corpus), links
        report = check_store(storage, engine)
        assert report["blob_rows"] == expected_rows(results)[0] and not problems(report), report

        # the restarted node serves again once the clients' dead-node window
        # (10 s) has passed: reads of the uploads put keys there, then hit them
        base = victim.stats()
        rounds, hits, items, waited = 0, 0, 0, time.monotonic()
        sample = [r for r in results if r.ok][:100]
        while time.monotonic() - waited < 45:
            rounds += 1
            for r in sample:
                status, digest = download_sha256(r.answer["url_i"])
                assert status == 200 and digest == r.sha256
            stats = victim.stats()
            hits = int(stats["get_hits"]) - int(base["get_hits"])
            items = int(stats["curr_items"])
            if hits >= 20 and items > 0:
                break
            time.sleep(0.5)
        assert hits >= 20 and items > 0, f"the restarted memcached is not used: {victim.stats()}"
        other = memcached_pair[1].stats()
        assert not server.unhandled_errors()
        note("memcached", uploads=len(results), reads=sum(1 for r in results if r.read_status),
             failed_requests=len(failed_uploads) + len(failed_reads), killed_after=killed_at,
             restarted_after=restarted_at, restarted_node_get_hits=hits, restarted_node_items=items,
             seconds_until_used_again=f"{time.monotonic() - waited:.1f}", read_rounds=rounds,
             other_node_get_hits=other["get_hits"])


# -- PostgreSQL --------------------------------------------------------------------


def test_postgres_restart_answers_503_then_recovers(own_pg, memcached_pair, launch, tmp_path):
    # small files: many requests fall in the few seconds the database is down
    corpus = Corpus(max(SCALE.files, 4000), min_size=KB, max_size=256 * KB)
    storage = str(tmp_path / "files")
    down_for = 3.0
    with migrated_database(own_pg) as (url, engine):
        server = launch(app_settings(url, storage, memcached_pair))
        load = Load(server.url, corpus.items, SCALE.clients, read_back=True).start()
        load.wait_for(40)
        stop_began = time.monotonic()
        own_pg.stop_server("fast")
        time.sleep(down_for / 2)
        # while it is down: a clear 503 with Retry-After, not a 500
        probe = Item(-1, "probe-while-down.txt", uuid.uuid4().int >> 70, 2 * KB).content()
        status, headers, body = _raw_upload(server.url, "probe-while-down.txt", probe)
        time.sleep(down_for / 2)
        own_pg.start_server()
        up_at = time.monotonic()
        # the load goes on until the restarted database took an upload and,
        # after that one was answered, each client began and finished two more
        deadline = time.monotonic() + 120
        while True:
            answered = list(load.results)
            back = min((r.ended for r in answered if r.status == 200 and r.started >= up_at), default=None)
            if back is not None and sum(1 for r in answered if r.started > back) >= 2 * SCALE.clients:
                break
            if load.done >= len(corpus.items):
                break  # the corpus ran out: what was answered is checked below
            assert time.monotonic() < deadline, f"no recovery seen after the restart ({load.done} answered)"
            time.sleep(0.05)
        load.stop()
        results = load.wait(120)

        assert status == 503, (status, body[:300])
        assert json.loads(body)["error"] == {
            "status": 503, "title": "Service unavailable",
            "message": "The database cannot be reached right now; try again in a few seconds.",
        }
        assert headers.get("retry-after") == "5", headers

        uploads = [(r.status, r.started, r.ended) for r in results]
        reads = [(r.read_status, r.read_started, r.read_ended) for r in results if r.ok]
        requests = uploads + reads
        statuses = sorted({s for s, _, _ in requests}, key=str)
        assert set(statuses) <= {200, 503}, f"answers other than 200 and 503: {statuses}"
        unavailable = [(s, a, b) for s, a, b in requests if s == 503]
        assert unavailable, "no request saw the database down"
        # the outage, as the service saw it, ended when an upload begun after
        # the restart was stored: 503 only for requests begun before that and
        # ended after the stop began; every request begun after it succeeds
        first_ok = min((b for s, a, b in uploads if s == 200 and a >= up_at), default=None)
        assert first_ok is not None, "no upload succeeded after the restart"
        late = [(a - up_at, b - up_at) for s, a, b in unavailable if b < stop_began or a > first_ok]
        assert not late, f"503 outside the outage: {late[:5]}"
        after = [s for s, a, _ in requests if a > first_ok]
        assert len(after) >= SCALE.clients and all(s == 200 for s in after), after

        # the pool recovered by itself: a fresh round of uploads and reads
        fresh = Load(server.url, Corpus(40, duplicates=0).items, 4, read_back=True).start().wait(120)
        assert all(r.ok and r.read_status == 200 for r in fresh), [(r.status, r.read_status) for r in fresh]

        # no upload that got a link is missing
        linked = [r for r in results if r.ok] + fresh
        links = verify_links(linked, SCALE.clients)
        assert links["ok"] == len(linked), links
        report = check_store(storage, engine)
        assert report["blob_rows"] >= expected_rows(linked)[0]
        # uploads refused while the database was down may leave their file
        # (placed before the commit that failed): nothing broken, something
        # for the repair to remove
        assert not {k: v for k, v in problems(report).items() if k not in ("orphan_files", "temp_files")}, report
        repair = run_cli(server.ini, "fsck", "--repair", "--grace", "0")
        assert repair.returncode == 0, repair.stdout + repair.stderr
        repaired = check_store(storage, engine)
        assert not problems(repaired), repaired
        assert repaired["blob_rows"] == report["blob_rows"] and repaired["paste_rows"] == report["paste_rows"]
        assert verify_links(linked, SCALE.clients)["ok"] == len(linked)
        assert not server.unhandled_errors(), server.unhandled_errors()[:5]
        note("postgresql", requests=len(requests), ok=sum(1 for s, _, _ in requests if s == 200),
             answered_503=len(unavailable), other_statuses=len([s for s, _, _ in requests if s not in (200, 503)]),
             down_seconds=f"{up_at - stop_began:.1f}", first_upload_ok_after_start=f"{first_ok - up_at:.2f}s",
             ok_after_restart=len(after), links_checked=links["ok"], lost=links["lost"],
             left_for_repair=report["orphan_files"] + report["temp_files"])


def _raw_upload(base: str, name: str, data: bytes):
    from .fault_harness import multipart, request

    body, content_type = multipart(name, data)
    return request("POST", base + "/", body, {"Content-Type": content_type, "Accept": "application/json"})


# -- SIGKILL ------------------------------------------------------------------------


def test_sigkill_during_uploads_leaves_a_clean_store(durable_pg, memcached_pair, launch, tmp_path):
    corpus = Corpus(max(SCALE.files, 200))
    storage = str(tmp_path / "files")
    with migrated_database(durable_pg) as (url, engine):
        server = launch(app_settings(url, storage, memcached_pair))
        load = Load(server.url, corpus.items, SCALE.clients).start()
        load.wait_for(len(corpus) // 4)

        # Widen two windows a crash can hit, then SIGKILL every process of
        # the server: (1) hold the blob table, so uploads stop between the
        # rename of their file into place and the commit of its row; (2) a
        # 64 MB PUT, whose temp file in storage/tmp lives while it is copied
        # and fsync'ed.
        holder = engine.connect()
        held = holder.begin()
        holder.execute(text("LOCK TABLE blob IN EXCLUSIVE MODE"))
        try:
            with engine.connect() as conn:
                known = {sha.hex() for (sha,) in conn.execute(text("SELECT sha256 FROM blob"))}
            # the load's uploads stuck behind the lock may all be small
            # (inline) ones or repeats: one new file-sized upload of our own
            # is sure to reach that window
            held_upload = Item(-4, "held.txt", 13, 300 * KB).content()
            threading.Thread(target=upload, args=(server.url, "held.txt", held_upload), daemon=True).start()
            deadline = time.monotonic() + 60
            while not set(blob_files(storage)) - known:
                assert time.monotonic() < deadline, "no upload reached the commit of its row"
                time.sleep(0.01)
            big = Item(-2, "big.txt", 7, 64 * MB).content()
            big_put = threading.Thread(target=put, args=(server.url, f"big-{uuid.uuid4().hex[:6]}.txt", big), daemon=True)
            big_put.start()
            deadline = time.monotonic() + 60
            while not temp_files(storage):
                assert time.monotonic() < deadline, "no upload was being staged"
                time.sleep(0.001)
            workers = server.workers()
            assert workers, "no workers to kill"
            killing = time.monotonic()
            # returns once no process of the server's group is left (or raises)
            server.kill(signal.SIGKILL)
            survivors = [pid for pid in workers | {server.pid} if (proc_stat(pid) or [b"Z"])[0] != b"Z"]
            assert not survivors, f"alive after SIGKILL: {survivors}"
        finally:
            held.rollback()
            holder.close()
        results = load.wait(120)
        big_put.join(30)
        del big

        at_kill = check_store(storage, engine)
        linked = [r for r in results if r.ok]
        # nothing was left to answer once the kill returned; and an upload
        # begun after the kill was sent found no server
        answered_after_kill = [r for r in results if r.status is not None and r.started >= killing]
        errors = [r.status for r in results if not r.ok and r.status is not None]
        assert not errors, f"uploads answered with errors before the kill: {errors[:5]}"
        assert not answered_after_kill
        assert at_kill["temp_files"] >= 1 and at_kill["orphan_files"] >= 1, at_kill  # the crash hit both windows

        server.start()
        after = check_store(storage, engine)
        links = verify_links(linked, SCALE.clients)
        checked = fsck(server)
        status, answer = upload(server.url, "after-restart.txt", Item(-3, "x", 11, 300 * KB).content())

        assert links["ok"] == len(linked), links
        assert after["pastes_without_blob"] == 0 and after["missing_files"] == 0, after
        assert after["misnamed_files"] == 0 and after["corrupt_inline"] == 0, after
        assert status == 200, (status, answer)
        note("sigkill", uploads_linked=len(linked), in_flight_at_kill=len([r for r in results if r.status is None]),
             temp_files_at_kill=at_kill["temp_files"], orphan_files_at_kill=at_kill["orphan_files"],
             temp_files_after_restart=after["temp_files"], orphan_files_after_restart=after["orphan_files"],
             fsck=checked, lost=links["lost"], corrupt=links["corrupt"])
        # nothing left to sweep: start-up removed what the crash left behind
        assert after["temp_files"] == 0, f"temp files left after the restart: {temp_files(storage)}"
        assert after["orphan_files"] == 0 and checked["orphan_files"] == 0, (after, checked)
        assert checked["missing_files"] == 0 and checked.get("stale_temp", 0) == 0, checked


# -- disk full -------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """An 8 MB tmpfs (mounting needs root: as another user, ``sudo -n``)."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    mount = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mountpoint)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.fail(f"cannot mount an 8 MB tmpfs at {mountpoint} (needs root or sudo): {mount.stderr.strip()}")
    try:
        yield str(mountpoint)
    finally:
        if subprocess.run([*prefix, "umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run([*prefix, "umount", "-l", str(mountpoint)], capture_output=True)


def _free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_disk_full_answers_507_and_keeps_serving(durable_pg, memcached_pair, small_tmpfs, launch):
    storage = os.path.join(small_tmpfs, "files")
    with migrated_database(durable_pg) as (url, engine):
        # inline_max 0: every blob is a file, also the small ones
        server = launch(app_settings(url, storage, memcached_pair, inline_max=0))
        stored: list[tuple[dict, str]] = []
        refused = []
        for index in range(20):
            # 1.5 MB: five fit, the sixth does not, and room for a small one remains
            data = Item(index, f"fill-{index}.txt", uuid.uuid4().int >> 70, 3 * MB // 2).content()
            free_before = _free_bytes(small_tmpfs)
            status, answer = upload(server.url, f"fill-{index}.txt", data)
            if status == 200:
                stored.append((answer, hashlib.sha256(data).hexdigest()))
                continue
            refused.append((status, answer, free_before, _free_bytes(small_tmpfs)))
            break
        assert stored and refused, (len(stored), refused)
        status, answer, free_before, free_after = refused[0]
        assert status == 507, refused
        assert answer["error"]["status"] == 507 and answer["error"]["title"] == "Insufficient storage", answer
        assert free_after == free_before, "the refused upload left bytes behind"

        # the raw PUT path, and uploads that fit still do
        data = Item(100, "put.txt", uuid.uuid4().int >> 70, MB).content()
        free_before = _free_bytes(small_tmpfs)
        put_status, put_answer = put(server.url, "put-too-big.txt", data)
        assert put_status == 507, (put_status, put_answer)
        assert _free_bytes(small_tmpfs) == free_before, "the refused PUT left bytes behind"
        small = Item(101, "small.txt", uuid.uuid4().int >> 70, max(4 * KB, _free_bytes(small_tmpfs) // 4)).content()
        small_status, small_answer = upload(server.url, "small-fits.txt", small)
        assert small_status == 200, (small_status, small_answer)
        stored.append((small_answer, hashlib.sha256(small).hexdigest()))
        # concurrent uploads into the full disk: each refused alone
        blocks = [Item(200 + i, f"c{i}.txt", uuid.uuid4().int >> 70, 2 * MB) for i in range(4)]
        concurrent = Load(server.url, blocks, 4).start().wait(120)
        assert sorted(r.status for r in concurrent) == [507] * 4, [r.status for r in concurrent]

        # nothing half-written, earlier uploads readable
        report = check_store(storage, engine)
        assert not problems(report), report
        assert report["blob_rows"] == report["files"] == len(stored), (report, len(stored))
        for answer, sha in stored:
            assert download_sha256(answer["url_i"]) == (200, sha)
        checked = fsck(server)
        assert checked["orphan_files"] == 0 and checked["missing_files"] == 0, checked
        assert not server.unhandled_errors(), server.unhandled_errors()[:5]
        note("disk_full", stored=len(stored), refused_507=1 + 1 + len(concurrent), temp_files=report["temp_files"],
             blob_rows=report["blob_rows"], files=report["files"], free_kb=_free_bytes(small_tmpfs) // KB)


# -- clients that hang up ----------------------------------------------------------


def _hang_up(port: int, method: str, how: str, declared: int, sent: int) -> None:
    """Start an upload that announces ``declared`` bytes, send ``sent``, then
    close (``how='close'``) or reset (``'reset'``) the connection."""
    boundary = "pastefilehangup"
    if method == "PUT":
        head = (f"PUT /hangup-{uuid.uuid4().hex[:8]}.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {declared}\r\nAccept: application/json\r\n\r\n").encode()
        preamble = b""
    else:
        preamble = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="hangup.txt"\r\n'
                    "Content-Type: text/plain\r\n\r\n").encode()
        encoding = ("Transfer-Encoding: chunked\r\n" if method == "POST-chunked"
                    else f"Content-Length: {declared}\r\n")
        head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n{encoding}"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    chunk = b"hang up in the middle of an upload\n" * 7000  # about 250 KB
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        payload = preamble
        while sent > 0:
            payload += chunk[:sent]
            sent -= len(chunk)
            if method == "POST-chunked":
                payload = f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
            s.sendall(payload)
            payload = b""
        if how == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def test_client_hangs_up_mid_upload(durable_pg, memcached_pair, launch, tmp_path):
    storage = str(tmp_path / "files")
    with migrated_database(durable_pg) as (url, engine):
        server = launch(app_settings(url, storage, memcached_pair))
        first = Item(0, "before.txt", uuid.uuid4().int >> 70, 600 * KB).content()
        status, answer = upload(server.url, "before.txt", first)
        assert status == 200, answer
        workers = server.workers()
        spooled_before = {pid: set(deleted_files_open(pid)) for pid in workers}
        rows_before = check_store(storage, engine)

        # hang-ups while other clients upload
        others = Load(server.url, Corpus(40, duplicates=0).items, 2).start()
        cases = [(m, h) for m in ("POST", "PUT", "POST-chunked") for h in ("close", "reset")]
        for method, how in cases:
            _hang_up(server.port, method, how, declared=64 * MB, sent=12 * MB)
        other_results = others.wait(120)

        # waitress notices the hang-up, drops the spooled body; nothing reached the store
        deadline = time.monotonic() + 15
        while True:
            leaked = {pid: set(deleted_files_open(pid)) - spooled_before.get(pid, set()) for pid in workers}
            leftovers = temp_files(storage)
            if not any(leaked.values()) and not leftovers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        report = check_store(storage, engine)
        assert not leftovers, leftovers
        assert not any(leaked.values()), leaked
        assert all(r.ok for r in other_results), [(r.status, str(r.answer)[:100]) for r in other_results if not r.ok]
        assert report["blob_rows"] == rows_before["blob_rows"] + len(other_results), (rows_before, report)
        assert report["paste_rows"] == rows_before["paste_rows"] + len(other_results), (rows_before, report)
        assert not problems(report), report

        # the same workers keep serving
        assert server.workers() == workers
        again = Item(1, "after.txt", uuid.uuid4().int >> 70, 600 * KB).content()
        status, answer = upload(server.url, "after.txt", again)
        assert status == 200, answer
        assert download_sha256(answer["url_i"]) == (200, hashlib.sha256(again).hexdigest())
        assert not server.unhandled_errors()
        note("hang_up", hang_ups=len(cases), sent_each="12MB of 64MB", temp_files=len(leftovers),
             rows_added_by_hang_ups=report["paste_rows"] - rows_before["paste_rows"] - len(other_results),
             spooled_files_leaked=sum(len(v) for v in leaked.values()), other_uploads_ok=len(other_results))
