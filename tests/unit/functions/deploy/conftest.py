"""Deploy function harness: the function built by its own Makefile (`make build-DeployFunction`, as
`sam build` runs it) and loaded from the build folder as Lambda loads it, moto for S3 and SageMaker,
and a stand-in for CloudFormation's pre-signed response URL: a real HTTP server on 127.0.0.1 that
records every PUT and can answer 500 or refuse connections for a while."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from deploy_harness import ACCOUNT, BUCKET, PIPELINE, REGION, ROLE_ARN, Context, load_function
from moto import mock_aws

REPO = Path(__file__).resolve().parents[4]
DEPLOY_DIR = REPO / "functions" / "deploy"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `sam build` makes of functions/deploy: its Makefile run with ARTIFACTS_DIR."""
    folder = tmp_path_factory.mktemp("DeployFunction")
    process = subprocess.run(
        ["make", "--no-print-directory", "-f", str(DEPLOY_DIR / "Makefile"), "build-DeployFunction",
         f"ARTIFACTS_DIR={folder}", f"PY={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return folder


@dataclass
class CloudFormation:
    """Records what is PUT to the response URL, like the S3 object CloudFormation reads would."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    puts: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    #: Answer the next PUTs with `fail_status` instead of taking them.
    fail_next: int = 0
    fail_status: int = 500
    server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/presigned?X-Amz-Signature=abc"

    def event(self, request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A custom resource request as CloudFormation sends it."""
        event = {
            "RequestType": request_type,
            "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:yolopipe-deploy",
            "ResponseURL": self.url,
            "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/yolopipe-dev/abcd1234-0000",
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "Pipeline",
            "ResourceType": "Custom::YolopipePipeline",
            "ResourceProperties": {"ServiceToken": "arn:...", **properties},
        }
        event.update(extra)
        return event

    def start(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 (http.server naming)
                payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.puts += 1
                if recorder.fail_next > 0:
                    recorder.fail_next -= 1
                    self.send_response(recorder.fail_status)
                    self.end_headers()
                    return
                recorder.raw.append(payload)
                recorder.answers.append(json.loads(payload))
                recorder.arrived.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_port
        # A short poll: stop() (shutdown) waits for it, once per test.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def down_for(self, seconds: float) -> None:
        """Refuse connections (nothing listens on the port) for `seconds`, then take answers again."""
        self.stop()
        timer = threading.Timer(seconds, self.start)
        timer.daemon = True
        timer.start()


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    recorder = CloudFormation()
    recorder.start()
    yield recorder
    time.sleep(0.05)
    recorder.stop()


@dataclass
class Aws:
    s3: Any
    sagemaker: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield Aws(s3=s3, sagemaker=boto3.client("sagemaker", region_name=REGION))


@pytest.fixture
def properties() -> dict[str, Any]:
    """The properties template.yaml gives the Pipeline custom resource."""
    return {
        "ServiceTimeout": "600",
        "CodeVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:yolopipe-deploy:1",
        "ContainerImageAccountId": "",
        "PipelineName": PIPELINE,
        "RoleArn": ROLE_ARN,
        "Bucket": BUCKET,
        "Region": REGION,
        "CodePrefix": "code/",
        "ArtifactsPrefix": "artifacts/",
        "CheckpointsPrefix": "checkpoints/",
        "DefaultTrainingInstanceType": "ml.g5.xlarge",
        "MinMap50_95": "0.6",
        "UseSpotInstances": "true",
        "ModelPackageGroupName": f"{PIPELINE}-models",
        "EnvironmentName": "dev",
    }


@pytest.fixture
def function(aws: Aws, build_dir: Path) -> ModuleType:
    """The built deploy function, loaded as Lambda loads it (its clients go to moto)."""
    return load_function(build_dir)


@pytest.fixture
def deploy(function: ModuleType) -> Callable[..., dict[str, Any]]:
    """`deploy(event, context=...)`: one invocation of the function's handler, as Lambda makes it."""

    def invoke(event: dict[str, Any], *, context: Any = None) -> dict[str, Any]:
        return function.lambda_handler(event, context or Context())

    return invoke


@pytest.fixture
def rebuild(build_dir: Path, tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """A copy of the build with some of its artifacts replaced: {file name: text or bytes}."""
    count = itertools.count()

    def make(files: dict[str, str | bytes]) -> Path:
        folder = tmp_path / f"build-{next(count)}"
        shutil.copytree(build_dir, folder)
        for name, content in files.items():
            if isinstance(content, bytes):
                (folder / name).write_bytes(content)
            else:
                (folder / name).write_text(content)
        return folder

    return make
