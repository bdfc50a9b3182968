"""Fixtures for the CLI tests: run `yolopipe` in-process, an AWS account in moto with the stack's
outputs, and the local mode's emulator + executor for what moto cannot do (steps, stop, real
execution status)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import fake_pipeline
import pytest
from moto import mock_aws

from yolopipe_shared import parameters

BUCKET = "yolopipe-unit-cli"
PIPELINE = "yolopipe-unit-cli"
STACK = "yolopipe-unit"
ROLE_NAME = "yolopipe-unit-sagemaker"


@pytest.fixture(autouse=True)
def _no_yolopipe_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, each test starts from none of the CLI's variables."""
    for name in ("YOLOPIPE_STACK", "YOLOPIPE_BUCKET", "YOLOPIPE_PIPELINE", "YOLOPIPE_LOCAL_ENDPOINT",
                 "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def definition_json(score: float = 0.7, mode: str = "ok") -> str:
    """Our pipeline's shape with the fake training code (tests/fake_pipeline.py)."""
    return fake_pipeline.definition_json(BUCKET, f"arn:aws:iam::123456789012:role/{ROLE_NAME}", score=score, mode=mode)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto: the stack `yolopipe-unit` (outputs: bucket and pipeline), its bucket, its pipeline and role."""
    monkeypatch.setenv("YOLOPIPE_STACK", STACK)
    with mock_aws():
        iam = boto3.client("iam")
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                           "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        template = {
            "Resources": {"DatasetsBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}}},
            "Outputs": {"DatasetsBucketName": {"Value": {"Ref": "DatasetsBucket"}},
                        "PipelineName": {"Value": PIPELINE}},
        }
        boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_pipeline(PipelineName=PIPELINE, RoleArn=role,
                                  PipelineDefinition=fake_pipeline.empty_definition_json())
        yield {"s3": boto3.client("s3"), "sagemaker": sagemaker, "role": role}


# --- the local mode's emulator: executions that really run ----------------------------------

@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The local mode's emulator on 127.0.0.1 with our pipelines deployed: `good` (scores 0.7),
    `poor` (0.25, fails the 0.5 gate) and `slow` (training sleeps a minute, to be stopped).
    The CLI reaches it through --endpoint-url, like any AWS-compatible endpoint."""
    from yolopipe.local.emulator import Emulator
    from yolopipe.local.scheduler import LocalExecutor

    with Emulator() as emulator:
        for name, value in emulator.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL")  # the tests pass --endpoint-url themselves
        s3, sagemaker = emulator.client("s3"), emulator.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=fake_pipeline.CODE_KEY, Body=fake_pipeline.code_tarball())
        s3.put_object(Bucket=BUCKET, Key="datasets/d/data.yaml", Body=b"names: [square, disc]\n")
        group = str(parameters.BY_NAME["ModelPackageGroupName"].default)
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        role = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
        for name, score, mode in (("good", 0.7, "ok"), ("poor", 0.25, "ok"), ("slow", 0.7, "sleep")):
            sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=definition_json(score, mode), RoleArn=role)
        executor = LocalExecutor(s3, sagemaker, tmp_path / "jobs", logs=emulator.client("logs"))
        emulator.attach(executor)
        yield {"endpoint": emulator.endpoint_url, "s3": s3, "sagemaker": sagemaker, "executor": executor,
               "args": ("--endpoint-url", emulator.endpoint_url, "--bucket", BUCKET)}
