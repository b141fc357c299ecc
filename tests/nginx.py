"""A throwaway nginx in front of a server, for the tests.

nginx runs as this user from a temporary directory of its own: its
nginx.conf, pid file, error and access logs and every temp path live there.
It runs in the foreground in one process (``daemon off``, ``master_process
off``: no worker to outlive a killed master), listens on a free loopback
port and proxies everything to ``upstream`` the way the README's "nginx in
front" does, with what large uploads need: ``proxy_request_buffering off``
(the body goes to the app while it arrives, not spooled first) over
``proxy_http_version 1.1``, and ``client_max_body_size`` as given.

It is stopped with SIGKILL on ``stop()``, at interpreter exit (``atexit``)
and, through ``PR_SET_PDEATHSIG``, when this process dies without running
either (start it from the main thread, as pytest fixtures do).

Needs the Debian package ``nginx-light`` (``make deps``); a missing nginx or
one that cannot start raises ServerError: tests fail, they never skip.

    with Nginx("127.0.0.1:6543", client_max_body_size="16m") as front:
        front.url          # http://127.0.0.1:<port>

Given ``site``, it runs a whole site file instead of its own server block
(the http context around it is still this module's: temp paths, logs),
with TLS: ``site(front)`` returns the site's text rewritten for the test
(``front.port`` for its port 80, ``front.tls_port`` for 443,
``front.certificate``/``front.certificate_key``, a throwaway self-signed
certificate for 127.0.0.1 and localhost made with ``openssl``, also the CA
a client verifies with; ``front.root`` for anything else).  The access log
then also records the upstream's ``X-Accel-Redirect`` and the
``X-Forwarded-For`` a client sent:

    with Nginx("127.0.0.1:6543", site=lambda front: rewrite(text, front)) as front:
        front.https_url    # https://127.0.0.1:<tls_port>

``python -m tests.nginx UPSTREAM`` runs one in the foreground until Ctrl-C.
"""
from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

from tests import ceph
from tests.ceph import _die_with_parent, _owner_id
from tests.servers import ServerError, free_port, wait_for_port

DIR_PREFIX = "pastefile-nginx-"
MiB = 1024 * 1024
CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

# every started nginx, stopped at interpreter exit if nobody else did
_running: set["Nginx"] = set()


@atexit.register
def _stop_all() -> None:
    for front in list(_running):
        front.stop()


def nginx_binary() -> str:
    for path in (shutil.which("nginx"), *CANDIDATES):
        if path and os.access(path, os.X_OK):
            return path
    raise ServerError("nginx not found (install the nginx-light package: make deps)")


def remove_stale_dirs() -> None:
    """Remove the directories of nginx instances whose Python process died
    without cleaning up; nginx died with it."""
    ceph.remove_stale_dirs(DIR_PREFIX)


# one process, which dies with the test (PR_SET_PDEATHSIG); all its files in {root}
MAIN = """\
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;

events {{
    worker_connections 256;
}}

"""

CONF = MAIN + """\
http {{
    log_format front '$remote_addr "$request" $status $body_bytes_sent '
                     'request_length=$request_length upstream=$upstream_addr '
                     'upstream_status=$upstream_status time=$request_time';
    access_log {root}/access.log front;

    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        client_max_body_size {client_max_body_size};

        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_send_timeout {timeout}s;
            proxy_read_timeout {timeout}s;
        }}
    }}
}}
"""


# the http context around a given site (``Nginx(site=...)``)
SITE_CONF = MAIN + """\
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
{mime_types}
    default_type application/octet-stream;

    log_format site '$remote_addr "$request" $status $body_bytes_sent '
                    'request_length=$request_length upstream=$upstream_addr '
                    'upstream_status=$upstream_status accel=$upstream_http_x_accel_redirect '
                    'xff="$http_x_forwarded_for" scheme=$scheme time=$request_time';
    access_log {root}/access.log site;

    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    # --- the site
{site}
}}
"""
MIME_TYPES = "/etc/nginx/mime.types"


def make_certificate(directory: str, name: str = "localhost") -> tuple[str, str]:
    """A self-signed certificate (its own CA) for ``name`` and 127.0.0.1,
    valid for two days; (certificate path, key path)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServerError("openssl not found (install the openssl package: make deps)")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        capture_output=True, text=True,
    )
    if made.returncode != 0:
        raise ServerError(f"openssl cannot make a certificate:\n{made.stderr}")
    return cert, key


class Nginx:
    """nginx on ``url`` (127.0.0.1, a free port) proxying to ``upstream``
    (``host:port`` or ``http://host:port``); or, given ``site``, running the
    site ``site(self)`` returns, over http on ``url`` and https on ``https_url``."""

    def __init__(self, upstream: str, client_max_body_size: str = "1m", timeout: int = 120,
                 site: Callable[["Nginx"], str] | None = None):
        self.binary = nginx_binary()
        self.upstream = upstream.removeprefix("http://").rstrip("/")
        self.client_max_body_size = client_max_body_size
        self.timeout = timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.site = site
        self.tls_port: int | None = None
        self.https_url: str | None = None
        if site is not None:
            self.tls_port = free_port()
            self.https_url = f"https://127.0.0.1:{self.tls_port}"
        self.certificate: str | None = None
        self.certificate_key: str | None = None
        self.root: str | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def conf(self) -> str:
        assert self.root is not None
        return os.path.join(self.root, "nginx.conf")

    @property
    def error_log(self) -> str:
        assert self.root is not None
        return os.path.join(self.root, "error.log")

    @property
    def access_log(self) -> str:
        assert self.root is not None
        return os.path.join(self.root, "access.log")

    def _write_conf(self) -> None:
        assert self.root is not None
        if self.site is not None:
            self.certificate, self.certificate_key = make_certificate(self.root)
            site = self.site(self)
            mime_types = f"    include {MIME_TYPES};" if os.path.exists(MIME_TYPES) else ""
            with open(self.conf, "w") as f:
                f.write(SITE_CONF.format(root=self.root, mime_types=mime_types,
                                         site="\n".join("    " + line if line else line
                                                        for line in site.splitlines())))
            return
        with open(self.conf, "w") as f:
            f.write(CONF.format(root=self.root, port=self.port, upstream=self.upstream,
                                client_max_body_size=self.client_max_body_size, timeout=self.timeout))

    def start(self, timeout: float = 30.0) -> "Nginx":
        remove_stale_dirs()
        self.root = tempfile.mkdtemp(prefix=DIR_PREFIX)
        with open(os.path.join(self.root, "owner"), "w") as f:
            f.write(_owner_id(os.getpid()) or "")
        self._write_conf()
        _running.add(self)
        try:
            # -e: the error log from the start (before the conf is read, nginx
            # would open the compiled-in /var/log/nginx/error.log)
            argv = [self.binary, "-p", self.root + "/", "-c", self.conf, "-e", self.error_log]
            check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True)
            if check.returncode != 0:
                raise ServerError(f"nginx -t rejects {self.conf}:\n{check.stderr}\n{self.log_tail()}")
            with open(os.path.join(self.root, "console.log"), "ab") as console:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, cwd=self.root,
                    process_group=0, preexec_fn=_die_with_parent(os.getpid()),
                )
            try:
                wait_for_port(self.port, timeout, self.proc)
                if self.tls_port is not None:
                    wait_for_port(self.tls_port, timeout, self.proc)
            except ServerError as e:
                raise ServerError(f"{e}\n{self.log_tail()}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, limit: int = 3000) -> str:
        out = []
        for name in ("console.log", "error.log"):
            try:
                with open(os.path.join(self.root or "", name), errors="replace") as f:
                    text = f.read()[-limit:]
            except OSError:
                continue
            if text:
                out.append(f"--- {name}\n{text}")
        return "\n".join(out)

    def access_lines(self) -> list[str]:
        try:
            with open(self.access_log, errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        _running.discard(self)

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m tests.nginx UPSTREAM [CLIENT_MAX_BODY_SIZE]")
    with Nginx(sys.argv[1], *sys.argv[2:3]) as front:
        print(f"nginx on {front.url} -> {front.upstream} ({front.root})", flush=True)
        try:
            while front.proc is not None and front.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


def blocks(seed: int, size: int, block: int = MiB):
    """``size`` bytes from a generator seeded with ``seed``, ``block`` at a
    time: a large body sent through a front without holding it."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(block, left)
        left -= n
        yield rng.randbytes(n)
