"""The session ``rgw`` fixture: a throwaway Ceph RADOS Gateway that speaks
the parts of S3 the blob store relies on."""
from __future__ import annotations

import base64
import hashlib
import os
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def s3(rgw):
    client = rgw.client()
    yield client
    client.close()


@pytest.fixture
def bucket(s3):
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def error_code(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_is_listed(s3, bucket):
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_put_get_round_trip(s3, bucket):
    data = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="blob", Body=data)
    got = s3.get_object(Bucket=bucket, Key="blob")
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data)
    assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_multipart_upload_of_two_parts(s3, bucket):
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    done = []
    for number, part in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=number, Body=part
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["ContentLength"] == len(parts[0]) + 1
    assert got["Body"].read() == b"".join(parts)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_content_md5_mismatch_is_refused(s3, bucket):
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="k", Body=b"payload", ContentMD5=wrong)
    assert error_code(excinfo) == ("BadDigest", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_code(excinfo)[1] == 404
    right = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload", ContentMD5=right)


def put_if_absent(s3, **kw):
    """PutObject with ``If-None-Match: *``: the IfNoneMatch parameter where
    botocore has it (1.35 and later), the header by hand before."""
    if "IfNoneMatch" in s3.meta.service_model.operation_model("PutObject").input_shape.members:
        return s3.put_object(IfNoneMatch="*", **kw)

    def add_header(request, **_):
        request.headers["If-None-Match"] = "*"

    s3.meta.events.register_first("before-sign.s3.PutObject", add_header)
    try:
        return s3.put_object(**kw)
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", add_header)


def test_if_none_match_refuses_to_overwrite(s3, bucket):
    put_if_absent(s3, Bucket=bucket, Key="once", Body=b"first")
    with pytest.raises(ClientError) as excinfo:
        put_if_absent(s3, Bucket=bucket, Key="once", Body=b"second")
    assert error_code(excinfo)[1] == 412
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_if_none_match_through_an_event_hook(rgw, bucket):
    """The header added by hand, as clients without the IfNoneMatch
    parameter (boto3 < 1.35) would send it."""
    s3 = rgw.client()

    def add_header(request, **_):
        request.headers["If-None-Match"] = "*"

    s3.meta.events.register("before-sign.s3.PutObject", add_header)
    try:
        s3.put_object(Bucket=bucket, Key="hooked", Body=b"first")
        with pytest.raises(ClientError) as excinfo:
            s3.put_object(Bucket=bucket, Key="hooked", Body=b"second")
        assert error_code(excinfo)[1] == 412
    finally:
        s3.close()


def test_lifecycle_abort_incomplete_multipart_upload(s3, bucket):
    rules = [
        {
            "ID": "abort-stale-uploads",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert len(got) == 1
    assert got[0]["ID"] == "abort-stale-uploads"
    assert got[0]["Status"] == "Enabled"
    assert got[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_daemons_are_children_in_groups_of_their_own(rgw):
    pids = rgw.pids()
    assert set(pids) == {"mon.a", "osd.0", "client.rgw"}
    for pid in pids.values():
        assert os.getpgid(pid) == pid
