"""Backups of a deployment and their restore (``pastefile backup DIR`` /
``pastefile restore DIR``).

A backup is a consistent snapshot: every table is read in one transaction
(REPEATABLE READ on PostgreSQL, one read transaction on SQLite's WAL), then
each file-backed blob those rows refer to is copied out of the store
(whatever its kind, through ``store.open``) and re-hashed on the way.
Uploads committed after the snapshot began are simply not in it.  A blob
removed between the snapshot and its copy (a delete or gc that committed
meanwhile) takes the rows over it out of the backup, as that removal
did, so no row of a backup ever points at bytes it lacks.

Layout of DIR::

    manifest.json        format, counts, the tables' files with their SHA-256,
                         the blobs copied (hex SHA-256 and size)
    settings.json        what a restore must keep: symlink_key (short links are
                         made from it and the paste ids), rendition_secret,
                         the alembic revision, inline_max, the store's kind
                         (mode 0600: it holds secrets)
    db/<table>.jsonl     one JSON object per row; bytes in base64, times in
                         UTC ISO 8601: portable between SQLite and PostgreSQL
    blobs/ab/cd/<sha256> the file-backed blobs (small ones live in their rows)
    blobs.sha256         the blobs' checksum list (``sha256sum -c blobs.sha256``)

A restore goes into an empty database and the configured store: the schema
at head (``initdb``), the blobs put into the store and verified, then every
row in one transaction (so no row ever points at a blob not yet there), and
the paste ids' counter carried over so ids, and the short links made from
them, are never handed out twice.  Resumable uploads under way (tus) are
not part of a backup: their clients start them again.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Connection, DateTime, LargeBinary, func, select

from pastefile.ext.hashing import copy_and_hash

from . import db, repository
from .errors import PasteFileError
from .models import Base
from .stores import make_store

FORMAT = "pastefile-backup"
VERSION = 1
# parents before the rows that refer to them
TABLES = ("blob", "paste_file", "rendition")
BATCH = 500

Progress = Callable[[str, int, int], None]


class BackupError(PasteFileError):
    """A backup cannot be made, or a restore is refused; the message says why."""


# -- rows as portable JSON ---------------------------------------------------------


def _encoders(table) -> dict[str, Callable]:
    out = {}
    for column in table.columns:
        if isinstance(column.type, LargeBinary):
            out[column.name] = lambda v: None if v is None else base64.b64encode(v).decode("ascii")
        elif isinstance(column.type, DateTime):
            out[column.name] = lambda v: None if v is None else _utc(v).isoformat()
        else:
            out[column.name] = lambda v: v
    return out


def _decoders(table) -> dict[str, Callable]:
    out = {}
    for column in table.columns:
        if isinstance(column.type, LargeBinary):
            out[column.name] = lambda v: None if v is None else base64.b64decode(v)
        elif isinstance(column.type, DateTime):
            out[column.name] = lambda v: None if v is None else _utc(datetime.fromisoformat(v))
        else:
            out[column.name] = lambda v: v
    return out


def _utc(value: datetime) -> datetime:
    # SQLite hands back the UTC times pastefile wrote without their zone
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _tables():
    return [Base.metadata.tables[name] for name in TABLES]


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _blob_path(directory: str, sha_hex: str) -> str:
    return os.path.join(directory, "blobs", sha_hex[:2], sha_hex[2:4], sha_hex)


def _write_json(path: str, value, mode: int = 0o644) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- the snapshot --------------------------------------------------------------------


@contextmanager
def _snapshot(engine) -> Iterator[Connection]:
    """A connection in one transaction that sees one state of every table."""
    conn = engine.connect()
    try:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        else:
            # pysqlite starts no transaction for reads: without BEGIN each
            # SELECT would see its own state.  WAL keeps the writers going.
            conn.exec_driver_sql("BEGIN")
        yield conn
    finally:
        conn.rollback()
        conn.close()


def _paste_id_counter(conn: Connection) -> int:
    """The largest paste id ever handed out (deleted ones too)."""
    if conn.dialect.name == "postgresql":
        seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence('paste_file', 'id')").scalar()
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
        counter = last if called else last - 1
    else:
        counter = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'paste_file'").scalar() or 0
    highest = conn.execute(select(func.max(Base.metadata.tables["paste_file"].c.id))).scalar() or 0
    return max(counter, highest)


def backup(service, directory: str, progress: Progress | None = None) -> dict:
    """Write a backup of ``service``'s deployment into ``directory`` (new or
    empty); the report counts what it holds.  ``progress(stage, done, total)``."""
    directory = os.path.abspath(directory)
    if os.path.exists(os.path.join(directory, "manifest.json")):
        raise BackupError(f"{directory} holds a backup already; back up into a new or empty directory")
    os.makedirs(os.path.join(directory, "db"), exist_ok=True)
    head = _head_revision()
    files = {}
    counts = {}
    with _snapshot(service.engine) as conn:
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if revision != head:
            raise BackupError(f"the database's schema is at {revision}, this pastefile's at {head}: "
                              "run `pastefile initdb` first")
        for table in _tables():
            encode = _encoders(table)
            path = os.path.join(directory, "db", f"{table.name}.jsonl")
            rows = 0
            with open(path, "w", encoding="utf-8") as out:
                result = conn.execution_options(yield_per=BATCH).execute(select(table))
                for row in result.mappings():
                    out.write(json.dumps({k: encode[k](v) for k, v in row.items()}, ensure_ascii=False))
                    out.write("\n")
                    rows += 1
                    if progress is not None and rows % BATCH == 0:
                        progress(f"rows of {table.name}", rows, 0)
            counts[table.name] = rows
        sizes = repository.blob_sizes(conn)
        inline = len(repository.inline_hashes(conn))
        paste_ids = _paste_id_counter(conn)

    # the bytes: every file-backed blob of the snapshot, re-hashed as it is copied
    blobs = sorted(sizes.items())
    copied, gone, corrupt = [], set(), []
    total_bytes = 0
    for done, (sha, size) in enumerate(blobs, 1):
        outcome = _copy_blob(service, directory, sha, size)
        if outcome == "copied":
            copied.append((sha.hex(), size))
            total_bytes += size
        elif outcome == "gone":
            gone.add(sha)
        else:
            corrupt.append(sha.hex())
        if progress is not None:
            progress("blobs", done, len(blobs))
    dropped = _drop_gone(directory, gone, counts) if gone else {}

    for table in _tables():
        path = os.path.join(directory, "db", f"{table.name}.jsonl")
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        files[table.name] = {"file": f"db/{table.name}.jsonl", "rows": counts[table.name],
                             "sha256": _file_sha256(path)}
    with open(os.path.join(directory, "blobs.sha256"), "w", encoding="utf-8") as f:
        for sha_hex, _ in copied:
            f.write(f"{sha_hex}  blobs/{sha_hex[:2]}/{sha_hex[2:4]}/{sha_hex}\n")
    settings = service.settings
    _write_json(os.path.join(directory, "settings.json"), {
        "symlink_key": settings.symlink_key,
        "rendition_secret": settings.rendition_secret,
        "alembic_revision": revision,
        "inline_max": settings.inline_max,
        "store": settings.store,
    }, mode=0o600)
    report = {
        "pastes": counts["paste_file"],
        "blobs": counts["blob"],
        "renditions": counts["rendition"],
        "inline_blobs": inline,
        "file_blobs": len(copied),
        "bytes": total_bytes,
        "dropped_removed_meanwhile": dropped.get("pastes", 0),
        "corrupt": len(corrupt),
    }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(),
        "database": service.engine.dialect.name,
        "alembic_revision": revision,
        "paste_id_counter": paste_ids,
        "tables": files,
        "blobs": [[sha_hex, size] for sha_hex, size in copied],
        "blobs_checksums": "blobs.sha256",
        "corrupt_blobs": corrupt,
        "report": report,
    }
    # written last: a directory without it is an unfinished backup
    _write_json(os.path.join(directory, "manifest.json"), manifest)
    return report


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()


def _copy_blob(service, directory: str, sha: bytes, size: int) -> str:
    """Copy one blob into the backup: "copied", "gone" (removed since the
    snapshot, by a removal that committed) or "corrupt" (its bytes do not
    match its address)."""
    final = _blob_path(directory, sha.hex())
    os.makedirs(os.path.dirname(final), exist_ok=True)
    try:
        reader = service.store.open(sha)
    except FileNotFoundError:
        # taken away meanwhile, or in the trash of a removal not yet settled:
        # under the blob's lock that removal has committed or rolled back
        with service._maintenance.blob_locked(sha) as conn:
            if not repository.has_blob(conn, sha):
                return "gone"
            try:
                reader = service.store.open(sha)
            except FileNotFoundError:
                return "gone"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(final))
    try:
        with reader, os.fdopen(fd, "wb") as out:
            result = copy_and_hash(reader, out)
            out.flush()
            os.fsync(out.fileno())
        if result.digest != sha or result.size != size:
            return "corrupt"
        os.replace(tmp, final)
        tmp = None
        return "copied"
    finally:
        if tmp is not None:
            os.unlink(tmp)


def _drop_gone(directory: str, gone: set[bytes], counts: dict[str, int]) -> dict[str, int]:
    """Take out of the dumped rows what a removal committed after the
    snapshot took: the blobs whose bytes went, the pastes over them (and
    pastes made from those), the renditions of or to them."""
    def rows(name):
        with open(os.path.join(directory, "db", f"{name}.jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def write(name, kept):
        path = os.path.join(directory, "db", f"{name}.jsonl")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            for row in kept:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(path + ".tmp", path)
        counts[name] = len(kept)

    gone_b64 = {base64.b64encode(sha).decode("ascii") for sha in gone}
    pastes = rows("paste_file")
    dropped_ids = {p["id"] for p in pastes if p["blob_sha256"] in gone_b64}
    while True:
        more = {p["id"] for p in pastes if p["parent_id"] in dropped_ids and p["id"] not in dropped_ids}
        if not more:
            break
        dropped_ids |= more
    write("paste_file", [p for p in pastes if p["id"] not in dropped_ids])
    write("rendition", [r for r in rows("rendition")
                        if r["source_sha256"] not in gone_b64 and r["result_sha256"] not in gone_b64])
    write("blob", [b for b in rows("blob") if b["sha256"] not in gone_b64])
    return {"pastes": len(dropped_ids)}


# -- restore ---------------------------------------------------------------------------


def read_backup(directory: str) -> tuple[dict, dict]:
    """The manifest and settings of a backup, its table files checked."""
    directory = os.path.abspath(directory)
    try:
        with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        with open(os.path.join(directory, "settings.json"), encoding="utf-8") as f:
            saved = json.load(f)
    except FileNotFoundError as exc:
        raise BackupError(f"{directory} is not a complete backup: {os.path.basename(exc.filename)} is missing") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read the backup in {directory}: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError(f"{directory} is not a pastefile backup of version {VERSION}")
    for name, entry in manifest["tables"].items():
        path = os.path.join(directory, entry["file"])
        if not os.path.isfile(path) or _file_sha256(path) != entry["sha256"]:
            raise BackupError(f"{entry['file']} of the backup is missing or does not match its checksum")
    return manifest, saved


def _row_counts(engine) -> dict[str, int]:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        return {name: conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
                for name in (*TABLES, "tus_upload") if name in present}


def restore(service, directory: str, *, force: bool = False, progress: Progress | None = None,
            warn: Callable[[str], None] | None = None) -> dict:
    """Restore the backup in ``directory`` into ``service``'s deployment,
    whose database must be empty.  Refused (BackupError) when the configured
    symlink_key is not the backup's, unless ``force``: every short link
    would then name another paste or none."""
    directory = os.path.abspath(directory)
    warn = warn or (lambda message: None)
    manifest, saved = read_backup(directory)
    settings = service.settings
    if settings.symlink_key != saved["symlink_key"]:
        message = ("the configured pastefile.symlink_key is not the backup's: every short link "
                   "would break (set the backup's key from its settings.json)")
        if not force:
            raise BackupError(message + "; --force restores anyway")
        warn(message)
    if settings.rendition_secret != saved.get("rendition_secret", ""):
        warn("the configured pastefile.rendition_secret is not the backup's: signed rendition links will break")
    filled = {name: n for name, n in _row_counts(service.engine).items() if n}
    if filled:
        raise BackupError("the database is not empty (" + ", ".join(f"{n} rows in {name}" for name, n in
                          sorted(filled.items())) + "): restore into an empty database")
    service.initdb()
    revision = db.current_revision(service.engine)
    if revision != manifest["alembic_revision"]:
        raise BackupError(f"the backup's schema is at {manifest['alembic_revision']}, this pastefile's at "
                          f"{revision}: restore with the pastefile version that made it, then upgrade")

    # the bytes first: no row may point at a blob not yet in the store
    store = make_store(dataclasses.replace(settings, inline_max=0))
    report = {"pastes": 0, "blobs": 0, "renditions": 0, "file_blobs": 0, "copied": 0, "present": 0, "bytes": 0}
    blobs = manifest["blobs"]
    for done, (sha_hex, size) in enumerate(blobs, 1):
        report[_put_blob(store, directory, sha_hex, size)] += 1
        report["file_blobs"] += 1
        report["bytes"] += size
        if progress is not None:
            progress("blobs", done, len(blobs))

    with service.engine.begin() as conn:
        repository.write_lock(conn)
        if conn.execute(select(func.count()).select_from(Base.metadata.tables["paste_file"])).scalar():
            raise BackupError("the database took rows while the restore ran: restore into an empty database")
        for table in _tables():
            entry = manifest["tables"][table.name]
            decode = _decoders(table)
            done = 0
            batch = []
            with open(os.path.join(directory, entry["file"]), encoding="utf-8") as f:
                lines = f if table.name != "paste_file" else sorted(f, key=lambda line: json.loads(line)["id"])
                for line in lines:
                    row = json.loads(line)
                    batch.append({k: decode[k](v) for k, v in row.items() if k in decode})
                    if len(batch) >= BATCH:
                        conn.execute(table.insert(), batch)
                        done += len(batch)
                        batch = []
                        if progress is not None:
                            progress(f"rows of {table.name}", done, entry["rows"])
            if batch:
                conn.execute(table.insert(), batch)
                done += len(batch)
            if done != entry["rows"]:
                raise BackupError(f"{entry['file']} holds {done} rows, the manifest says {entry['rows']}")
            report[{"blob": "blobs", "paste_file": "pastes", "rendition": "renditions"}[table.name]] = done
        _set_paste_id_counter(conn, manifest.get("paste_id_counter") or 0)
    return report


def _put_blob(store, directory: str, sha_hex: str, size: int) -> str:
    sha = bytes.fromhex(sha_hex)
    if store.size(sha) == size:
        return "present"
    path = _blob_path(directory, sha_hex)
    try:
        with open(path, "rb") as f:
            staged = store.stage(f)
    except FileNotFoundError:
        raise BackupError(f"the backup lacks blob {sha_hex} (blobs/{sha_hex[:2]}/{sha_hex[2:4]}/{sha_hex})") from None
    try:
        if staged.sha256 != sha or staged.size != size:
            raise BackupError(f"blob {sha_hex} of the backup does not match its checksum: not restored")
        if store.size(sha) is not None:
            trashed = store.trash(sha)  # a wrong object at the address: replace it
            if trashed:
                store.purge(trashed)
        store.commit(staged)
        return "copied"
    finally:
        store.settle(staged)


def _set_paste_id_counter(conn: Connection, counter: int) -> None:
    """Ids go on after the largest one the backed-up deployment handed out."""
    table = Base.metadata.tables["paste_file"]
    counter = max(counter, conn.execute(select(func.max(table.c.id))).scalar() or 0)
    if not counter:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('paste_file', 'id'), %(n)s)", {"n": counter})
    else:
        updated = conn.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'paste_file'", (counter,)).rowcount
        if not updated:
            conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('paste_file', ?)", (counter,))
