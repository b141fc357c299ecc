"""The deployment files in deploy/: the nginx site and the systemd units.

The site file ``deploy/nginx/pastefile.conf`` runs as it is in Debian's
nginx (tests/nginx.py), rewritten only where a test must differ from a
machine: its listening ports, certificate paths (a throwaway self-signed
certificate, which the client trusts as its CA), the upstream's port and the
storage root the internal location aliases.  Each rewrite is an exact
string of the file, which must occur exactly once: every other directive
(the redirect, TLS, body size and timeouts, unbuffered uploads, keepalive,
the X-Forwarded-* headers, the internal location) is the file's own.

Behind it, ``pserve`` of production.ini's ``[server:main]`` (waitress
trusting 127.0.0.1's X-Forwarded-* headers, ``url_scheme = https``, its
``max_request_body_size``), one worker, on SQLite, with
``pastefile.accel_redirect`` naming the site's internal location and an
upload rate limit.  Over https: a small and a 150 MiB streamed multipart
upload, the large file back through X-Accel-Redirect (whole and a Range),
the rate limit counted per real client address whatever X-Forwarded-For a
client sends, and port 80's redirect.

Client addresses: every client is on loopback, but a client socket bound to
127.0.0.2 or 127.0.0.3 reaches nginx from that address while nginx reaches
waitress from 127.0.0.1 (its trusted proxy), so the app can tell the
client's address (from X-Forwarded-For) from nginx's.
"""
from __future__ import annotations

import configparser
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest

from benchmarks.load import config as ini_config

from .fault_harness import Pserve, write_ini
from .nginx import Nginx, blocks
from .servers import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
SITE = os.path.join(DEPLOY, "nginx", "pastefile.conf")
SYSTEMD = os.path.join(DEPLOY, "systemd")

MiB = 1024 * 1024
LARGE = 150 * MiB
BLOCK = MiB
TIMEOUT = 300
RATE_LIMIT = 4  # uploads per client address per window (an hour: no refill during the test)

# what the test changes in the site file, and only that
SITE_PORT_80 = "listen 80;"
SITE_PORT_80_V6 = "listen [::]:80;"
SITE_PORT_443 = "listen 443 ssl http2;"
SITE_PORT_443_V6 = "listen [::]:443 ssl http2;"
SITE_CERT = "ssl_certificate /etc/letsencrypt/live/files.example.org/fullchain.pem;"
SITE_KEY = "ssl_certificate_key /etc/letsencrypt/live/files.example.org/privkey.pem;"
SITE_UPSTREAM = "server 127.0.0.1:6543;"
SITE_STORAGE = "alias /srv/pastefile/files/;"


def site_text() -> str:
    with open(SITE, encoding="utf-8") as f:
        return f.read()


def internal_location(text: str) -> str:
    """The location the site marks ``internal`` (the accel_redirect setting)."""
    found = re.findall(r"location\s+(/\S*?)/?\s*\{\s*internal;", text)
    assert len(found) == 1, found
    return found[0]


def rewrite(text: str, substitutions: list[tuple[str, str]]) -> str:
    for old, new in substitutions:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {SITE}"
        text = text.replace(old, new)
    return text


def site_for_test(front: Nginx, upstream_port: int, storage: str) -> str:
    """deploy/nginx/pastefile.conf with the test's ports, certificate,
    upstream and storage root (no IPv6 listeners: loopback only)."""
    return rewrite(site_text(), [
        (SITE_PORT_80, f"listen 127.0.0.1:{front.port};"),
        (SITE_PORT_80_V6, "# (IPv6 listener left out in the test)"),
        (SITE_PORT_443, f"listen 127.0.0.1:{front.tls_port} ssl http2;"),
        (SITE_PORT_443_V6, "# (IPv6 listener left out in the test)"),
        (SITE_CERT, f"ssl_certificate {front.certificate};"),
        (SITE_KEY, f"ssl_certificate_key {front.certificate_key};"),
        (SITE_UPSTREAM, f"server 127.0.0.1:{upstream_port};"),
        (SITE_STORAGE, f"alias {storage.rstrip('/')}/;"),
    ])




def size_bytes(value: str) -> int:
    """An nginx or pastefile size (``513m``, ``512M``, bytes) in bytes."""
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)", value.strip())
    assert m, value
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


# -- the stack ------------------------------------------------------------------


class Stack:
    def __init__(self, server: Pserve, front: Nginx, storage: str, location: str):
        self.server = server
        self.front = front
        self.storage = storage
        self.location = location
        self.context = ssl.create_default_context(cafile=front.certificate)

    def https(self, source: str = "127.0.0.1") -> http.client.HTTPSConnection:
        """A connection to the site's https port from ``source`` (a loopback address)."""
        return http.client.HTTPSConnection("127.0.0.1", self.front.tls_port, timeout=TIMEOUT,
                                           context=self.context, source_address=(source, 0))

    def get(self, path: str, headers: dict | None = None, source: str = "127.0.0.1"):
        conn = self.https(source)
        try:
            conn.request("GET", path, headers=headers or {})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def log_lines(self, needle: str, wait: float = 5.0) -> list[str]:
        """The front's access log lines holding ``needle``.  nginx writes a
        request's line after the answer went out, so a client can read the
        answer first: wait up to ``wait`` seconds for one to appear."""
        deadline = time.monotonic() + wait
        while True:
            lines = [line for line in self.front.access_lines() if needle in line]
            if lines or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("deploy")
    storage = str(directory / "files")
    os.makedirs(storage)
    database = str(directory / "pastefile.sqlite")
    location = internal_location(site_text())
    port = free_port()
    production = ini_config.read()
    front = Nginx(f"127.0.0.1:{port}", site=lambda front: site_for_test(front, port, storage))
    settings = {
        "pastefile.db_url": f"sqlite:///{database}",
        "pastefile.storage_root": storage,
        "pastefile.auto_migrate": "true",
        "pastefile.cache.backend": "memory",
        "pastefile.base_url": front.https_url,
        "pastefile.symlink_key": "deploy-test-key-" + uuid.uuid4().hex,
        "pastefile.allowed_types": "*",
        "pastefile.accel_redirect": location,
        "pastefile.rate_limit.uploads": str(RATE_LIMIT),
        "pastefile.rate_limit.window": "3600",
    }
    # production.ini's server section as it is (the harness sets url_scheme
    # http and a 2 GiB body limit for its benchmarks: both put back); one
    # worker, so that one in-process rate limiter counts every request
    server_settings = {key: production.get("server:main", key)
                       for key in ("url_scheme", "max_request_body_size")}
    server_settings["workers"] = "1"
    server = Pserve(write_ini(str(directory), port, settings, server_settings), port, str(directory))
    server.start()
    try:
        front.start()
        yield Stack(server, front, storage, location)
    finally:
        front.stop()
        server.stop()


def multipart_parts(name: str) -> tuple[bytes, bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(stack: Stack, name: str, chunks, size: int, source: str = "127.0.0.1",
           headers: dict | None = None) -> tuple[int, dict, bytes, str]:
    """A multipart POST / streamed from ``chunks`` (``size`` bytes) over
    https; (status, headers, body, SHA-256 of what was sent)."""
    head, tail, content_type = multipart_parts(name)
    digest = hashlib.sha256()
    conn = stack.https(source)
    try:
        conn.putrequest("POST", "/")
        for key, value in {"Content-Type": content_type, "Content-Length": str(len(head) + size + len(tail)),
                           "Accept": "application/json", **(headers or {})}.items():
            conn.putheader(key, value)
        conn.endheaders()
        conn.send(head)
        sent = 0
        for chunk in chunks:
            digest.update(chunk)
            sent += len(chunk)
            conn.send(chunk)
        assert sent == size
        conn.send(tail)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read(), digest.hexdigest()
    finally:
        conn.close()


def check_links(stack: Stack, paste: dict) -> None:
    """The app's links name the https site the client used (X-Forwarded-Proto/-Host)."""
    for key in ("url_d", "url_p"):
        parts = urlsplit(paste[key])
        assert (parts.scheme, parts.netloc) == ("https", f"127.0.0.1:{stack.front.tls_port}"), (key, paste[key])


@pytest.fixture(scope="module")
def large(stack):
    """The 150 MiB upload: (paste JSON, SHA-256 sent)."""
    status, _, answer, digest = upload(stack, "large.bin", blocks(150, LARGE), LARGE)
    assert status in (200, 201), (status, answer[:500], stack.front.log_tail())
    return json.loads(answer), digest


# -- over the site --------------------------------------------------------------


def test_small_upload_over_https(stack):
    data = os.urandom(4096)
    status, _, answer, digest = upload(stack, "small.bin", [data], len(data))
    assert status in (200, 201), (status, answer[:500])
    paste = json.loads(answer)
    assert paste["sha256"] == digest == hashlib.sha256(data).hexdigest()
    assert paste["bytes"] == len(data)
    check_links(stack, paste)
    status, _, body = stack.get(urlsplit(paste["url_d"]).path)
    assert status == 200 and body == data
    # it went through nginx as the client sent it, over TLS
    lines = stack.log_lines('"POST / HTTP/1.1"')
    assert lines and all("scheme=https" in line for line in lines), lines


def test_large_streamed_upload_and_download_through_x_accel_redirect(stack, large):
    paste, digest = large
    assert paste["sha256"] == digest
    assert paste["bytes"] == LARGE
    check_links(stack, paste)

    # the body reached the app while it arrived: nginx wrote none of it to disk
    assert "buffered to a temporary file" not in stack.front.log_tail(100_000)

    path = urlsplit(paste["url_d"]).path
    conn = stack.https()
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        got, count = hashlib.sha256(), 0
        while chunk := res.read(BLOCK):
            got.update(chunk)
            count += len(chunk)
        headers = {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()
    assert (res.status, count) == (200, LARGE)
    assert got.hexdigest() == digest
    assert headers["server"].startswith("nginx")
    # the app's headers came along; its X-Accel-Redirect did not
    assert "x-accel-redirect" not in headers
    assert headers["cache-control"] and "attachment" in headers["content-disposition"], headers
    assert headers["x-content-type-options"] == "nosniff", headers
    assert headers["content-security-policy"] == "sandbox", headers
    assert headers["strict-transport-security"].startswith("max-age="), headers

    # the app answered nginx with headers only: X-Accel-Redirect to the blob
    # under the internal location, and nginx sent the 150 MiB from the file
    expected = f"{stack.location}/{digest[:2]}/{digest[2:4]}/{digest}"
    lines = stack.log_lines(f'"GET {path} HTTP/1.1" 200 {LARGE} ')
    assert len(lines) == 1, stack.front.access_lines()[-5:]
    assert f"accel={expected} " in lines[0], lines[0]
    assert os.path.isfile(os.path.join(stack.storage, expected.removeprefix(stack.location + "/")))

    # the internal location is not reachable from outside
    status, _, _ = stack.get(expected)
    assert status == 404


def test_range_request_served_by_nginx(stack, large):
    paste, _ = large
    path = urlsplit(paste["url_d"]).path
    first, last = BLOCK - 1000, BLOCK + 999  # across the first two generated blocks
    status, headers, body = stack.get(path, {"Range": f"bytes={first}-{last}"})
    assert status == 206, (status, headers)
    assert headers["content-range"] == f"bytes {first}-{last}/{LARGE}"
    source = blocks(150, 2 * BLOCK)
    expected = b"".join(source)[first:last + 1]
    assert body == expected
    lines = stack.log_lines(f'"GET {path} HTTP/1.1" 206 2000 ')
    assert len(lines) == 1 and f"accel={stack.location}/" in lines[0], stack.front.access_lines()[-5:]


def test_conditional_requests_with_the_apps_etag(stack, large):
    """A download through X-Accel-Redirect carries the app's ETag; the app
    answers If-None-Match with it (304, without X-Accel-Redirect: nginx
    would send the file), and nginx honours If-Range with it."""
    paste, digest = large
    path = urlsplit(paste["url_d"]).path
    conn = stack.https()
    try:
        conn.request("HEAD", path)
        res = conn.getresponse()
        res.read()
        etag = res.getheader("ETag")
    finally:
        conn.close()
    assert res.status == 200 and etag and digest in etag, (res.status, res.getheaders())

    status, headers, body = stack.get(path, {"If-None-Match": etag})
    assert (status, body) == (304, b""), (status, headers)
    lines = stack.log_lines(f'"GET {path} HTTP/1.1" 304 ')
    assert len(lines) == 1 and "upstream_status=304 accel=- " in lines[0], lines

    status, headers, body = stack.get(path, {"Range": "bytes=0-9", "If-Range": etag})
    assert status == 206 and body == next(blocks(150, LARGE))[:10], (status, headers)
    assert headers["etag"] == etag
    # another ETag: the whole file (read only its start)
    conn = stack.https()
    try:
        conn.request("GET", path, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
        res = conn.getresponse()
        assert res.status == 200 and int(res.getheader("Content-Length")) == LARGE
    finally:
        conn.close()


def test_rate_limit_counts_the_real_client_not_nginx_nor_a_forged_header(stack):
    """Uploads from 127.0.0.2 each claim another X-Forwarded-For; the app
    counts them all against 127.0.0.2 (the address nginx appends, the only
    one waitress trusts) and refuses the one over the limit, while
    127.0.0.3, behind the same nginx at 127.0.0.1, still uploads."""
    def post(source: str, i: int, forged: str | None):
        data = f"rate {source} {i} {uuid.uuid4()}\n".encode()
        return upload(stack, f"rate{i}.txt", [data], len(data), source=source,
                      headers={"X-Forwarded-For": forged} if forged else None)

    for i in range(RATE_LIMIT):
        status, _, answer, _ = post("127.0.0.2", i, f"203.0.113.{i + 1}")
        assert status in (200, 201), (i, status, answer[:300])
    status, headers, answer, _ = post("127.0.0.2", RATE_LIMIT, "198.51.100.9")
    assert status == 429, (status, answer[:300])
    assert int(headers["retry-after"]) > 0
    assert "Too many uploads" in json.loads(answer)["error"]["message"], answer  # the app's own answer
    # another client behind the same nginx is not refused
    status, _, answer, _ = post("127.0.0.3", 0, None)
    assert status in (200, 201), (status, answer[:300])

    # nginx passed the forged header on, with the client's address appended
    lines = stack.log_lines('"POST / HTTP/1.1" 429 ')
    assert len(lines) == 1 and lines[0].startswith("127.0.0.2 ") and 'xff="198.51.100.9"' in lines[0], lines


def test_upload_over_max_upload_size_gets_the_apps_413(stack):
    """An upload of more than max_upload_size (production.ini's 512M) but
    less than the site's client_max_body_size goes through nginx to the
    app, which answers its own 413 with its message (JSON here), not
    nginx's page.  The whole body is sent: the app refuses a declared
    Content-Length over its limit up front only with Expect: 100-continue,
    which nginx answers itself and does not pass on."""
    max_upload = size_bytes(ini_config.read().get("app:main", "pastefile.max_upload_size"))
    head, tail, content_type = multipart_parts("too-big.bin")
    size = max_upload + 100 * 1024
    zeros = bytes(4 * BLOCK)
    conn = stack.https()
    sent = 0
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.putheader("Accept", "application/json")
        conn.endheaders()
        conn.send(head)
        try:
            # all of it: nginx reads (and discards) what follows the app's answer
            while sent < size:
                piece = zeros[:size - sent]
                conn.sock.sendall(piece)
                sent += len(piece)
            conn.sock.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the answer may still be there to read
        res = conn.getresponse()
        status, headers, answer = res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()
    assert status == 413, (status, answer[:500], sent, stack.front.log_tail(), stack.server.console_tail())
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(answer)["error"]
    assert error["status"] == 413 and "512" in error["message"], error
    lines = stack.log_lines('"POST / HTTP/1.1" 413 ')
    assert len(lines) == 1 and "upstream_status=413" in lines[0], lines
    assert stack.server.alive()


def test_plain_http_redirects_to_https(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.front.port, timeout=30)
    try:
        conn.request("GET", "/p/abc?x=1")
        res = conn.getresponse()
        res.read()
    finally:
        conn.close()
    assert res.status == 301
    assert res.getheader("Location") == "https://127.0.0.1/p/abc?x=1"
    # nginx answered it: the app never saw the request
    lines = stack.log_lines('"GET /p/abc?x=1 HTTP/1.1" 301 ')
    assert len(lines) == 1 and "upstream=- " in lines[0], lines


def test_tls_protocols(stack):
    """TLS 1.2 and 1.3 only."""
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        context = ssl.create_default_context(cafile=stack.front.certificate)
        context.minimum_version = context.maximum_version = version
        conn = http.client.HTTPSConnection("127.0.0.1", stack.front.tls_port, timeout=30, context=context)
        try:
            conn.request("GET", "/openapi.json")
            res = conn.getresponse()
            assert res.status == 200
            assert res.getheader("Strict-Transport-Security", "").startswith("max-age="), res.getheaders()
            assert conn.sock.version() == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
        finally:
            conn.close()


# -- the files themselves -------------------------------------------------------


def test_site_body_limit_matches_production_ini():
    """client_max_body_size lets an upload up to max_upload_size plus its
    multipart framing through (the app answers its own 413 above that), and
    no more than waitress's max_request_body_size."""
    production = ini_config.read()
    max_upload = size_bytes(production.get("app:main", "pastefile.max_upload_size"))
    max_body = int(production.get("server:main", "max_request_body_size"))
    (value,) = re.findall(r"^\s*client_max_body_size\s+(\S+);", site_text(), re.M)
    limit = size_bytes(value)
    assert max_upload + 64 * 1024 <= limit <= max_body, (value, max_upload, max_body)


def test_site_sets_the_headers_production_ini_trusts():
    production = ini_config.read()
    trusted = production.get("server:main", "trusted_proxy_headers").split()
    text = site_text()
    proxied = {name.lower() for name in re.findall(r"^\s*proxy_set_header\s+(\S+)\s", text, re.M)}
    assert set(trusted) <= proxied, (trusted, proxied)
    assert production.get("server:main", "trusted_proxy") == "127.0.0.1"
    assert "server 127.0.0.1:6543;" in text
    assert production.get("server:main", "listen") == "127.0.0.1:6543"
    # the accel location production.ini's comment names
    assert f"# pastefile.accel_redirect = {internal_location(text)}" in open(ini_config.PRODUCTION_INI).read()


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None, strict=False, comment_prefixes=("#", ";"))
    parser.optionxform = str
    with open(os.path.join(SYSTEMD, name), encoding="utf-8") as f:
        parser.read_file(f)
    return parser


def test_systemd_units():
    web = unit("pastefile.service")["Service"]
    assert web["Type"] == "simple"
    assert web["User"] == web["Group"] == "pastefile"
    assert web["ExecStart"] == "/opt/pastefile/venv/bin/pserve /etc/pastefile/production.ini"
    assert web["EnvironmentFile"].lstrip("-") == "/etc/pastefile/env"
    assert web["ProtectSystem"] == "strict"
    assert web["ReadWritePaths"] == ini_config.read().get("app:main", "pastefile.storage_root")
    assert web["PrivateTmp"] == web["NoNewPrivileges"] == "true"
    assert web["Restart"] == "on-failure"
    assert unit("pastefile.service")["Install"]["WantedBy"] == "multi-user.target"

    gc = unit("pastefile-gc.service")["Service"]
    assert gc["Type"] == "oneshot"
    assert gc["ExecStart"] == "/opt/pastefile/venv/bin/pastefile -c /etc/pastefile/production.ini gc"
    for key in ("User", "EnvironmentFile", "ProtectSystem", "ReadWritePaths", "PrivateTmp", "NoNewPrivileges"):
        assert gc[key] == web[key], key
    assert "Install" not in unit("pastefile-gc.service")  # started by its timer only

    timer = unit("pastefile-gc.timer")
    assert timer["Timer"]["OnCalendar"] == "hourly"
    assert timer["Timer"]["Unit"] == "pastefile-gc.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_systemd_units_verify(tmp_path):
    """systemd-analyze verify finds nothing to say (it checks that ExecStart
    exists: the venv's path is this venv's for the check)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (the systemd package: make deps installs it)"
    venv_bin = os.path.dirname(os.path.abspath(sys.executable))
    for name in sorted(os.listdir(SYSTEMD)):
        with open(os.path.join(SYSTEMD, name), encoding="utf-8") as f:
            text = f.read().replace("/opt/pastefile/venv/bin/", venv_bin + "/")
        (tmp_path / name).write_text(text)
    files = [str(tmp_path / name) for name in sorted(os.listdir(SYSTEMD))]
    done = subprocess.run([analyze, "verify", *files], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if "pastefile" in line], done.stderr
