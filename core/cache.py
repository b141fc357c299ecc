"""One cache interface, three backends, and the ``cache`` decorator (a result cached under a key pattern).

Backends: memcached (pymemcache ``HashClient``, rendezvous hashing over
several nodes), an in-process LRU with TTL (the embedded default), and null.
Every backend swallows its own failures: a dead memcached node turns into a
miss and a logged warning, and the caller falls through to the database.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import metrics

log = logging.getLogger(__name__)

# Bump when the shape of cached values changes: old entries are then ignored.
KEY_VERSION = 3
MUTEX_SUFFIX = "#mutex"
_MAX_KEY = 200
_UNSAFE_KEY = re.compile("[\x00-\x20\x7f]")


class Cache:
    """The interface; also the null backend (stores nothing)."""

    def __init__(self, prefix: str = "pastefile"):
        self.prefix = f"{prefix}:v{KEY_VERSION}:"

    def full_key(self, key: str) -> str:
        full = self.prefix + key
        # memcached keys: at most 250 bytes, no whitespace or control characters
        if len(full) > _MAX_KEY or _UNSAFE_KEY.search(full):
            full = self.prefix + "h:" + hashlib.sha1(key.encode()).hexdigest()
        return full

    def get(self, key: str) -> Any:
        return None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return {}

    def set(self, key: str, value: Any, expire: int = 0) -> None:
        pass

    def set_many(self, mapping: Mapping[str, Any], expire: int = 0) -> None:
        pass

    def add(self, key: str, value: Any, expire: int = 0) -> bool:
        """Store only if absent.  True also when the backend is unreachable,
        so a mutex holder computes at once instead of waiting on a dead node."""
        return True

    def delete(self, key: str) -> None:
        pass

    def delete_many(self, keys: Iterable[str]) -> None:
        pass

    def close(self) -> None:
        pass

    def after_fork(self) -> None:
        """Called in a forked child: drop connections shared with the parent."""

    def reachable(self) -> bool:
        """Whether the cache answers now (readiness); an in-process cache always does."""
        return True


NullCache = Cache


def _weight(value: Any) -> int:
    """Bytes an entry holds: exact for bytes, a flat estimate for the small
    JSON-shaped values (paste records) kept beside them."""
    return len(value) + 64 if isinstance(value, (bytes, bytearray)) else 512


class MemoryCache(Cache):
    """A thread-safe LRU with per-entry expiry, for one process, bounded by
    entry count and by the bytes it holds (blob bytes are cached too)."""

    def __init__(self, prefix: str = "pastefile", max_entries: int = 10000, max_bytes: int = 64 << 20):
        super().__init__(prefix)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _get_locked(self, key: str, now: float) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires and expires <= now:
            self._pop_locked(key)
            return None
        self._data.move_to_end(key)
        return value

    def _pop_locked(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self.bytes -= _weight(item[1])

    def _set_locked(self, key: str, value: Any, expire: int, now: float) -> None:
        weight = _weight(value)
        if weight > self.max_bytes:
            self._pop_locked(key)
            return
        self._pop_locked(key)
        self._data[key] = (now + expire if expire else 0.0, value)
        self.bytes += weight
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, old) = self._data.popitem(last=False)
            self.bytes -= _weight(old)

    def get(self, key):
        with self._lock:
            return self._get_locked(self.full_key(key), time.monotonic())

    def get_many(self, keys):
        now = time.monotonic()
        out = {}
        with self._lock:
            for key in keys:
                value = self._get_locked(self.full_key(key), now)
                if value is not None:
                    out[key] = value
        return out

    def set(self, key, value, expire=0):
        with self._lock:
            self._set_locked(self.full_key(key), value, expire, time.monotonic())

    def set_many(self, mapping, expire=0):
        now = time.monotonic()
        with self._lock:
            for key, value in mapping.items():
                self._set_locked(self.full_key(key), value, expire, now)

    def add(self, key, value, expire=0):
        now = time.monotonic()
        full = self.full_key(key)
        with self._lock:
            if self._get_locked(full, now) is not None:
                return False
            self._set_locked(full, value, expire, now)
            return True

    def delete(self, key):
        with self._lock:
            self._pop_locked(self.full_key(key))

    def delete_many(self, keys):
        with self._lock:
            for key in keys:
                self._pop_locked(self.full_key(key))

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0

    def after_fork(self) -> None:
        # a thread of the parent may have held the lock at the fork
        self._lock = threading.Lock()


class _Serde:
    """bytes as they are, everything else as JSON (never pickle: the cache is
    a network service and must not be able to run code in the app)."""

    BYTES, JSON = 1, 2

    def serialize(self, key, value):
        if isinstance(value, bytes):
            return value, self.BYTES
        return json.dumps(value, separators=(",", ":")).encode(), self.JSON

    def deserialize(self, key, value, flags):
        if flags == self.BYTES:
            return value
        if flags == self.JSON:
            return json.loads(value)
        return None


class _FastRendezvousHash:
    """pymemcache's rendezvous (highest random weight) node choice with
    BLAKE2b, in C, for its murmur3, in Python: the pure-Python hash cost more
    per cached upload than the rest of the memcached client."""

    def __init__(self, nodes=None, seed: int = 0):
        self.nodes = list(nodes or ())
        self._salt = seed.to_bytes(8, "big", signed=True)

    def add_node(self, node) -> None:
        if node not in self.nodes:
            self.nodes.append(node)

    def remove_node(self, node) -> None:
        self.nodes.remove(node)

    def get_node(self, key: str):
        data = key.encode()
        best, winner = -1, None
        for node in self.nodes:
            digest = hashlib.blake2b(data, digest_size=8, key=f"{node}".encode()[:64], salt=self._salt).digest()
            score = int.from_bytes(digest, "big")
            if score > best or (score == best and str(node) > str(winner)):
                best, winner = score, node
        return winner


class MemcachedCache(Cache):
    def __init__(
        self,
        servers: Iterable[str],
        prefix: str = "pastefile",
        connect_timeout: float = 0.25,
        timeout: float = 0.5,
        dead_timeout: float = 10.0,
    ):
        super().__init__(prefix)
        self.servers = [_parse_server(s) for s in servers]
        self._options = dict(connect_timeout=connect_timeout, timeout=timeout, dead_timeout=dead_timeout)
        self.client = self._connect()
        self._last_warning = 0.0

    def _connect(self):
        from pymemcache.client.hash import HashClient

        return HashClient(
            self.servers,
            hasher=_FastRendezvousHash,
            serde=_Serde(),
            connect_timeout=self._options["connect_timeout"],
            timeout=self._options["timeout"],
            use_pooling=True,
            retry_attempts=1,
            retry_timeout=1,
            dead_timeout=self._options["dead_timeout"],
            default_noreply=False,
            ignore_exc=False,
        )

    def after_fork(self) -> None:
        # the parent's sockets stay the parent's: new ones for this process
        self.client = self._connect()

    def _failed(self, op: str, exc: BaseException) -> None:
        # one line every few seconds is enough to see a node is down
        now = time.monotonic()
        if now - self._last_warning > 5.0:
            self._last_warning = now
            log.warning("memcached %s failed, serving without cache: %s: %s", op, type(exc).__name__, exc)
        metrics.inc("cache_error", op=op)

    def get(self, key):
        try:
            return self.client.get(self.full_key(key))
        except Exception as exc:  # noqa: BLE001 - any cache failure is a miss
            self._failed("get", exc)
            return None

    def get_many(self, keys):
        keys = list(keys)
        if not keys:
            return {}
        full = {self.full_key(k): k for k in keys}
        try:
            found = self.client.get_many(list(full))
        except Exception as exc:  # noqa: BLE001
            self._failed("get_many", exc)
            return {}
        return {full[k]: v for k, v in found.items() if v is not None}

    def set(self, key, value, expire=0):
        try:
            self.client.set(self.full_key(key), value, expire=expire)
        except Exception as exc:  # noqa: BLE001
            self._failed("set", exc)

    def set_many(self, mapping, expire=0):
        if not mapping:
            return
        try:
            self.client.set_many({self.full_key(k): v for k, v in mapping.items()}, expire=expire)
        except Exception as exc:  # noqa: BLE001
            self._failed("set_many", exc)

    def add(self, key, value, expire=0):
        full = self.full_key(key)
        try:
            if self.client.add(full, value, expire=expire, noreply=False):
                return True
            # HashClient answers False both for "exists" and for a node in its
            # retry window; only a value we can read proves someone holds it
            return self.client.get(full) is None
        except Exception as exc:  # noqa: BLE001
            self._failed("add", exc)
            return True

    def delete(self, key):
        try:
            self.client.delete(self.full_key(key), noreply=False)
        except Exception as exc:  # noqa: BLE001
            self._failed("delete", exc)

    def delete_many(self, keys):
        keys = [self.full_key(k) for k in keys]
        if not keys:
            return
        try:
            self.client.delete_many(keys, noreply=False)
        except Exception as exc:  # noqa: BLE001
            self._failed("delete_many", exc)

    def reachable(self) -> bool:
        # each node's own client: HashClient answers a miss for a node in its
        # retry window, which would hide that the node is down
        key = self.full_key("readiness-probe")
        try:
            for node in self.client.clients.values():
                node.get(key)
        except Exception:  # noqa: BLE001 - any failure means not reachable
            return False
        return True

    def close(self):
        self.client.close()


def _parse_server(spec: str) -> tuple[str, int]:
    host, _, port = spec.strip().rpartition(":")
    if not host:
        return spec.strip(), 11211
    return host.strip("[]"), int(port)


def make_cache(
    backend: str,
    *,
    servers: Iterable[str] = (),
    prefix: str = "pastefile",
    max_entries: int = 10000,
    max_bytes: int = 64 << 20,
) -> Cache:
    if backend == "memcached":
        return MemcachedCache(servers, prefix=prefix)
    if backend == "memory":
        return MemoryCache(prefix=prefix, max_entries=max_entries, max_bytes=max_bytes)
    if backend == "null":
        return NullCache(prefix=prefix)
    raise ValueError(f"unknown cache backend {backend!r}")


def _owner_cache(args: tuple) -> Cache:
    try:
        return args[0].cache
    except (IndexError, AttributeError):
        raise TypeError("@cache without mc= decorates methods of objects with a .cache") from None


def cache(
    key_pattern: str,
    expire: int | None = None,
    max_retry: int = 0,
    mc: Cache | None = None,
) -> Callable[[Callable], Callable]:
    """Cache a function's non-None result under ``key_pattern``.

    The key is ``key_pattern.format(**arguments)`` with the call's arguments
    bound by name (defaults applied), e.g. ``"paste:filehash:{filehash}"``.
    Backend: ``mc`` or, for methods, ``self.cache``; ``expire`` None means
    ``self.expire`` for methods (0, never, otherwise).  With ``max_retry`` a
    miss takes ``add(key#mutex)`` first, so one caller recomputes a hot key
    while the others poll the cache (up to ``max_retry`` times, 50 ms apart).

    The wrapper has ``.key(*args)`` for the cache key, ``.invalidate(*args)``
    and ``.many(obj, values, loader)`` for batches over one parameter.
    """

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        for param in sig.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError("@cache does not support *args or **kwargs")

        names = list(sig.parameters)

        def make_key(*args, **kwargs) -> str:
            if not kwargs and len(args) == len(names):
                # the usual call, every argument by position: no binding needed
                return key_pattern.format(**dict(zip(names, args)))
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return key_pattern.format(**bound.arguments)

        def backend(args) -> Cache:
            return mc if mc is not None else _owner_cache(args)

        def ttl(args) -> int:
            if expire is not None:
                return expire
            return getattr(args[0], "expire", 0) if args else 0

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            store = backend(args)
            key = make_key(*args, **kwargs)
            value = store.get(key)
            metrics.inc("cache", result="miss" if value is None else "hit")
            if value is not None:
                return value
            locked = False
            for _ in range(max_retry):
                if store.add(key + MUTEX_SUFFIX, 1, max(1, int(max_retry * 0.1))):
                    locked = True
                    break
                time.sleep(0.05)
                value = store.get(key)
                if value is not None:
                    return value
            try:
                value = fn(*args, **kwargs)
                if value is not None:
                    store.set(key, value, ttl(args))
            finally:
                if locked:
                    store.delete(key + MUTEX_SUFFIX)
            return value

        def invalidate(*args, **kwargs) -> None:
            backend(args).delete(make_key(*args, **kwargs))

        def many(obj, values: list, loader: Callable[[list], Mapping[Any, Any]]) -> dict:
            """Results for each of ``values`` (the single non-self parameter):
            one get_many, then ``loader(missing)`` for the misses, one set_many."""
            store = backend((obj,))
            keys = {make_key(obj, v): v for v in values}
            found = store.get_many(list(keys))
            result = {keys[k]: v for k, v in found.items()}
            missing = [v for v in values if v not in result]
            if missing:
                loaded = {v: r for v, r in loader(missing).items() if r is not None}
                store.set_many({make_key(obj, v): r for v, r in loaded.items()}, ttl((obj,)))
                result.update(loaded)
            return result

        wrapper.key = make_key
        wrapper.invalidate = invalidate
        wrapper.many = many
        return wrapper

    return deco
