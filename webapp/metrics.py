"""``GET /metrics``: counters in the Prometheus text format, summed over the workers.

With ``workers = N`` each waitress worker counts its own requests, so the
counts live in prometheus_client's multiprocess files (one per worker, in
one directory) and ``/metrics``, whichever worker answers it, adds them up
with a ``MultiProcessCollector``; a worker that died and was replaced keeps
its file, so totals never go back.  The directory:

* ``PROMETHEUS_MULTIPROC_DIR`` when set (whoever set it empties it between runs);
* else ``pastefile.metrics_dir``, emptied of old counts at start-up;
* else a temporary directory the parent makes just before it forks the
  first worker and removes when it exits.

A single process that never forks (``workers = 1``, the tests' servers,
an app embedded elsewhere) counts in memory instead.

``pastefile.metrics_allow`` says who may read ``/metrics``: addresses and
CIDR networks, or ``*`` for anyone (default ``127.0.0.1 ::1``); others get
404 as for any unknown address.  Behind nginx, waitress's ``trusted_proxy``
settings make ``REMOTE_ADDR`` the client's own address.

The core reports its events through :mod:`pastefile.core.metrics`; this
module installs the recorder that turns them into Prometheus metrics.
"""
from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import re
import shutil
import tempfile
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client import multiprocess
from pyramid.response import Response
from pyramid.tweens import INGRESS

from pastefile.core import SettingsError
from pastefile.core.errors import Unavailable

from .responses import error_response

from pastefile.core import metrics as core_metrics  # the core's port, which this fills

log = logging.getLogger(__name__)

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
# the classic text format every Prometheus reads (generate_latest writes it)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_ALLOW = "127.0.0.1 ::1"
# requests that carry an upload, by route and method: a 4xx/5xx there is a refused upload
UPLOAD_REQUESTS = {("home", "POST"), ("put", "PUT"), ("tus_create", "POST"), ("tus_upload", "PATCH")}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
_DB_FILE = re.compile(r"_(\d+)\.db$")


def _definitions() -> dict:
    """name: (class, help, label names, extra keyword arguments)."""
    return {
        "requests": (Counter, "pastefile_http_requests", "HTTP requests answered, by route and status class",
                     ("route", "status"), {}),
        "latency": (Histogram, "pastefile_http_request_duration_seconds",
                    "Time to answer a request (until the response starts), by route", ("route",),
                    {"buckets": LATENCY_BUCKETS}),
        "uploads": (Counter, "pastefile_uploads", "Uploads by outcome: created, repeat (dedupe hit), refused",
                    ("outcome",), {}),
        "refused": (Counter, "pastefile_uploads_refused", "Uploads refused, by HTTP status", ("status",), {}),
        "upload_bytes": (Counter, "pastefile_upload_bytes", "Bytes of uploads accepted (created or repeat)",
                         (), {}),
        "renditions": (Counter, "pastefile_renditions",
                       "Renditions asked for: rendered now, or served already made", ("outcome",), {}),
        "cache": (Counter, "pastefile_cache_lookups", "Read-through cache lookups, by result (hit or miss)",
                  ("result",), {}),
        "cache_errors": (Counter, "pastefile_cache_errors", "Cache server failures (served without the cache)",
                         ("op",), {}),
        "batch": (Histogram, "pastefile_group_commit_batch_size", "Uploads recorded per group commit", (),
                  {"buckets": BATCH_BUCKETS}),
        "wait": (Histogram, "pastefile_group_commit_wait_seconds", "Time an upload waited for its group commit",
                 (), {"buckets": WAIT_BUCKETS}),
        "store_errors": (Counter, "pastefile_store_errors",
                         "Requests answered 503 because the blob store could not be reached or failed", (), {}),
    }


class Exporter:
    """This process's metrics: made again in a forked child, which counts
    into its own multiprocess file."""

    def __init__(self):
        self._lock = threading.Lock()
        self._built_for: tuple | None = None
        self._metrics: dict = {}
        self._children: dict = {}  # (metric, label values): its child, for child()
        self.registry: CollectorRegistry | None = None
        self.directory: str | None = None  # the multiprocess directory, None: in memory
        # the temporary directory made for forked workers: (pid of its maker, path)
        self._made_dir: tuple[int, str] | None = None
        self._fork_hooked = False

    # -- where the counts live ---------------------------------------------------

    def configure(self, metrics_dir: str | None) -> None:
        """Called by each app at start-up, in the process that may fork workers."""
        with self._lock:
            if self.directory is None:
                if os.environ.get(ENV_DIR):
                    self._use(os.environ[ENV_DIR])
                elif metrics_dir:
                    os.makedirs(metrics_dir, exist_ok=True)
                    _empty(metrics_dir)  # counts of an earlier run would be added to this one's
                    self._use(metrics_dir)
            if not self._fork_hooked:
                self._fork_hooked = True
                os.register_at_fork(before=self._before_fork, after_in_child=self._after_fork_in_child)

    def _use(self, directory: str) -> None:
        self.directory = directory
        self._children = {}
        # the files are opened where this names them, in this process and its children
        os.environ[ENV_DIR] = directory
        if not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client picks its value class when first imported;
            # this process may have imported it before the directory was known
            values.ValueClass = values.MultiProcessValue()

    def _before_fork(self) -> None:
        # the parent, about to fork a worker: counts must outlive the
        # process that made them, and be summed over all of them.  The
        # parent itself goes on counting in memory (it serves nothing when
        # it has workers) and its environment stays as it was, for the
        # other programs it may start.
        if self.directory is None and self._made_dir is None:
            path = tempfile.mkdtemp(prefix="pastefile-metrics-")
            self._made_dir = (os.getpid(), path)
            atexit.register(self._remove_made_dir)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._children = {}  # the parent's metrics: this process counts in its own
        if self.directory is None and self._made_dir is not None:
            self._use(self._made_dir[1])

    def _remove_made_dir(self) -> None:
        made = self._made_dir
        if made is not None and made[0] == os.getpid():
            shutil.rmtree(made[1], ignore_errors=True)

    # -- counting ------------------------------------------------------------------

    def metrics(self) -> dict:
        key = (os.getpid(), self.directory)
        if self._built_for == key:
            return self._metrics
        with self._lock:
            if self._built_for != key:
                if self.directory is not None and not getattr(values.ValueClass, "_multiprocess", False):
                    self._use(self.directory)
                # in multiprocess mode the files hold the values and a
                # collector reads them: the metrics register nowhere
                registry = CollectorRegistry() if self.directory is None else None
                self._metrics = {
                    key_: cls(name, doc, labels, registry=registry, **extra)
                    for key_, (cls, name, doc, labels, extra) in _definitions().items()
                }
                self._children = {}
                self.registry = registry
                self._built_for = key
        return self._metrics

    def child(self, name: str, *values: str):
        """``metrics()[name].labels(*values)``, remembered: prometheus_client
        checks the labels and takes a lock on every call, which cost more
        than counting.  Forgotten whenever metrics() would build new
        metrics: in a forked child, or for another directory (_use)."""
        found = self._children.get((name, values))
        if found is None:
            metrics = self.metrics()  # (re)builds them, and empties _children, when needed
            found = self._children[(name, values)] = metrics[name].labels(*values)
        return found

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        if name == "rendition":
            self.child("renditions", labels.get("outcome", "")).inc(amount)
        elif name == "cache":
            self.child("cache", labels.get("result", "")).inc(amount)
        elif name == "cache_error":
            self.child("cache_errors", labels.get("op", "")).inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        metrics = self.metrics()
        if name == "upload":
            metrics["uploads"].labels(outcome=labels.get("outcome", "")).inc()
            metrics["upload_bytes"].inc(max(value, 0))
        elif name == "group_commit_batch":
            metrics["batch"].observe(value)
        elif name == "group_commit_wait":
            metrics["wait"].observe(value)

    def request_done(self, request, status: int, seconds: float) -> None:
        route = getattr(request, "matched_route", None)
        route_name = route.name if route is not None else "unmatched"
        self.child("requests", route_name, _STATUS_CLASSES.get(status // 100) or f"{status // 100}xx").inc()
        self.child("latency", route_name).observe(seconds)
        if status >= 400 and (route_name, request.method) in UPLOAD_REQUESTS:
            self.child("uploads", "refused").inc()
            self.child("refused", str(status)).inc()
        if isinstance(getattr(request, "exception", None), Unavailable):
            self.metrics()["store_errors"].inc()

    # -- reading -------------------------------------------------------------------

    def exposition(self) -> bytes:
        self.metrics()
        if self.directory is None:
            return generate_latest(self.registry)
        self._mark_dead_workers()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.directory)
        return generate_latest(registry)

    def _mark_dead_workers(self) -> None:
        """``mark_process_dead`` for the processes of the files that are gone
        (the parent reaps its workers without telling anyone; only live
        gauges are dropped, the counts of a dead worker stay in the sums)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for pid in {int(m.group(1)) for m in map(_DB_FILE.search, names) if m}:
            if not _alive(pid):
                worker_exited(pid, self.directory)


def worker_exited(pid: int, directory: str | None = None) -> None:
    """What the process that reaps a worker calls (``mark_process_dead``)."""
    path = directory or EXPORTER.directory or os.environ.get(ENV_DIR)
    if path:
        multiprocess.mark_process_dead(pid, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _empty(directory: str) -> None:
    for name in os.listdir(directory):
        if name.endswith(".db"):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


EXPORTER = Exporter()


# -- who may read them ----------------------------------------------------------------


def parse_allow(text: str | None, key: str = "pastefile.metrics_allow") -> list | None:
    """The networks of ``pastefile.metrics_allow``; None for ``*`` (anyone)."""
    networks = []
    for item in (DEFAULT_ALLOW if text is None else str(text)).split():
        if item == "*":
            return None
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(key, f"expected addresses, CIDR networks or *, got {item!r}") from None
    return networks


def allowed(networks: list | None, address: str | None) -> bool:
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


# -- Pyramid ------------------------------------------------------------------------


def metrics_tween_factory(handler, registry):
    exporter = EXPORTER

    def metrics_tween(request):
        start = time.perf_counter()
        try:
            response = handler(request)
        except BaseException:
            exporter.request_done(request, 500, time.perf_counter() - start)
            raise
        try:
            exporter.request_done(request, response.status_code, time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - counting never fails the answer
            log.exception("counting a request failed")
        return response

    return metrics_tween


def metrics_view(request):
    if not allowed(request.registry.pastefile_metrics_allow, request.remote_addr):
        return error_response(request, 404, "Not found", "There is no file at this address.")
    response = Response(EXPORTER.exposition(), content_type="text/plain", charset="utf-8")
    response.headers["Content-Type"] = CONTENT_TYPE
    response.cache_control = "no-store"
    return response


def includeme(config):
    settings = config.get_settings()
    key = "pastefile.metrics_allow"
    config.registry.pastefile_metrics_allow = parse_allow(os.environ.get("PASTEFILE_METRICS_ALLOW", settings.get(key)))
    metrics_dir = os.environ.get("PASTEFILE_METRICS_DIR", settings.get("pastefile.metrics_dir")) or None
    EXPORTER.configure(metrics_dir.strip() if metrics_dir else None)
    core_metrics.install(EXPORTER)
    # outermost: every answer is counted, the input guard's and the rate limiter's too
    config.add_tween("pastefile.webapp.metrics.metrics_tween_factory", under=INGRESS,
                     over="pastefile.webapp.tweens.input_guard_tween_factory")
    config.add_view(metrics_view, route_name="metrics", request_method=("GET", "HEAD"))
