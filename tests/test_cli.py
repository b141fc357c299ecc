"""The ``pastefile`` console script, run as a real subprocess (most tests in embedded mode)."""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import make_image, random_text

SCRIPT = os.path.join(os.path.dirname(sys.executable), "pastefile")


def run(cwd, *args, check=True):
    result = subprocess.run([SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"pastefile {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def stored_blobs(cwd) -> int:
    """Blob files (named by their 64-hex SHA-256) under the embedded store,
    plus small blobs kept in their database rows."""
    root = os.path.join(cwd, "var", "files")
    files = sum(1 for _, _, names in os.walk(root) for name in names if len(name) == 64)
    with contextlib.closing(sqlite3.connect(os.path.join(cwd, "var", "pastefile.sqlite"))) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM blob WHERE data IS NOT NULL").fetchone()
    return files + rows


def test_initdb_and_same_file_twice_stores_one_blob(tmp_path):
    assert "database ready" in run(tmp_path, "--embedded", "initdb").stdout
    (tmp_path / "cat.png").write_bytes(make_image("PNG", seed=900))
    first = run(tmp_path, "--embedded", "upload", "cat.png").stdout.split()
    second = run(tmp_path, "--embedded", "upload", "cat.png").stdout.split()
    assert first == second and first[0].startswith("http://localhost:6543/s/")
    assert stored_blobs(tmp_path) == 1
    info = json.loads(run(tmp_path, "--embedded", "info", first[0].rsplit("/", 1)[1]).stdout)
    assert info["filename"] == "cat.png" and info["type"] == "image"


def test_upload_hundred_files_with_progress_bar(tmp_path):
    names = []
    for i in range(100):
        name = f"f{i:03}.txt" if i % 2 else f"f{i:03}.png"
        (tmp_path / name).write_bytes(random_text(i) if i % 2 else make_image("PNG", (16, 16), seed=i))
        names.append(name)
    result = run(tmp_path, "--embedded", "upload", *names)
    lines = result.stdout.splitlines()
    assert len(lines) == 100
    assert [line.split()[1] for line in lines] == names
    assert len({line.split()[0] for line in lines}) == 100
    assert "100/100" in result.stderr  # tqdm's progress bar
    assert stored_blobs(tmp_path) == 100


def test_refused_file_reported_and_exit_code(tmp_path):
    (tmp_path / "page.html").write_text("<html><body>x</body></html>")
    (tmp_path / "ok.txt").write_bytes(random_text(1))
    result = run(tmp_path, "--embedded", "upload", "page.html", "ok.txt", check=False)
    assert result.returncode == 1
    assert "text/html" in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_config_file_and_fsck(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pastefile\n"
        "pastefile.db_url = sqlite:///%(here)s/data/db.sqlite\n"
        "pastefile.storage_root = %(here)s/data/files\n"
        "pastefile.base_url = https://files.example\n"
    )
    (tmp_path / "a.txt").write_bytes(random_text(2))
    out = run(tmp_path, "-c", str(ini), "upload", "a.txt").stdout
    assert out.startswith("https://files.example/s/")
    assert (tmp_path / "data" / "db.sqlite").exists()
    assert json.loads(run(tmp_path, "-c", str(ini), "fsck").stdout) == {"stale_temp": 0, "trash": 0, "orphan_files": 0, "missing_files": 0, "corrupt_files": 0, "renditions": 0}


def test_resized_upload_and_similar(tmp_path):
    from PIL import ImageEnhance

    from .test_core_renditions import encoded, photo

    base = photo(901, (320, 240))
    (tmp_path / "a.jpg").write_bytes(encoded(base))
    (tmp_path / "b.png").write_bytes(encoded(ImageEnhance.Brightness(base).enhance(1.05), "PNG"))
    (tmp_path / "c.jpg").write_bytes(encoded(photo(902, (320, 240))))
    docs = [json.loads(line) for line in run(tmp_path, "--embedded", "upload", "--json", "a.jpg", "b.png", "c.jpg").stdout.splitlines()]
    out = run(tmp_path, "--embedded", "similar", docs[0]["filehash"]).stdout.splitlines()
    assert len(out) == 1 and docs[1]["url_p"] in out[0] and out[0].rstrip().endswith("b.png")
    assert len(run(tmp_path, "--embedded", "similar", docs[0]["symlink"], "-d", "64").stdout.splitlines()) == 2
    # -W/-H make a rendition of the upload, recorded like any other
    small = json.loads(run(tmp_path, "--embedded", "upload", "--json", "-W", "80", "-H", "60", "a.jpg").stdout)
    assert (small["width"], small["height"]) == (80, 60)
    with contextlib.closing(sqlite3.connect(os.path.join(tmp_path, "var", "pastefile.sqlite"))) as conn:
        assert conn.execute("SELECT spec FROM rendition").fetchall() == [("80x60-crop-jpeg-q88",)]


def test_delete_gc_and_expiry(tmp_path):
    (tmp_path / "keep.txt").write_bytes(random_text(910, 3000))
    (tmp_path / "go.txt").write_bytes(random_text(911, 3000))
    (tmp_path / "brief.txt").write_bytes(random_text(912, 3000))
    keep, go = (json.loads(line) for line in run(tmp_path, "--embedded", "upload", "--json", "keep.txt", "go.txt").stdout.splitlines())
    assert keep["delete_token"] and keep["url_delete"].endswith(keep["delete_token"])
    brief = json.loads(run(tmp_path, "--embedded", "upload", "--json", "--expires", "1", "brief.txt").stdout)
    assert brief["expires"]
    assert run(tmp_path, "--embedded", "delete", go["symlink"]).stdout == f"deleted {go['filehash']}\n"
    assert run(tmp_path, "--embedded", "info", go["filehash"], check=False).returncode == 1
    time.sleep(1.2)
    assert run(tmp_path, "--embedded", "info", brief["filehash"], check=False).returncode == 1  # expired: gone for readers
    report = json.loads(run(tmp_path, "--embedded", "gc", "--grace", "0").stdout)
    assert report["expired_pastes"] == 1 and report["blobs"] == 1
    assert stored_blobs(tmp_path) == 1
    bad = run(tmp_path, "--embedded", "upload", "--expires", "0", "keep.txt", check=False)
    assert bad.returncode == 1 and "expires must be" in bad.stderr
    fsck = json.loads(run(tmp_path, "--embedded", "fsck", "--verify").stdout)
    assert fsck["missing_files"] == 0 and fsck["corrupt_files"] == 0


def _env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASTEFILE_")}
    env.update(overrides)
    return env


def run_env(cwd, env, *args):
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _site_ini(folder, name: str = "development.ini", key: str = "site-key-of-its-own") -> str:
    ini = folder / name
    ini.write_text(
        "[app:main]\nuse = egg:pastefile\n"
        "pastefile.db_url = sqlite:///%(here)s/site/db.sqlite\n"
        "pastefile.storage_root = %(here)s/site/files\n"
        "pastefile.base_url = https://files.example\n"
        f"pastefile.symlink_key = {key}\n"
    )
    return str(ini)


def test_without_config_it_says_where_it_looked_and_stores_nothing(tmp_path):
    result = run_env(tmp_path, _env(), "latest")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "$PASTEFILE_CONFIG" in lines[0] and "./development.ini" in lines[0]
    assert not (tmp_path / "var").exists()


def test_config_from_the_environment_then_development_ini(tmp_path):
    (tmp_path / "a.txt").write_bytes(random_text(920))
    elsewhere = tmp_path / "conf"
    elsewhere.mkdir()
    ini = _site_ini(elsewhere, "site.ini")
    out = run_env(tmp_path, _env(PASTEFILE_CONFIG=ini), "upload", "a.txt")
    assert out.returncode == 0 and out.stdout.startswith("https://files.example/s/")
    assert out.stderr == ""  # a key of its own: no warning
    assert (elsewhere / "site" / "db.sqlite").exists() and not (tmp_path / "var").exists()
    # ./development.ini when no -c and no $PASTEFILE_CONFIG
    _site_ini(tmp_path)
    local = run_env(tmp_path, _env(), "upload", "a.txt")
    assert local.returncode == 0 and local.stdout.startswith("https://files.example/s/")
    assert (tmp_path / "site" / "db.sqlite").exists() and not (tmp_path / "var").exists()
    # -c wins over both
    again = run_env(tmp_path, _env(PASTEFILE_CONFIG=str(tmp_path / "missing.ini")), "-c", ini, "info", out.stdout.split()[0])
    assert again.returncode == 0 and json.loads(again.stdout)["filename"] == "a.txt"


def test_development_key_warns_once(tmp_path):
    (tmp_path / "a.txt").write_bytes(random_text(921))
    result = run_env(tmp_path, _env(), "--embedded", "upload", "a.txt")
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "development key" in warnings[0]
    assert "warning" not in run_env(tmp_path, _env(), "--embedded", "gc").stderr


def test_info_takes_links(tmp_path):
    (tmp_path / "a.txt").write_bytes(random_text(922))
    doc = json.loads(run(tmp_path, "--embedded", "upload", "--json", "a.txt").stdout)
    for link in (doc["url_s"], doc["url_p"], doc["url_i"] + "?w=10", doc["url_d"], f"https://files.example/j/{doc['filehash']}",
                 f"/p/{doc['filehash']}", doc["url_delete"], doc["symlink"], doc["filehash"]):
        info = json.loads(run(tmp_path, "--embedded", "info", link).stdout)
        assert info["filehash"] == doc["filehash"], link
    assert run(tmp_path, "--embedded", "info", "https://files.example/s/zzzzzz", check=False).returncode == 1


@pytest.mark.parametrize("setup, message", [
    (lambda d: str(d / "nowhere.ini"), "cannot read"),
    (lambda d: (d / "x.ini").write_text("[server:main]\nport = 1\n") and str(d / "x.ini"), "no [app:main]"),
    (lambda d: (d / "y.ini").write_text("no section\n") and str(d / "y.ini"), "cannot parse"),
    (lambda d: (d / "z.ini").write_text("[app:main]\npastefile.max_side = big\n") and str(d / "z.ini"), "pastefile.max_side"),
])
def test_config_errors_are_one_line_and_exit_2(tmp_path, setup, message):
    result = run_env(tmp_path, _env(), "-c", setup(tmp_path), "latest")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_version():
    from importlib.metadata import version

    result = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"pastefile {version('pastefile')}"


def test_expires_takes_durations(tmp_path):
    (tmp_path / "a.txt").write_bytes(random_text(923))
    (tmp_path / "b.txt").write_bytes(random_text(924))
    a = json.loads(run(tmp_path, "--embedded", "upload", "--json", "--expires", "30m", "a.txt").stdout)
    b = json.loads(run(tmp_path, "--embedded", "upload", "--json", "--expires", "2w", "b.txt").stdout)
    assert a["expires"] < b["expires"]
    bad = run(tmp_path, "--embedded", "upload", "--expires", "soon", "a.txt", check=False)
    assert bad.returncode == 1 and "expires must be" in bad.stderr and bad.stdout == ""
