"""Small files go to S3 by direct PUTs (yolopipe/direct_put.py): signed as S3 checks them, landing as
put_object would land them, and falling back to put_object whenever the direct path cannot follow."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials
from botocore.httpchecksum import Crc32Checksum
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from yolopipe.direct_put import MAX_FAILURES, DirectPut, crc32_header, sign_put
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


def _uploader(statements: list[dict[str, Any]]) -> tuple[Any, str]:
    """The bucket, and an S3 client of an IAM user with only these statements (4 calls: under
    set_initial_no_auth_action_count(4), every later request has its signature checked)."""
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="uploader")
    iam.put_user_policy(UserName="uploader", PolicyName="upload",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName="uploader")["AccessKey"]
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                        aws_secret_access_key=key["SecretAccessKey"]), key["AccessKeyId"]


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


@pytest.mark.parametrize(("url", "token", "sign_payload"), [
    (f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/datasets/x/images/{quote('Zébre ünï 猫 a+b&c=%.jpg', safe='/~')}",
     None, False),
    (f"https://{BUCKET}.s3.us-east-1.amazonaws.com:443/datasets/x/labels/a%20b.txt", "session-token", False),
    ("http://127.0.0.1:4566/yolopipe-direct-put/datasets/x/tilde~.jpg", None, True),
    ("http://localhost:80/yolopipe-direct-put/datasets/x/a.jpg", "tok", True),
])
def test_the_direct_signature_is_the_one_botocore_computes(url: str, token: str | None, sign_payload: bool) -> None:
    # GIVEN a PUT as the direct path builds it (odd keys, a session token, HTTPS or HTTP, a default port)
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = os.urandom(777)
    headers = {"Content-Type": "image/jpeg", "x-amz-sdk-checksum-algorithm": "CRC32",
               "x-amz-checksum-crc32": crc32_header(body)}
    region = "eu-west-1" if "eu-west-1" in url else "us-east-1"
    # WHEN it is signed
    sign_put(url, body, headers, credentials, region, sign_payload=sign_payload, amz_date="20261130T120000Z")
    # THEN botocore's own S3 signer, on the same request and time, gets the same signed headers and signature
    auth = S3SigV4Auth(credentials, "s3", region)
    request = AWSRequest(method="PUT", url=url, data=body,
                         headers={k: v for k, v in headers.items() if k not in ("Authorization", "Host")})
    request.context["timestamp"] = "20261130T120000Z"
    signed_headers = auth.signed_headers(auth.headers_to_sign(request))
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert headers["Authorization"] == (f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/{region}/s3/aws4_request, "
                                        f"SignedHeaders={signed_headers}, Signature={signature}")
    # AND the payload is SHA-256-signed on HTTP and left unsigned on HTTPS with its checksum, as botocore does
    assert headers["X-Amz-Content-SHA256"] == (hashlib.sha256(body).hexdigest() if sign_payload else "UNSIGNED-PAYLOAD")


@set_initial_no_auth_action_count(4)
@mock_aws
def test_direct_puts_pass_s3s_signature_check_and_land_byte_for_byte(tmp_path: Path) -> None:
    # GIVEN S3 checking every request's SigV4 signature (after 4 setup calls), and a user allowed
    # only to list the bucket and put and get its objects
    s3, _ = _uploader([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
                       {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
                        "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
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
    s3, access_key_id = _uploader([{"Effect": "Allow", "Action": "s3:PutObject",
                                    "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
    direct = DirectPut.learn(s3, "k/first", lambda: s3.put_object(Bucket=BUCKET, Key="k/first", Body=b"1"))
    assert direct is not None and direct.put("k/second", b"2", "text/plain")
    # WHEN its requests are signed with a wrong secret
    direct._credentials = Credentials(access_key_id, "not-the-secret")
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
            return AWSResponse(request.url, 503, {}, _Raw(b"<Error><Code>SlowDown</Code></Error>"))  # type: ignore[arg-type]
        return None

    s3.meta.events.register_first("before-send.s3.PutObject", slow_down)  # type: ignore[arg-type]
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
    s3: Any = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="a",
                           aws_secret_access_key="b")
    # THEN the two internals the direct path uses exist (else every file would quietly take put_object)
    assert s3._request_signer._credentials is not None
    assert hasattr(s3._endpoint.http_session, "send")


# --- on the wire: moto's S3 server over HTTP and over TLS ------------------------------------------

def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): cert.pem, key.pem."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def s3_server(tmp_path: Path) -> Any:
    """moto's S3 as a server on 127.0.0.1: start(tls) -> endpoint URL; its certificate in tmp_path/server.pem,
    its TLS context in start.contexts."""
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    servers: list[Any] = []

    def start(tls: bool) -> str:
        context = None
        if tls:
            import ssl

            cert, key = _certificate(tmp_path, "server")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
        server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), True,
                             request_handler=MotoRequestHandler, ssl_context=context)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        contexts.append(context)
        return f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"

    contexts: list[Any] = []
    start.contexts = contexts  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_direct_puts_on_the_wire_land_byte_for_byte(s3_server: Any, tmp_path: Path, tls: bool) -> None:
    # GIVEN S3 as a server (over TLS: a certificate the client trusts through its `verify` CA bundle)
    endpoint = s3_server(tls)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a",
                      aws_secret_access_key="b", verify=str(tmp_path / "server.pem") if tls else None)
    bucket = f"{BUCKET}-{'tls' if tls else 'plain'}"  # one moto server state for the whole process
    s3.create_bucket(Bucket=bucket)
    files = _dataset(tmp_path / "data")
    calls = _count_calls(s3)
    # WHEN the dataset is uploaded
    result = upload_dataset(s3, tmp_path / "data", bucket, "wire", workers=4)
    # THEN every file landed with its bytes and only the first and data.yaml took put_object
    assert result.uploaded == len(files)
    for rel, body in files.items():
        assert s3.get_object(Bucket=bucket, Key=f"datasets/wire/{rel}")["Body"].read() == body
    assert len(calls) == 2


def test_direct_puts_never_skip_the_tls_check(s3_server: Any, tmp_path: Path) -> None:
    from botocore.exceptions import SSLError

    # GIVEN S3 over TLS whose certificate the client trusts, until a man in the middle with another
    # certificate answers the connections opened after the first file
    endpoint = s3_server(True)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a",
                      aws_secret_access_key="b", verify=str(tmp_path / "server.pem"))
    bucket = f"{BUCKET}-mitm"
    s3.create_bucket(Bucket=bucket)
    other_cert, other_key = _certificate(tmp_path, "other")

    def man_in_the_middle(files: int, size: int) -> None:
        s3_server.contexts[0].load_cert_chain(other_cert, other_key)

    files = _dataset(tmp_path / "data")
    # WHEN the dataset is uploaded
    # THEN the direct PUTs refuse the certificate as put_object does, the upload fails on it,
    # and nothing after the first file was sent
    with pytest.raises(SSLError):
        upload_dataset(s3, tmp_path / "data", bucket, "mitm", workers=4, progress=man_in_the_middle)
    s3_server.contexts[0].load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    reader = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a",
                          aws_secret_access_key="b", verify=str(tmp_path / "server.pem"))
    assert reader.list_objects_v2(Bucket=bucket)["KeyCount"] == 1 < len(files)


@mock_aws
def test_put_object_of_a_small_file_skips_the_100_continue_round_trip_over_https() -> None:
    from yolopipe.upload import without_small_expect_continue

    # GIVEN an HTTPS client (botocore sends bodies aws-chunked with a CRC32 trailer there)
    s3 = without_small_expect_continue(boto3.client("s3", region_name="us-east-1"))
    s3.create_bucket(Bucket=BUCKET)
    sent: dict[str, dict[str, Any]] = {}
    s3.meta.events.register_first("before-send.s3.PutObject",
                                  lambda request, **_: sent.update({request.url.rsplit("/", 1)[1]: request.headers}))
    # WHEN a small and a large body go through put_object (the first file, the marker, any fallback)
    s3.put_object(Bucket=BUCKET, Key="small", Body=b"x" * 1000)
    s3.put_object(Bucket=BUCKET, Key="large", Body=b"x" * (3 * 1024 * 1024))
    # THEN the small one does not wait a round trip for "100 Continue"; the large one still may
    assert sent["small"].get("X-Amz-Decoded-Content-Length") == b"1000" or \
        sent["small"].get("X-Amz-Decoded-Content-Length") == "1000"
    assert "Expect" not in sent["small"] and "Expect" in sent["large"]


def test_a_kept_connection_the_server_dropped_is_opened_again_and_a_dead_server_is_an_error() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from yolopipe.direct_put import _Connections

    received: list[bytes] = []

    class KeepAliveThenDrop(BaseHTTPRequestHandler):
        """Keeps each connection open, then drops it without a word after its second request (as S3 does
        with idle connections)."""

        protocol_version = "HTTP/1.1"
        served = 0

        def do_PUT(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.served += 1
            self.close_connection = self.served == 2

        def log_message(self, *_: Any) -> None:
            pass

    # GIVEN such a server and the direct path's connections to it
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveThenDrop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connections = _Connections("http", "127.0.0.1", server.server_port, (5.0, 5.0), None)
    # WHEN ten PUTs go one after the other from one thread
    statuses = [connections.put(f"/b/k{i}", f"body{i}".encode(), {"Content-Type": "text/plain"})
                for i in range(10)]
    # THEN each landed once, in order: a dropped connection was opened again, nothing was lost or doubled
    assert statuses == [200] * 10
    assert received == [f"body{i}".encode() for i in range(10)]
    # AND once the server is gone, a PUT is an error (the caller sends the file through put_object)
    server.shutdown()
    server.server_close()
    connections._drop()
    with pytest.raises(OSError):
        connections.put("/b/k", b"x", {"Content-Type": "text/plain"})
