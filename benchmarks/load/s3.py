"""pastefile on the s3 store in the load comparison.

The ``pastefile-s3`` server is ``pastefile-pg`` (PostgreSQL with fsync on,
the same two memcached nodes under a cache prefix of its own) with
``pastefile.store = s3`` on a one-node Ceph RADOS Gateway that the harness
starts itself (tests.ceph.CephRGW: memstore, the objects live in the
gateway's RAM).  The ``s3-*`` scenarios (scenarios.py) run it against
``pastefile-pg``, which differs only by its store (files under the run's
temp dir), and report pastefile-s3 / pastefile-pg.

memstore holds about twice the bytes stored, so what an upload run puts in
the bucket is deleted once the run is measured (:meth:`Gateway.clear`):
every object that was not there at :meth:`Gateway.snapshot`.
"""
from __future__ import annotations

import subprocess

from .procs import HarnessError

SERVER = "pastefile-s3"
BUCKET = "pastefile-bench"
# memstore's cap: the load runs clear the bucket after each upload run
DEFAULT_MEMORY_BYTES = 4 << 30


class Gateway:
    """A CephRGW with the bucket of the benchmark, and its cleanup."""

    def __init__(self, memory_bytes: int = DEFAULT_MEMORY_BYTES, prefix: str = "bench"):
        self.memory_bytes = memory_bytes
        self.prefix = prefix
        self.rgw = None
        self.keep: set[str] = set()
        self.seen_pids: set[int] = set()

    def start(self) -> "Gateway":
        from tests.ceph import CephRGW
        from tests.servers import ServerError

        try:
            self.rgw = CephRGW(memory_bytes=self.memory_bytes, lc_debug_interval=None).start()
        except ServerError as exc:
            raise HarnessError(f"the Ceph gateway did not start: {exc}") from exc
        self.seen_pids.update(self.rgw.pids().values())
        s3 = self.rgw.client()
        try:
            s3.create_bucket(Bucket=BUCKET)
        finally:
            s3.close()
        return self

    def app_settings(self, part_size: str | None = None) -> dict[str, str]:
        """The ``pastefile.s3.*`` keys of the server's ``[app:main]``."""
        assert self.rgw is not None
        out = {
            "pastefile.store": "s3",
            "pastefile.s3.endpoint_url": self.rgw.endpoint_url,
            "pastefile.s3.bucket": BUCKET,
            "pastefile.s3.prefix": self.prefix,
            "pastefile.s3.access_key_id": self.rgw.access_key,
            "pastefile.s3.secret_access_key": self.rgw.secret_key,
        }
        if part_size:
            out["pastefile.s3.part_size"] = part_size
        return out

    def _keys(self, s3) -> list[str]:
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        return keys

    def snapshot(self) -> None:
        """Remember the objects there now: :meth:`clear` keeps them."""
        s3 = self.rgw.client()
        try:
            self.keep = set(self._keys(s3))
        finally:
            s3.close()

    def clear(self) -> int:
        """Delete every object (and incomplete multipart upload) made since
        :meth:`snapshot`; returns how many objects went."""
        s3 = self.rgw.client()
        try:
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
                for upload in page.get("Uploads", ()):
                    s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
            doomed = [k for k in self._keys(s3) if k not in self.keep]
            for i in range(0, len(doomed), 1000):
                s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in doomed[i:i + 1000]],
                                                         "Quiet": True})
            return len(doomed)
        finally:
            s3.close()

    def pids(self) -> list[int]:
        if self.rgw is not None:
            self.seen_pids.update(self.rgw.pids().values())
        return sorted(self.seen_pids)

    def daemon_pids(self) -> dict[str, int]:
        """{daemon name: pid} of the daemons running now."""
        return self.rgw.pids() if self.rgw is not None else {}

    def stop(self) -> None:
        if self.rgw is not None:
            self.pids()
            self.rgw.stop()
            self.rgw = None


def ceph_version() -> str | None:
    try:
        out = subprocess.run(["radosgw", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None
