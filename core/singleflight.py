"""One render at a time per key, across the threads and processes of a deployment.

Keys are spread over a fixed set of lock files under the storage root (which
every process of a deployment shares, as it holds the blobs); ``flock`` on a
file opened per call excludes other threads as well as other processes, and
the kernel drops the lock of a process that dies.  Waiting is bounded: past
``timeout`` the caller gets :class:`~pastefile.core.errors.Busy`, never a hang.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import Busy

STRIPES = 256


class SingleFlight:
    def __init__(self, directory: str, timeout: float = 60.0):
        self.directory = directory
        self.timeout = timeout

    def _path(self, key: str) -> str:
        stripe = hashlib.blake2b(key.encode(), digest_size=1).digest()[0] % STRIPES
        return os.path.join(self.directory, f"{stripe:02x}.lock")

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        path = self._path(key)
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + self.timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise Busy("the same resize is still being made; try again shortly")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
