"""``pastefile backup`` / ``restore``: a snapshot taken while uploads go on,
restored into an empty database and an empty store, serves every paste it
holds by its filehash and its short link, and nothing uploaded after it."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import uuid

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from pastefile.core import PasteFileService
from pastefile.core.backup import BackupError, backup, restore

from .conftest import make_image, random_text, settings_for

pytestmark = pytest.mark.timeout(600)


def _settings(backend: str, tmp_path, request, name: str, **extra) -> dict:
    root = tmp_path / name
    root.mkdir()
    if backend == "sqlite":
        return settings_for("sqlite", root, **extra)
    cluster = request.getfixturevalue("pg_cluster")
    dbname = f"pastefile_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(user=cluster.user, host="127.0.0.1", port=cluster.port, dbname=dbname)
    janitor.init()
    request.addfinalizer(janitor.drop)
    settings = settings_for("postgresql", root, pg_url=cluster.url(dbname),
                            memcached=request.getfixturevalue("memcached_nodes"), **extra)
    return settings


def _service(request, settings) -> PasteFileService:
    svc = PasteFileService(settings)
    svc.initdb()
    request.addfinalizer(svc.close)
    return svc


def _read(service, filehash: str) -> bytes:
    with service.open(filehash) as f:
        return f.read()


def _upload_mix(service) -> list:
    pastes = []
    for i in range(6):  # kept in their rows
        pastes.append(service.upload(_bytes_io(random_text(i, 3000)), f"note{i}.txt"))
    for i in range(12):  # files in the store
        pastes.append(service.upload(_bytes_io(make_image("PNG", (300, 200), seed=100 + i)), f"big{i}.png"))
    pastes.append(service.upload(_bytes_io(random_text(50, 200_000)), "long.txt"))
    image = service.upload(_bytes_io(make_image("PNG", (400, 300), seed=7)), "photo.png")
    pastes.append(image)
    service.rendition(image, 64, 48)  # a rendition blob and its row
    pastes.append(service.resize(image.filehash, 100, 75))  # a paste made from another one
    pastes.append(service.upload(_bytes_io(random_text(60, 1000)), "soon.txt", expires_in=3600))
    pastes.append(service.upload(_bytes_io(make_image("PNG", (300, 200), seed=61)), "soon.png", expires_in=3600))
    return pastes


def _bytes_io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_backup_while_uploading_then_restore_into_empty_deployment(backend, tmp_path, request):
    source = _service(request, _settings(backend, tmp_path, request, "source"))
    before = _upload_mix(source)

    # another thread keeps uploading while the backup runs
    stop = threading.Event()
    uploaded = []  # (paste, finished after the snapshot began)
    snapshot_taken = threading.Event()
    errors = []

    def uploader():
        i = 0
        while not stop.is_set():
            i += 1
            data = make_image("PNG", (300, 200), seed=10_000 + i) if i % 2 else random_text(10_000 + i, 2000)
            try:
                paste = source.upload(_bytes_io(data), f"during{i}.{'png' if i % 2 else 'txt'}")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return
            uploaded.append((paste, snapshot_taken.is_set()))

    thread = threading.Thread(target=uploader)
    thread.start()
    stages = []

    def progress(stage, done, total):
        if stage == "blobs" and not snapshot_taken.is_set():
            # the rows are read: uploads from now on must not be in the backup
            snapshot_taken.set()
            seen = len(uploaded)
            for _ in range(600):
                if len(uploaded) >= seen + 3 or errors:
                    break
                threading.Event().wait(0.05)
        stages.append(stage)

    directory = tmp_path / "backup"
    try:
        report = backup(source, str(directory), progress)
    finally:
        stop.set()
        thread.join(60)
    assert not errors
    assert "blobs" in stages
    after = [paste for paste, late in uploaded if late]
    assert after, "no upload completed while the backup ran"

    manifest = json.loads((directory / "manifest.json").read_text())
    saved = json.loads((directory / "settings.json").read_text())
    assert saved["symlink_key"] == "test-key" and saved["alembic_revision"] == manifest["alembic_revision"]
    assert saved["inline_max"] == source.settings.inline_max and saved["store"] == "file"
    assert report["pastes"] == manifest["tables"]["paste_file"]["rows"] >= len(before)
    assert report["renditions"] >= 1 and report["file_blobs"] >= 14 and report["corrupt"] == 0
    checksums = (directory / "blobs.sha256").read_text().splitlines()
    assert len(checksums) == len(manifest["blobs"]) == report["file_blobs"]
    for sha_hex, size in manifest["blobs"]:
        assert (directory / "blobs" / sha_hex[:2] / sha_hex[2:4] / sha_hex).stat().st_size == size

    # a new, empty deployment: another database, an empty storage root
    target = _service(request, _settings(backend, tmp_path, request, "target"))
    assert target.count() == (0, 0)
    restored = restore(target, str(directory))
    assert restored["pastes"] == report["pastes"] and restored["copied"] == report["file_blobs"]

    in_backup = {json.loads(line)["filehash"] for line in (directory / "db" / "paste_file.jsonl").open()}
    for paste in before:
        assert paste.filehash in in_backup
    for paste in after:
        assert paste.filehash not in in_backup
        assert target.get(paste.filehash) is None
    everything = before + [paste for paste, _ in uploaded]
    by_hash = {paste.filehash: paste for paste in everything}
    assert in_backup <= set(by_hash)
    for filehash in in_backup:
        original = by_hash[filehash]
        assert _read(target, filehash) == _read(source, filehash)
        assert target.get_by_symlink(original.symlink).filehash == filehash
        assert target.get(filehash).expires == source.get(filehash).expires
    assert target.count() == (report["pastes"], report["blobs"])

    report_fsck = target.fsck(verify=True, grace=0)
    assert report_fsck["missing_files"] == report_fsck["corrupt_files"] == report_fsck["orphan_files"] == 0
    assert report_fsck["renditions"] == report["renditions"]

    # ids go on after the backed-up ones: a new paste never takes an old short link
    fresh = target.upload(_bytes_io(random_text(999, 500)), "new.txt")
    assert fresh.symlink not in {paste.symlink for paste in everything if paste.filehash in in_backup}

    with pytest.raises(BackupError, match="not empty"):
        restore(target, str(directory))


def test_restore_refuses_another_symlink_key_unless_forced(tmp_path, request):
    source = _service(request, _settings("sqlite", tmp_path, request, "source"))
    paste = source.upload(_bytes_io(make_image("PNG", (300, 200), seed=3)), "a.png")
    backup(source, str(tmp_path / "backup"))
    other = _service(request, _settings("sqlite", tmp_path, request, "other",
                                        **{"pastefile.symlink_key": "another-key"}))
    with pytest.raises(BackupError, match="symlink_key"):
        restore(other, str(tmp_path / "backup"))
    assert other.count() == (0, 0)
    warnings = []
    restore(other, str(tmp_path / "backup"), force=True, warn=warnings.append)
    assert any("symlink_key" in w for w in warnings)
    assert _read(other, paste.filehash) == _read(source, paste.filehash)


def test_backup_refuses_a_directory_holding_a_backup(tmp_path, request):
    source = _service(request, _settings("sqlite", tmp_path, request, "source"))
    backup(source, str(tmp_path / "backup"))
    with pytest.raises(BackupError, match="holds a backup"):
        backup(source, str(tmp_path / "backup"))


def _ini(path, settings: dict) -> str:
    lines = ["[app:main]"] + [f"{key} = {value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pastefile.core.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_backup_and_restore_round_trip(tmp_path, request):
    source_settings = _settings("sqlite", tmp_path, request, "source")
    source = _service(request, source_settings)
    pastes = [source.upload(_bytes_io(random_text(1, 2000)), "small.txt"),
              source.upload(_bytes_io(make_image("PNG", (300, 200), seed=5)), "big.png")]
    source.close()
    source_ini = _ini(tmp_path / "source.ini", source_settings)
    target_settings = _settings("sqlite", tmp_path, request, "target", **{"pastefile.auto_migrate": "false"})
    target_ini = _ini(tmp_path / "target.ini", target_settings)

    out = _cli("-c", source_ini, "backup", str(tmp_path / "backup"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["pastes"] == 2 and report["file_blobs"] == 1 and report["inline_blobs"] == 1
    assert "blobs" in out.stderr  # the progress bar

    out = _cli("-c", target_ini, "restore", str(tmp_path / "backup"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pastes"] == 2

    again = _cli("-c", target_ini, "restore", str(tmp_path / "backup"))
    assert again.returncode == 2 and "not empty" in again.stderr

    target = _service(request, target_settings)
    for paste in pastes:
        assert _read(target, paste.filehash) == _read(_service(request, source_settings), paste.filehash)
        assert target.get_by_symlink(paste.symlink).filehash == paste.filehash
    fsck = _cli("-c", target_ini, "fsck", "--verify")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_blob_removed_between_snapshot_and_copy_takes_its_rows_out(tmp_path, request, monkeypatch):
    import pastefile.core.backup as backup_module

    source = _service(request, _settings("sqlite", tmp_path, request, "source"))
    kept = source.upload(_bytes_io(make_image("PNG", (300, 200), seed=21)), "kept.png")
    removed = source.upload(_bytes_io(make_image("PNG", (300, 200), seed=22)), "removed.png")
    original = backup_module.repository.blob_sizes

    def sizes_then_remove(conn):
        sizes = original(conn)
        source.remove(removed.filehash)  # commits after the snapshot began
        return sizes

    monkeypatch.setattr(backup_module.repository, "blob_sizes", sizes_then_remove)
    report = backup(source, str(tmp_path / "backup"))
    monkeypatch.undo()
    assert report["pastes"] == 1 and report["dropped_removed_meanwhile"] == 1 and report["file_blobs"] == 1

    target = _service(request, _settings("sqlite", tmp_path, request, "target"))
    restore(target, str(tmp_path / "backup"))
    assert target.get(removed.filehash) is None
    assert _read(target, kept.filehash) == _read(source, kept.filehash)
    fsck = target.fsck(verify=True, grace=0)
    assert fsck["missing_files"] == fsck["corrupt_files"] == fsck["orphan_files"] == 0
