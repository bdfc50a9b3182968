"""Small files go to S3 by direct PUTs (yolopipe/direct_put.py): signed as S3 checks them, landing as
put_object would land them, and falling back to put_object whenever the direct path cannot follow."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.credentials import Credentials
from botocore.httpchecksum import Crc32Checksum
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from yolopipe.direct_put import MAX_FAILURES, DirectPut, crc32_header
from yolopipe.upload import upload_dataset

BUCKET = "yolopipe-direct-put"
#: Keys S3 and SigV4 quote in different places: spaces, '+', '&', '=', '%', '~', non-ASCII.
ODD_NAMES = ("a b.jpg", "plus+sign.jpg", "and&eq=.jpg", "pct%41.jpg", "tilde~.jpg", "Zébre ünï 猫.jpg")


def _dataset(root: Path) -> dict[str, bytes]:
    """data.yaml + odd-named images + labels; returns key suffix -> bytes."""
    files: dict[str, bytes] = {"data.yaml": b"path: .\ntrain: images\nval: images\nnames: [a]\n"}
    for index, name in enumerate(ODD_NAMES * 3):
        files[f"images/{index:02d}-{name}"] = os.urandom(300 + 97 * index)
        files[f"labels/{index:02d}-{Path(name).stem}.txt"] = f"0 0.5 0.5 0.{index + 1} 0.2\n".encode()
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return files


def _count_calls(s3: Any) -> list[str]:
    """Keys sent through put_object (botocore's full call path), in order."""
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.PutObject", lambda params, **_: calls.append(params["url_path"]))
    return calls


def test_crc32_header_is_the_checksum_botocore_sends() -> None:
    # GIVEN bodies of many sizes WHEN the direct path computes x-amz-checksum-crc32
    # THEN it is what botocore's own CRC32 checksum gives
    for size in (0, 1, 3, 4, 1000, 65537):
        body = os.urandom(size)
        botocore_crc = Crc32Checksum()
        botocore_crc.update(body)
        assert crc32_header(body) == botocore_crc.b64digest()


@set_initial_no_auth_action_count(4)
@mock_aws
def test_direct_puts_pass_s3s_signature_check_and_land_byte_for_byte(tmp_path: Path) -> None:
    # GIVEN S3 checking every request's SigV4 signature (after 4 setup calls), and a user allowed
    # only to list the bucket and put and get its objects
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="uploader")
    iam.put_user_policy(UserName="uploader", PolicyName="upload", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    key = iam.create_access_key(UserName="uploader")["AccessKey"]
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                      aws_secret_access_key=key["SecretAccessKey"])
    files = _dataset(tmp_path)
    calls = _count_calls(s3)
    # WHEN a dataset with odd file names is uploaded
    result = upload_dataset(s3, tmp_path, BUCKET, "odd", workers=4)
    # THEN every file landed under its own key with its bytes, its content type and S3's CRC32
    assert result.uploaded == len(files) and result.marker_written
    for rel, body in files.items():
        head = s3.head_object(Bucket=BUCKET, Key=f"datasets/odd/{rel}", ChecksumMode="ENABLED")
        assert s3.get_object(Bucket=BUCKET, Key=f"datasets/odd/{rel}")["Body"].read() == body
        if not rel.endswith(".yaml"):  # Python < 3.13 knows no type for .yaml: octet-stream either way
            assert head["ContentType"] == ("image/jpeg" if rel.endswith(".jpg") else "text/plain")
        assert head["ChecksumCRC32"] == crc32_header(body)
    # AND only the first file and data.yaml went through put_object: the rest were direct PUTs
    assert len(calls) == 2 and calls[-1].endswith("/data.yaml")


@mock_aws
def test_direct_puts_go_where_botocore_sends_put_object_signed_for_the_same_region(tmp_path: Path) -> None:
    # GIVEN a bucket in eu-west-1 and a client of that region; every PutObject request is recorded as it leaves
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sent: list[tuple[str, dict[str, str]]] = []
    s3.meta.events.register_first("before-send.s3.PutObject", lambda request, **_: sent.append(
        (request.url, {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})))
    files = _dataset(tmp_path)
    # WHEN the dataset is uploaded
    upload_dataset(s3, tmp_path, BUCKET, "eu", workers=4)
    # THEN every request, direct or not, goes to the host botocore chose, under the bucket's URL
    assert len(sent) == len(files)
    first_url, first_headers = sent[0]
    prefix = first_url[: first_url.index("/datasets/eu/")]
    assert prefix == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com"
    assert all(url.startswith(prefix + "/datasets/eu/") for url, _ in sent)
    scope = first_headers["authorization"].split("Credential=")[1].split(",")[0].split("/", 2)[2]
    assert scope.startswith("eu-west-1/s3/aws4_request")
    for _, headers in sent:
        # AND each is signed for that region, over every x-amz-* header it carries and its content type
        credential, signed = headers["authorization"].split("Credential=")[1].split(", SignedHeaders=")
        assert credential.split(",")[0].split("/", 2)[2] == scope
        signed_names = set(signed.split(",")[0].split(";"))
        assert {name for name in headers if name.startswith("x-amz-")} | {"content-type", "host"} <= signed_names
        # AND each carries the CRC32 S3 checks the body against
        assert headers["x-amz-sdk-checksum-algorithm"] == "CRC32" and headers.get("x-amz-checksum-crc32") or \
            headers.get("x-amz-trailer") == "x-amz-checksum-crc32"


@set_initial_no_auth_action_count(4)
@mock_aws
def test_a_direct_put_with_a_wrong_signature_is_refused_by_s3_and_counted(tmp_path: Path) -> None:
    # GIVEN the same signature-checking S3, and a direct route learnt from one good put_object
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="uploader")
    iam.put_user_policy(UserName="uploader", PolicyName="upload", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    key = iam.create_access_key(UserName="uploader")["AccessKey"]
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                      aws_secret_access_key=key["SecretAccessKey"])
    direct = DirectPut.learn(s3, "k/first", lambda: s3.put_object(Bucket=BUCKET, Key="k/first", Body=b"1"))
    assert direct is not None and direct.put("k/second", b"2", "text/plain")
    # WHEN its requests are signed with a wrong secret
    direct._credentials = Credentials(key["AccessKeyId"], "not-the-secret")
    # THEN S3 refuses each, put() says so, and after MAX_FAILURES the path is no longer usable
    for attempt in range(MAX_FAILURES):
        assert direct.usable
        assert not direct.put(f"k/bad{attempt}", b"3", "text/plain")
    assert not direct.usable


@mock_aws
def test_a_header_the_direct_path_would_not_send_keeps_every_file_on_put_object(tmp_path: Path) -> None:
    # GIVEN a client whose hook asks for server-side encryption on every PutObject
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)

    def encrypt(params: dict[str, Any], **_: Any) -> None:
        params["ServerSideEncryption"] = "aws:kms"

    s3.meta.events.register("provide-client-params.s3.PutObject", encrypt)
    files = _dataset(tmp_path)
    calls = _count_calls(s3)
    # WHEN the dataset is uploaded
    upload_dataset(s3, tmp_path, BUCKET, "sse", workers=4)
    # THEN every file went through put_object, so every object carries the encryption the hook asked for
    assert len(calls) == len(files)
    for rel in files:
        assert s3.head_object(Bucket=BUCKET, Key=f"datasets/sse/{rel}")["ServerSideEncryption"] == "aws:kms"


@mock_aws
def test_when_s3_refuses_direct_puts_every_file_still_lands_through_put_object(tmp_path: Path) -> None:
    # GIVEN S3 answering the first PUT of every image with 503 SlowDown
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    refused: set[str] = set()

    def slow_down(request: Any, **_: Any) -> AWSResponse | None:
        if ".jpg" in request.url and request.url not in refused:
            refused.add(request.url)
            return AWSResponse(request.url, 503, {}, _Raw(b"<Error><Code>SlowDown</Code></Error>"))
        return None

    s3.meta.events.register_first("before-send.s3.PutObject", slow_down)
    files = _dataset(tmp_path)
    # WHEN the dataset is uploaded
    result = upload_dataset(s3, tmp_path, BUCKET, "slow", workers=4)
    # THEN it completes: each refused file went again, with botocore's retries, and landed intact
    assert result.uploaded == len(files) and result.marker_written
    assert len(refused) == sum(rel.endswith(".jpg") for rel in files)
    for rel, body in files.items():
        assert s3.get_object(Bucket=BUCKET, Key=f"datasets/slow/{rel}")["Body"].read() == body


class _Raw:
    """The raw stream an AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:4566"])
def test_the_pinned_botocore_still_has_what_the_direct_path_reads(endpoint: str | None) -> None:
    # GIVEN the botocore this project pins WHEN a client is made (AWS or an emulator's endpoint)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="a",
                      aws_secret_access_key="b")
    # THEN the two internals the direct path uses exist (else every file would quietly take put_object)
    assert s3._request_signer._credentials is not None
    assert hasattr(s3._endpoint.http_session, "send")
