"""Harness for the functions' tests (fixtures in conftest.py): moto-backed AWS for the bucket,
pipeline, topic, secret and table named in events/*.json, the DynamoDB table built from
template.yaml's key schema (so tests cannot drift from the stack), handlers loaded fresh from
functions/<name>/app.py inside the mock, and a Slack stand-in on 127.0.0.1 that answers what a
test tells it to."""

from __future__ import annotations

import copy
import importlib.util
import json
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import fake_pipeline
import pytest
import yaml
from moto import mock_aws

REPO = Path(__file__).resolve().parents[3]
EVENTS = REPO / "events"
TEMPLATE = REPO / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "yolopipe-dev-123456789012-abcd1234"
PIPELINE = "yolopipe-dev-abcd1234"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/yolopipe-sagemaker"


class _CfnLoader(yaml.SafeLoader):
    """Reads template.yaml: CloudFormation's short tags (!Ref, !Sub...) become plain values."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)


def load_event(name: str) -> dict[str, Any]:
    """An event from events/ by name (the single source of payloads)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class LambdaContext:
    function_name: str = "yolopipe-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:yolopipe-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/yolopipe-test"
    log_stream_name: str = "test"
    function_version: str = "$LATEST"
    #: The function's timeout; the remaining time counts down from it, as the runtime's does.
    timeout_ms: int = 300_000
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


@dataclass
class Aws:
    """The moto resources the stack would have, plus what a subscriber to the topic receives."""

    s3: Any
    sagemaker: Any
    sns: Any
    sqs: Any
    dynamodb: Any
    secrets: Any
    table: str
    topic_arn: str
    inbox_url: str
    secret_arn: str

    def upload_dataset(self, root: Path, name: str, *, marker_last: bool = True) -> str:
        """Upload a local dataset folder to datasets/<name>/, data.yaml last; return its versionId."""
        files = sorted(p for p in root.rglob("*") if p.is_file())
        marker = root / "data.yaml"
        for path in files:
            if path != marker:
                self.s3.upload_file(str(path), BUCKET, f"datasets/{name}/{path.relative_to(root).as_posix()}")
        if marker.exists() and marker_last:
            return self.put(f"datasets/{name}/data.yaml", marker.read_bytes())
        return ""

    def put(self, key: str, body: bytes | str) -> str:
        data = body.encode() if isinstance(body, str) else body
        return str(self.s3.put_object(Bucket=BUCKET, Key=key, Body=data).get("VersionId", ""))

    def executions(self) -> list[dict[str, Any]]:
        return self.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]

    def execution_parameters(self, arn: str) -> dict[str, str]:
        items = self.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
        return {p["Name"]: p["Value"] for p in items}

    def inbox(self) -> list[dict[str, str]]:
        """Every message published to the topic so far (subject + body), as an email subscriber sees them."""
        messages = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return messages
            for m in got:
                body = json.loads(m["Body"])
                messages.append({"subject": body.get("Subject", ""), "message": body["Message"]})
                self.sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=m["ReceiptHandle"])


def _table_from_template(dynamodb: Any) -> str:
    props = template()["Resources"]["IdempotencyTable"]["Properties"]
    name = "yolopipe-idempotency"
    dynamodb.create_table(TableName=name, KeySchema=props["KeySchema"],
                          AttributeDefinitions=props["AttributeDefinitions"], BillingMode=props["BillingMode"])
    return name


def pipeline_definition() -> str:
    """A definition with every shared parameter (what moto stores; it never runs it)."""
    return fake_pipeline.empty_definition_json()


def _honour_client_request_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's rule that moto lacks: StartPipelineExecution with a ClientRequestToken already used for
    the pipeline returns that execution instead of starting another (atomically, as on AWS)."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.start_pipeline_execution
    started: dict[tuple[str, str], dict[str, str]] = {}
    lock = threading.Lock()

    def start(self: Any, pipeline_name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        token = kwargs.get("client_request_token") or (args[-1] if len(args) >= 5 else None)
        with lock:
            if token and (pipeline_name, token) in started:
                return started[(pipeline_name, token)]
            response = original(self, pipeline_name, *args, **kwargs)
            if token:
                started[(pipeline_name, token)] = response
            return response

    monkeypatch.setattr(SageMakerModelBackend, "start_pipeline_execution", start)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    _honour_client_request_token(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_pipeline(PipelineName=PIPELINE, RoleArn=ROLE_ARN, PipelineDefinition=pipeline_definition())
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name="yolopipe-dev-notifications")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        inbox_url = sqs.create_queue(QueueName="email-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = _table_from_template(dynamodb)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret_arn = secrets.create_secret(Name="yolopipe-slack", SecretString="set-me")["ARN"]
        monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
        monkeypatch.setenv("IDEMPOTENCY_TABLE", table)
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic_arn)
        monkeypatch.setenv("SLACK_SECRET_ARN", secret_arn)
        monkeypatch.setenv("AWS_REGION", REGION)
        yield Aws(s3, sagemaker, sns, sqs, dynamodb, secrets, table, topic_arn, inbox_url, secret_arn)


def load_handler(function: str) -> Any:
    """functions/<function>/app.py as a fresh module (module-scope clients built inside the mock)."""
    name = f"yolopipe_test_{function}_app_{uuid.uuid4().hex[:8]}"
    folder = str(REPO / "functions" / function)
    if folder not in sys.path:  # the function's own modules, as on Lambda
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, REPO / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def trigger(aws: Aws) -> Any:
    return load_handler("trigger")


@pytest.fixture
def notifier(aws: Aws) -> Any:
    return load_handler("notifier")


def marker_event(name: str, *, key: str | None = None, version: str | None = None) -> dict[str, Any]:
    """An events/ S3 event re-pointed at an object the test uploaded (key already URL-encoded)."""
    event = copy.deepcopy(load_event(name))
    obj = event["Records"][0]["s3"]["object"]
    if key is not None:
        obj["key"] = key
    if version is not None:
        obj["versionId"] = version
    return event


# --------------------------------------------------------------------------- Slack stand-in
@dataclass
class SlackServer:
    """A webhook on 127.0.0.1: answers each POST with the next scripted reply, the last one
    repeating, and keeps what it received. Replies: an HTTP status (429 carries `retry_after`),
    "hang" (200 after `hang_seconds`), "trickle" (a 200 reply one byte every `trickle_seconds`),
    "reset" (TCP reset, no reply), "garbage" (bytes that are not HTTP). `refused_url` is a port
    where nothing listens: connecting is refused."""

    url: str
    script: list[int | str]
    received: list[dict[str, Any]] = field(default_factory=list)
    hang_seconds: float = 3.0
    trickle_seconds: float = 1.0
    retry_after: str = "0"
    refused_url: str = ""

    def answer(self) -> int | str:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    server_state: dict[str, SlackServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            state = server_state["s"]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append(json.loads(body))
            reply = state.answer()
            if reply == "hang":
                time.sleep(state.hang_seconds)
                reply = 200
            try:
                if reply in ("reset", "garbage", "trickle"):
                    self.close_connection = True
                if reply == "reset":  # linger 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if reply == "garbage":
                    self.wfile.write(b"\x00\xffSSH-2.0-not-http\x7f\r\n\r\n")
                    return
                if reply == "trickle":
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                        self.wfile.write(bytes([byte]))
                        time.sleep(state.trickle_seconds)
                    return
                self.send_response(int(reply))
                if reply == 429:
                    self.send_header("Retry-After", state.retry_after)
                self.end_headers()
                self.wfile.write(b"ok" if reply == 200 else b"error")
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting: that was the point
                pass

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    # A secret-looking path: tests check it never reaches a log line.
    url = f"http://127.0.0.1:{httpd.server_address[1]}/services/T000/B000/XXXXSECRETXXXX"
    closed = socket.socket()  # bound, never listening: the kernel refuses connections to it
    closed.bind(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/services/T000/B000/XXXXSECRETXXXX"
    server_state["s"] = SlackServer(url=url, script=[200], refused_url=refused_url)
    # A short poll: shutdown() waits for it, once per test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server_state["s"]
    httpd.shutdown()
    httpd.server_close()
    closed.close()
