"""Nobody's uploads are listed or suggested to strangers unless the operator
says so: /latest and near-duplicate images are off by default, the CLI keeps
them for the operator, and when they are public every process answers alike."""
from __future__ import annotations

import io
import json

import pytest
from PIL import ImageEnhance

from pastefile.core import PasteFileService

from .conftest import settings_for
from .test_cli import run
from .test_core_renditions import encoded, photo
from .webapp_helpers import API, BROWSER


def _pair(seed: int) -> tuple[bytes, bytes]:
    """A photo and a near duplicate of it (brighter, smaller, re-encoded)."""
    base = photo(seed, (320, 240))
    return encoded(base, quality=92), encoded(ImageEnhance.Brightness(base).enhance(1.06).resize((240, 180)), "PNG")


def test_listing_and_similar_images_are_private_by_default(webapp):
    one, twin = _pair(1601)
    a = webapp.upload_json(one, "mine.jpg")
    b = webapp.upload_json(twin, "theirs.png")
    webapp.get("/latest", headers=API, status=404)
    webapp.get("/latest?limit=5&offset=0", headers=BROWSER, status=404)
    assert webapp.get(f"/j/{a['filehash']}", headers=API).json["similar"] == []
    page = webapp.get(f"/p/{a['filehash']}", headers=BROWSER).text
    assert b["filehash"] not in page and "Similar images" not in page
    # the service itself still knows: the operator's view
    assert [p.filehash for p, _ in webapp.service.similar(a["filehash"])] == [b["filehash"]]


def test_the_operator_can_make_them_public(webapp_factory):
    app = webapp_factory(**{"pastefile.public_latest": "true", "pastefile.public_similar": "true"})
    one, twin = _pair(1602)
    a = app.upload_json(one, "mine.jpg")
    b = app.upload_json(twin, "theirs.png")
    assert [f["filehash"] for f in app.get("/latest?limit=2", headers=API).json["files"]] == [b["filehash"], a["filehash"]]
    assert [s["filehash"] for s in app.get(f"/j/{a['filehash']}", headers=API).json["similar"]] == [b["filehash"]]
    page = app.get(f"/p/{a['filehash']}", headers=BROWSER).text
    assert "Similar images" in page and b["filehash"] in page


@pytest.mark.parametrize("cache", ["memory", "memcached"])
def test_every_process_lists_a_new_image_once_it_has_its_link(tmp_path, memcached_nodes, cache):
    """Two services on one database, as two workers: an image uploaded
    through one is among the other's near duplicates as soon as its upload
    has answered, also when each keeps its own in-process cache."""
    extra = {"pastefile.cache.backend": cache, "pastefile.public_similar": "true"}
    if cache == "memcached":
        extra["pastefile.cache.servers"] = memcached_nodes[0].address
    settings = settings_for("sqlite", tmp_path, **extra)
    one, two = PasteFileService(settings), PasteFileService(settings)
    try:
        first, second = _pair(1603)
        a = one.upload(io.BytesIO(first), "a.jpg")
        assert two.similar(a) == [] and one.similar(a) == []  # both indexes built
        for round_ in range(3):
            _, twin = _pair(1603)
            b = one.upload(io.BytesIO(twin), f"b{round_}.png")
            assert b.filehash in {p.filehash for p, _ in two.similar(a)}
            assert {p.filehash for p, _ in two.similar(a)} == {p.filehash for p, _ in one.similar(a)}
    finally:
        one.close()
        two.close()


def test_cli_lists_latest_and_similar_for_the_operator(tmp_path):
    one, twin = _pair(1604)
    (tmp_path / "a.jpg").write_bytes(one)
    (tmp_path / "b.png").write_bytes(twin)
    (tmp_path / "c.txt").write_bytes(b"plain words " * 20)
    uploaded = run(tmp_path, "--embedded", "upload", "--json", "a.jpg", "b.png", "c.txt")
    docs = [json.loads(line) for line in uploaded.stdout.splitlines()]
    lines = run(tmp_path, "--embedded", "latest", "-n", "2").stdout.splitlines()
    assert len(lines) == 2 and docs[2]["url_p"] in lines[0] and docs[1]["url_p"] in lines[1]
    assert lines[0].rstrip().endswith("c.txt")
    assert len(run(tmp_path, "--embedded", "latest", "--offset", "2").stdout.splitlines()) == 1
    similar = run(tmp_path, "--embedded", "similar", docs[0]["filehash"]).stdout.splitlines()
    assert len(similar) == 1 and docs[1]["url_p"] in similar[0]
