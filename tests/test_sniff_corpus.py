"""core.sniff answers exactly what the old whole-body sniff answered, over a
corpus generated here, while random and unknown bytes are sniffed from the
head alone.

``reference_sniff`` is the algorithm as it was before the head-only answer
for unknown binary: any head that libmagic calls ``application/zip`` or
``application/octet-stream`` was sniffed again from all of ``data`` or from
the staged file at ``path``.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import random
import sqlite3
import struct
import tarfile
import wave
import zipfile
import zlib

import magic
import pytest
from PIL import Image

from pastefile.core import sniff as sniff_module
from pastefile.core.sniff import HEAD, sniff

# -- the reference: the old algorithm, kept verbatim --------------------------

_reference = magic.Magic(mime=True)
_TEXT_BYTES = bytes([9, 10, 12, 13, 27]) + bytes(range(32, 256))


def reference_sniff(head: bytes, path: str | None = None, data: bytes | None = None) -> str:
    handle = _reference
    head = head[:4096]
    if (
        len(head) > 1024
        and b"<" not in head
        and head.lstrip()[:1] not in (b"{", b"[")
        and not head.translate(None, _TEXT_BYTES)
    ):
        mimetype = handle.from_buffer(head[:1024])
        if mimetype.startswith("text/"):
            return mimetype
    mimetype = handle.from_buffer(head)
    if mimetype in ("application/zip", "application/octet-stream"):
        if data is not None and len(data) > len(head):
            mimetype = handle.from_buffer(data)
        elif path is not None and data is None:
            mimetype = handle.from_file(path)
    return mimetype


# -- the corpus -----------------------------------------------------------------


def _rand(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _text(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    words = ["paste", "file", "blob", "hash", "cache", "image", "link", "store"]
    out = " ".join(rng.choice(words) + str(rng.randrange(10**6)) for _ in range(size // 8 + 1))
    return out.encode()[:size]


def _zip(members: list[tuple[str, bytes, int]], prefix: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(prefix)
    with zipfile.ZipFile(out, "a" if prefix else "w") as z:
        for name, body, method in members:
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), body, compress_type=method)
    return out.getvalue()


S, D = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
CT = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/'
      b'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>')
RELS = b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'


def _ooxml(part: str, overrides: int) -> bytes:
    """docx/xlsx/pptx: [Content_Types].xml first, then the main part.  A
    stored [Content_Types].xml of many overrides pushes the later members
    past the head, where libmagic looks for the ``word/``, ``xl/`` or
    ``ppt/`` that names the document."""
    override = b'<Override PartName="/%s/media/image%%d.png" ContentType="image/png"/>' % part.encode()
    types = CT.replace(b"</Types>", b"".join(override % i for i in range(overrides)) + b"</Types>")
    members = [("[Content_Types].xml", types, S if overrides else D), ("_rels/.rels", RELS, D),
               (f"{part}/document.xml", b"<doc/>" * 100, D)]
    return _zip(members)


def _odf(mimetype: str, pad: int) -> bytes:
    members = [("mimetype", mimetype.encode(), S)]
    if pad:
        members.append(("Thumbnails/thumbnail.png", _rand(pad, pad), S))
    members += [("content.xml", b"<office:document-content/>" * 50, D),
                ("META-INF/manifest.xml", b"<manifest:manifest/>", D)]
    return _zip(members)


def _epub(pad: int) -> bytes:
    members = [("mimetype", b"application/epub+zip", S)]
    if pad:
        members.append(("OEBPS/cover.jpg", _rand(pad, pad), S))
    members += [("META-INF/container.xml", b"<container/>", D), ("OEBPS/content.opf", b"<package/>", D)]
    return _zip(members)


def _tar(compress: str = "") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w" + (":" + compress if compress else ""), format=tarfile.USTAR_FORMAT) as t:
        for i, body in enumerate((_text(7, 3000), _rand(8, 20000))):
            info = tarfile.TarInfo(f"dir/f{i}")
            info.size, info.mtime = len(body), 1_600_000_000
            t.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _sqlite(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("sqlite") / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("create table t (a integer primary key, b text)")
    conn.executemany("insert into t (b) values (?)", [(_text(i, 100).decode(),) for i in range(300)])
    conn.commit()
    conn.close()
    return path.read_bytes()


def _wave() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(_rand(9, 30000))
    return out.getvalue()


def _pdf(junk: bytes = b"") -> bytes:
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"]
    out = bytearray(junk + b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def _image(fmt: str, size=(64, 64), seed: int = 1) -> bytes:
    img = Image.frombytes("RGB", size, _rand(seed, size[0] * size[1] * 3))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _ebml(element: int, body: bytes) -> bytes:
    """An EBML element with an 8-byte size."""
    return element.to_bytes((element.bit_length() + 7) // 8, "big") + b"\x01" + len(body).to_bytes(7, "big") + body


def _matroska(doctype: bytes, void: int = 0) -> bytes:
    header = _ebml(0x4286, b"\x01") + (_ebml(0xEC, bytes(void)) if void else b"") + _ebml(0x4282, doctype)
    return _ebml(0x1A45DFA3, header) + _ebml(0x18538067, _rand(10, 20000))


def _cfb(clsid: bytes, stream: str, dir_sector: int) -> bytes:
    """A minimal MS compound file (version 3, 512-byte sectors): sector 0
    the FAT, then ``dir_sector - 1`` filler sectors, then the directory with
    the root entry (``clsid``) and one empty stream ``stream``."""
    end, free, fatsect = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16)
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, 1, dir_sector, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    fat = [fatsect] + [end] * (dir_sector - 1) + [end]
    fat_sector = struct.pack("<%dI" % len(fat), *fat) + struct.pack("<I", free) * (128 - len(fat))

    def entry(name: str, kind: int, child: int, clsid: bytes = bytes(16)) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1)
                + struct.pack("<III", free, free, child) + clsid + bytes(4 + 16)
                + struct.pack("<IIi", end, 0, 0))

    directory = (entry("Root Entry", 5, 1, clsid) + entry(stream, 2, free)).ljust(512, b"\0")
    filler = b"".join(_rand(100 + i, 512) for i in range(dir_sector - 1))
    return header + fat_sector + filler + directory


WORD_CLSID = bytes.fromhex("0609020000000000c000000000000046")
MSI_CLSID = bytes.fromhex("84100c0000000000c000000000000046")


def _iso() -> bytes:
    """32 KiB system area, a primary volume descriptor, a terminator."""
    pvd = b"\x01CD001\x01\x00" + b"LINUX".ljust(32) + b"PASTEFILE".ljust(32)
    return bytes(32768) + pvd.ljust(2048, b"\0") + b"\xffCD001\x01".ljust(2048, b"\0") + bytes(8192)


def _elf() -> bytes:
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 8192, 8192, 0x1000)
    return (header + phdr).ljust(8192, b"\x90")


def _macho() -> bytes:
    return (struct.pack("<IiiIIII", 0xFEEDFACF, 0x01000007, 3, 2, 0, 0, 0) + bytes(4)).ljust(8192, b"\0")


def _pe() -> bytes:
    mz = bytearray(b"MZ".ljust(0x80, b"\0"))
    mz[0x3C:0x40] = struct.pack("<I", 0x80)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, 240, 0x22)
    optional = struct.pack("<H", 0x20B).ljust(240, b"\0")
    return (bytes(mz) + coff + optional).ljust(8192, b"\0")


def _hdf5_user_block() -> bytes:
    return bytes(4096) + b"\x89HDF\r\n\x1a\n" + bytes(8000)


def build_corpus(tmp_path_factory) -> dict[str, bytes]:
    late_html = _text(4, 6000).replace(b" ", b"\n") + b"\n<html><body><script>alert(1)</script></body></html>\n"
    utf8 = ("é" * 2047 + "a" + "ü" * 3000).encode()  # a two-byte character split by the 4 KiB head
    corpus = {
        **{f"random {n}": _rand(n, n) for n in (1, 100, 1024, 4095, 4096, 4097, 10_000, 65536, 1 << 20)},
        "zeros 64 KiB": bytes(65536),
        "zeros 4 KiB": bytes(4096),
        "ff 64 KiB": b"\xff" * 65536,
        "byte ramp": bytes(range(256)) * 40,
        "random then text": _rand(11, 5000) + _text(12, 5000),
        "zeros then random": bytes(5000) + _rand(13, 60000),
        # zip family, with the telling members inside and beyond the head
        "zip": _zip([("a.txt", _text(14, 5000), D), ("b.bin", _rand(15, 9000), S)]),
        "zip empty": _zip([]),
        "zip junk prefix": _zip([("a.txt", _text(16, 500), D)], prefix=_rand(17, 10_000)),
        "zip zero prefix": _zip([("a.txt", _text(16, 500), D)], prefix=bytes(10_000)),
        "jar": _zip([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n", D), ("A.class", _rand(18, 9000), S)]),
        "apk": _zip([("AndroidManifest.xml", _rand(19, 3000), D), ("classes.dex", _rand(20, 9000), S),
                     ("resources.arsc", _rand(21, 100), S)]),
        "apk late manifest": _zip([("res/a.png", _rand(22, 9000), S), ("AndroidManifest.xml", _rand(23, 300), D)]),
        "docx": _ooxml("word", 0),
        "docx late": _ooxml("word", 80),
        "xlsx": _ooxml("xl", 0),
        "xlsx late": _ooxml("xl", 80),
        "pptx late": _ooxml("ppt", 80),
        "odt": _odf("application/vnd.oasis.opendocument.text", 0),
        "odt late": _odf("application/vnd.oasis.opendocument.text", 9000),
        "ods late": _odf("application/vnd.oasis.opendocument.spreadsheet", 9000),
        "epub": _epub(0),
        "epub late": _epub(9000),
        # archives and compressors
        "tar": _tar(),
        "tar.gz": _tar("gz"),
        "tar.bz2": _tar("bz2"),
        "tar.xz": _tar("xz"),
        "gzip text": gzip.compress(_text(24, 50_000), mtime=0),
        "bzip2": bz2.compress(_rand(25, 20_000)),
        "xz": lzma.compress(_rand(26, 20_000)),
        "lzma alone": lzma.compress(_text(27, 20_000), format=lzma.FORMAT_ALONE),
        "zlib": zlib.compress(_text(28, 20_000)),
        "sqlite3": _sqlite(tmp_path_factory),
        "wave": _wave(),
        "pdf": _pdf(),
        "pdf junk 500": _pdf(_rand(29, 500)),
        "pdf junk 5000": _pdf(_rand(30, 5000)),
        "png": _image("PNG"),
        "png large": _image("PNG", (256, 256), seed=2),
        "jpeg": _image("JPEG", (256, 256), seed=3),
        "gif": _image("GIF", seed=4),
        "webp": _image("WEBP", (128, 128), seed=5),
        "bmp": _image("BMP", seed=6),
        "tiff": _image("TIFF", seed=7),
        "ico": _image("ICO", (32, 32), seed=8),
        # RIFF, ISO base media, Matroska, compound files
        "riff avi": b"RIFF" + struct.pack("<I", 20_004) + b"AVI LIST" + _rand(31, 20_000),
        "riff unknown": b"RIFF" + struct.pack("<I", 20_004) + b"ABCD" + _rand(32, 20_000),
        "mp4": _box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41") + _box(b"mdat", _rand(33, 20_000)),
        "quicktime": _box(b"ftyp", b"qt  \0\0\x02\0qt  ") + _box(b"mdat", _rand(34, 20_000)),
        "heic": _box(b"ftyp", b"heic\0\0\0\0mif1heic") + _box(b"mdat", _rand(35, 20_000)),
        "ftyp big": _box(b"ftyp", b"isom\0\0\x02\0" + b"mp41" * 1200) + _box(b"mdat", _rand(36, 20_000)),
        "moov first": _box(b"moov", _rand(37, 9000)) + _box(b"mdat", _rand(38, 9000)),
        "webm": _matroska(b"webm"),
        "matroska": _matroska(b"matroska"),
        "webm late doctype": _matroska(b"webm", void=5000),
        "cfb word": _cfb(WORD_CLSID, "WordDocument", 1),
        "cfb word late directory": _cfb(WORD_CLSID, "WordDocument", 20),
        "cfb msi late directory": _cfb(MSI_CLSID, "\u4840\u3f3f", 20),
        "cfb excel late directory": _cfb(bytes(16), "Workbook", 20),
        # disk images and beyond-the-head signatures
        "iso9660": _iso(),
        "hdf5 user block": _hdf5_user_block(),
        # executables
        "elf": _elf(),
        "macho": _macho(),
        "pe": _pe(),
        # text and markup
        "text 64 KiB": _text(39, 65536),
        "text short": _text(40, 300),
        "utf-8 split": utf8,
        "html": b"<!DOCTYPE html><html><head><title>t</title></head><body>" + _text(41, 6000) + b"</body></html>",
        "late html": late_html,
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><rect/></svg>\n' * 100,
        "xml": b'<?xml version="1.0"?>\n<root>' + b"<a>1</a>" * 800 + b"</root>\n",
        "json": json.dumps({"a": list(range(3000))}).encode(),
        "shell": b"#!/bin/sh\n" + b"echo hello\n" * 800,
        "csv": b"\n".join(b"%d,%d,%s" % (i, i * i, _text(i, 20)) for i in range(1000)),
    }
    return corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory)


@pytest.fixture(scope="module")
def corpus_files(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    paths = {}
    for i, (name, data) in enumerate(corpus.items()):
        paths[name] = str(root / f"sample{i}")
        with open(paths[name], "wb") as f:
            f.write(data)
    return paths


# -- agreement with the old algorithm -----------------------------------------


def test_corpus_in_memory_agrees_with_the_whole_body_sniff(corpus):
    wrong = {}
    for name, data in corpus.items():
        expected = reference_sniff(data[:HEAD], data=data)
        got = sniff(data[:HEAD], data=data)
        if got != expected:
            wrong[name] = (got, expected)
    assert not wrong


def test_corpus_staged_files_agree_with_the_whole_body_sniff(corpus, corpus_files):
    wrong = {}
    for name, data in corpus.items():
        path = corpus_files[name]
        expected = reference_sniff(data[:HEAD], path=path)
        got = sniff(data[:HEAD], path=path)
        if got != expected:
            wrong[name] = (got, expected)
    assert not wrong


def test_corpus_covers_what_a_larger_view_refines(corpus, corpus_files):
    """The corpus holds samples whose head alone is not enough: otherwise the
    agreement above would prove nothing about refining."""
    refined = {name for name, data in corpus.items()
               if _reference.from_buffer(data[:HEAD]) != reference_sniff(data[:HEAD], data=data)}
    refined_from_file = {name for name, data in corpus.items()
                         if _reference.from_buffer(data[:HEAD]) != reference_sniff(data[:HEAD], path=corpus_files[name])}
    assert {"docx late", "xlsx late", "pptx late", "iso9660", "hdf5 user block"} <= refined
    assert {"zip junk prefix", "zip zero prefix", "jar"} <= refined_from_file


# -- unknown bytes are sniffed from the head alone ------------------------------


class _Recording:
    """Stands in for the thread's libmagic handle and notes what it is given."""

    def __init__(self, real):
        self.real, self.buffers, self.files = real, [], []

    def from_buffer(self, buffer):
        self.buffers.append(len(buffer))
        return self.real.from_buffer(buffer)

    def from_file(self, path):
        self.files.append(path)
        return self.real.from_file(path)


@pytest.fixture
def recording(monkeypatch):
    rec = _Recording(sniff_module._handle())
    monkeypatch.setattr(sniff_module, "_handle", lambda: rec)
    return rec


@pytest.mark.parametrize("size", [4097, 10_000, 65536, 1 << 20])
@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_sniffed_from_the_head_alone(recording, tmp_path, size, seed):
    data = _rand(1000 * seed + size % 997, size)
    path = tmp_path / "upload"
    path.write_bytes(data)
    assert sniff(data[:HEAD], data=data) == "application/octet-stream"
    assert sniff(data[:HEAD], path=str(path)) == "application/octet-stream"
    assert recording.buffers and max(recording.buffers) <= HEAD and recording.files == []


def test_zeros_are_sniffed_from_the_head_alone(recording):
    data = bytes(1 << 20)
    assert sniff(data[:HEAD], data=data) == reference_sniff(data[:HEAD], data=data)
    assert max(recording.buffers) <= HEAD


def test_a_zip_is_sniffed_whole(recording, corpus):
    data = corpus["docx late"]
    assert sniff(data[:HEAD], data=data) == reference_sniff(data[:HEAD], data=data)
    assert max(recording.buffers) == len(data)
