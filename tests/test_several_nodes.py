"""Three stateless nodes that share only PostgreSQL, memcached and the object
store: real ``pserve`` processes (two waitress workers each), each with an
empty storage root of its own (scratch only), on one database, both
memcached nodes and one bucket of the session's Ceph RADOS Gateway.

The nodes reach the gateway through a TCP proxy in this process, which
notes every S3 request line (to see multipart uploads and count what one
render asks of the store) and can be switched off and on (an outage of the
object store without stopping the gateway the other tests share).
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from pastefile.core import PasteFileService

from .conftest import make_image
from .fault_harness import KB, MB, Item, Pserve, write_ini
from .servers import free_port
from .test_faults import migrated_database

pytestmark = [pytest.mark.postgresql, pytest.mark.memcached, pytest.mark.timeout(300)]

BUCKET = "pastefile-nodes"
# small blobs live in their row; a 64x48 rendition of random pixels (~9 KB) does not
INLINE_MAX = 4 * KB
PART = 5 * MB


# -- a switchable, request-noting TCP proxy in front of the gateway -----------------


class S3Proxy:
    """Forwards 127.0.0.1:<port> to the gateway.  ``off()`` closes the
    listener and cuts every connection (new ones are refused), ``on()``
    listens again on the same port.  Each request line the nodes send is
    kept in ``requests`` as (method, target)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="s3-proxy-accept", daemon=True).start()

    def off(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            _cut(conn)

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.requests[mark:])

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _cut(client)
                continue
            with self._lock:
                if self._listener is not listener:  # switched off meanwhile
                    _cut(client), _cut(upstream)
                    continue
                self._conns.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests_side: bool) -> None:
        parser = _RequestLines(self._note) if requests_side else None
        try:
            while data := src.recv(256 * KB):
                if parser is not None:
                    parser.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _cut(sock)
                with self._lock:
                    self._conns.discard(sock)

    def _note(self, method: str, target: str) -> None:
        with self._lock:
            self.requests.append((method, target))


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _RequestLines:
    """The request lines of an HTTP/1.1 client stream (bodies framed by
    Content-Length, as botocore sends them)."""

    def __init__(self, note):
        self.note = note
        self.buffer = b""
        self.body_left = 0
        self.lost = False

    def feed(self, data: bytes) -> None:
        if self.lost:
            return
        self.buffer += data
        while True:
            if self.body_left:
                taken = min(self.body_left, len(self.buffer))
                self.body_left -= taken
                self.buffer = self.buffer[taken:]
                if self.body_left:
                    return
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            lines = head.split("\r\n")
            method, target = lines[0].split(" ")[:2]
            self.note(method, target)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            if "chunked" in headers.get("transfer-encoding", ""):
                self.note("?", "chunked body: request lines after this one are not seen")
                self.lost = True
                return
            self.body_left = int(headers.get("content-length", "0"))


# -- the deployment -----------------------------------------------------------------


class Deployment:
    """Nodes of one deployment: their shared settings (one cache prefix, so
    one set of upload counters and one removals token), a proxy to the
    gateway, and a service in this process for checks."""

    def __init__(self, root, url: str, engine, memcached_nodes, rgw, proxy: S3Proxy, s3_prefix: str, **extra: str):
        self.root = root
        self.engine = engine  # for checks of the rows
        self.rgw = rgw
        self.proxy = proxy
        self.s3_prefix = s3_prefix
        self.settings = {
            "pastefile.db_url": url,
            "pastefile.cache.backend": "memcached",
            "pastefile.cache.servers": " ".join(node.address for node in memcached_nodes),
            "pastefile.cache.prefix": f"nodes{uuid.uuid4().hex[:8]}",
            "pastefile.symlink_key": "several-nodes-test-key",
            "pastefile.inline_max": str(INLINE_MAX),
            "pastefile.store": "s3",
            "pastefile.s3.endpoint_url": proxy.endpoint_url,
            "pastefile.s3.bucket": BUCKET,
            "pastefile.s3.prefix": s3_prefix,
            "pastefile.s3.access_key_id": rgw.access_key,
            "pastefile.s3.secret_access_key": rgw.secret_key,
            # the smallest part S3 takes: 12 MB goes up in three parts
            "pastefile.s3.part_size": "5M",
            **extra,
        }
        self.nodes: list[Pserve] = []
        self.service = self.checker()

    def start(self, count: int, workers: int = 2) -> "Deployment":
        servers = []
        for index in range(count):
            directory = self.root / f"node{index}"
            directory.mkdir()
            port = free_port()
            app = {
                **self.settings,
                # a storage root of its own, empty: scratch files only
                "pastefile.storage_root": str(directory / "files"),
                "pastefile.base_url": f"http://127.0.0.1:{port}",
            }
            servers.append(Pserve(write_ini(str(directory), port, app, {"workers": str(workers)}), port,
                                  str(directory)))
        self.nodes = servers
        # in parallel: each start-up is mostly imports
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda server: server.start(), servers))
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def checker(self) -> PasteFileService:
        """A service of this deployment in this process, straight to the gateway."""
        return PasteFileService({
            **self.settings,
            "pastefile.storage_root": str(self.root / "checker"),
            "pastefile.s3.endpoint_url": self.rgw.endpoint_url,
        })


def _deployment(tmp_path_factory, pg_cluster, memcached_nodes, rgw, name: str, count: int, **extra: str):
    proxy = S3Proxy(rgw.port)
    proxy.on()
    root = tmp_path_factory.mktemp(name)
    with migrated_database(pg_cluster) as (url, engine):
        deployment = Deployment(root, url, engine, memcached_nodes, rgw, proxy, f"{name}{uuid.uuid4().hex[:10]}",
                                **extra)
        service = deployment.service
        try:
            service.initdb()  # the bucket, when missing
            deployment.start(count)
            yield deployment
        finally:
            deployment.stop()
            proxy.off()
            _empty_prefix(rgw.client(), deployment.s3_prefix)
            service.close()


def _empty_prefix(s3, prefix: str) -> None:
    """The gateway keeps objects in RAM: give this module's back."""
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for upload in page.get("Uploads", ()):
            s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_cluster, memcached_nodes, rgw):
    yield from _deployment(tmp_path_factory, pg_cluster, memcached_nodes, rgw, "nodes", 3)


@pytest.fixture(scope="module")
def s3(rgw):
    return rgw.client()


# -- helpers ----------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_bytes(size: int) -> bytes:
    """Text (an allowed type) of ``size`` bytes, new content each call."""
    return Item(0, "x.txt", uuid.uuid4().int >> 66, size).content()


def upload(node: Pserve, name: str, data: bytes, timeout: float = 60) -> requests.Response:
    return requests.post(node.url + "/", files={"file": (name, data)}, headers={"Accept": "application/json"},
                         timeout=timeout)


def uploaded(node: Pserve, name: str, data: bytes) -> dict:
    res = upload(node, name, data)
    assert res.status_code == 200, (res.status_code, res.text[:300])
    answer = res.json()
    assert answer["sha256"] == sha(data) and answer["filehash"], answer
    return answer


def keys(s3, prefix: str) -> set[str]:
    out = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        out.update(obj["Key"] for obj in page.get("Contents", ()))
    return out


def blob_key(deployment: Deployment, sha256_hex: str) -> str:
    return f"{deployment.s3_prefix}/{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}"


def log_sizes(nodes) -> list[int]:
    return [os.path.getsize(node.console) for node in nodes]


def server_errors_since(nodes, sizes: list[int]) -> list[str]:
    """Lines the nodes logged since ``sizes`` that report a 500 or a dead worker."""
    found = []
    for node, size in zip(nodes, sizes):
        with open(node.console, errors="replace") as f:
            f.seek(size)
            found += [f"{node.url}: {line.strip()}" for line in f
                      if "unhandled error" in line or "worker" in line and "failed" in line]
    return found


# tests whose polling of a removed paste may meet the 500s that
# test_reads_racing_a_removal_answer_200_or_404 shows (and is marked for)
POLLS_REMOVED_PASTES = {"test_removal_through_one_node_is_seen_by_the_others"}


@pytest.fixture(autouse=True)
def no_server_errors(request):
    """Every test but an expected failure leaves no 500 in the nodes' logs."""
    deployments = [request.getfixturevalue(name) for name in ("cluster", "limited") if name in request.fixturenames]
    marks = [(d.nodes, log_sizes(d.nodes)) for d in deployments]
    yield
    if request.node.get_closest_marker("xfail") is None:
        errors = [line for nodes, sizes in marks for line in server_errors_since(nodes, sizes)]
        if request.node.name in POLLS_REMOVED_PASTES:
            errors = [line for line in errors if "unhandled error on GET /i/" not in line]
        assert not errors, errors[:5]


def multipart_uploads(s3, prefix: str) -> list[dict]:
    out = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        out.extend(page.get("Uploads", ()))
    return out


# -- 1. every link through every other node ------------------------------------------------


def test_uploads_read_back_through_other_nodes(cluster):
    nodes = cluster.nodes
    sizes = {"small": 3 * KB, "medium": 300 * KB, "large": 12 * MB}
    stored = []
    for index, node in enumerate(nodes):
        for label, size in sizes.items():
            data = text_bytes(size)
            mark = cluster.proxy.mark()
            answer = uploaded(node, f"{label}-{index}.txt", data)
            sent = cluster.proxy.since(mark)
            multipart = [t for m, t in sent if m == "POST" and t.endswith("?uploads")]
            puts = [t for m, t in sent if m == "PUT"]
            if label == "small":  # in its row: the store sees nothing
                assert not puts and not multipart, sent
            elif label == "medium":  # one PUT at its address
                assert puts == [f"/{BUCKET}/{blob_key(cluster, answer['sha256'])}"] and not multipart, sent
            else:  # streamed as a multipart upload, copied server-side to its address
                assert len(multipart) == 1, sent
                assert sum(1 for t in puts if "partNumber=" in t) == 3, sent  # 5M + 5M + 2M
            stored.append((index, data, answer))
    # the nodes keep no blob of their own: their storage roots hold scratch only
    for node in nodes:
        root = os.path.join(node.directory, "files")
        kept = [os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files]
        assert all(path.split(os.sep)[0] in ("tmp", "locks") for path in kept), kept
        assert not os.listdir(os.path.join(root, "tmp")), kept

    for index, data, answer in stored:
        filehash, size = answer["filehash"], len(data)
        for other in (n for i, n in enumerate(nodes) if i != index):
            for kind in ("i", "d"):
                res = requests.get(f"{other.url}/{kind}/{filehash}", timeout=60)
                assert res.status_code == 200 and sha(res.content) == sha(data), (kind, res.status_code)
            etag = res.headers["ETag"]
            assert etag
            # ranges: inside, across the first part's end, a suffix
            ranges = [(0, 99), (size // 2, size // 2 + 999)]
            if size > PART:
                ranges.append((PART - 500, PART + 499))
            for first, last in ranges:
                part = requests.get(f"{other.url}/i/{filehash}", headers={"Range": f"bytes={first}-{last}"},
                                    timeout=60)
                assert part.status_code == 206, (first, last, part.status_code)
                assert part.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
                assert part.content == data[first:last + 1]
            tail = requests.get(f"{other.url}/i/{filehash}", headers={"Range": "bytes=-123"}, timeout=60)
            assert tail.status_code == 206 and tail.content == data[-123:]
            # the ETag one node handed out is valid on every node
            for third in nodes:
                cached = requests.get(f"{third.url}/i/{filehash}", headers={"If-None-Match": etag}, timeout=60)
                assert cached.status_code == 304 and cached.content == b"", (third.url, cached.status_code)


# -- 2. a removal through one node, seen by the others ---------------------------------------


def _gone_everywhere_within_a_second(nodes, filehash: str) -> float:
    started = time.monotonic()
    waiting = set(range(len(nodes)))
    while True:
        for i in sorted(waiting):
            if requests.get(f"{nodes[i].url}/i/{filehash}", timeout=5).status_code == 404:
                waiting.discard(i)
        elapsed = time.monotonic() - started
        if not waiting:
            return elapsed
        assert elapsed < 1.0, f"nodes {sorted(waiting)} still serve {filehash} 1 s after its removal"
        time.sleep(0.05)


def _delete(node: Pserve, answer: dict) -> None:
    res = requests.delete(f"{node.url}/j/{answer['filehash']}", headers={
        "X-Delete-Token": answer["delete_token"], "Accept": "application/json"}, timeout=30)
    assert res.status_code == 200 and res.json() == {"deleted": answer["filehash"]}, (res.status_code, res.text)


def test_removal_through_one_node_is_seen_by_the_others(cluster, s3):
    one, two, three = cluster.nodes
    data = text_bytes(200 * KB)
    first = uploaded(one, "first.txt", data)
    second = uploaded(two, "second.txt", data)  # the same blob under another paste
    key = blob_key(cluster, first["sha256"])
    assert key in keys(s3, cluster.s3_prefix)
    for node in cluster.nodes:  # every node has seen (and may keep) both
        for answer in (first, second):
            assert requests.get(f"{node.url}/i/{answer['filehash']}", timeout=30).status_code == 200

    _delete(one, first)
    _gone_everywhere_within_a_second([two, three], first["filehash"])
    # the other paste keeps the blob
    assert key in keys(s3, cluster.s3_prefix)
    for node in cluster.nodes:
        res = requests.get(f"{node.url}/i/{second['filehash']}", timeout=30)
        assert res.status_code == 200 and sha(res.content) == sha(data)

    _delete(three, second)
    _gone_everywhere_within_a_second([one, two], second["filehash"])
    stored = keys(s3, cluster.s3_prefix)
    assert key not in stored
    assert not [k for k in stored if k.startswith(f"{cluster.s3_prefix}/trash/")]  # purged, not only moved
    with cluster.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blob WHERE sha256 = :s"),
                            {"s": bytes.fromhex(first["sha256"])}).scalar() == 0


@pytest.mark.parametrize("query", ["", "?w=32&h=24"], ids=["raw", "rendition"])
def test_reads_racing_a_removal_answer_200_or_404(cluster, query):
    """While other nodes are being read without pause, a paste (the only
    one over its blob) is removed through one node: until they hear of it
    they may still serve it, then 404; never a server error."""
    one, two, three = cluster.nodes
    statuses: list[int] = []
    for round_ in range(3):
        answer = uploaded(one, f"raced-{round_}.png", make_image("PNG", (120, 90), seed=uuid.uuid4().int % 10**9))
        url = f"/i/{answer['filehash']}{query}"
        stop = threading.Event()
        seen: list[int] = []

        def read(node: Pserve) -> None:
            with requests.Session() as session:  # kept alive: the same worker throughout
                while not stop.is_set():
                    seen.append(session.get(node.url + url, timeout=10).status_code)

        readers = [threading.Thread(target=read, args=(node,), daemon=True) for node in (two, three) for _ in range(3)]
        for t in readers:
            t.start()
        deadline = time.monotonic() + 10
        while seen.count(200) < 12:  # every reader has the row by now
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _delete(one, answer)
        removed = len(seen)
        time.sleep(1.0)
        stop.set()
        for t in readers:
            t.join(15)
        assert seen[-6:] == [404] * 6, seen[-6:]
        statuses.extend(seen[removed:])
    assert set(statuses) <= {200, 404}, {s: statuses.count(s) for s in set(statuses)}


# -- 3. one render for the same new rendition asked of every node ------------------------------


def test_the_same_rendition_on_three_nodes_is_rendered_once(cluster, s3):
    nodes = cluster.nodes
    png = make_image("PNG", (200, 150), seed=uuid.uuid4().int % 10**9)
    source = uploaded(nodes[0], "source.png", png)
    source_target = f"/{BUCKET}/{blob_key(cluster, source['sha256'])}"

    def store_reads_of_source(mark: int) -> int:
        return sum(1 for m, t in cluster.proxy.since(mark) if m == "GET" and t.split("?")[0] == source_target)

    # what one render alone asks of the store: another size, made once
    mark = cluster.proxy.mark()
    alone = requests.get(f"{nodes[1].url}/i/{source['filehash']}?w=32&h=24", timeout=60)
    assert alone.status_code == 200 and alone.headers["Content-Type"] == "image/png"
    one_render = store_reads_of_source(mark)
    assert one_render >= 1

    before = keys(s3, cluster.s3_prefix)
    per_node = 4
    barrier = threading.Barrier(len(nodes) * per_node)
    url = f"/i/{source['filehash']}?w=64&h=48"

    def ask(node: Pserve) -> tuple[int, bytes]:
        barrier.wait(30)
        res = requests.get(node.url + url, timeout=120)
        return res.status_code, res.content

    mark = cluster.proxy.mark()
    with ThreadPoolExecutor(len(nodes) * per_node) as pool:
        answers = list(pool.map(ask, [node for node in nodes for _ in range(per_node)]))
    assert {status for status, _ in answers} == {200}, [status for status, _ in answers]
    bodies = {body for _, body in answers}
    assert len(bodies) == 1
    body = bodies.pop()
    assert body[:8] == b"\x89PNG\r\n\x1a\n" and len(body) > INLINE_MAX
    # the source was read for one render, not one per node or per request
    assert store_reads_of_source(mark) == one_render, cluster.proxy.since(mark)

    with cluster.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.result_sha256 FROM rendition r WHERE r.source_sha256 = :s AND r.spec LIKE '64x48%'"),
            {"s": bytes.fromhex(source["sha256"])}).scalars().all()
    assert len(rows) == 1, rows
    assert rows[0].hex() == sha(body)
    added = keys(s3, cluster.s3_prefix) - before
    assert added == {blob_key(cluster, sha(body))}, added


# -- 4. one allowance for the whole deployment -------------------------------------------------


RATE_N = 4


@pytest.fixture
def limited(tmp_path_factory, pg_cluster, memcached_nodes, rgw):
    yield from _deployment(tmp_path_factory, pg_cluster, memcached_nodes, rgw, "limited", 3, **{
        "pastefile.rate_limit.uploads": str(RATE_N),
        # a long window: no upload is earned back while the test runs
        "pastefile.rate_limit.window": "3600",
    })


def test_rate_limit_is_shared_by_the_nodes(limited):
    nodes = limited.nodes
    attempts = 5 * RATE_N
    barrier = threading.Barrier(attempts)

    def attempt(i: int) -> requests.Response:
        data = text_bytes(2 * KB)
        barrier.wait(30)
        return upload(nodes[i % len(nodes)], f"limited-{i}.txt", data)

    with ThreadPoolExecutor(attempts) as pool:
        answers = list(pool.map(attempt, range(attempts)))
    statuses = [res.status_code for res in answers]
    assert statuses.count(200) == RATE_N and statuses.count(429) == attempts - RATE_N, statuses
    for res in answers:
        if res.status_code == 429:
            assert int(res.headers["Retry-After"]) >= 1
    # later ones are refused by every node too
    for node in nodes:
        assert upload(node, "late.txt", text_bytes(KB)).status_code == 429
    with limited.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM paste_file")).scalar() == RATE_N


# -- extra: a removal and an upload of the same bytes on two nodes at once ------------------------


def test_removal_racing_an_upload_of_the_same_bytes_keeps_the_new_paste(cluster, s3):
    one, two, three = cluster.nodes
    for round_ in range(6):
        data = text_bytes(150 * KB)
        old = uploaded(one, f"old-{round_}.txt", data)
        barrier = threading.Barrier(2)

        def remove():
            barrier.wait(10)
            _delete(two, old)

        def again():
            barrier.wait(10)
            time.sleep(0.002 * round_)  # shift the race a little each round
            return uploaded(three, f"new-{round_}.txt", data)

        with ThreadPoolExecutor(2) as pool:
            removed, new = pool.submit(remove), pool.submit(again)
            removed.result(60)
            answer = new.result(60)
        assert blob_key(cluster, answer["sha256"]) in keys(s3, cluster.s3_prefix), round_
        for node in cluster.nodes:
            res = requests.get(f"{node.url}/i/{answer['filehash']}", timeout=30)
            assert res.status_code == 200 and sha(res.content) == sha(data), (round_, node.url, res.status_code)
    checked = cluster.service.fsck(grace=0)
    assert checked["missing_files"] == 0, checked


# -- extra: the same upload through every node at once ---------------------------------------------


@pytest.mark.parametrize("size", [300 * KB, 6 * MB], ids=["put", "multipart"])
def test_the_same_upload_on_every_node_at_once_is_one_paste(cluster, s3, size):
    data = text_bytes(size)
    name = f"same-{size}.txt"
    senders = [node for node in cluster.nodes for _ in range(2)]
    barrier = threading.Barrier(len(senders))
    before = keys(s3, cluster.s3_prefix)

    def send(node: Pserve) -> dict:
        barrier.wait(10)
        return uploaded(node, name, data)

    with ThreadPoolExecutor(len(senders)) as pool:
        answers = list(pool.map(send, senders))
    # same bytes, same name: the same paste, whichever node took it
    assert len({a["filehash"] for a in answers}) == 1, answers
    assert keys(s3, cluster.s3_prefix) - before == {blob_key(cluster, sha(data))}  # no staging object left
    with cluster.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM paste_file WHERE filename = :n"), {"n": name}).scalar() == 1
    for node in cluster.nodes:
        res = requests.get(f"{node.url}/i/{answers[0]['filehash']}", timeout=60)
        assert res.status_code == 200 and sha(res.content) == sha(data)


# -- 5. a node SIGKILLed in the middle of an upload ----------------------------------------------


def _slow_upload(port: int, declared: int, sent: list[int], stop: threading.Event) -> None:
    """A multipart POST announcing ``declared`` bytes, sent 256 KB at a time
    until the connection breaks or ``stop``."""
    boundary = "severalnodeskill"
    preamble = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="killed.txt"\r\n'
                "Content-Type: text/plain\r\n\r\n").encode()
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nContent-Length: {declared}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    chunk = text_bytes(256 * KB)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(head + preamble)
            # never the whole body: only the kill ends this upload
            while not stop.is_set() and sent[0] + len(chunk) < declared:
                s.sendall(chunk)
                sent[0] += len(chunk)
                time.sleep(0.01)
            stop.wait(60)
    except OSError:
        pass


def test_node_killed_mid_upload_leaves_nothing_visible(cluster, s3):
    victim = cluster.nodes[2]
    service = cluster.service
    with cluster.engine.connect() as conn:
        pastes_before = conn.execute(text("SELECT count(*) FROM paste_file")).scalar()
    uploads_before = {u["UploadId"] for u in multipart_uploads(s3, cluster.s3_prefix)}
    sent, stop = [0], threading.Event()
    sender = threading.Thread(target=_slow_upload, args=(victim.port, 64 * MB, sent, stop), daemon=True)
    sender.start()
    try:
        # until the upload streams its parts into the store
        deadline = time.monotonic() + 60
        while not {u["UploadId"] for u in multipart_uploads(s3, cluster.s3_prefix)} - uploads_before:
            assert time.monotonic() < deadline and sender.is_alive(), f"no multipart upload after {sent[0]} bytes"
            time.sleep(0.05)
        at_kill = sent[0]
        victim.kill(signal.SIGKILL)  # the parent and both workers at once
    finally:
        stop.set()
        sender.join(30)
    try:
        with cluster.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM paste_file")).scalar() == pastes_before
            assert conn.execute(text("SELECT count(*) FROM paste_file WHERE filename = 'killed.txt'")).scalar() == 0
        checked = service.fsck(grace=0)
        assert checked["missing_files"] == 0 and checked["corrupt_files"] == 0, checked
        repaired = service.fsck(repair=True, grace=0)
        after = service.fsck(grace=0)
        assert after["orphan_files"] == 0 and after["missing_files"] == 0 and after["trash"] == 0, after
        # every blob a row keeps outside the row is in the bucket
        stored = keys(s3, cluster.s3_prefix)
        with cluster.engine.connect() as conn:
            outside = conn.execute(text("SELECT sha256 FROM blob WHERE data IS NULL")).scalars().all()
        missing = [s.hex() for s in outside if blob_key(cluster, s.hex()) not in stored]
        assert not missing, missing
        left = [u for u in multipart_uploads(s3, cluster.s3_prefix) if u["UploadId"] not in uploads_before]
        staging = [k for k in stored if k.startswith(f"{cluster.s3_prefix}/tmp/")]
        print(f"\n[several-nodes] killed after {at_kill / MB:.1f} MB sent; fsck {checked}; repair {repaired}; "
              f"left: {len(left)} incomplete multipart upload(s), {len(staging)} staging object(s), "
              f"scratch files on the killed node: {os.listdir(os.path.join(victim.directory, 'files', 'tmp'))}")
        # the incomplete multipart upload is aborted by the sweep only when a day old
        assert len(left) <= 1 and not staging, (left, staging)
    finally:
        victim.start()
    # the node serves again and its start-up removed its scratch files
    assert os.listdir(os.path.join(victim.directory, "files", "tmp")) == []
    answer = uploaded(victim, "after-kill.txt", text_bytes(300 * KB))
    assert requests.get(f"{cluster.nodes[0].url}/i/{answer['filehash']}", timeout=30).status_code == 200


# -- 6. the object store unreachable for a while ---------------------------------------------------


def test_object_store_outage_answers_503_and_loses_nothing(cluster):
    nodes, proxy = cluster.nodes, cluster.proxy
    results: list[tuple[float, float, int | None, dict, bytes | None, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        i = 0
        while not stop.is_set():
            node = nodes[(k + i) % len(nodes)]
            data = text_bytes((20 + 37 * i % 280) * KB)  # objects, not rows
            started = time.monotonic()
            try:
                res = upload(node, f"outage-{k}-{i}.txt", data, timeout=60)
                status, headers, answer = res.status_code, dict(res.headers), res.json()
            except (requests.RequestException, ValueError) as exc:
                status, headers, answer = None, {}, {"error": repr(exc)}
            with lock:
                results.append((started, time.monotonic(), status, headers, answer, data))
            i += 1

    def answered(after: float, status: int) -> int:
        with lock:
            return sum(1 for r in results if r[0] >= after and r[2] == status)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while answered(0, 200) < 6:
            assert time.monotonic() < deadline, "no uploads before the outage"
            time.sleep(0.05)
        proxy.off()
        down = time.monotonic()
        deadline = down + 30
        # down for at least 2 s, and until uploads have been refused
        while answered(down, 503) < 3 or time.monotonic() < down + 2:
            assert time.monotonic() < deadline, "no 503 while the object store was away"
            time.sleep(0.05)
        # a large upload (streamed into a multipart upload as it arrives) and
        # reads of objects stored before: refused the same way
        large = upload(nodes[0], "outage-large.txt", text_bytes(12 * MB))
        assert large.status_code == 503 and large.headers.get("Retry-After") == "5", (large.status_code, large.text[:300])
        with lock:
            before = [(answer, data) for started, _, status, _, answer, data in results if status == 200][:3]
        for node, (answer, data) in zip(nodes, before):
            read = requests.get(f"{node.url}/i/{answer['filehash']}", timeout=60)
            assert (read.status_code == 503 and read.headers.get("Retry-After") == "5"
                    or read.status_code == 200 and sha(read.content) == sha(data)), (read.status_code, read.text[:300])
        for node in nodes:
            ready = requests.get(node.url + "/readyz", timeout=30)
            assert ready.status_code == 503 and ready.headers["Retry-After"] == "5", (ready.status_code, ready.text)
            assert ready.json()["checks"]["store"] != "ok", ready.json()
        proxy.on()
        up = time.monotonic()
        deadline = up + 30
        while answered(up, 200) < 6:
            assert time.monotonic() < deadline, "uploads do not succeed after the object store is back"
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(90)
        if proxy._listener is None:
            proxy.on()

    for node in nodes:
        assert requests.get(node.url + "/readyz", timeout=30).status_code == 200
    statuses = sorted({r[2] for r in results}, key=str)
    assert set(statuses) <= {200, 503}, statuses
    for started, ended, status, headers, answer, _ in results:
        if status == 503:
            assert headers.get("Retry-After") == "5", headers
            assert answer["error"]["status"] == 503, answer
            assert ended > down and started < up + 1, (started - down, ended - down)  # only in the outage
    ok = [(answer, data) for _, _, status, _, answer, data in results if status == 200]
    for index, (answer, data) in enumerate(ok):
        reader = nodes[index % len(nodes)]
        res = requests.get(f"{reader.url}/i/{answer['filehash']}", timeout=30)
        assert res.status_code == 200 and sha(res.content) == sha(data), (answer["filehash"], res.status_code)
    checked = cluster.service.fsck(grace=0)
    assert checked["missing_files"] == 0 and checked["corrupt_files"] == 0, checked
    # an object stored just before its upload was refused (its PUT went
    # through, a later call to the store did not) has no row: repair's
    cluster.service.fsck(repair=True, grace=0)
    repaired = cluster.service.fsck(grace=0)
    assert repaired["orphan_files"] == 0 and repaired["missing_files"] == 0, repaired
    for answer, data in ok:
        assert sha(requests.get(f"{nodes[0].url}/i/{answer['filehash']}", timeout=30).content) == sha(data)
    print(f"\n[several-nodes] outage: {len(results)} uploads, {len(ok)} stored, "
          f"{sum(1 for r in results if r[2] == 503)} answered 503, down {up - down:.1f} s; fsck {checked}")

