"""Hostile input against a live server, on SQLite and on PostgreSQL + memcached.

The app runs under waitress on a free loopback port; every case is sent as
raw bytes (tests/rawhttp.py), so malformed requests really reach the server
and the app.  Each case names its expected status: a 2xx, or a clear 4xx
(waitress's own 501 for a transfer coding it does not implement is the one
5xx, and RFC 7230 asks for it).  Whatever the case, the answer carries no
traceback, JSON errors have the documented shape, user content keeps its
sandboxing headers, an upload that is refused leaves no temp file, blob or
row behind, and after the whole corpus the service still takes an upload
and serves it back.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from PIL import Image

import pastefile.webapp
from pastefile.core.mimes import DEFAULT_ALLOWED_TYPES, is_active

from .conftest import BACKENDS, blob_files, make_image, settings_for, temp_files, webapp_settings
from .rawhttp import Reply, chunked, exchange, request_bytes
from .servers import LiveServer
from .webapp_helpers import unique_image, unique_seed, unique_text

# a 12000 x 12000 bomb is inside Pillow's own limit, which warns
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

LIMIT = 1 << 20  # pastefile.max_upload_size of the server under test
ACTIVE = ("text/html", "image/svg+xml", "text/xml", "application/xml")
SECRET = "hostile-corpus-secret"
MISSING = "0123456789abcdef0123456789abcdef"


# -- the server under test ----------------------------------------------------


@dataclass
class Target:
    """The live server and the pastes uploaded before the corpus runs."""

    port: int
    app: object
    server: LiveServer
    seeds: dict = field(default_factory=dict)

    @property
    def service(self):
        return self.app.registry.pastefile

    def send(self, req: "Req") -> Reply | None:
        return exchange(self.port, req.head(), req.body_pieces(), half_close=req.half_close,
                        head_request=req.method == "HEAD")

    def get(self, target: str, headers: Iterable[tuple[str, str]] = (), method: str = "GET") -> Reply:
        reply = self.send(Req(method, target, list(headers)))
        assert reply is not None, f"no answer to {method} {target}"
        check_reply(reply, target)
        return reply

    def put(self, name: str, data: bytes) -> dict:
        reply = self.send(Req("PUT", "/" + quote(name), body=data))
        assert reply is not None and reply.status == 200, reply
        return json.loads(reply.body)

    def signed(self, doc: dict, w=None, h=None, **kw) -> str:
        """The path of a rendition link this service honours."""
        paste = self.service.get(doc["filehash"])
        url = self.service.rendition_url(paste, w, h, **kw)
        return url[url.index("/i/"):]

    def leftovers(self) -> tuple:
        service = self.service
        return (temp_files(service), blob_files(service), service.count())


@pytest.fixture(scope="module", params=BACKENDS)
def target(request, tmp_path_factory):
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"hostile-{backend}")
    settings = webapp_settings(
        request, backend, tmp,
        **{
            "pastefile.max_upload_size": str(LIMIT),
            "pastefile.allowed_types": " ".join(DEFAULT_ALLOWED_TYPES + ACTIVE),
            "pastefile.rendition_secret": SECRET,
            # the listing is private by default; these cases probe its parameters
            "pastefile.public_latest": "true",
        },
    )
    app = pastefile.webapp.main({}, **settings)
    with LiveServer(app) as server:
        t = Target(int(server.url.rsplit(":", 1)[1]), app, server)
        t.seeds = {
            "text": t.put("seed.txt", unique_text(3000)),
            "big": t.put("big.txt", unique_text(300_000)),  # above inline_max: a file blob
            "png": t.put("seed.png", unique_image("PNG", (64, 48))),
            "gif": t.put("seed.gif", unique_image("GIF", (64, 48))),
        }
        yield t
    app.registry.pastefile.close()


# -- requests -------------------------------------------------------------------


DEFAULT_HEADERS = [("Host", "127.0.0.1"), ("Accept", "application/json"), ("Connection", "close")]


@dataclass
class Req:
    method: str
    target: str | bytes
    headers: list = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False
    length: str | None = "auto"  # "auto": the body's length; None: no Content-Length
    half_close: bool = False
    raw: bytes | None = None  # the whole request, sent as it is
    defaults: bool = True

    def head(self) -> bytes:
        if self.raw is not None:
            return self.raw
        names = {name.lower() for name, _ in self.headers}
        headers = [(k, v) for k, v in DEFAULT_HEADERS if k.lower() not in names] if self.defaults else []
        headers += self.headers
        if self.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif self.length == "auto":
            if self.body or self.method in ("POST", "PUT"):
                headers.append(("Content-Length", str(len(self.body))))
        elif self.length is not None:
            headers.append(("Content-Length", self.length))
        return request_bytes(self.method, self.target, headers)

    def body_pieces(self) -> Iterable[bytes]:
        if self.raw is not None:
            return []
        if self.chunked:
            return chunked(self.body)
        return [self.body[i : i + 65536] for i in range(0, len(self.body), 65536)]


def get(target: str, *headers: tuple[str, str], method: str = "GET") -> Callable[["Target"], Req]:
    return lambda t: Req(method, target.format(**_names(t)), list(headers))


def _names(t: Target) -> dict:
    return {name: doc["filehash"] for name, doc in t.seeds.items()} | {"missing": MISSING}


def raw(data: bytes) -> Callable[["Target"], Req]:
    return lambda t: Req("", "", raw=data)


def part(name: str | None, data: bytes, filename: str | bytes | None = None, *, extra: bytes = b"") -> bytes:
    """One multipart part; ``filename`` is put between quotes as it is."""
    disposition = b"Content-Disposition: form-data"
    if name is not None:
        disposition += b'; name="' + name.encode() + b'"'
    if filename is not None:
        if isinstance(filename, str):
            filename = filename.encode("utf-8")
        disposition += b'; filename="' + filename + b'"'
    head = disposition + b"\r\n" + extra
    if filename is not None:
        head += b"Content-Type: application/octet-stream\r\n"
    return head + b"\r\n" + data


def form(parts: list[bytes], boundary: str = "hostileboundary", *, close: bool = True) -> bytes:
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return out + (b"--" + boundary.encode() + b"--\r\n" if close else b"")


def post(body: bytes | Callable[[], bytes], ctype: str | None = "multipart/form-data; boundary=hostileboundary",
         *headers: tuple[str, str], **options) -> Callable[["Target"], Req]:
    def build(t: Target) -> Req:
        data = body() if callable(body) else body
        extra = list(headers) + ([("Content-Type", ctype)] if ctype is not None else [])
        return Req("POST", "/", extra, data, **options)

    return build


def upload(data: bytes | Callable[[], bytes], filename: str | bytes = "x.bin", *fields: bytes, **options):
    """POST / with one file part (and optional extra parts)."""
    return post(lambda: form([part("file", data() if callable(data) else data, filename), *fields]), **options)


def put(path: str, data: bytes | Callable[[], bytes], *headers: tuple[str, str], **options):
    def build(t: Target) -> Req:
        return Req("PUT", path.format(**_names(t)), list(headers), data() if callable(data) else data, **options)

    return build


# -- hostile content ------------------------------------------------------------


def uniq(data: bytes) -> bytes:
    """``data`` plus a unique tail, so each run stores new content."""
    return data + f"\n<!-- {uuid.uuid4().hex} -->\n".encode()


def text() -> bytes:
    return unique_text(2000)


def truncated(fmt: str) -> Callable[[], bytes]:
    def make() -> bytes:
        data = make_image(fmt, (96, 64), seed=unique_seed())
        return data[: len(data) // 2]

    return make


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG a few hundred kB long that declares width x height 1-bit pixels
    (all zero): about 110 MB of pixel rows when decoded."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    rows = row * 256
    idat = bytearray()
    for _ in range(height // 256):
        idat += compressor.compress(rows)
    idat += compressor.compress(row * (height % 256)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", uuid.uuid4().hex.encode()) \
        + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b"")


def jpeg_bomb() -> bytes:
    """A small JPEG whose frame header claims 65000 x 65000 pixels."""
    data = bytearray(make_image("JPEG", (16, 16), seed=unique_seed()))
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, 65000, 65000)
    return bytes(data)


def gif_bomb() -> bytes:
    """A GIF whose logical screen and frame claim 65535 x 65535 pixels."""
    data = bytearray(make_image("GIF", (16, 16), seed=unique_seed()))
    struct.pack_into("<HH", data, 6, 65535, 65535)
    at = data.find(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, at + 5, 65535, 65535)
    return bytes(data)


def webp_bomb() -> bytes:
    """A WebP with an extended header (VP8X) claiming a 16383 x 16383 canvas."""
    inner = make_image("WEBP", (16, 16), seed=unique_seed())[12:]  # the VP8/VP8L chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (16382).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + inner
    return b"RIFF" + struct.pack("<I", len(body)) + body


def html() -> bytes:
    return uniq(b"<!DOCTYPE html><html><head><title>x</title></head><body>"
                b"<script>alert(document.domain)</script></body></html>")


def svg() -> bytes:
    return uniq(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
                b'onload="alert(1)"><script>alert(document.domain)</script><rect width="10" height="10"/></svg>')


def xml() -> bytes:
    return uniq(b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
                b"<script>alert(document.domain)</script></body></html>")


def utf16_html() -> bytes:
    return b"\xff\xfe" + uniq(b"<html><body><script>alert(1)</script></body></html>").decode().encode("utf-16-le")


def gif_js() -> bytes:
    """GIF89a/*...*/=1;alert(1)//: a GIF header that is also JavaScript."""
    return b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;alert(document.domain);//" + uuid.uuid4().hex.encode() \
        + b"\x00\x3b"


def png_html() -> bytes:
    return make_image("PNG", (8, 8), seed=unique_seed()) + b"<html><script>alert(1)</script></html>"


def jpeg_comment_script() -> bytes:
    data = make_image("JPEG", (8, 8), seed=unique_seed())
    comment = b"<script>alert(document.domain)</script>"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return data[:2] + segment + data[2:]


def gifar() -> bytes:
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n" + uuid.uuid4().hex)
    return make_image("GIF", (8, 8), seed=unique_seed()) + archive.getvalue()


def pdf_html() -> bytes:
    return uniq(b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n<html><script>alert(1)</script></html>\n%%EOF\n")


def html_pdf() -> bytes:
    return uniq(b"<html><script>alert(1)</script></html>\n%PDF-1.4\n%%EOF\n")


def elf() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + os.urandom(200)


def pdf() -> bytes:
    return uniq(b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def zipfile_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", uuid.uuid4().hex)
    return out.getvalue()


# -- checks ---------------------------------------------------------------------

TRACEBACK = re.compile(rb'Traceback \(most recent call last\)|File "[^"]+\.py", line \d+')
CONTENT_ROUTES = re.compile(r"^/(i|d)/")


def check_reply(reply: Reply, target: str = "") -> None:
    """What every answer must satisfy, whatever was asked."""
    assert not TRACEBACK.search(reply.body), reply.body[:500]
    assert reply.status < 500 or reply.status == 501, f"{reply.status} for {target!r}: {reply.body[:300]!r}"
    assert not reply.all("Set-Cookie") and not reply.all("X-Injected")
    assert len(reply.all("Content-Disposition")) <= 1
    for name, value in reply.headers:
        assert "\r" not in value and "\n" not in value and "\0" not in value, (name, value)
    if reply.status >= 400 and reply.content_type == "application/json" and not reply.to_head:
        doc = json.loads(reply.body)
        assert set(doc) == {"error"} and set(doc["error"]) == {"status", "title", "message"}, doc
        assert doc["error"]["status"] == reply.status
        assert isinstance(doc["error"]["title"], str) and isinstance(doc["error"]["message"], str)
    disposition = reply.header("Content-Disposition")
    if reply.status in (200, 206) and disposition is not None:
        # user content: sandboxed, never sniffed, never an active type inline
        assert reply.header("X-Content-Type-Options") == "nosniff"
        assert reply.header("Content-Security-Policy") == "sandbox"
        assert disposition.isascii()
        if is_active(reply.content_type) or reply.content_type.startswith("text/html"):
            assert disposition.startswith("attachment")


def doc_of(reply: Reply) -> dict:
    assert reply.content_type == "application/json", reply
    return json.loads(reply.body)


def served_back(t: Target, reply: Reply, data: bytes | None = None) -> dict:
    """The upload in ``reply`` is served by /i/ /d/ /p/ /j/ with safe headers."""
    doc = doc_of(reply)
    for route in ("i", "d"):
        got = t.get(f"/{route}/{doc['filehash']}")
        assert got.status == 200
        assert data is None or got.body == data
        disposition = got.header("Content-Disposition")
        kind, _, params = disposition.partition(";")
        assert kind == ("attachment" if route == "d" or is_active(doc["mimetype"]) else "inline")
        fallback = re.match(r' filename="([^"\\]*)"(; filename\*=UTF-8\'\'[A-Za-z0-9%._~!*\'()-]*)?$', params)
        assert fallback, disposition
        assert "%E2%80%AE" not in disposition.upper()  # no right-to-left override
    assert t.get(f"/p/{doc['filehash']}").status == 200
    assert t.get(f"/j/{doc['filehash']}").status == 200
    return doc


def safe_name(t: Target, reply: Reply, expected: str | None = None) -> None:
    doc = served_back(t, reply)
    name = doc["filename"]
    assert 0 < len(name) <= 255 and "/" not in name and "\\" not in name
    assert not any(ord(c) < 32 or c in "\x7f\u202e\u202d\u2066\u2067\u2068" for c in name), name
    if expected is not None:
        assert name == expected


def stored_as(mimetype: str) -> Callable[[Target, Reply], None]:
    def check(t: Target, reply: Reply) -> None:
        doc = served_back(t, reply)
        assert doc["mimetype"] == mimetype, doc["mimetype"]
        got = t.get(f"/i/{doc['filehash']}")
        if is_active(mimetype):
            assert got.content_type == "application/octet-stream"
        else:
            assert got.content_type == mimetype

    return check


def inert(t: Target, reply: Reply) -> None:
    """Whatever it was sniffed as, its bytes never run in the site's origin."""
    if reply.status != 200:
        return
    doc = served_back(t, reply)
    got = t.get(f"/i/{doc['filehash']}")
    assert got.content_type not in ACTIVE and not got.content_type.endswith("+xml") or \
        got.header("Content-Disposition").startswith("attachment")


def broken_image(t: Target, reply: Reply) -> None:
    """Stored as uploaded; a resize of it is refused, never a crash."""
    if reply.status != 200:
        return
    doc = served_back(t, reply)
    if doc["mimetype"].startswith("image/"):
        got = t.send(Req("GET", t.signed(doc, 8, 8)))
        check_reply(got)
        assert got.status in (415, 422), got


def bomb(t: Target, reply: Reply) -> None:
    """Stored with the size its header declares; never decoded: no pHash,
    and a rendition answers 422 (README, pastefile.max_image_pixels)."""
    doc = served_back(t, reply)
    assert doc["mimetype"].startswith("image/") and doc["phash"] is None
    got = t.get(t.signed(doc, 10, 10))
    assert got.status == 422, got
    # past twice Pillow's own limit it refuses to read even the header's size
    if doc["width"] is not None:
        assert doc["width"] * doc["height"] > t.service.settings.max_image_pixels


def json_has(**expected) -> Callable[[Target, Reply], None]:
    def check(t: Target, reply: Reply) -> None:
        doc = doc_of(reply)
        for key, value in expected.items():
            assert doc[key] == value, (key, doc[key])

    return check


def body_is(seed: str, start: int, stop: int | None) -> Callable[[Target, Reply], None]:
    def check(t: Target, reply: Reply) -> None:
        with t.service.open(t.seeds[seed]["filehash"]) as f:
            data = f.read()
        assert reply.body == data[start:stop]

    return check


def host_escaped(t: Target, reply: Reply) -> None:
    assert b"<script>alert" not in reply.body


# -- the corpus -----------------------------------------------------------------


@dataclass
class Case:
    kind: str
    name: str
    build: Callable[[Target], Req]
    expect: int | tuple | None  # None in the tuple: the server may close without an answer
    check: Callable[[Target, Reply], None] | None = None
    upload: bool = False


    @property
    def statuses(self) -> tuple:
        return self.expect if isinstance(self.expect, tuple) else (self.expect,)


B = "hostileboundary"
BROWSER = ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
RLO = "\u202e"

CORPUS = [
    # truncated images: stored as the bytes they are, never decoded into a crash
    Case("truncated", "jpeg-half", upload(truncated("JPEG"), "cut.jpg"), 200, broken_image),
    Case("truncated", "png-half", upload(truncated("PNG"), "cut.png"), 200, broken_image),
    Case("truncated", "gif-half", upload(truncated("GIF"), "cut.gif"), 200, broken_image),
    Case("truncated", "webp-half", upload(truncated("WEBP"), "cut.webp"), 200, broken_image),
    Case("truncated", "png-signature-only", upload(lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(4), "sig.png"),
         415, broken_image, upload=True),
    Case("truncated", "jpeg-soi-only", upload(lambda: b"\xff\xd8\xff\xe0" + os.urandom(4), "soi.jpg"),
         200, broken_image, upload=True),
    # an image type whose pixels do not decode: 422, as for a bomb
    Case("truncated", "truncated-png-resized-on-upload",
         upload(truncated("PNG"), "cut.png", part("w", b"10")), 422, upload=True),
    Case("truncated", "truncated-jpeg-put-resized", put("/cut.jpg?w=10&h=10", truncated("JPEG")), 422,
         upload=True),
    # decompression bombs: refused from their header, never decoded
    Case("bomb", "png-12000x12000", upload(lambda: png_bomb(12000, 12000), "bomb.png"), 200, bomb),
    Case("bomb", "png-30000x30000", upload(png_bomb, "bomb.png"), 200, bomb),
    Case("bomb", "jpeg-65000x65000", upload(jpeg_bomb, "bomb.jpg"), 200, bomb),
    Case("bomb", "gif-65535x65535", upload(gif_bomb, "bomb.gif"), 200, bomb),
    Case("bomb", "webp-16383x16383", upload(webp_bomb, "bomb.webp"), 200, broken_image, upload=True),
    Case("bomb", "png-bomb-resized-on-upload", upload(lambda: png_bomb(12000, 12000), "bomb.png", part("w", b"10"),
                                                      part("h", b"10")), 422, upload=True),
    Case("bomb", "huge-png-bomb-resized-on-upload", upload(png_bomb, "bomb.png", part("w", b"10")), 422,
         upload=True),
    Case("bomb", "png-bomb-put-resized", put("/bomb.png?w=10", lambda: png_bomb(12000, 12000)), 422, upload=True),
    # zero bytes
    Case("empty", "multipart-zero-byte-file", upload(b"", "empty.txt"), 400, upload=True),
    Case("empty", "put-zero-bytes", put("/empty.txt", b""), 400, upload=True),
    Case("empty", "put-chunked-zero-bytes", put("/empty.txt", b"", chunked=True), 400, upload=True),
    Case("empty", "post-no-body", post(b""), 400, upload=True),
    # file names
    Case("filename", "put-10000-chars", put("/" + "a" * 10000 + ".txt", text), 200, safe_name),
    Case("filename", "multipart-10000-chars", upload(text, "a" * 10000 + ".txt"), 400, upload=True),
    Case("filename", "multipart-empty-name", upload(text, ""), 200,
         lambda t, r: safe_name(t, r, "file")),
    Case("filename", "put-no-name", put("/", text), 404, upload=True),
    Case("filename", "dot-dot-path", upload(text, "../../../../etc/passwd"), 200,
         lambda t, r: safe_name(t, r, "passwd")),
    Case("filename", "put-encoded-dot-dot", put("/..%2f..%2fetc%2fpasswd", text), 404, upload=True),
    Case("filename", "put-dot-dot-segment", put("/..", text), 200, lambda t, r: safe_name(t, r, "file")),
    Case("filename", "absolute-path", upload(text, "/etc/shadow"), 200, lambda t, r: safe_name(t, r, "shadow")),
    Case("filename", "windows-path", upload(text, "C:\\Windows\\system32\\evil.txt"), 200,
         lambda t, r: safe_name(t, r, "evil.txt")),
    Case("filename", "nul-in-multipart-name", upload(text, b"a\x00b.txt"), 200,
         lambda t, r: safe_name(t, r, "ab.txt")),
    Case("filename", "put-nul-in-name", put("/a%00b.txt", text), 200, lambda t, r: safe_name(t, r, "ab.txt")),
    Case("filename", "raw-crlf-in-multipart-name", upload(text, b"a\r\nX-Injected: 1.txt"), 400,
         upload=True),
    Case("filename", "browser-escaped-crlf", upload(text, "a%0D%0ASet-Cookie: x=1%0D%0A.txt"), 200, safe_name),
    Case("filename", "put-crlf-header-injection", put("/evil%22%0D%0ASet-Cookie:%20a=b%0D%0AX-Injected:%201.txt",
                                                      text), 200, safe_name),
    Case("filename", "backslash-escaped-quote", upload(text, b'say \\"hi\\".txt'), 200, safe_name),
    Case("filename", "browser-escaped-quote", upload(text, 'say %22hi%22; filename=evil.txt'), 200, safe_name),
    Case("filename", "rtl-override", upload(text, f"invoice{RLO}fdp.exe"), 200,
         lambda t, r: safe_name(t, r, "invoicefdp.exe")),
    Case("filename", "put-rtl-override", put("/invoice%E2%80%AEgnp.exe", text), 200, safe_name),
    Case("filename", "only-control-chars", upload(text, b"\x01\x02\x1b"), 200, lambda t, r: safe_name(t, r, "file")),
    Case("filename", "rfc5987-name-only", post(lambda: form([
        b'Content-Disposition: form-data; name="file"; filename*=UTF-8\'\'%E2%80%AE.txt\r\n\r\n' + text()])),
         400, upload=True),
    Case("filename", "latin1-bytes-in-name", upload(text, b"caf\xe9.txt"), 400, upload=True),
    Case("filename", "put-300-cjk-chars", put("/" + quote("\u732b" * 300) + ".txt", text), 200, safe_name),
    # content that contradicts its name: the sniffed type wins
    Case("mismatch", "png-named-txt", upload(lambda: unique_image("PNG"), "pic.txt"), 200, stored_as("image/png")),
    Case("mismatch", "text-named-png", upload(text, "notes.png"), 200, stored_as("text/plain")),
    Case("mismatch", "text-named-jpg-resized", upload(text, "x.jpg", part("w", b"10")), 415, upload=True),
    Case("mismatch", "elf-named-jpg", upload(elf, "cat.jpg"), 415, upload=True),
    Case("mismatch", "pdf-named-png", upload(pdf, "x.png"), 200, stored_as("application/pdf")),
    Case("mismatch", "zip-named-gif", upload(zipfile_bytes, "x.gif"), 200, stored_as("application/zip")),
    # active content: only ever an attachment
    Case("active", "html-with-script", upload(html, "page.html"), 200, stored_as("text/html")),
    Case("active", "html-named-png", upload(html, "page.png"), 200, stored_as("text/html")),
    Case("active", "svg-with-script", upload(svg, "pic.svg"), 200, stored_as("image/svg+xml")),
    Case("active", "xhtml-with-script", upload(xml, "page.xml"), 200, inert),
    Case("active", "utf16-html", upload(utf16_html, "page.txt"), 200, inert, upload=True),
    Case("active", "bare-script-tag", upload(lambda: uniq(b"<script>alert(1)</script>"), "a.txt"), 200,
         inert, upload=True),
    Case("active", "svg-resize-refused", upload(svg, "pic.svg", part("w", b"10")), 415, upload=True),
    # polyglots
    Case("polyglot", "gif-javascript", upload(gif_js, "x.gif"), 200, inert, upload=True),
    Case("polyglot", "png-then-html", upload(png_html, "x.html"), 200, stored_as("image/png")),
    Case("polyglot", "jpeg-comment-script", upload(jpeg_comment_script, "x.jpg"), 200, stored_as("image/jpeg")),
    Case("polyglot", "gifar", upload(gifar, "x.gif"), 200, inert),
    Case("polyglot", "pdf-with-html", upload(pdf_html, "x.pdf"), 200, inert),
    Case("polyglot", "html-with-pdf", upload(html_pdf, "x.pdf"), 200, inert),
    # malformed multipart
    Case("multipart", "no-boundary", post(lambda: form([part("file", text(), "a.txt")]), "multipart/form-data"),
         400, upload=True),
    Case("multipart", "no-boundary-browser", post(lambda: form([part("file", text(), "a.txt")]),
                                                  "multipart/form-data", BROWSER), 400, upload=True),
    Case("multipart", "empty-boundary", post(lambda: form([part("file", text(), "a.txt")]),
                                             "multipart/form-data; boundary="), 400, upload=True),
    Case("multipart", "boundary-without-value", post(lambda: form([part("file", text(), "a.txt")]),
                                                     "multipart/form-data; boundary"), 400, upload=True),
    Case("multipart", "unclosed-quoted-boundary", post(lambda: form([part("file", text(), "a.txt")]),
                                                       'multipart/form-data; boundary="hostile'), 400, upload=True),
    Case("multipart", "wrong-boundary", post(lambda: form([part("file", text(), "a.txt")], "otherboundary")),
         400, upload=True),
    Case("multipart", "missing-final-boundary", post(lambda: form([part("file", text(), "a.txt")], close=False)),
         400, upload=True),
    Case("multipart", "no-file-field", post(form([part("w", b"10")])), 400, upload=True),
    Case("multipart", "two-file-fields", post(lambda: form([part("file", text(), "a.txt"),
                                                            part("file", text(), "b.txt")])), 400, upload=True),
    Case("multipart", "file-field-without-filename", post(lambda: form([part("file", text())])), 400, upload=True),
    Case("multipart", "file-under-other-name", post(lambda: form([part("upload", text(), "a.txt")])), 400,
         upload=True),
    Case("multipart", "huge-part-header", post(lambda: form([part("file", text(), "a.txt",
                                                                  extra=b"X-Pad: " + b"a" * 100_000 + b"\r\n")])),
         400, upload=True),
    Case("multipart", "many-part-headers", post(lambda: form([part("file", text(), "a.txt",
                                                                   extra=b"X-Pad: a\r\n" * 50)])), 400,
         upload=True),
    Case("multipart", "a-hundred-parts", post(lambda: form([part(f"f{i}", b"x") for i in range(100)]
                                                           + [part("file", text(), "a.txt")])), 400, upload=True),
    Case("multipart", "part-without-disposition", post(lambda: form([b"Content-Type: text/plain\r\n\r\n" + text()])),
         400, upload=True),
    Case("multipart", "long-text-field", upload(text, "a.txt", part("w", b"1" * 5000)), 400, upload=True),
    Case("multipart", "garbage-body", post(lambda: os.urandom(5000)), 400, upload=True),
    Case("multipart", "text-plain-body", post(text, "text/plain"), 400, upload=True),
    Case("multipart", "urlencoded-body", post(b"file=hello&w=10", "application/x-www-form-urlencoded"), 400,
         upload=True),
    Case("multipart", "json-body", post(b'{"file": "hello"}', "application/json"), 400, upload=True),
    Case("multipart", "no-content-type", post(lambda: form([part("file", text(), "a.txt")]), None), 400,
         upload=True),
    Case("multipart", "multipart-mixed", post(lambda: form([part("file", text(), "a.txt")]),
                                              f"multipart/mixed; boundary={B}"), 400, upload=True),
    Case("multipart", "declared-length-too-short", lambda t: Req("POST", "/", [
        ("Content-Type", f"multipart/form-data; boundary={B}")], form([part("file", text(), "a.txt")]), length="900"),
         400, upload=True),
    Case("multipart", "declared-length-too-long", lambda t: Req("POST", "/", [
        ("Content-Type", f"multipart/form-data; boundary={B}")], form([part("file", text(), "a.txt")]),
        length="90000", half_close=True), (None,), upload=True),
    Case("multipart", "bad-chunk-size", raw(
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), 400, upload=True),
    Case("multipart", "chunked-upload", upload(text, "chunked.txt", chunked=True), 200, safe_name),
    Case("multipart", "quoted-boundary", post(lambda: form([part("file", text(), "q.txt")], "a b:c"),
                                              'multipart/form-data; boundary="a b:c"'), 200, safe_name),
    Case("multipart", "300-char-boundary", post(lambda: form([part("file", text(), "l.txt")], "b" * 300),
                                                "multipart/form-data; boundary=" + "b" * 300), 200,
         safe_name),
    Case("multipart", "preamble-and-epilogue", post(lambda: b"preamble junk\r\n" + form(
        [part("file", text(), "p.txt")]) + b"epilogue junk"), 200, safe_name),
    Case("multipart", "invalid-utf8-field", upload(text, "a.txt", part("w", b"\xff\xfe")), 400, upload=True),
    Case("multipart", "w-minus-one", upload(lambda: unique_image("PNG"), "a.png", part("w", b"-1")), 400,
         upload=True),
    Case("multipart", "w-1e9", upload(lambda: unique_image("PNG"), "a.png", part("w", b"1e9")), 400, upload=True),
    Case("multipart", "w-huge-integer", upload(lambda: unique_image("PNG"), "a.png", part("w", b"9" * 900)), 400,
         upload=True),
    Case("multipart", "h-nan", upload(lambda: unique_image("PNG"), "a.png", part("h", b"NaN")), 400, upload=True),
    Case("multipart", "h-text", upload(lambda: unique_image("PNG"), "a.png", part("h", b"tall")), 400, upload=True),
    # headers
    Case("headers", "one-300kB-header", get("/j/{text}", ("X-Pad", "a" * 300_000)), 431),
    Case("headers", "2000-repeated-headers", lambda t: Req("GET", f"/j/{t.seeds['text']['filehash']}",
                                                           [("X-Pad", "a")] * 2000), 200),
    Case("headers", "repeated-accept", get("/j/{text}", *[("Accept", "application/json")] * 20), 200),
    Case("headers", "conflicting-content-lengths", raw(
        b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
        b"hello!!"), 400, upload=True),
    Case("headers", "content-length-text", raw(
        b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\nhello"), 400,
         upload=True),
    Case("headers", "content-length-negative", raw(
        b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -5\r\n\r\nhello"), 400,
         upload=True),
    Case("headers", "transfer-encoding-gzip", raw(
        b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip\r\n\r\nhello"), 501,
         upload=True),
    Case("headers", "header-without-colon", raw(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nno colon here\r\n\r\n"), 400),
    Case("headers", "obsolete-line-folding", raw(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: a\r\n  folded\r\n\r\n"), 200),
    Case("headers", "nul-in-header", raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: a\x00b\r\n\r\n"),
         400),
    Case("headers", "garbage-request-line", raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), 400),
    Case("headers", "http-2-version", raw(b"GET / HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n"), 200),
    Case("headers", "100kB-url", get("/p/" + "a" * 100_000), 404),
    Case("headers", "script-in-host-header", get("/p/{text}", ("Host", '"><script>alert(1)</script>'), BROWSER),
         200, host_escaped),
    Case("headers", "garbage-accept", get("/j/{text}", ("Accept", "\xff;;;q=abc,,/")), 200),
    Case("headers", "unknown-method", get("/p/{text}", method="FOO"), 405),
    Case("headers", "trace-method", get("/p/{text}", method="TRACE"), 405),
    Case("headers", "absolute-form-target", lambda t: Req("GET", f"http://evil.example/j/{t.seeds['text']['filehash']}"),
         200),
    Case("headers", "options-asterisk", get("*", method="OPTIONS"), 405),
    Case("headers", "options-preview", get("/p/{text}", method="OPTIONS"), 405),
    Case("headers", "post-to-preview", get("/p/{text}", method="POST"), 404),
    Case("headers", "delete-preview", get("/p/{text}", method="DELETE"), 404),
    Case("headers", "put-to-latest-uploads", put("/latest", text), 200, lambda t, r: safe_name(t, r, "latest")),
    # undecodable paths and query strings, on every route
    *[Case("encoding", f"path-{i}", get(path, method=method), 400) for i, (method, path) in enumerate([
        ("GET", "/p/%ff%fe"), ("GET", "/d/%c0%ae%c0%ae"), ("GET", "/i/%ed%a0%80"), ("GET", "/s/%ff"),
        ("GET", "/j/%80"), ("GET", "/r/%fe?w=10"), ("POST", "/x/%ff/%fe"), ("GET", "/static/%ff.css"),
        ("GET", "/%ff"), ("HEAD", "/d/%ff"),
    ])],
    Case("encoding", "put-invalid-utf8-name", put("/%ff%fe.txt", text), 400, upload=True),
    Case("encoding", "post-invalid-utf8-path", lambda t: Req(
        "POST", "/%ff", [("Content-Type", f"multipart/form-data; boundary={B}")], form([part("file", text(), "a.txt")])),
         400, upload=True),
    Case("encoding", "invalid-percent-escape", get("/p/%zz"), 404),
    Case("encoding", "lone-percent-signs", get("/p/%%%"), 404),
    Case("encoding", "nul-in-path", get("/p/%00"), 404),
    *[Case("encoding", f"query-{i}", get(path), 400) for i, path in enumerate([
        "/i/{png}?w=%ff", "/latest?limit=%ff", "/latest?%ff=1", "/p/{text}?x=%ff", "/i/{png}?fit=%c0",
        "/j/{text}?%fe", "/d/{text}?a=%ed%a0%80", "/s/xyz?%ff", "/?%ff", "/r/{png}?w=10&sig=%ff",
    ])],
    Case("encoding", "query-invalid-percent-escape", get("/i/{png}?w=%zz"), 400),
    Case("encoding", "query-nul", get("/latest?limit=%00"), 400),
    # resize and paging parameters
    *[Case("params", f"i-{query}", get("/i/{png}?" + query), status) for query, status in [
        ("w=-1", 400), ("w=0", 200), ("w=1", 403), ("w=1e9", 400), ("w=1000000000", 400), ("w=NaN", 400),
        ("w=text", 400), ("w=%EF%BC%91%EF%BC%92", 400), ("w=1_0", 400), ("w=" + "9" * 5000, 400),
        ("w=+5", 403), ("w=%205%20", 403), ("w=10&w=20", 403), ("h=-1", 400), ("h=Infinity", 400),
        ("w=10&fit=bogus", 400), ("w=10&fit=" + "x" * 10000, 400), ("w=10&format=gif", 400),
        ("w=10&format=%00", 400), ("w=10&q=0", 400), ("w=10&q=101", 400), ("w=10&q=abc", 400),
        ("w=10&sig=%C3%A9", 403), ("w=10&sig=" + "f" * 10000, 403), ("w=10&sig=", 403),
    ]],
    Case("params", "i-signed-w-1", lambda t: Req("GET", t.signed(t.seeds["png"], 1, 0)), 200),
    Case("params", "i-signed-gif", lambda t: Req("GET", t.signed(t.seeds["gif"], 16, 16)), 200),
    Case("params", "i-text-resized", lambda t: Req("GET", t.signed(t.seeds["png"], 8, 8).replace(
        t.seeds["png"]["filehash"], t.seeds["text"]["filehash"])), 415),
    *[Case("params", f"r-{query}", get("/r/{png}?" + query), status) for query, status in [
        ("w=-1", 400), ("", 400), ("w=NaN", 400), ("w=10", 403), ("w=10&sig=%C3%A9", 403), ("h=1e9", 400),
    ]],
    Case("params", "r-on-text", get("/r/{text}?w=10"), 415),
    *[Case("params", f"latest-{query}", get("/latest?" + query), status) for query, status in [
        ("limit=-1", 400), ("limit=0", 400), ("limit=1e9", 400), ("limit=NaN", 400), ("offset=-1", 400),
        ("offset=1e9", 400), ("offset=" + "9" * 30, 400), ("offset=9223372036854775807", 200),
        ("limit=1&limit=2", 200), ("limit=100&offset=0", 200), ("limit=%201%20", 200),
    ]],
    # unknown file hashes and short links
    *[Case("unknown", f"unknown-{i}", get(path), 404) for i, path in enumerate([
        "/p/{missing}", "/d/{missing}.txt", "/i/{missing}", "/j/{missing}", "/r/{missing}?w=10",
        "/p/0123456789ABCDEF0123456789ABCDEF", "/d/0123456789abcdef0123456789abcdef0", "/i/{missing}.abcdefghijk",
        "/j/" + "f" * 10000, "/p/", "/p/{text}/extra", "/s/000000", "/s/zzzzzzzzzzz", "/s/abc", "/s/!!!!!!",
        "/s/%C3%A4%C3%A4%C3%A4", "/s/" + "a" * 10000, "/static/..%2f..%2fsetup.py", "/static/../../setup.py",
    ])],
    Case("unknown", "delete-unknown", get("/x/{missing}/not-a-token", method="POST"), 404),
    Case("unknown", "delete-wrong-token", get("/x/{text}/not-a-token", method="POST"), 403),
    Case("unknown", "delete-non-ascii-token", get("/x/{text}/%C3%A9%E2%80%AE", method="POST"), 403),
    Case("unknown", "delete-confirm-wrong-token", get("/x/{text}/%00", ("Accept", "text/html")), 403),
    Case("unknown", "delete-by-header-latin1-token", get("/j/{text}", ("X-Delete-Token", "\xff\xfe"),
                                                         method="DELETE"), 403),
    Case("unknown", "delete-by-header-unknown", get("/j/{missing}", ("X-Delete-Token", "x"), method="DELETE"), 404),
    # ranges
    Case("range", "first-ten-inline", get("/i/{text}", ("Range", "bytes=0-9")), 206, body_is("text", 0, 10)),
    Case("range", "first-ten-file", get("/i/{big}", ("Range", "bytes=0-9")), 206, body_is("big", 0, 10)),
    Case("range", "suffix-file", get("/d/{big}", ("Range", "bytes=-10")), 206, body_is("big", -10, None)),
    Case("range", "suffix-longer-than-file", get("/i/{text}", ("Range", "bytes=-999999")), 206,
         body_is("text", 0, None)),
    Case("range", "if-range-matches", lambda t: Req("GET", f"/i/{t.seeds['big']['filehash']}", [
        ("Range", "bytes=0-9"), ("If-Range", f'"{t.seeds["big"]["sha256"]}"')]), 206, body_is("big", 0, 10)),
    Case("range", "if-range-date", get("/i/{big}", ("Range", "bytes=0-9"), ("If-Range", "Sat, 01 Jan 2000 00:00:00 GMT")),
         200, body_is("big", 0, None)),
    Case("range", "unsatisfiable-but-not-modified", lambda t: Req("GET", f"/i/{t.seeds['text']['filehash']}", [
        ("Range", "bytes=999999-"), ("If-None-Match", f'"{t.seeds["text"]["sha256"]}"')]), 304),
    Case("range", "malformed", get("/i/{text}", ("Range", "bytes=abc")), 200, body_is("text", 0, None)),
    Case("range", "reversed", get("/i/{big}", ("Range", "bytes=9-0")), 200, body_is("big", 0, None)),
    Case("range", "unknown-unit", get("/i/{text}", ("Range", "items=0-5")), 200),
    Case("range", "multiple", get("/i/{big}", ("Range", "bytes=0-1,3-4")), 200, body_is("big", 0, None)),
    Case("range", "multiple-inline", get("/i/{text}", ("Range", "bytes=0-1, 5-9")), 200, body_is("text", 0, None)),
    Case("range", "empty-list-elements", get("/i/{text}", ("Range", "bytes=,0-4,")), 206, body_is("text", 0, 5)),
    Case("range", "two-range-headers", get("/i/{text}", ("Range", "bytes=0-1"), ("Range", "bytes=3-4")), 200),
    Case("range", "beyond-end-inline", get("/i/{text}", ("Range", "bytes=999999999-")), 416),
    Case("range", "beyond-end-file", get("/d/{big}", ("Range", "bytes=999999999-1999999999")), 416),
    Case("range", "zero-suffix", get("/i/{text}", ("Range", "bytes=-0")), 416),
    Case("range", "negative-end", get("/i/{big}", ("Range", "bytes=0--1")), 200, body_is("big", 0, None)),
    Case("range", "dash-only", get("/d/{big}", ("Range", "bytes=-")), 200),
    Case("range", "non-ascii-digits", get("/i/{text}", ("Range", "bytes=\xd9\xa3-5")), 200),
    Case("range", "huge-end", get("/i/{big}", ("Range", "bytes=0-" + "9" * 40)), 206, body_is("big", 0, None)),
    Case("range", "double-dash", get("/i/{text}", ("Range", "bytes=--1")), 200),
    Case("range", "suffix-letters", get("/i/{big}", ("Range", "bytes=-a")), 200),
    Case("range", "head", get("/i/{big}", ("Range", "bytes=0-9"), method="HEAD"), 206),
    Case("range", "if-range-mismatch", get("/i/{big}", ("Range", "bytes=0-9"), ("If-Range", '"nope"')), 200),
    Case("range", "on-a-page", get("/p/{text}", ("Range", "bytes=0-9"), BROWSER), 200),
    Case("range", "on-a-rendition", lambda t: Req("GET", t.signed(t.seeds["png"], 16, 16), [("Range", "bytes=0-9")]),
         206),
    Case("range", "malformed-if-none-match", get("/i/{text}", ("If-None-Match", '"unterminated')), 200),
    # oversize bodies (the server's limit is 1 MiB)
    Case("oversize", "put-declared", put("/big.txt", lambda: os.urandom(2 * LIMIT)), 413, upload=True),
    Case("oversize", "put-chunked", put("/big.txt", lambda: unique_text(2 * LIMIT), chunked=True), 413,
         upload=True),
    Case("oversize", "multipart-declared", upload(lambda: unique_text(2 * LIMIT), "big.txt"), 413, upload=True),
    Case("oversize", "multipart-chunked", upload(lambda: unique_text(2 * LIMIT), "big.txt", chunked=True), 413,
         upload=True),
    Case("oversize", "multipart-just-over", upload(lambda: unique_text(LIMIT + 1), "big.txt"), 413, upload=True),
    Case("oversize", "put-claims-a-terabyte", lambda t: Req("PUT", "/huge.txt", [], b"x" * 1000,
                                                            length=str(10**12)), 413, upload=True),
    Case("oversize", "post-claims-a-terabyte", lambda t: Req(
        "POST", "/", [("Content-Type", f"multipart/form-data; boundary={B}")], b"x" * 1000, length=str(10**12)),
         413, upload=True),
    Case("oversize", "put-at-the-limit", put("/limit.txt", lambda: unique_text(LIMIT)), 200,
         json_has(bytes=LIMIT)),
]


def test_corpus_size_and_classes():
    names = [f"{c.kind}/{c.name}" for c in CORPUS]
    assert len(names) == len(set(names)), "case names repeat"
    assert len(CORPUS) >= 80
    kinds = {c.kind for c in CORPUS}
    assert kinds == {"truncated", "bomb", "empty", "filename", "mismatch", "active", "polyglot", "multipart",
                     "headers", "encoding", "params", "unknown", "range", "oversize"}


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: f"{c.kind}/{c.name}")
def test_hostile_request(target, case):
    req = case.build(target)
    before = target.leftovers() if case.upload else None
    reply = target.send(req)
    if reply is None:
        assert None in case.statuses, "the server closed the connection without answering"
    else:
        check_reply(reply, str(req.target)[:200])
        assert reply.status in case.statuses, f"{reply.status} {reply.reason}: {reply.body[:400]!r}"
        if case.check is not None:
            case.check(target, reply)
    if case.upload and (reply is None or reply.status >= 400):
        # a refused upload leaves no temp file, no blob and no row
        assert target.leftovers() == before
    assert target.server.thread.is_alive()


def test_service_still_answers_after_the_corpus(target):
    data = unique_text(5000)
    doc = target.put("after.txt", data)
    assert target.get(f"/i/{doc['filehash']}").body == data
    reply = target.send(Req("POST", "/", [("Content-Type", f"multipart/form-data; boundary={B}")],
                            form([part("file", data, "after-form.txt")])))
    assert reply.status == 200 and doc_of(reply)["sha256"] == doc["sha256"]
    assert target.get(f"/d/{doc_of(reply)['filehash']}").body == data
    image = unique_image("PNG", (40, 30))
    shot = target.put("after.png", image)
    got = target.get(target.signed(shot, 20, 15))
    assert got.status == 200 and Image.open(io.BytesIO(got.body)).size == (20, 15)
    assert target.get("/", [BROWSER]).status == 200
    # only the form repeat and the image were uploaded after the text, and no
    # earlier request asked for (and cached) five: the newest five list it
    latest = doc_of(target.get("/latest?limit=5"))
    assert doc["filehash"] in [f["filehash"] for f in latest["files"]]
    assert shot["filehash"] in [f["filehash"] for f in latest["files"]]
    assert temp_files(target.service) == []
    assert target.server.thread.is_alive()


DEVELOPMENT_CLASSES = ("multipart", "encoding", "headers")


@pytest.fixture(scope="module")
def development(tmp_path_factory):
    """The app as development.ini runs it: the debug toolbar reads the
    request (its body, its query, its locale) before and after every view."""
    tmp = tmp_path_factory.mktemp("hostile-development")
    settings = settings_for("sqlite", tmp, **{
        "pyramid.includes": "pyramid_debugtoolbar",
        "debugtoolbar.hosts": "127.0.0.1 ::1",
        "pastefile.page_security_headers": "false",
        "pastefile.max_upload_size": str(LIMIT),
    })
    app = pastefile.webapp.main({}, **settings)
    with LiveServer(app) as server:
        t = Target(int(server.url.rsplit(":", 1)[1]), app, server)
        t.seeds = {"text": t.put("seed.txt", unique_text(3000)), "png": t.put("seed.png", unique_image("PNG"))}
        yield t
    app.registry.pastefile.close()


def test_the_debug_toolbar_is_on(development):
    page = development.get("/", [BROWSER])
    assert page.status == 200 and b"pDebug" in page.body


@pytest.mark.parametrize("case", [c for c in CORPUS if c.kind in DEVELOPMENT_CLASSES], ids=lambda c: f"{c.kind}/{c.name}")
def test_hostile_request_with_the_debug_toolbar(development, case):
    req = case.build(development)
    reply = development.send(req)
    if reply is None:
        assert None in case.statuses
        return
    assert reply.status < 500 or reply.status == 501, reply.body[:300]
    assert not TRACEBACK.search(reply.body)
