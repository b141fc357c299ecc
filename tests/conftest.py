"""Shared fixtures: a throwaway PostgreSQL cluster and memcached nodes for the
whole run, and pastefile services over SQLite and over PostgreSQL + memcached."""
from __future__ import annotations

import io
import os
import functools
import random
import uuid

import pytest
from PIL import Image
from pytest_postgresql.janitor import DatabaseJanitor

import pastefile.webapp
from pastefile.core import PasteFileService, db

from .servers import Memcached, PostgresCluster

# sqlite: the embedded default (SQLite, in-process cache, files);
# postgresql: PostgreSQL + memcached + files; s3: the several-node stack,
# PostgreSQL + memcached + objects in a real Ceph RADOS Gateway
BACKENDS = ["sqlite", "postgresql", "s3"]
S3_BUCKET = "pastefile-tests"


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


def _janitor(cluster: PostgresCluster, dbname: str) -> DatabaseJanitor:
    return DatabaseJanitor(user=cluster.user, host="127.0.0.1", port=cluster.port, dbname=dbname)


def _migrated_database(cluster: PostgresCluster, name: str):
    janitor = _janitor(cluster, name)
    janitor.init()
    url = cluster.url(name)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    janitor.drop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster):
    """A migrated database shared by the run's core tests, emptied after each."""
    yield from _migrated_database(pg_cluster, "pastefile_test")


@pytest.fixture(scope="session")
def webapp_pg_url(pg_cluster):
    """A migrated database for the web apps (kept apart from ``pg_url``,
    whose tests count rows and empty it after each test)."""
    yield from _migrated_database(pg_cluster, "pastefile_web")


@pytest.fixture
def fresh_pg_url(pg_cluster):
    """An empty database of its own, for tests that need real commits."""
    name = f"pastefile_{uuid.uuid4().hex[:12]}"
    janitor = _janitor(pg_cluster, name)
    janitor.init()
    yield pg_cluster.url(name)
    janitor.drop()


@pytest.fixture(scope="session")
def memcached_nodes():
    nodes = [Memcached().start() for _ in range(2)]
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def rgw():
    """One throwaway Ceph RADOS Gateway (S3) for the session; a missing or
    broken Ceph raises ServerError, so the tests that use it fail."""
    from .ceph import CephRGW

    gateway = CephRGW().start()
    # the tests' bucket, there for any app on the s3 backend (initdb would make it)
    gateway.client().create_bucket(Bucket=S3_BUCKET)
    yield gateway
    gateway.stop()


def settings_for(backend: str, tmp_path, *, pg_url: str | None = None, memcached=None, rgw=None, **extra) -> dict:
    settings = {
        "pastefile.storage_root": str(tmp_path / "files"),
        "pastefile.symlink_key": "test-key",
        "pastefile.base_url": "http://files.test",
        # a fresh key space per test: rolled-back rows must not linger in the cache
        "pastefile.cache.prefix": f"t{uuid.uuid4().hex[:10]}",
    }
    if backend == "sqlite":
        settings.update({
            "pastefile.db_url": f"sqlite:///{tmp_path / 'pastefile.sqlite'}",
            "pastefile.cache.backend": "memory",
            "pastefile.auto_migrate": "true",
        })
    else:
        settings.update({
            "pastefile.db_url": pg_url,
            "pastefile.cache.backend": "memcached",
            "pastefile.cache.servers": " ".join(node.address for node in memcached),
        })
    if backend == "s3":
        settings.update(s3_settings(rgw, tmp_path))
    settings.update(extra)
    return settings


def s3_settings(rgw, tmp_path) -> dict:
    """The s3 store on the session's gateway, under a prefix of this test's
    own (services of one test share it, as nodes share a bucket)."""
    return {
        "pastefile.store": "s3",
        "pastefile.s3.endpoint_url": rgw.endpoint_url,
        "pastefile.s3.bucket": S3_BUCKET,
        "pastefile.s3.prefix": "t" + uuid.uuid5(uuid.NAMESPACE_URL, str(tmp_path)).hex[:16],
        "pastefile.s3.access_key_id": rgw.access_key,
        "pastefile.s3.secret_access_key": rgw.secret_key,
        # the smallest part S3 takes: tests reach multipart with small bodies
        "pastefile.s3.part_size": "5M",
    }


def needs_s3(request, backend: str):
    """The session's gateway when ``backend`` stores objects, else None."""
    return request.getfixturevalue("rgw") if backend == "s3" else None


def pg_service(tmp_path, url: str, nodes, inline_max: str, rgw=None) -> PasteFileService:
    """An unbound service on its own PostgreSQL database (real commits), for
    races; its blobs are objects on ``rgw`` when given, else files."""
    svc = PasteFileService(settings_for(
        "s3" if rgw is not None else "postgresql", tmp_path, pg_url=url, memcached=nodes, rgw=rgw,
        **{"pastefile.inline_max": inline_max},
    ))
    svc.initdb()
    return svc


@pytest.fixture(params=["file", "s3"])
def race_rgw(request):
    """Races run on both stores: the gateway for s3, None for files."""
    return request.getfixturevalue("rgw") if request.param == "s3" else None


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def service_factory(request, backend, tmp_path):
    """Build services on the current backend, as production runs them: real
    commits through the group committer.  PostgreSQL services share one
    database, emptied after each test (ids keep counting, so a row cached
    under an id is never mistaken for a later one; each test has its own
    cache prefix anyway)."""
    cleanups = []

    def make(**extra) -> PasteFileService:
        if backend == "sqlite":
            svc = PasteFileService(settings_for("sqlite", tmp_path, **extra))
        else:
            pg_url = request.getfixturevalue("pg_url")
            nodes = request.getfixturevalue("memcached_nodes")
            svc = PasteFileService(settings_for(backend, tmp_path, pg_url=pg_url, memcached=nodes,
                                                rgw=needs_s3(request, backend), **extra))
            svc.store.ensure_bucket()
            if not cleanups:
                cleanups.append(functools.partial(_empty_tables, svc.settings.db_url))
        cleanups.append(svc.close)
        return svc

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


def _empty_tables(url: str) -> None:
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE rendition, paste_file, blob")
    finally:
        engine.dispose()


@pytest.fixture
def service(service_factory):
    return service_factory()


def webapp_settings(request, backend: str, tmp_path, **extra) -> dict:
    """Settings of a web app on ``backend``; PostgreSQL apps commit for real
    into ``webapp_pg_url``, with both memcached nodes."""
    if backend == "sqlite":
        return settings_for("sqlite", tmp_path, **extra)
    return settings_for(
        backend,
        tmp_path,
        pg_url=request.getfixturevalue("webapp_pg_url"),
        memcached=request.getfixturevalue("memcached_nodes"),
        rgw=needs_s3(request, backend),
        **extra,
    )


@pytest.fixture
def webapp_factory(request, backend, tmp_path):
    """``make(**settings)`` builds the Pyramid app (in a WebTest app) on the
    current backend.  Apps made in one test share the database and the
    storage root; each has a fresh cache key space."""
    from .webapp_helpers import WebApp

    apps = []

    def make(**extra):
        app = WebApp(pastefile.webapp.main({}, **webapp_settings(request, backend, tmp_path, **extra)))
        app.service.store.ensure_bucket()
        apps.append(app)
        return app

    yield make
    for app in reversed(apps):
        app.service.close()


@pytest.fixture
def webapp(webapp_factory):
    return webapp_factory()


def blob_files(service) -> list[str]:
    """Committed blob files (not temp files, locks or files being removed);
    on an object store, the stored blobs' hex names."""
    if not hasattr(service.store, "root"):
        return sorted(sha.hex() for sha in service.store.iter_hashes())
    root = service.store.root
    skip = tuple(os.path.join(root, d) for d in ("tmp", "locks", "trash"))
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) if not d.startswith(skip) for f in files)


def blob_copies(service, sha256_hex: str) -> int:
    """How many places hold one blob's bytes: its file, its row (inline), or
    both; a stored blob has exactly one."""
    from sqlalchemy import select

    from pastefile.core.models import Blob

    sha = bytes.fromhex(sha256_hex)
    with service._connection() as conn:
        inline = conn.execute(select(Blob.data.is_not(None)).where(Blob.sha256 == sha)).scalar()
    return int(service.store.exists(sha)) + int(bool(inline))


def temp_files(service) -> list[str]:
    return os.listdir(service.store.temp_dir)


def make_image(fmt: str = "PNG", size=(64, 48), seed: int = 0, mode: str = "RGB") -> bytes:
    """A small image with random pixels, so every seed gives new content."""
    rng = random.Random(seed)
    bands = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    img = Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * bands))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def random_text(seed: int, size: int = 2000) -> bytes:
    rng = random.Random(seed)
    words = ["paste", "file", "blob", "hash", "cache", "image", "link", "store"]
    text = " ".join(rng.choice(words) + str(rng.randrange(10**6)) for _ in range(size // 8))
    return text.encode()[:size]


# the backends whose blobs are files: for tests of the file layout itself
# (paths, X-Accel-Redirect onto the storage root)
FILE_BACKENDS = ["sqlite", "postgresql"]
only_file_stores = pytest.mark.parametrize("backend", FILE_BACKENDS)


def raw_store(service):
    """A second store of the same kind and place as ``service``'s, keeping
    every blob out of rows: for putting bytes in behind the service's back."""
    import dataclasses

    from pastefile.core.stores import make_store

    return make_store(dataclasses.replace(service.settings, inline_max=0))


def overwrite_blob(service, sha256_hex: str, data: bytes) -> None:
    """Replace a stored blob's bytes at its address (a corruption)."""
    store = service.store
    if hasattr(store, "root"):
        with open(store.path(bytes.fromhex(sha256_hex)), "wb") as f:
            f.write(data)
    else:
        store.client.put_object(Bucket=store.bucket, Key=store.key(sha256_hex), Body=data)


def read_blob(service, sha256_hex: str) -> bytes:
    with service.store.open(bytes.fromhex(sha256_hex)) as f:
        return f.read()


def drop_blob(service, sha256_hex: str) -> None:
    """Remove a stored blob's bytes behind the database's back."""
    store = service.store
    if hasattr(store, "root"):
        os.unlink(store.path(bytes.fromhex(sha256_hex)))
    else:
        store.client.delete_object(Bucket=store.bucket, Key=store.key(sha256_hex))
