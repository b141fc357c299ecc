"""Short links, settings, humanize_bytes, filenames, migrations."""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import create_engine

from pastefile.core import Settings, SettingsError, humanize_bytes
from pastefile.core.db import current_revision, make_engine, upgrade
from pastefile.core.models import Base
from pastefile.core.shortlink import ShortLinks
from pastefile.core.utils import clean_filename, extension_of, is_filehash, new_filehash

LINKS = ShortLinks("unit-test-key")


@given(st.integers(min_value=1, max_value=(1 << 63) - 1))
@hsettings(max_examples=2000)
def test_shortlink_roundtrip(ident):
    link = LINKS.encode(ident)
    assert LINKS.decode(link) == ident
    assert len(link) == (6 if ident < 1 << 32 else 11)
    assert link.isalnum()


def test_shortlink_sequential_ids_are_not_enumerable():
    links = [LINKS.encode(i) for i in range(1, 2001)]
    assert len(set(links)) == 2000
    # neighbours differ almost everywhere (last 5 of 6 chars are near uniform)
    changed = [sum(a != b for a, b in zip(x, y)) for x, y in zip(links, links[1:])]
    assert sum(changed) / len(changed) > 4.5
    ascending = sum(x < y for x, y in zip(links, links[1:]))
    assert 800 < ascending < 1200


def test_shortlink_key_matters():
    other = ShortLinks("another-key")
    assert [LINKS.encode(i) for i in range(1, 50)] != [other.encode(i) for i in range(1, 50)]
    assert sum(other.decode(LINKS.encode(i)) == i for i in range(1, 500)) == 0


@pytest.mark.parametrize("bad", ["", "abc", "!!!!!!", "zzzzzzzzzzzzzzz", "a" * 7, "ZZZZZZZZZZZ"])
def test_shortlink_garbage_decodes_to_none_or_valid(bad):
    value = LINKS.decode(bad)
    assert value is None or LINKS.encode(value) == bad


def test_shortlink_rejects_bad_ids():
    for bad in (0, -1, 1 << 63, 1 << 64, True, "1"):
        with pytest.raises(ValueError):
            LINKS.encode(bad)


def test_humanize_bytes_as_in_the_book():
    assert humanize_bytes(100) == "100.00 bytes"
    assert humanize_bytes(34500) == "33.00 kB"
    assert humanize_bytes(34500000) == "32.00 MB"
    assert humanize_bytes(0) == "0.00 bytes"
    assert humanize_bytes(1) == "1 byte"
    assert humanize_bytes(1024) == "1.00 kB"
    assert humanize_bytes(5 * 1024**4) == "5.00 TB"
    with pytest.raises(ValueError):
        humanize_bytes(-1)


def test_settings_defaults_and_conversion():
    s = Settings.from_dict({}, environ={})
    assert s.cache_backend == "memory" and s.max_upload_size == 100 << 20
    s = Settings.from_dict(
        {
            "pastefile.max_upload_size": "2M",
            "pastefile.cache.servers": "a:1\n b:2",
            "pastefile.cache.backend": "memcached",
            "pastefile.allow_upscale": "yes",
            "pastefile.allowed_types": "image/png, text/*",
            "pastefile.accel_redirect": "/x",
            "other.key": "1",
        },
        environ={},
    )
    assert s.max_upload_size == 2 << 20
    assert s.cache_servers == ("a:1", "b:2")
    assert s.allow_upscale is True
    assert s.allowed_types == ("image/png", "text/*")
    assert s.extra == {"other.key": "1"} and s.accel_redirect == "/x"


def test_settings_environment_overrides():
    s = Settings.from_dict({"pastefile.max_side": "100"}, environ={"PASTEFILE_MAX_SIDE": "200", "PASTEFILE_CACHE_BACKEND": "null"})
    assert s.max_side == 200 and s.cache_backend == "null"


@pytest.mark.parametrize(
    "key,value",
    [
        ("pastefile.max_side", "many"),
        ("pastefile.max_upload_size", "-5"),
        ("pastefile.allow_upscale", "perhaps"),
        ("pastefile.cache.backend", "redis"),
        ("pastefile.db_url", "not a url"),
    ],
)
def test_settings_errors_name_the_key(key, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_dict({key: value}, environ={})
    assert info.value.key == key
    assert key in str(info.value)


def test_filenames_and_filehashes():
    assert clean_filename("C:\\Users\\me\\cat.JPG") == "cat.JPG"
    assert clean_filename("") == "file" and clean_filename("..") == "file"
    assert clean_filename("a\x00b\x1fc.txt") == "abc.txt"
    assert extension_of("cat.JPG") == "jpg" and extension_of("noext") == "" and extension_of("x.t@r") == ""
    fh = new_filehash("cat.jpg")
    assert fh.endswith(".jpg") and is_filehash(fh)
    assert is_filehash(new_filehash("README"))
    assert not is_filehash("../x.jpg") and not is_filehash("A" * 32)


def test_migration_matches_models(tmp_path, pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    upgrade(sqlite_engine)
    for engine in (sqlite_engine, create_engine(pg_url.replace("+psycopg2", "+psycopg2"))):
        assert current_revision(engine) == "0006"
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
        engine.dispose()


def test_migration_makes_existing_sqlite_ids_never_reused(tmp_path):
    """A database made before ids were AUTOINCREMENT keeps its rows and
    references, and from then on never hands out a deleted id again."""
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO blob (sha256, size, mimetype, created) VALUES (x'00', 1, 'text/plain', '2026-01-01')"))
        for i, parent in ((1, "NULL"), (2, "1"), (3, "NULL")):
            conn.execute(text(
                "INSERT INTO paste_file (id, filehash, filename, blob_sha256, uploadtime, parent_id) "
                f"VALUES ({i}, 'f{i}', 'n{i}', x'00', '2026-01-01', {parent})"
            ))
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT id, parent_id FROM paste_file ORDER BY id")).all() == [(1, None), (2, 1), (3, None)]
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        conn.execute(text("DELETE FROM paste_file WHERE id = 3"))
        conn.execute(text(
            "INSERT INTO paste_file (filehash, filename, blob_sha256, uploadtime) VALUES ('f4', 'n4', x'00', '2026-01-01')"
        ))
        assert conn.execute(text("SELECT max(id) FROM paste_file")).scalar() == 4
    engine.dispose()


@pytest.mark.parametrize("raw, seconds", [
    (None, None), ("", None), ("  ", None), (3600, 3600), ("3600", 3600), ("90s", 90), ("30m", 1800),
    ("1h", 3600), ("7d", 604800), ("2w", 1209600), (" 1H ", 3600),
])
def test_parse_expiry_reads_seconds_and_durations(raw, seconds):
    from pastefile.core.utils import parse_expiry

    assert parse_expiry(raw, 10**7) == seconds


@pytest.mark.parametrize("raw", ["0", "0m", "-1", "-1h", "3w", "1y", "1.5h", "1 h", "h", "soon", "\uff11\uff12", True, 0])
def test_parse_expiry_refuses_with_the_bounds(raw):
    from pastefile.core import InvalidRequest
    from pastefile.core.utils import parse_expiry

    with pytest.raises(InvalidRequest, match="^expires must be"):
        parse_expiry(raw, 14 * 86400)


@pytest.mark.parametrize("text, expected", [
    ("https://files.example/s/AbC123", ("s", "AbC123")),
    ("https://files.example/p/0123456789abcdef0123456789abcdef.png", ("p", "0123456789abcdef0123456789abcdef.png")),
    ("/i/0123456789abcdef0123456789abcdef.png?w=80&h=60", ("i", "0123456789abcdef0123456789abcdef.png")),
    ("http://h/base/d/ab.txt", ("d", "ab.txt")),
    ("https://h/x/ab.txt/token", ("x", "ab.txt")),
    ("AbC123", (None, "AbC123")),
    ("0123456789abcdef0123456789abcdef.png", (None, "0123456789abcdef0123456789abcdef.png")),
])
def test_key_of_link(text, expected):
    from pastefile.core.urls import key_of

    assert key_of(text) == expected
