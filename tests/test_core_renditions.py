"""Renditions: one model for every resize, stored once, bounded; near duplicates."""
from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import threading
import time

import pytest
from PIL import Image, ImageEnhance
from sqlalchemy import func, select

from pastefile.core import Forbidden, InvalidRequest, NotFound, PasteFileService, Unprocessable, UnsupportedType
from pastefile.core import renditions as renditions_module
from pastefile.core.imaging import ENCODER_VERSION, RenditionSpec, render
from pastefile.core.models import Blob, Rendition
from pastefile.core.singleflight import SingleFlight
from pastefile.ext.phash import hamming_distance

from .conftest import blob_copies, make_image, settings_for


def photo(seed: int, size=(320, 240)) -> Image.Image:
    """A smooth picture (gradients and blobs), so pHashes mean something."""
    import random

    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    base = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    img = Image.blend(img, base, 0.5)
    for _ in range(6):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(10, 60)
        img.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, min(size[0], x + r), min(size[1], y + r)))
    return img


def encoded(img: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def rendition_rows(service) -> list:
    with service._connection() as conn:
        return list(conn.execute(select(Rendition.__table__)).mappings())


def body_of(service, info) -> bytes:
    with service.open_blob(info) as f:
        return f.read()


# -- one model -------------------------------------------------------------------


def test_every_way_of_asking_ends_in_the_same_rendition(service):
    data = make_image("PNG", (300, 200), seed=31)
    source = service.upload(io.BytesIO(data), "s.png")
    made = service.rendition(source.filehash, 100, 100)
    child = service.resize(source.filehash, 100, 100)  # /r/
    assert child.sha256 == made.sha256 and child.parent_id == source.id
    # an upload with w/h of the same bytes is the same rendition of the same source
    uploaded = service.upload(io.BytesIO(data), "again.png", w=100, h=100)
    assert uploaded.sha256 == made.sha256
    rows = rendition_rows(service)
    assert len(rows) == 1
    row = rows[0]
    assert row["source_sha256"].hex() == source.sha256 and row["result_sha256"].hex() == made.sha256
    assert row["spec"] == "100x100-crop-png" and row["encoder"] == ENCODER_VERSION
    # stored once: one blob, one copy, bytes hashed to their address
    body = body_of(service, made)
    assert hashlib.sha256(body).hexdigest() == made.sha256 == made.etag
    assert blob_copies(service, made.sha256) == 1
    assert Image.open(io.BytesIO(body)).size == (100, 100)


def test_equal_requests_get_one_row_and_defaults_are_spelled_out(service):
    src = service.upload(io.BytesIO(encoded(photo(1), quality=90)), "p.jpg")
    a = service.rendition(src, 80, 60)
    b = service.rendition(src, 80, 60, format="jpeg", quality=88)
    assert a == b and a.spec == "80x60-crop-jpeg-q88"
    c = service.rendition(src, 80, 60, quality=50)
    assert c.sha256 != a.sha256 and c.size < a.size
    assert len(rendition_rows(service)) == 2


def test_fit_inside_and_output_formats(service):
    src = service.upload(io.BytesIO(encoded(photo(2, (400, 200)), "PNG")), "wide.png")
    inside = service.rendition(src, 100, 100, fit="inside")
    assert (inside.width, inside.height) == (100, 50) and inside.mimetype == "image/png"
    webp = service.rendition(src, 100, 100, fit="inside", format="webp", quality=70)
    assert webp.mimetype == "image/webp"
    assert Image.open(io.BytesIO(body_of(service, webp))).format == "WEBP"
    jpeg = service.rendition(src, 0, 50, format="jpeg")
    img = Image.open(io.BytesIO(body_of(service, jpeg)))
    assert img.format == "JPEG" and img.size == (100, 50)
    # progressive JPEG, as the card asks
    assert img.info.get("progressive") or img.info.get("progression")


def test_exif_orientation_is_applied(service):
    img = photo(3, (120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown 80 wide, 120 high
    src = service.upload(io.BytesIO(encoded(img, exif=exif.tobytes())), "turned.jpg")
    assert (src.width, src.height) == (80, 120)
    made = service.rendition(src, 40, 0)
    assert (made.width, made.height) == (40, 60)


def test_jpeg_shrink_on_load_keeps_the_result_close_to_a_full_decode():
    data = encoded(photo(4, (1600, 1200)), quality=92)
    spec = RenditionSpec(200, 150).normalized("image/jpeg")
    ours = Image.open(io.BytesIO(render(data, spec).data)).convert("RGB")
    full = Image.open(io.BytesIO(data)).convert("RGB").resize((200, 150), Image.Resampling.LANCZOS)
    diff = [abs(a - b) for a, b in zip(ours.tobytes(), full.tobytes())]
    assert ours.size == (200, 150)
    assert sum(diff) / len(diff) < 4  # DCT scaling plus re-encoding, not a different picture


def test_pillow_and_kernel_pipelines_agree():
    data = encoded(photo(5, (640, 480)), "PNG")
    spec = RenditionSpec(160, 100).normalized("image/png")
    kernel = Image.open(io.BytesIO(render(data, spec, resampler="kernel").data))
    pillow = Image.open(io.BytesIO(render(data, spec, resampler="pillow").data))
    diff = max(abs(a - b) for a, b in zip(kernel.tobytes(), pillow.tobytes()))
    assert kernel.size == pillow.size == (160, 100) and diff <= 1


def test_rendition_files_are_counted_by_fsck_not_orphans(service_factory):
    service = service_factory(**{"pastefile.inline_max": "0"})
    src = service.upload(io.BytesIO(make_image("PNG", (200, 200), seed=32)), "f.png")
    made = service.rendition(src, 50, 50)
    assert not made.inline and service.store.exists(bytes.fromhex(made.sha256))
    report = service.fsck(grace=0)
    assert report == {"stale_temp": 0, "trash": 0, "orphan_files": 0, "missing_files": 0, "corrupt_files": 0,
                      "renditions": 1}


def test_rendition_rows_go_with_their_source_blob(service):
    """Removing a source blob (as gc will) removes its renditions by the foreign key."""
    src = service.upload(io.BytesIO(make_image("PNG", (90, 90), seed=33)), "g.png", w=30, h=30)
    (row,) = rendition_rows(service)
    assert row["result_sha256"].hex() == src.sha256
    blob = Blob.__table__
    with service._writing() as conn:
        conn.execute(blob.delete().where(blob.c.sha256 == row["source_sha256"]))
    assert rendition_rows(service) == [] and service.get(src.filehash) is not None


# -- bounds -------------------------------------------------------------------------


def test_bad_specs_are_clear_400s(service):
    src = service.upload(io.BytesIO(make_image("PNG", (50, 50), seed=34)), "b.png")
    for kwargs in ({"w": -1}, {"w": 10**9}, {"w": 0, "h": 0}, {"w": 10, "fit": "stretch"},
                   {"w": 10, "format": "gif"}, {"w": 10, "quality": 0}, {"w": 10, "quality": 101}):
        kwargs = dict(kwargs)
        with pytest.raises(InvalidRequest):
            service.rendition(src, kwargs.pop("w", None), kwargs.pop("h", None), **kwargs)
    text = service.upload(io.BytesIO(b"plain words " * 50), "t.txt")
    with pytest.raises(UnsupportedType):
        service.rendition(text, 10, 10)


def test_signed_links_only_when_a_secret_is_set(service_factory):
    service = service_factory(**{"pastefile.rendition_secret": "s3cret"})
    src = service.upload(io.BytesIO(make_image("PNG", (80, 80), seed=35)), "sig.png")
    with pytest.raises(Forbidden):
        service.rendition(src, 40, 40, public=True)
    with pytest.raises(Forbidden):
        service.rendition(src, 40, 40, public=True, signature="0" * 32)
    url = service.rendition_url(src, 40, 40)
    sig = url.rsplit("sig=", 1)[1]
    assert service.rendition(src, 40, 40, public=True, signature=sig).width == 40
    # a signature is for one spec only
    with pytest.raises(Forbidden):
        service.rendition(src, 41, 40, public=True, signature=sig)
    # the embedding program itself is trusted
    assert service.rendition(src, 41, 40).width == 41


def test_allowed_sizes_and_per_source_cap(service_factory):
    service = service_factory(**{"pastefile.rendition_sizes": "20x20 30x0", "pastefile.rendition_max_per_source": "2"})
    src = service.upload(io.BytesIO(make_image("PNG", (90, 60), seed=36)), "cap.png")
    with pytest.raises(Forbidden, match="not offered"):
        service.rendition(src, 25, 25, public=True)
    assert service.rendition(src, 20, 20, public=True).width == 20
    assert service.rendition(src, 30, 0, public=True).width == 30
    capped = service_factory(**{"pastefile.rendition_max_per_source": "2"})
    other = capped.upload(io.BytesIO(make_image("PNG", (90, 60), seed=37)), "cap2.png")
    capped.rendition(other, 10, 10, public=True)
    capped.rendition(other, 11, 10, public=True)
    with pytest.raises(Forbidden, match="already has 2 sizes"):
        capped.rendition(other, 12, 10, public=True)
    assert capped.rendition(other, 10, 10, public=True).width == 10


def test_pixel_limit_is_per_call_and_leaves_pillow_alone(service_factory):
    before = Image.MAX_IMAGE_PIXELS
    service = service_factory(**{"pastefile.max_image_pixels": "1000"})
    data = make_image("PNG", (40, 30), seed=38)  # 1,200 pixels
    src = service.upload(io.BytesIO(data), "many.png")
    assert (src.width, src.height) == (40, 30) and src.phash is None  # stored, not decoded
    with pytest.raises(Unprocessable, match="more than the 1,000 allowed"):
        service.rendition(src, 10, 10)
    with pytest.raises(Unprocessable):
        service.upload(io.BytesIO(make_image("PNG", (40, 30), seed=39)), "many2.png", w=10)
    assert Image.MAX_IMAGE_PIXELS == before
    # another service in the same process keeps its own limit
    roomy = service_factory()
    other = roomy.upload(io.BytesIO(make_image("PNG", (40, 30), seed=40)), "ok.png")
    assert roomy.rendition(other, 10, 10).width == 10


# -- single flight ---------------------------------------------------------------


class CountingRender:
    """Wraps the real pipeline; counts renders in a file (shared across forks).

    Before rendering it waits, with a deadline, until ``callers`` requests
    have arrived at the render lock (:func:`record_arrivals`): the lock is
    held meanwhile, so the others are waiting on this render, which proves
    the requests overlapped and did not merely run one after another."""

    def __init__(self, path, arrivals, callers: int, deadline: float = 30.0):
        self.path, self.arrivals, self.callers, self.deadline = str(path), arrivals, callers, deadline

    def __call__(self, *args, **kwargs):
        with open(self.path, "a") as f:
            f.write("x")
        give_up = time.monotonic() + self.deadline
        while self.arrivals.count < self.callers:
            if time.monotonic() > give_up:
                raise AssertionError(f"only {self.arrivals.count} of {self.callers} requests reached the render lock")
            time.sleep(0.01)
        return render(*args, **kwargs)

    @property
    def count(self) -> int:
        return len(open(self.path).read()) if os.path.exists(self.path) else 0


class Arrivals:
    """Counts, in a file (shared across forks), the calls that reached the
    render lock: the moment a request found no rendition and went to make it."""

    def __init__(self, path):
        self.path = str(path)

    def record(self) -> None:
        with open(self.path, "a") as f:
            f.write("x")

    @property
    def count(self) -> int:
        return len(open(self.path).read()) if os.path.exists(self.path) else 0


def record_arrivals(monkeypatch, arrivals: Arrivals, lock_class: type = SingleFlight) -> None:
    """Count arrivals at the render lock of ``lock_class`` (the flock lock;
    the PostgreSQL advisory lock on a deployment over PostgreSQL)."""
    real = lock_class.__call__

    def arriving(self, key):
        arrivals.record()
        return real(self, key)

    monkeypatch.setattr(lock_class, "__call__", arriving)


def test_concurrent_requests_render_once_across_threads(service, monkeypatch, tmp_path):
    arrivals = Arrivals(tmp_path / "arrivals")
    record_arrivals(monkeypatch, arrivals, type(service._parts.coordination.flights))
    counter = CountingRender(tmp_path / "renders", arrivals, callers=8)
    monkeypatch.setattr(renditions_module, "render", counter)
    src = service.upload(io.BytesIO(make_image("PNG", (200, 150), seed=41)), "t.png")
    barrier = threading.Barrier(8)
    results, errors = [], []

    def ask():
        barrier.wait()
        try:
            results.append(service.rendition(src, 64, 48))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8 and len(set(results)) == 1
    # all eight went for the lock while the one render held it; that one rendered
    assert arrivals.count == 8 and counter.count == 1


def _ask_in_child(settings, filehash, out_path):
    service = PasteFileService(settings)
    made = service.rendition(filehash, 64, 48)
    with open(out_path, "w") as f:
        f.write(made.sha256)
    service.close()


def test_concurrent_requests_render_once_across_processes(monkeypatch, tmp_path):
    settings = settings_for("sqlite", tmp_path)
    arrivals = Arrivals(tmp_path / "arrivals")
    record_arrivals(monkeypatch, arrivals)
    counter = CountingRender(tmp_path / "renders", arrivals, callers=3)
    monkeypatch.setattr(renditions_module, "render", counter)
    parent = PasteFileService(settings)
    src = parent.upload(io.BytesIO(make_image("PNG", (200, 150), seed=42)), "p.png")
    ctx = multiprocessing.get_context("fork")
    outs = [tmp_path / f"out{i}" for i in range(3)]
    procs = [ctx.Process(target=_ask_in_child, args=(settings, src.filehash, str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    shas = {o.read_text() for o in outs}
    # all three went for the lock while the one render held it; that one rendered
    assert len(shas) == 1 and arrivals.count == 3 and counter.count == 1
    assert parent.rendition(src, 64, 48).sha256 in shas  # found, not rendered again
    assert counter.count == 1
    parent.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_per_source_cap_holds_under_concurrency(tmp_path, request, backend):
    """80 distinct sizes of one image asked for at once through two
    services (as two workers): at most the cap is made, the rest are refused
    with Forbidden, nothing else goes wrong."""
    cap = 32
    extra = {"pastefile.rendition_max_per_source": str(cap)}
    if backend == "sqlite":
        settings = settings_for("sqlite", tmp_path, **extra)
        workers = [PasteFileService(settings), PasteFileService(settings)]
    else:
        url, nodes = request.getfixturevalue("fresh_pg_url"), request.getfixturevalue("memcached_nodes")
        settings = settings_for("postgresql", tmp_path, pg_url=url, memcached=nodes, **extra)
        workers = [PasteFileService(settings), PasteFileService(settings)]
        workers[0].initdb()
    try:
        src = workers[0].upload(io.BytesIO(make_image("PNG", (120, 90), seed=38)), "race.png")
        made, refused, failed = [], [], []
        start = threading.Barrier(16)

        def ask(sizes):
            start.wait()
            for i, w in sizes:
                try:
                    made.append(workers[i % 2].rendition(src.filehash, w, 20, public=True))
                except Forbidden:
                    refused.append(w)
                except Exception as exc:  # noqa: BLE001 - asserted below
                    failed.append(exc)

        sizes = list(enumerate(range(21, 101)))
        threads = [threading.Thread(target=ask, args=(sizes[k::16],)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failed == [] and len(made) + len(refused) == 80
        with workers[0]._connection() as conn:
            recorded = conn.execute(select(func.count()).select_from(Rendition.__table__)).scalar_one()
        # the count never goes down, so a refusal means the cap was reached
        assert recorded == len(made) == cap and len(refused) == 80 - cap
    finally:
        for w in workers:
            w.close()


# -- near duplicates ---------------------------------------------------------------


def test_upload_stores_phash_and_similar_finds_near_duplicates(service):
    base = photo(50, (400, 300))
    a = service.upload(io.BytesIO(encoded(base, quality=92)), "a.jpg")
    # the same picture brighter, smaller and re-encoded: a near duplicate
    tweaked = ImageEnhance.Brightness(base).enhance(1.08).resize((300, 225))
    b = service.upload(io.BytesIO(encoded(tweaked, "PNG")), "b.png")
    c = service.upload(io.BytesIO(encoded(photo(51, (400, 300)), quality=92)), "c.jpg")
    text = service.upload(io.BytesIO(b"not a picture " * 40), "n.txt")
    assert None not in (a.phash, b.phash, c.phash) and text.phash is None
    assert hamming_distance(a.phash, b.phash) <= 8 < hamming_distance(a.phash, c.phash)
    found = service.similar(a.filehash)
    assert [(p.filehash, d) for p, d in found] == [(b.filehash, hamming_distance(a.phash, b.phash))]
    assert service.similar(text) == []
    assert {p.filehash for p, _ in service.similar(a, 64)} == {b.filehash, c.filehash}
    with pytest.raises(InvalidRequest):
        service.similar(a, 65)


def test_similar_matches_a_brute_force_scan(service):
    pastes = [service.upload(io.BytesIO(encoded(photo(60 + i % 4, (160, 120)).rotate(i * 3))), f"{i}.png")
              for i in range(12)]
    for paste in pastes[:4]:
        for radius in (0, 6, 12, 20):
            expected = sorted(
                (hamming_distance(paste.phash, o.phash), o.id) for o in pastes if o.id != paste.id
                and hamming_distance(paste.phash, o.phash) <= radius
            )
            got = [(d, p.id) for p, d in service.similar(paste, radius)]
            assert got == expected


def test_index_sees_uploads_from_another_process(tmp_path):
    """Two services on one database and cache stand for two worker processes."""
    settings = settings_for("sqlite", tmp_path)
    first, second = PasteFileService(settings), PasteFileService(settings)
    second.cache = first.cache  # one shared cache, as memcached is between workers
    second._similar = second._new_similar_index()
    base = photo(70, (320, 240))
    a = first.upload(io.BytesIO(encoded(base)), "a.jpg")
    assert second.similar(a.filehash) == []  # builds second's index
    b = first.upload(io.BytesIO(encoded(ImageEnhance.Contrast(base).enhance(1.1))), "b.jpg")
    assert [p.filehash for p, _ in second.similar(a.filehash)] == [b.filehash]
    first.close()
    second.close()


def test_images_of_every_kind_get_a_phash(service):
    for i, (fmt, mode) in enumerate((("PNG", "RGBA"), ("PNG", "L"), ("GIF", "RGB"), ("WEBP", "RGB"), ("BMP", "RGB"))):
        img = photo(80 + i).convert(mode)
        paste = service.upload(io.BytesIO(encoded(img, fmt)), f"k{i}.{fmt.lower()}")
        assert paste.phash is not None, fmt


def test_database_counts(service):
    src = service.upload(io.BytesIO(make_image("PNG", (60, 60), seed=43)), "c.png")
    service.rendition(src, 30, 30)
    with service._connection() as conn:
        assert conn.execute(select(func.count()).select_from(Rendition.__table__)).scalar_one() == 1


@pytest.mark.parametrize("fmt, mode", [("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB")])
def test_other_source_formats_keep_their_format(service, fmt, mode):
    img = photo(90, (120, 90)).convert(mode)
    src = service.upload(io.BytesIO(encoded(img, fmt)), f"s.{fmt.lower()}")
    made = service.rendition(src, 40, 30)
    out = Image.open(io.BytesIO(body_of(service, made)))
    assert out.format == fmt and out.size == (40, 30) and made.spec == f"40x30-crop-{fmt.lower()}"
    as_png = service.rendition(src, 40, 30, format="png")
    assert as_png.mimetype == "image/png"


def test_a_bomb_past_pillows_own_limit_is_a_clear_422(service):
    # a PNG header claiming 20000 x 20000 pixels (400 M, past twice Pillow's limit)
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 600)) + chunk(b"IEND", b"")
    paste = service.upload(io.BytesIO(data), "bomb.png")
    assert paste.phash is None
    with pytest.raises(Unprocessable):
        service.rendition(paste, 10, 10)
    with pytest.raises(Unprocessable):
        service.upload(io.BytesIO(data), "bomb2.png", w=10)


def test_source_deleted_while_rendering_is_a_404_and_leaves_nothing(tmp_path, monkeypatch):
    service = PasteFileService(settings_for("sqlite", tmp_path, **{"pastefile.inline_max": "0"}))
    src = service.upload(io.BytesIO(make_image("PNG", (300, 200), seed=44)), "going.png")

    def render_then_delete(*args, **kwargs):
        out = render(*args, **kwargs)
        service.delete(src.filehash, src.delete_token)  # another request, mid-render
        return out

    monkeypatch.setattr(renditions_module, "render", render_then_delete)
    with pytest.raises(NotFound):
        service.rendition(src, 50, 50)
    monkeypatch.undo()
    assert rendition_rows(service) == []
    # what the failed rendition placed is swept like any unrecorded upload
    service.sweep()
    report = service.fsck(grace=0)
    assert report["orphan_files"] == 0 and report["missing_files"] == 0 and report["stale_temp"] == 0
    service.close()
