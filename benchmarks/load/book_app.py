"""The baseline: the book's chapter 3 file host ("r"), rebuilt from its description.

Chapter 3, section "从零开始实现一个文件托管服务" of the book this project grew
from builds a Flask + SQLAlchemy file host around one model, ``PasteFile``
(filename, filehash, filemd5, uploadtime, mimetype, size).  This module
rebuilds it as the book describes it, so that the load comparison has the
original design on the same server and the same database type:

* ``POST /`` saves the uploaded file to disk under a random ``filehash``
  name, re-opens it to compute its MD5, and when an earlier upload has the
  same MD5 deletes the new file and answers the earlier upload; the
  mimetype comes from python-magic on the saved file (the book lists
  python-magic "to determine the file type");
* ``GET /i/<filehash>`` serves the upload folder through werkzeug's
  ``SharedDataMiddleware``; ``/p/`` renders a preview card, ``/d/`` sends an
  attachment, ``/s/<symlink>`` redirects to the preview, ``/r/`` resizes;
* the short link is computed from the row id (the book uses the short_url
  package; a small encoder of the same kind stands in for it here);
* no cache anywhere: every request queries the database.

Settings (``[app:main]`` of a PasteDeploy ini): ``book.db_url`` and
``book.upload_folder``.

    use = call:benchmarks.load.book_app:make_app
"""
from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime
from urllib.parse import quote

import magic
from flask import Flask, abort, current_app, jsonify, redirect, render_template_string, request, send_file
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine
from werkzeug.middleware.shared_data import SharedDataMiddleware

db = SQLAlchemy()

ONE_MONTH = 60 * 60 * 24 * 30

IMAGE_MIMES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"]
AUDIO_MIMES = ["audio/ogg", "audio/mpeg", "audio/mp3", "audio/wav", "audio/flac"]
VIDEO_MIMES = ["video/mp4", "video/ogg", "video/webm"]


# -- utils.py -----------------------------------------------------------------

def get_file_md5(f, chunk_size=8192):
    h = hashlib.md5()
    while True:
        chunk = f.read(chunk_size)
        if not chunk:
            break
        h.update(chunk)
    return h.hexdigest()


def humanize_bytes(num_bytes, precision=2):
    abbrevs = ((1 << 50, "PB"), (1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "kB"), (1, "bytes"))
    if num_bytes == 1:
        return "1 byte"
    for factor, suffix in abbrevs:
        if num_bytes >= factor:
            break
    return "%.*f %s" % (precision, num_bytes / factor, suffix)


def get_file_path(filename=""):
    return os.path.join(current_app.config["UPLOAD_FOLDER"], filename)


# -- the short link: a reversible scramble of the id in a small alphabet -------

_ALPHABET = "mn6j2c4rv8bpygw95z7hsdaetxuk3fq"
_BITS = 24
_MASK = (1 << _BITS) - 1


def _scramble(n):
    # reverse the low 24 bits: neighbouring ids get unrelated links
    low = n & _MASK
    reversed_low = int(format(low, f"0{_BITS}b")[::-1], 2)
    return (n & ~_MASK) | reversed_low


def encode_url(n, min_length=5):
    n = _scramble(n)
    out = ""
    while n:
        n, r = divmod(n, len(_ALPHABET))
        out = _ALPHABET[r] + out
    return out.rjust(min_length, _ALPHABET[0])


def decode_url(text):
    n = 0
    for ch in text:
        idx = _ALPHABET.find(ch)
        if idx < 0:
            raise ValueError(text)
        n = n * len(_ALPHABET) + idx
    return _scramble(n)


# -- models.py ----------------------------------------------------------------

class PasteFile(db.Model):
    __tablename__ = "PasteFile"
    id = db.Column(db.Integer, primary_key=True)
    filename = db.Column(db.String(5000), nullable=False)
    filehash = db.Column(db.String(128), nullable=False, unique=True)
    filemd5 = db.Column(db.String(128), nullable=False, unique=True)
    uploadtime = db.Column(db.DateTime, nullable=False)
    mimetype = db.Column(db.String(256), nullable=False)
    size = db.Column(db.Integer, nullable=False)

    def __init__(self, filename="", mimetype="application/octet-stream", size=0, filehash=None, filemd5=None):
        self.uploadtime = datetime.now()
        self.mimetype = mimetype
        self.size = int(size)
        self.filehash = filehash if filehash else self._hash_filename(filename)
        self.filename = filename if filename else self.filehash
        self.filemd5 = filemd5

    @staticmethod
    def _hash_filename(filename):
        _, _, suffix = filename.rpartition(".")
        return "%s.%s" % (uuid.uuid4().hex, suffix)

    @property
    def symlink(self):
        return encode_url(self.id)

    @classmethod
    def get_by_symlink(cls, symlink, code=404):
        try:
            id_ = decode_url(symlink)
        except ValueError:
            abort(code)
        return cls.query.filter_by(id=id_).first() or abort(code)

    @classmethod
    def get_by_filehash(cls, filehash, code=404):
        return cls.query.filter_by(filehash=filehash).first() or abort(code)

    @classmethod
    def get_by_md5(cls, filemd5):
        return cls.query.filter_by(filemd5=filemd5).first()

    @property
    def path(self):
        return get_file_path(self.filehash)

    def get_url(self, subtype, is_symlink=False):
        hash_or_link = self.symlink if is_symlink else self.filehash
        return "http://{host}/{subtype}/{hash_or_link}".format(subtype=subtype, host=request.host, hash_or_link=hash_or_link)

    @property
    def url_i(self):
        return self.get_url("i")

    @property
    def url_p(self):
        return self.get_url("p")

    @property
    def url_s(self):
        return self.get_url("s", is_symlink=True)

    @property
    def url_d(self):
        return self.get_url("d")

    @property
    def quoteurl(self):
        return quote(self.url_i)

    @property
    def is_image(self):
        return self.mimetype in IMAGE_MIMES

    @property
    def is_audio(self):
        return self.mimetype in AUDIO_MIMES

    @property
    def is_video(self):
        return self.mimetype in VIDEO_MIMES

    @property
    def is_pdf(self):
        return self.mimetype == "application/pdf"

    @property
    def type(self):
        for t in ("image", "pdf", "video", "audio"):
            if getattr(self, "is_" + t):
                return t
        return "binary"

    @property
    def size_humanize(self):
        return humanize_bytes(self.size)

    @classmethod
    def create_by_upload_file(cls, uploaded_file):
        rst = cls(uploaded_file.filename, uploaded_file.mimetype, 0)
        uploaded_file.save(rst.path)
        with open(rst.path, "rb") as f:
            filemd5 = get_file_md5(f)
            uploaded_file = cls.get_by_md5(filemd5)
            if uploaded_file:
                os.remove(rst.path)
                return uploaded_file
        filestat = os.stat(rst.path)
        rst.size = filestat.st_size
        rst.filemd5 = filemd5
        rst.mimetype = magic.from_file(rst.path, mime=True)
        return rst

    @classmethod
    def rsize(cls, old_paste, weight, height):
        from PIL import Image, ImageOps

        if not old_paste.is_image:
            abort(400)
        # cropresize2.crop_resize: crop the proportional middle, then resize
        with Image.open(old_paste.path) as src:
            fmt = src.format
            img = ImageOps.fit(src, (int(weight), int(height)))
        rst = cls(old_paste.filename, old_paste.mimetype, 0)
        img.save(rst.path, format=fmt)
        with open(rst.path, "rb") as f:
            rst.filemd5 = get_file_md5(f)
        rst.size = os.stat(rst.path).st_size
        return rst


# -- templates ----------------------------------------------------------------

INDEX = """<!doctype html><title>r</title>
<form method="post" enctype="multipart/form-data">
<input type="file" name="file"> w <input name="w" size="4"> h <input name="h" size="4">
<button>upload</button></form>"""

SUCCESS = """<!doctype html><title>{{ p.filename }}</title>
<div class="card">
<h1>{{ p.filename }}</h1>
<p>size: {{ p.size_humanize }} | type: {{ p.type }} ({{ p.mimetype }}) | uploaded: {{ p.uploadtime }}</p>
{% if p.is_image %}<img src="{{ p.url_i }}">{% endif %}
<p><a href="{{ p.url_d }}">download</a> | short link: <a href="{{ p.url_s }}">{{ p.url_s }}</a></p>
<p><input value="{{ p.quoteurl }}" readonly></p>
</div>"""


# -- app.py -------------------------------------------------------------------

def create_app(db_url, upload_folder):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = db_url
    app.config["UPLOAD_FOLDER"] = upload_folder
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    os.makedirs(upload_folder, exist_ok=True)

    app.wsgi_app = SharedDataMiddleware(app.wsgi_app, {"/i/": upload_folder})
    db.init_app(app)

    @app.route("/", methods=["GET", "POST"])
    def index():
        if request.method == "POST":
            uploaded_file = request.files.get("file")
            w = request.form.get("w")
            h = request.form.get("h")
            if not uploaded_file:
                return abort(400)

            if w and h:
                paste_file = PasteFile.rsize(PasteFile.create_by_upload_file(uploaded_file), w, h)
            else:
                paste_file = PasteFile.create_by_upload_file(uploaded_file)
            db.session.add(paste_file)
            db.session.commit()

            return jsonify({
                "url_d": paste_file.url_d,
                "url_i": paste_file.url_i,
                "url_s": paste_file.url_s,
                "url_p": paste_file.url_p,
                "filename": paste_file.filename,
                "size": humanize_bytes(paste_file.size),
                "time": str(paste_file.uploadtime),
                "type": paste_file.type,
                "quoteurl": paste_file.quoteurl,
            })
        return render_template_string(INDEX)

    @app.route("/r/<img_hash>")
    def rsize(img_hash):
        w = request.args["w"]
        h = request.args["h"]
        old_paste = PasteFile.get_by_filehash(img_hash)
        new_paste = PasteFile.rsize(old_paste, w, h)
        db.session.add(new_paste)
        db.session.commit()
        return new_paste.url_i

    @app.route("/d/<filehash>", methods=["GET"])
    def download(filehash):
        paste_file = PasteFile.get_by_filehash(filehash)
        return send_file(open(paste_file.path, "rb"), mimetype="application/octet-stream",
                         max_age=ONE_MONTH, as_attachment=True, download_name=paste_file.filename)

    @app.route("/p/<filehash>")
    def preview(filehash):
        paste_file = PasteFile.get_by_filehash(filehash)
        return render_template_string(SUCCESS, p=paste_file)

    @app.route("/s/<symlink>")
    def s(symlink):
        paste_file = PasteFile.get_by_symlink(symlink)
        return redirect(paste_file.url_p)

    return app


def init_db(db_url):
    """Create the table (the book imports databases/schema.sql by hand)."""
    engine = create_engine(db_url)
    try:
        db.metadata.create_all(engine)
    finally:
        engine.dispose()


def make_app(global_config, **settings):
    """``use = call:benchmarks.load.book_app:make_app``"""
    return create_app(settings["book.db_url"], settings["book.upload_folder"])
