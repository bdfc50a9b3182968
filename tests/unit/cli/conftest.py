"""Fixtures for the CLI tests: run `yolopipe` in-process, an AWS account in moto with the stack's
outputs, and the local mode's emulator + executor for what moto cannot do (steps, stop, real
execution status)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from yolopipe.cli import main
from yolopipe_shared import parameters

BUCKET = "yolopipe-unit-cli"
PIPELINE = "yolopipe-unit-cli"
STACK = "yolopipe-unit"
ROLE_NAME = "yolopipe-unit-sagemaker"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _no_yolopipe_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, each test starts from none of the CLI's variables."""
    for name in ("YOLOPIPE_STACK", "YOLOPIPE_BUCKET", "YOLOPIPE_PIPELINE", "YOLOPIPE_LOCAL_ENDPOINT",
                 "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`cli("upload", path, "--name", "x")` -> Result(exit code, stdout, stderr), as a user sees them."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse usage errors and --help
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def definition_json(score: float = 0.7, mode: str = "ok") -> str:
    """A pipeline definition shaped like ours, with the shared parameters; tiny scripts as code."""
    return json.dumps(_definition(score, mode))


def shared_parameters_json() -> list[dict[str, Any]]:
    kinds = {"string": "String", "integer": "Integer", "float": "Float", "boolean": "Boolean"}
    return [{"Name": spec.name, "Type": kinds[spec.kind], "DefaultValue": spec.default}
            for spec in parameters.PARAMETERS]


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
        sagemaker.create_pipeline(PipelineName=PIPELINE, RoleArn=role, PipelineDefinition=json.dumps(
            {"Version": "2020-12-01", "Parameters": shared_parameters_json(), "Steps": []}))
        yield {"s3": boto3.client("s3"), "sagemaker": sagemaker, "role": role}


# --- the local mode's emulator: executions that really run ----------------------------------

TRAIN = """
import argparse, os, time
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=1); p.add_argument("--mode", default="ok")
p.add_argument("--checkpoint-dir")
a, _ = p.parse_known_args()
if a.mode == "sleep":
    time.sleep(60)
open(os.path.join(os.environ["SM_MODEL_DIR"], "best.pt"), "w").write("weights")
"""

EVALUATE = """
import argparse, json, os
p = argparse.ArgumentParser(); p.add_argument("--model"); p.add_argument("--score", type=float)
p.add_argument("--output")
a = p.parse_args()
json.dump({"metrics": {"map50_95": a.score, "map50": 0.9, "precision": 0.8, "recall": 0.75},
           "per_class": [{"name": "square", "map50_95": a.score, "map50": 0.95, "precision": 0.85,
                          "recall": 0.8, "instances": 12},
                         {"name": "disc", "map50_95": 0.5, "map50": 0.85, "precision": 0.75, "recall": 0.7,
                          "instances": 9}],
           "split": "val"}, open(os.path.join(a.output, "evaluation.json"), "w"))
"""


def _tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _definition(score: float, mode: str) -> dict[str, Any]:
    metric = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                              "Path": "metrics.map50_95"}}
    role = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
    return {
        "Version": "2020-12-01",
        "Parameters": shared_parameters_json(),
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
                "HyperParameters": {
                    "epochs": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Epochs"}]}},
                    "mode": f'"{mode}"',
                    "sagemaker_program": '"train.py"',
                    "sagemaker_submit_directory": f'"s3://{BUCKET}/code/code.tar.gz"',
                },
                "InputDataConfig": [{"ChannelName": "dataset", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": {"Get": "Parameters.DatasetS3Uri"}}}}],
                "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
                "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
                "StoppingCondition": {"MaxRuntimeInSeconds": 600},
                "RoleArn": role}},
            {"Name": "Evaluate", "Type": "Processing", "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                          "VolumeSizeInGB": 30}},
                "AppSpecification": {
                    "ImageUri": "image",
                    "ContainerEntrypoint": ["/bin/bash", "-c",
                                            "set -eu; mkdir -p /tmp/code; tar -xzf /opt/ml/processing/code/*.tar.gz "
                                            "-C /tmp/code; exec python3 /tmp/code/evaluate.py \"$@\"", "evaluate"],
                    "ContainerArguments": ["--model", "/opt/ml/processing/model/model.tar.gz", "--score", str(score),
                                           "--output", "/opt/ml/processing/evaluation"]},
                "RoleArn": role,
                "ProcessingInputs": [
                    {"InputName": "code", "AppManaged": False, "S3Input": {
                        "S3Uri": f"s3://{BUCKET}/code/code.tar.gz", "LocalPath": "/opt/ml/processing/code",
                        "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                    {"InputName": "model", "AppManaged": False, "S3Input": {
                        "S3Uri": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
                        "LocalPath": "/opt/ml/processing/model", "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "AppManaged": False, "S3Output": {
                    "S3Uri": {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}/evaluations",
                                                                {"Get": "Execution.PipelineExecutionId"}]}},
                    "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]}},
             "PropertyFiles": [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation",
                                "FilePath": "evaluation.json"}]},
            {"Name": "CheckQuality", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": metric,
                                "RightValue": {"Get": "Parameters.MinMap50_95"}}],
                "IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {
                    "ModelPackageGroupName": {"Get": "Parameters.ModelPackageGroupName"},
                    "ModelApprovalStatus": "PendingManualApproval",
                    "InferenceSpecification": {
                        "Containers": [{"Image": "image",
                                        "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}],
                        "SupportedContentTypes": ["image/jpeg"], "SupportedResponseMIMETypes": ["application/json"]}}}],
                "ElseSteps": [{"Name": "QualityGateFailed", "Type": "Fail", "Arguments": {"ErrorMessage": {
                    "Std:Join": {"On": " ", "Values": ["map50_95", metric, "<",
                                                       {"Get": "Parameters.MinMap50_95"}]}}}}]}},
        ],
    }


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
        code = _tarball({"train.py": TRAIN, "evaluate.py": EVALUATE})
        s3.put_object(Bucket=BUCKET, Key="code/code.tar.gz", Body=code)
        s3.put_object(Bucket=BUCKET, Key="datasets/d/data.yaml", Body=b"names: [square, disc]\n")
        group = str(parameters.BY_NAME["ModelPackageGroupName"].default)
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        role = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
        for name, score, mode in (("good", 0.7, "ok"), ("poor", 0.25, "ok"), ("slow", 0.7, "sleep")):
            sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=definition_json(score, mode), RoleArn=role)
        executor = LocalExecutor(s3, sagemaker, tmp_path / "jobs")
        emulator.attach(executor)
        yield {"endpoint": emulator.endpoint_url, "s3": s3, "sagemaker": sagemaker, "executor": executor,
               "args": ("--endpoint-url", emulator.endpoint_url, "--bucket", BUCKET)}
