"""One fake pipeline for the tests that need executions to really run without Ultralytics: a
definition shaped like ours (Train -> Evaluate -> CheckQuality -> Register | QualityGateFailed,
the shared parameters) whose code tarball holds tiny train.py / evaluate.py scripts.

The scripts follow the container contract (SM_MODEL_DIR, SM_CHANNEL_DATASET, --name value
arguments) and take a `mode`: `ok`, `crash` (an error after some output) or `sleep` (a minute,
to be stopped). Imported by tests/unit/cli/conftest.py, tests/unit/local/test_executor.py and the
functions' harness.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from yolopipe_shared import parameters
from yolopipe_shared.training_progress import METRIC_DEFINITIONS

TRAIN = """
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int); p.add_argument("--mode", default="ok"); p.add_argument("--checkpoint-dir")
a, _ = p.parse_known_args()
if a.mode == "crash":
    print("loading data", flush=True)
    raise RuntimeError("No valid images found in /opt/ml/input/data/dataset")
if a.mode == "sleep":
    time.sleep(60)
data = os.environ["SM_CHANNEL_DATASET"]
for e in range(1, a.epochs + 1):
    print(f"epoch {e}/{a.epochs} train_seconds=0.1 images_per_second=10.0 box_loss={2 / e:.3f} cls_loss=1.5 "
          f"dfl_loss=1.2 map50=0.5 map50_95={0.1 * e:.2f} best_epoch={e}", flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "best.pt"), "w") as f:
    f.write(open(os.path.join(data, "data.yaml")).read())
world = {"world": [os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["SM_CURRENT_HOST"]]
         } if "WORLD_SIZE" in os.environ else {}
json.dump({"hps": json.loads(os.environ["SM_HPS"]), "gpus": os.environ["SM_NUM_GPUS"], **world},
          open(os.path.join(os.environ["SM_MODEL_DIR"], "env.json"), "w"))
"""

EVALUATE = """
import argparse, json, os, tarfile
p = argparse.ArgumentParser()
p.add_argument("--model"); p.add_argument("--score", type=float); p.add_argument("--output")
a = p.parse_args()
with tarfile.open(a.model) as t:
    names = t.getnames()
assert "best.pt" in names, names
json.dump({"metrics": {"map50_95": a.score, "map50": 0.9, "precision": 0.8, "recall": 0.75},
           "per_class": [{"name": "square", "map50_95": a.score, "map50": 0.95, "precision": 0.85,
                          "recall": 0.8, "instances": 12},
                         {"name": "disc", "map50_95": 0.5, "map50": 0.85, "precision": 0.75, "recall": 0.7,
                          "instances": 9}],
           "split": "val"}, open(os.path.join(a.output, "evaluation.json"), "w"))
"""

CODE_KEY = "code/code.tar.gz"


def code_tarball() -> bytes:
    """The fake training code, as the deploy function would upload it."""
    return tarball({"train.py": TRAIN, "evaluate.py": EVALUATE, "requirements.txt": "ultralytics\n"})


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def shared_parameters(**defaults: Any) -> list[dict[str, Any]]:
    """Every shared pipeline parameter with its default (or the one given), as the definition declares it."""
    return [{"Name": spec.name, "Type": spec.sagemaker_type, "DefaultValue": defaults.get(spec.name, spec.default)}
            for spec in parameters.PARAMETERS]


def definition(bucket: str, role: str, *, score: float = 0.7, mode: str = "ok", **defaults: Any) -> dict[str, Any]:
    """The fake definition; `defaults` change parameter defaults (e.g. Epochs=2, DatasetS3Uri=...)."""
    metric = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                              "Path": "metrics.map50_95"}}
    code = f"s3://{bucket}/{CODE_KEY}"
    return {
        "Version": "2020-12-01",
        "Parameters": shared_parameters(**defaults),
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File",
                                           "MetricDefinitions": METRIC_DEFINITIONS},
                "HyperParameters": {
                    "epochs": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Epochs"}]}},
                    "mode": f'"{mode}"',
                    "sagemaker_program": '"train.py"',
                    "sagemaker_submit_directory": f'"{code}"',
                },
                "InputDataConfig": [{"ChannelName": "dataset", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": {"Get": "Parameters.DatasetS3Uri"}}}}],
                "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models"},
                "CheckpointConfig": {"S3Uri": f"s3://{bucket}/checkpoints/d", "LocalPath": "/opt/ml/checkpoints"},
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
                                            "-C /tmp/code; python3 -m pip install -q -r requirements.txt; "
                                            "exec python3 /tmp/code/evaluate.py \"$@\"", "evaluate"],
                    "ContainerArguments": ["--model", "/opt/ml/processing/model/model.tar.gz", "--score", str(score),
                                           "--output", "/opt/ml/processing/evaluation"]},
                "RoleArn": role,
                "ProcessingInputs": [
                    {"InputName": "code", "AppManaged": False, "S3Input": {
                        "S3Uri": code, "LocalPath": "/opt/ml/processing/code",
                        "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                    {"InputName": "model", "AppManaged": False, "S3Input": {
                        "S3Uri": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
                        "LocalPath": "/opt/ml/processing/model", "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "AppManaged": False, "S3Output": {
                    "S3Uri": {"Std:Join": {"On": "/", "Values": [f"s3://{bucket}/evaluations",
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


def definition_json(bucket: str, role: str, **options: Any) -> str:
    return json.dumps(definition(bucket, role, **options))


def empty_definition_json() -> str:
    """A definition with every shared parameter and no steps: what moto stores and never runs."""
    return json.dumps({"Version": "2020-12-01", "Parameters": shared_parameters(), "Steps": []})
