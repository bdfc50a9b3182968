"""Deploy function harness: its module loaded from functions/deploy, build-time assets made the way
`make build-DeployFunction` makes them, moto for S3 and SageMaker, and a stand-in for
CloudFormation's pre-signed response URL on 127.0.0.1 that records every answer."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from deploy_harness import ACCOUNT, BUCKET, PIPELINE, REGION, ROLE_ARN, Context
from moto import mock_aws

REPO = Path(__file__).resolve().parents[3]
DEPLOY_DIR = REPO / "functions" / "deploy"


@pytest.fixture(scope="session")
def assets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the build puts next to app.py: the rendered template and the code tarball."""
    from pipeline.code_bundle import build_bundle
    from pipeline.render import render_definition

    folder = tmp_path_factory.mktemp("deploy-assets")
    (folder / "pipeline_definition.json").write_text(render_definition())
    (folder / "training_code.tar.gz").write_bytes(build_bundle().data)
    return folder


@pytest.fixture(scope="session")
def deploy_app() -> Any:
    """functions/deploy/app.py as a module (its siblings importable, as in the Lambda package)."""
    sys.path.insert(0, str(DEPLOY_DIR))
    spec = importlib.util.spec_from_file_location("yolopipe_deploy_app", DEPLOY_DIR / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class CloudFormation:
    """Records the bodies PUT to the response URL, like CloudFormation's S3 bucket would."""

    url: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

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


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    recorder: CloudFormation

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 (http.server naming)
            length = int(self.headers.get("Content-Length", 0))
            recorder.answers.append(json.loads(self.rfile.read(length)))
            recorder.arrived.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder = CloudFormation(url=f"http://127.0.0.1:{server.server_port}/presigned?X-Amz-Signature=abc")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()


@dataclass
class Aws:
    s3: Any
    sagemaker: Any


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield Aws(s3=s3, sagemaker=boto3.client("sagemaker", region_name=REGION))


@pytest.fixture
def properties() -> dict[str, Any]:
    """The properties template.yaml gives the Pipeline custom resource."""
    return {
        "PipelineName": PIPELINE,
        "RoleArn": ROLE_ARN,
        "Bucket": BUCKET,
        "Region": REGION,
        "CodePrefix": "code/",
        "ArtifactsPrefix": "artifacts/",
        "CheckpointsPrefix": "checkpoints/",
        "DefaultTrainingInstanceType": "ml.g5.xlarge",
        "MinMap50_95": "0.6",
        "ModelPackageGroupName": f"{PIPELINE}-models",
        "EnvironmentName": "dev",
    }


@pytest.fixture
def deploy(deploy_app: Any, aws: Aws, assets_dir: Path) -> Any:
    """`deploy(event, context=..., sagemaker=..., assets=...)`: the function as Lambda would run it."""

    def run(event: dict[str, Any], *, context: Any = None, sagemaker: Any = None, assets: Path | None = None) -> Any:
        return deploy_app.respond(
            event, context or Context(), sagemaker or aws.sagemaker, aws.s3, assets_dir=assets or assets_dir
        )

    return run
