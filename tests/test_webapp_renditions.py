"""Renditions and near duplicates over HTTP: bounds as clear 4xx, served like blobs."""
from __future__ import annotations

import hashlib
import io
import re
from html import unescape

import pytest
from PIL import Image, ImageEnhance

from .test_core_renditions import encoded, photo
from .webapp_helpers import API, BROWSER, error_of, unique_image, unique_seed


def test_signed_rendition_links(webapp_factory):
    app = webapp_factory(**{"pastefile.rendition_secret": "another-secret"})
    doc = app.upload_json(unique_image("PNG", (120, 90)), "s.png")
    url = f"/i/{doc['filehash']}?w=60&h=45"
    err = error_of(app.get(url, status=403))
    assert err["status"] == 403 and "not signed" in err["message"]
    assert error_of(app.get(url + "&sig=" + "ab" * 16, status=403))["status"] == 403
    paste = app.service.get(doc["filehash"])
    signed = app.service.rendition_url(paste, 60, 45)
    res = app.get(signed[signed.index("/i/"):])
    assert Image.open(io.BytesIO(res.body)).size == (60, 45)
    assert res.headers["ETag"] == f'"{hashlib.sha256(res.body).hexdigest()}"'
    # /r/ is bound the same way
    assert error_of(app.get(f"/r/{doc['filehash']}?w=60&h=45", status=403))["status"] == 403


def test_rendition_bounds_over_http(webapp_factory):
    app = webapp_factory(**{
        "pastefile.rendition_sizes": "40x30 80x0",
        "pastefile.rendition_max_per_source": "4",
        "pastefile.max_image_pixels": "20000",
    })
    doc = app.upload_json(unique_image("PNG", (160, 120)), "b.png")
    fh = doc["filehash"]
    err = error_of(app.get(f"/i/{fh}?w=41&h=30", status=403))
    assert "not offered" in err["message"] and "40x30" in err["message"]
    assert Image.open(io.BytesIO(app.get(f"/i/{fh}?w=40&h=30").body)).size == (40, 30)
    assert Image.open(io.BytesIO(app.get(f"/i/{fh}?w=80").body)).size == (80, 60)
    for query, status in (("w=40&h=30&fit=stretch", 400), ("w=40&h=30&format=tiff", 400),
                          ("w=40&h=30&q=0", 400), ("w=40&h=30&q=x", 400), ("w=NaN", 400), ("w=-1", 400)):
        assert error_of(app.get(f"/i/{fh}?{query}", status=status))["status"] == status, query
    big = app.upload_json(unique_image("PNG", (200, 120)), "big.png")  # 24,000 pixels
    err = error_of(app.get(f"/i/{big['filehash']}?w=40&h=30", status=422))
    assert "more than the 20,000 allowed" in err["message"]
    assert app.get(f"/i/{big['filehash']}").status_int == 200  # the original is still served
    assert app.get("/").status_int == 200


def test_rendition_formats_and_ranges(webapp):
    doc = webapp.upload_json(unique_image("PNG", (300, 150)), "f.png")
    fh = doc["filehash"]
    webp = webapp.get(f"/i/{fh}?w=100&h=100&fit=inside&format=webp&q=60")
    assert webp.content_type == "image/webp"
    assert Image.open(io.BytesIO(webp.body)).size == (100, 50)
    part = webapp.get(f"/i/{fh}?w=100&h=100&fit=inside&format=webp&q=60", headers={"Range": "bytes=0-3"}, status=206)
    assert part.body == b"RIFF"
    etag = webp.headers["ETag"]
    webapp.get(f"/i/{fh}?w=100&h=100&fit=inside&format=webp&q=60", headers={"If-None-Match": etag}, status=304)


def test_meta_and_preview_list_near_duplicates(webapp_factory):
    webapp = webapp_factory(**{"pastefile.public_similar": "true"})
    base = photo(unique_seed() % 1000, (320, 240))
    # unique content per run, same picture: a few pixels in a corner differ
    marked = base.copy()
    marked.putpixel((0, 0), (unique_seed() % 256, 0, 0))
    a = webapp.upload_json(encoded(marked, quality=93), "orig.jpg")
    near = ImageEnhance.Brightness(marked).enhance(1.05)
    b = webapp.upload_json(encoded(near, "PNG"), "copy.png")
    meta = webapp.get(f"/j/{a['filehash']}", headers=API).json
    listed = {s["filehash"]: s for s in meta["similar"]}
    assert b["filehash"] in listed and a["filehash"] not in listed
    entry = listed[b["filehash"]]
    assert entry["url_p"] == b["url_p"] and 0 <= entry["distance"] <= 8
    page = webapp.get(f"/p/{a['filehash']}", headers=BROWSER).text
    section = re.search(r'<section class="similar".*?</section>', page, re.S)
    assert section is not None
    links = re.findall(r'<a href="([^"]+)"', section.group(0))
    assert b["url_p"] in links
    thumb = unescape(re.search(r'<img src="([^"]+)"', section.group(0)).group(1))
    assert "w=160" in thumb and Image.open(io.BytesIO(webapp.get(thumb[thumb.index("/i/"):]).body)).size == (160, 120)
    # a text paste has no similar list
    text = webapp.upload_json(b"words " * 100 + str(unique_seed()).encode(), "t.txt")
    assert "similar" not in webapp.get(f"/j/{text['filehash']}").json


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_cap_holds_for_80_sizes_asked_at_once(request, tmp_path, backend):
    """80 distinct sizes of one image asked for at once over HTTP: at most
    the cap is made, every other answer is 403, none is a 5xx."""
    import http.client
    import json
    import threading

    import pastefile.webapp

    from .conftest import webapp_settings
    from .servers import LiveServer

    cap = 32
    app = pastefile.webapp.main({}, **webapp_settings(
        request, backend, tmp_path, **{"pastefile.rendition_max_per_source": str(cap)}))
    try:
        with LiveServer(app, threads=16) as server:
            port = int(server.url.rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("PUT", "/cap.png", body=unique_image("PNG", (160, 120)), headers=API)
            doc = json.loads(conn.getresponse().read())
            conn.close()
            statuses: list[int] = []
            start = threading.Barrier(16)

            def ask(widths):
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                start.wait()
                for w in widths:
                    client.request("GET", f"/i/{doc['filehash']}?w={w}&h=20")
                    response = client.getresponse()
                    response.read()
                    statuses.append(response.status)
                client.close()

            widths = list(range(21, 101))
            threads = [threading.Thread(target=ask, args=(widths[k::16],)) for k in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(180)
        assert len(statuses) == 80 and set(statuses) <= {200, 403}, sorted(statuses)
        # the count never goes down, so a refusal means the cap was reached
        made = statuses.count(200)
        assert made == cap and statuses.count(403) == 80 - cap
        with app.registry.pastefile._connection() as conn:
            from sqlalchemy import text

            recorded = conn.execute(
                text("SELECT count(*) FROM rendition WHERE source_sha256 = :s"), {"s": bytes.fromhex(doc["sha256"])}
            ).scalar_one()
        assert recorded == made
    finally:
        app.registry.pastefile.close()
