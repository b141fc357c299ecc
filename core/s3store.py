"""Blobs in an S3-compatible object store (``pastefile.store = s3``).

The same promises as the file store, kept with objects instead of renames:

- Keys are content addresses, ``prefix/ab/cd/<sha256>``.  An object is
  written there only once its bytes are hashed by pastefile (the store is
  not trusted to check a checksum) and before any row points at it.
- An upload is staged in a private temp file on the node (scratch, never
  shared), hashed in the same pass.  Once it outgrows one part, its parts go
  up as a multipart upload to a staging key *while it streams in*, from that
  file, by a background thread; at the end the object is copied server-side
  to its address.  Smaller bodies go up in one PUT, and only when the
  address is empty: an upload whose bytes are stored already sends nothing.
- Removal moves an object to ``prefix/trash/`` inside the removing
  transaction (a server-side copy and a delete: the undoable analog of a
  rename) and purges it once the transaction commits.
- What a crash leaves (staging objects, incomplete multipart uploads,
  objects without rows) is found by age and removed by ``gc``/``fsck
  --repair``; a lifecycle rule aborts forgotten multipart uploads too.
"""
from __future__ import annotations

import io
import logging
import math
import os
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

from pastefile.ext.hashing import CopyResult

from .blobstore import (
    RESUMABLE_PREFIX, BlobStore, Resumable, StagedBlob, StagingWriter, drop_cached, sweep_local_temp,
)
from .content import Content
from .errors import Unavailable

log = logging.getLogger(__name__)

MIN_PART = 5 << 20  # S3's smallest part (all but the last)
MAX_PARTS = 10_000
# CopyObject's limit; a larger staged object is copied part by part
MAX_COPY = 5 << 30
STAGING_DIR = "tmp"
TRASH_DIR = "trash"
_READ = 256 * 1024
# parts sent at once by one upload: the store's latency overlaps
PARTS_IN_FLIGHT = 3
# staging objects live seconds (finish -> settle); multipart uploads as long
# as a slow upload streams in: each is judged stale after its own age
STALE_STAGING = 3600.0
STALE_MULTIPART = 24 * 3600.0


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None
    prefix: str = ""
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    part_size: int = 16 << 20
    serve: str = "proxy"
    # how long a redirect's presigned GET stays valid
    presign_expires: int = 300

    def part_size_for(self, max_size: int) -> int:
        """One size for every part but the last (as R2 requires), grown to
        whole MiB so that ``max_size`` bytes need at most 10,000 parts."""
        size = max(self.part_size, MIN_PART)
        needed = math.ceil(max_size / MAX_PARTS)
        if needed > size:
            size = math.ceil(needed / (1 << 20)) << 20
        return size


def make_client(config: S3Config, max_connections: int = 32):
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id or None,
        aws_secret_access_key=config.secret_access_key or None,
        region_name=config.region,
    )
    return session.client(
        "s3",
        endpoint_url=config.endpoint_url or None,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=max_connections,
            # pastefile hashes every byte itself; stores such as Ceph 16
            # refuse or ignore the newer flexible checksums
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, ReadTimeoutError

    return (BotoConnectionError, HTTPClientError, ReadTimeoutError)


def _code(exc) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _status(exc) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


_MISSING = {"NoSuchKey", "404", "NotFound"}


class StoreCall:
    """Runs client calls and turns "the store is unreachable or failing"
    (connection errors, timeouts, 5xx after botocore's retries) into
    :class:`Unavailable`: a 503 with Retry-After, nothing half-stored."""

    def __init__(self):
        from botocore.exceptions import ClientError

        self.client_error = ClientError
        self.unreachable = _unavailable_errors()

    def __call__(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self.unreachable as exc:
            raise Unavailable(f"the object store cannot be reached: {exc}") from exc
        except self.client_error as exc:
            if _status(exc) >= 500:
                raise Unavailable(f"the object store failed: {_code(exc) or _status(exc)}") from exc
            raise


class S3BlobStore(BlobStore):
    def __init__(self, config: S3Config, temp_root: str, inline_max: int = 0, max_size: int = 100 << 20):
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix.strip("/")
        self.inline_max = inline_max
        self.part_size = config.part_size_for(max_size)
        self.temp_dir = os.path.join(os.path.abspath(temp_root), STAGING_DIR)
        os.makedirs(self.temp_dir, exist_ok=True)
        self.call = StoreCall()
        self._client = None
        self._client_pid = -1
        self._client_lock = threading.Lock()

    # -- the client: one per process (a forked child must not share sockets) ----

    @property
    def client(self):
        if self._client is None or self._client_pid != os.getpid():
            with self._client_lock:
                if self._client is None or self._client_pid != os.getpid():
                    self._client = make_client(self.config)
                    self._client_pid = os.getpid()
        return self._client

    def after_fork(self) -> None:
        self._client = None

    # -- keys ----------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def key(self, sha256_hex: str) -> str:
        return self._key(f"{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}")

    def _staging_key(self) -> str:
        return self._key(f"{STAGING_DIR}/upload-{uuid.uuid4().hex}")

    # -- bucket --------------------------------------------------------------------

    def ensure_bucket(self) -> bool:
        """Create the bucket when missing (True if it did), with a lifecycle
        rule that aborts multipart uploads left incomplete for a day."""
        created = False
        try:
            self.call(self.client.head_bucket, Bucket=self.bucket)
        except self.call.client_error as exc:
            if _status(exc) != 404 and _code(exc) not in ("NoSuchBucket", "404", "NotFound"):
                raise
            kwargs = {}
            if self.config.region and self.config.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
            self.call(self.client.create_bucket, Bucket=self.bucket, **kwargs)
            created = True
        rule_prefix = f"{self.prefix}/" if self.prefix else ""
        self.call(
            self.client.put_bucket_lifecycle_configuration,
            Bucket=self.bucket,
            LifecycleConfiguration={"Rules": [{
                "ID": "pastefile-abort-incomplete-uploads",
                "Status": "Enabled",
                "Filter": {"Prefix": rule_prefix},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }]},
        )
        return created

    # -- staging and committing ------------------------------------------------------

    def stage(self, fileobj: BinaryIO, limit: int | None = None) -> StagedBlob:
        with self.writer(limit) as writer:
            return writer.copy_from(fileobj)

    def writer(self, limit: int | None = None) -> "S3StagingWriter":
        return S3StagingWriter(self, limit)

    def exists(self, sha256: bytes) -> bool:
        return self._head(self.key(sha256.hex())) is not None

    def _head(self, key: str) -> dict | None:
        try:
            return self.call(self.client.head_object, Bucket=self.bucket, Key=key)
        except self.call.client_error as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                return None
            raise

    def commit(self, staged: StagedBlob) -> bool:
        if staged.inline:
            return False
        if self.exists(staged.sha256):
            return False  # stored already: nothing is sent
        self._place(staged)
        return True

    def restore(self, staged: StagedBlob) -> bool:
        """Called under the blob's lock before the rows commit: put the
        object back from the staged copy when a removal took it since
        :meth:`commit` found it."""
        if staged.inline or self.exists(staged.sha256):
            return False
        if staged.key is None and (staged.path is None or not os.path.exists(staged.path)):
            return False
        self._place(staged)
        return True

    def _place(self, staged: StagedBlob) -> None:
        final = self.key(staged.hexdigest)
        if staged.key is not None:
            self._copy(staged.key, final, staged.size)
        else:
            with open(staged.path, "rb") as body:
                self.call(self.client.put_object, Bucket=self.bucket, Key=final, Body=body,
                          ContentLength=staged.size)

    def _copy(self, source: str, target: str, size: int) -> None:
        """Server-side: the bytes never come back through this node."""
        if size <= MAX_COPY:
            self.call(self.client.copy_object, Bucket=self.bucket, Key=target,
                      CopySource={"Bucket": self.bucket, "Key": source})
            return
        from boto3.s3.transfer import TransferConfig

        self.call(self.client.copy, {"Bucket": self.bucket, "Key": source}, self.bucket, target,
                  Config=TransferConfig(multipart_chunksize=self.part_size, max_concurrency=4))

    def discard(self, staged: StagedBlob) -> None:
        if not staged.owned:
            return
        if staged.key is not None:
            self._delete_quietly(staged.key)
            staged.key = None
        if staged.path is not None:
            try:
                os.unlink(staged.path)
            except FileNotFoundError:
                pass
            staged.path = None
        if staged.fd >= 0:
            os.close(staged.fd)
            staged.fd = -1

    def _delete_quietly(self, key: str) -> None:
        """A staging object that could not be deleted now is gc's, later."""
        try:
            self.call(self.client.delete_object, Bucket=self.bucket, Key=key)
        except Exception:  # noqa: BLE001 - left for the sweep
            log.warning("could not delete staging object %s; the next sweep will", key, exc_info=True)

    # -- resumable uploads (tus): a multipart upload at a staging key, whole
    # parts as they fill, the rest (the tail) kept in the upload's row --------

    def resumable_begin(self, upload_id: str) -> Resumable:
        key = self._key(f"{STAGING_DIR}/{RESUMABLE_PREFIX}{upload_id}")
        created = self.call(self.client.create_multipart_upload, Bucket=self.bucket, Key=key)
        return Resumable(upload_id, key=key, upload_id=created["UploadId"], parts=[])

    def _upload_part(self, state: Resumable, number: int, body) -> str:
        return self.call(self.client.upload_part, Bucket=self.bucket, Key=state.key, UploadId=state.upload_id,
                         PartNumber=number, Body=body, ContentLength=len(body))["ETag"]

    def resumable_append(self, state: Resumable, chunks: Iterator[bytes], on_chunk=None) -> Resumable:
        buffer = bytearray(state.tail)
        parts = list(state.parts or [])
        offset = state.offset
        for chunk in chunks:
            if on_chunk is not None:
                on_chunk(chunk)
            buffer += chunk
            offset += len(chunk)
            while len(buffer) >= self.part_size:
                # a part number once written is overwritten by a later PATCH
                # that starts from the same acknowledged state: never two copies
                parts.append(self._upload_part(state, len(parts) + 1, bytes(buffer[:self.part_size])))
                del buffer[:self.part_size]
        return Resumable(state.id, offset, state.key, state.upload_id, parts, bytes(buffer))

    def _complete_resumable(self, state: Resumable) -> None:
        parts = list(state.parts or [])
        if state.tail or not parts:
            parts.append(self._upload_part(state, len(parts) + 1, state.tail))
        self.call(self.client.complete_multipart_upload, Bucket=self.bucket, Key=state.key,
                  UploadId=state.upload_id,
                  MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(parts, 1)]})

    def resumable_staged(self, state: Resumable, sha256: bytes, head: bytes) -> StagedBlob:
        """Completed where its parts are: the store assembles the object."""
        if self._head(state.key) is None:
            self._complete_resumable(state)
        key = state.key
        return StagedBlob(sha256, state.offset, head, key=key, reader=lambda: self.open_key(key), owned=False)

    def resumable_open(self, state: Resumable) -> BinaryIO:
        if self._head(state.key) is None:
            self._complete_resumable(state)
        return self.open_key(state.key)

    def resumable_drop(self, state: Resumable) -> None:
        if state.upload_id:
            try:
                self.call(self.client.abort_multipart_upload, Bucket=self.bucket, Key=state.key,
                          UploadId=state.upload_id)
            except self.call.client_error as exc:
                if _code(exc) != "NoSuchUpload":
                    raise
        if state.key:
            self._delete_quietly(state.key)

    # -- reading -----------------------------------------------------------------------

    def content(self, sha256_hex: str) -> Content:
        key = self.key(sha256_hex)
        opener = lambda: self.open_key(key)  # noqa: E731
        if self.config.serve == "redirect":
            return Content(opener=opener, presign=lambda mimetype, disposition: self.presign(key, mimetype, disposition))
        return Content(opener=opener)

    def presign(self, key: str, mimetype: str, disposition: str) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentType": mimetype,
                    "ResponseContentDisposition": disposition},
            ExpiresIn=self.config.presign_expires,
        )

    def open(self, sha256: bytes) -> BinaryIO:
        return self.open_key(self.key(sha256.hex()))

    def open_key(self, key: str) -> BinaryIO:
        raw = ObjectReader(self, key)
        raw.start()  # a missing object raises here, not mid-response
        return io.BufferedReader(raw, _READ)

    def path(self, sha256: bytes) -> None:
        return None

    def size(self, sha256: bytes) -> int | None:
        head = self._head(self.key(sha256.hex()))
        return None if head is None else int(head["ContentLength"])

    # -- removal -------------------------------------------------------------------------

    def trash(self, sha256: bytes) -> str | None:
        final = self.key(sha256.hex())
        target = self._key(f"{TRASH_DIR}/{sha256.hex()}.{os.urandom(6).hex()}")
        head = self._head(final)
        if head is None:
            return None
        try:
            self._copy(final, target, int(head["ContentLength"]))
        except self.call.client_error as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                return None
            raise
        self.call(self.client.delete_object, Bucket=self.bucket, Key=final)
        return target

    def untrash(self, trashed: str, sha256: bytes) -> None:
        final = self.key(sha256.hex())
        head = self._head(trashed)
        if head is not None and self._head(final) is None:
            self._copy(trashed, final, int(head["ContentLength"]))
        self.purge(trashed)

    def purge(self, trashed: str) -> None:
        self.call(self.client.delete_object, Bucket=self.bucket, Key=trashed)

    # -- maintenance ---------------------------------------------------------------------

    def _list(self, prefix: str) -> Iterator[dict]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self.call(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))):
            yield from page.get("Contents", ())

    def _blob_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def iter_hashes(self) -> Iterator[bytes]:
        for obj in self._list(self._blob_prefix()):
            rest = obj["Key"][len(self._blob_prefix()):]
            parts = rest.split("/")
            if len(parts) == 3 and len(parts[2]) == 64 and parts[0] == parts[2][:2] and parts[1] == parts[2][2:4]:
                try:
                    yield bytes.fromhex(parts[2])
                except ValueError:
                    continue

    def mtime(self, sha256: bytes) -> float:
        head = self._head(self.key(sha256.hex()))
        if head is None:
            raise FileNotFoundError(sha256.hex())
        return head["LastModified"].timestamp()

    def trashed(self) -> list[tuple[str, bytes]]:
        out = []
        for obj in self._list(self._key(TRASH_DIR + "/")):
            name = obj["Key"].rsplit("/", 1)[-1].split(".", 1)[0]
            if len(name) == 64:
                out.append((obj["Key"], bytes.fromhex(name)))
        return out

    def _stale_staging(self, grace: float | None = None) -> tuple[list[str], list[tuple[str, str]]]:
        """Staging objects and multipart uploads old enough that no live
        upload still owns them: older than ``grace``, else than their own
        defaults (an hour for objects, a day for multipart uploads, which
        live as long as a slow upload streams in)."""
        now = datetime.now(timezone.utc)
        object_age = STALE_STAGING if grace is None else grace
        upload_age = STALE_MULTIPART if grace is None else grace
        # resumable uploads' objects and parts belong to their rows, which
        # expire on their own schedule (gc drops both)
        resumable = self._key(f"{STAGING_DIR}/{RESUMABLE_PREFIX}")
        objects = [
            obj["Key"] for obj in self._list(self._key(STAGING_DIR + "/"))
            if obj["LastModified"] <= now - timedelta(seconds=object_age) and not obj["Key"].startswith(resumable)
        ]
        uploads = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        pages = self.call(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(STAGING_DIR + "/"))))
        for page in pages:
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] <= now - timedelta(seconds=upload_age) and not upload["Key"].startswith(resumable):
                    uploads.append((upload["Key"], upload["UploadId"]))
        return objects, uploads

    def sweep_temp(self, grace: float | None = None) -> tuple[int, list[tuple[str, int]]]:
        removed = sweep_local_temp(self.temp_dir)
        objects, uploads = self._stale_staging(grace)
        for key in objects:
            self.call(self.client.delete_object, Bucket=self.bucket, Key=key)
        for key, upload_id in uploads:
            try:
                self.call(self.client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id)
            except self.call.client_error as exc:
                if _code(exc) != "NoSuchUpload":
                    raise
        # nothing is placed ahead of its rows under a second name here: an
        # object a crash left at its address is an orphan fsck finds by age
        return removed + len(objects) + len(uploads), []

    def unplace(self, sha256: bytes, fd: int) -> bool:
        return False

    def count_stale_temp(self, older_than: float = 3600.0) -> int:
        cutoff = time.time() - older_than
        local = sum(
            1 for entry in os.scandir(self.temp_dir)
            if entry.name.startswith("upload-") and entry.stat().st_mtime < cutoff
        )
        objects, uploads = self._stale_staging(older_than)
        return local + len(objects) + len(uploads)

    def probe_writable(self) -> None:
        """A scratch file and a tiny object, each made and removed: raises
        OSError when uploads could not be staged or stored."""
        fd, path = tempfile.mkstemp(prefix="probe-", dir=self.temp_dir)
        os.close(fd)
        os.unlink(path)
        key = self._key(f"{STAGING_DIR}/probe-{uuid.uuid4().hex}")
        try:
            self.call(self.client.put_object, Bucket=self.bucket, Key=key, Body=b"")
            self.call(self.client.delete_object, Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - readiness reports it
            raise OSError(f"the object store does not take writes: {exc}") from exc


class S3StagingWriter(StagingWriter):
    """Stages in a temp file on this node like the file store's writer
    (no fsync: the object store makes it durable), and streams full parts to
    a multipart upload as soon as the body outgrows one part."""

    def __init__(self, store: S3BlobStore, limit: int | None):
        self.store = store
        self._parts: PartStreamer | None = None
        super().__init__(store.temp_dir, limit, store.inline_max)

    def write(self, chunk) -> int:
        n = super().write(chunk)
        if self._writer is not None and self._writer.size >= 2 * self.store.part_size:
            # a whole part is on disk beyond the first: stream what is complete
            self._streamer().advance(self._writer.size)
        return n

    def _start_writeback(self) -> None:
        """The part streamer reads the file back: its pages stay cached until
        their part is sent (the streamer drops them then)."""

    def _streamer(self) -> "PartStreamer":
        if self._parts is None:
            self._parts = PartStreamer(self.store, self._fd)
        return self._parts

    def _seal(self, result: CopyResult) -> StagedBlob:
        key = None
        if result.size > self.store.part_size:
            streamer = self._streamer()
            key = streamer.finish(result.size)
        self._sealed_fd, self._fd = self._fd, -1
        return StagedBlob(result.digest, result.size, result.head, path=self.path, fd=self._sealed_fd, key=key)

    def abort(self) -> None:
        if self._parts is not None:
            self._parts.abort()
            self._parts = None
        super().abort()


class PartStreamer:
    """Sends the parts of a staged file to a multipart upload from a few
    background threads while the rest still arrives.  Each part is read back
    from the file as it is sent (its pages are in the cache): memory holds
    a read buffer per part in flight, not the parts."""

    def __init__(self, store: S3BlobStore, fd: int, in_flight: int = PARTS_IN_FLIGHT):
        self.store = store
        self.fd = fd
        self.key = store._staging_key()
        self.size = store.part_size
        self.upload_id = store.call(store.client.create_multipart_upload, Bucket=store.bucket, Key=self.key)["UploadId"]
        self.parts: list[dict] = []
        self.queued = 0  # bytes handed to the threads
        self.numbered = 0  # parts handed to the threads
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name="s3-parts", daemon=True) for _ in range(in_flight)]
        for thread in self._threads:
            thread.start()

    def advance(self, available: int, final: bool = False) -> None:
        """Queue every part wholly within the first ``available`` bytes
        (all of them, the last one short, when ``final``)."""
        if self.error is not None:
            raise self.error
        while available - self.queued >= self.size or (final and available > self.queued):
            length = min(self.size, available - self.queued)
            self.numbered += 1
            self._queue.put((self.numbered, self.queued, length))
            self.queued += length

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            number, offset, length = item
            try:
                etag = self.store.call(
                    self.store.client.upload_part, Bucket=self.store.bucket, Key=self.key,
                    UploadId=self.upload_id, PartNumber=number, Body=FileRange(self.fd, offset, length),
                    ContentLength=length,
                )["ETag"]
                self.parts.append({"PartNumber": number, "ETag": etag})
                drop_cached(self.fd, offset, length)
            except BaseException as exc:  # noqa: BLE001 - reported by advance/finish
                self.error = exc

    def _stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def finish(self, total: int) -> str:
        """Send what is left, complete the upload; the staging key."""
        self.advance(total, final=True)
        self._stop()
        if self.error is not None:
            raise self.error
        self.store.call(
            self.store.client.complete_multipart_upload, Bucket=self.store.bucket, Key=self.key,
            UploadId=self.upload_id, MultipartUpload={"Parts": sorted(self.parts, key=lambda p: p["PartNumber"])},
        )
        return self.key

    def abort(self) -> None:
        self._stop()
        try:
            self.store.call(self.store.client.abort_multipart_upload, Bucket=self.store.bucket, Key=self.key,
                            UploadId=self.upload_id)
        except Exception:  # noqa: BLE001 - the lifecycle rule and the sweep abort it later
            log.warning("could not abort multipart upload %s", self.key, exc_info=True)


class FileRange(io.RawIOBase):
    """``length`` bytes of a file from ``offset``, as a seekable file object
    read with pread (the signer reads a part once to hash it, then seeks
    back and the sender reads it again, a buffer at a time)."""

    def __init__(self, fd: int, offset: int, length: int):
        self.fd, self.offset, self.length = fd, offset, length
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.length - self.pos)
        if want <= 0:
            return 0
        data = os.pread(self.fd, want, self.offset + self.pos)
        if not data:
            raise OSError(f"staged file shorter than expected at {self.offset + self.pos}")
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def __len__(self) -> int:
        return self.length


class ObjectReader(io.RawIOBase):
    """A seekable read-only view of one object: each read continues one
    ranged GET; a seek elsewhere starts another on the next read."""

    def __init__(self, store: S3BlobStore, key: str):
        self.store = store
        self.key = key
        self.pos = 0
        self.length: int | None = None
        self._body = None
        self._body_pos = -1

    def start(self) -> None:
        self._open_at(0)

    def _open_at(self, pos: int) -> None:
        self._close_body()
        kwargs = {"Range": f"bytes={pos}-"} if pos else {}
        try:
            response = self.store.call(self.store.client.get_object, Bucket=self.store.bucket, Key=self.key, **kwargs)
        except self.store.call.client_error as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                raise FileNotFoundError(self.key) from None
            if _code(exc) == "InvalidRange":
                self._body, self._body_pos = None, pos
                return
            raise
        if self.length is None:
            content_range = response.get("ContentRange")
            self.length = int(content_range.rsplit("/", 1)[1]) if content_range else int(response["ContentLength"])
        self._body, self._body_pos = response["Body"], pos

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
        self._body = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self.pos + offset
        else:
            if self.length is None:
                self._open_at(self.pos)
            pos = self.length + offset
        if pos < 0:
            raise ValueError("negative seek position")
        self.pos = pos
        return pos

    def readinto(self, buffer) -> int:
        if self.length is not None and self.pos >= self.length:
            return 0
        if self._body is None or self._body_pos != self.pos:
            self._open_at(self.pos)
            if self._body is None:
                return 0
        try:
            data = self._body.read(len(buffer))
        except self.store.call.unreachable as exc:
            raise Unavailable(f"the object store stopped answering: {exc}") from exc
        n = len(data)
        buffer[:n] = data
        self.pos += n
        self._body_pos += n
        return n

    def close(self) -> None:
        self._close_body()
        super().close()

