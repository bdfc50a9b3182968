"""What CloudFormation and `sam build` do for the local stack: build the deploy function as its
Makefile does (rendered definition + code tarball), send it the custom resource's Create request,
and give each function the process environment Lambda would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yolopipe_shared import parameters
from yolopipe_shared.errors import YolopipeError

from .emulator import Emulator
from .lambdas import invoke
from .stack import REPO_ROOT, FunctionSpec, LocalStack

ROLE_ARN = "arn:aws:iam::123456789012:role/yolopipe-local-sagemaker"
#: Parameters that are the stack's to set (deploy custom resource property -> pipeline parameter);
#: the others a run sets per dataset, in yolopipe.yaml beside data.yaml, as a user would.
STACK_PROPERTIES = {"MinMap50_95": "MinMap50_95", "MinImprovement": "MinImprovement",
                    "TrainingInstanceType": "DefaultTrainingInstanceType", "Weights": "DefaultWeights",
                    "MlflowTrackingUri": "MlflowTrackingUri"}


class LocalRunError(YolopipeError):
    """Local mode could not run (not the pipeline failing: that is a result)."""


def process_env(emulator: Emulator) -> dict[str, str]:
    """A function's process environment: like Lambda's, nothing inherited but the basics."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **emulator.environment()}


def job_env(work: Path) -> dict[str, str]:
    """Every job process: offline Ultralytics with a settings folder of its own."""
    return {"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "ultralytics"), "MPLBACKEND": "Agg"}


def build_deploy_function(target: Path, python: str = sys.executable) -> FunctionSpec:
    """What `sam build` makes of functions/deploy (its Makefile's build-DeployFunction): the
    function's code, the rendered definition JSON, the region -> image account table and the
    training-code tarball, in one folder."""
    from pipeline import code_bundle

    source = REPO_ROOT / "functions" / "deploy"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.py"):
        shutil.copy(path, target / path.name)
    cached = _render_cache()
    outputs = {"pipeline_definition.json": cached / "pipeline_definition.json",
               "image_accounts.json": cached / "image_accounts.json"}
    if not all(path.is_file() for path in outputs.values()):
        rendered = subprocess.run([python, "-m", "pipeline.render", "--output", str(target / "rendered.json"),
                                   "--image-accounts", str(target / "accounts.json")],
                                  cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if rendered.returncode != 0:
            message = (rendered.stderr.strip().splitlines() or ["no output"])[-1]
            raise LocalRunError(f"rendering the pipeline definition failed: {message}")
        cached.mkdir(parents=True, exist_ok=True)
        os.replace(target / "accounts.json", outputs["image_accounts.json"])
        os.replace(target / "rendered.json", outputs["pipeline_definition.json"])
    for name, path in outputs.items():
        shutil.copy(path, target / name)
    (target / "training_code.tar.gz").write_bytes(code_bundle.build_bundle().data)
    return FunctionSpec(logical_id="DeployFunction", code_dir=target, handler="app.lambda_handler",
                        environment={}, timeout=300)


def _render_cache() -> Path:
    """Where the rendered definition of these sources is kept: rendering imports the SageMaker SDK
    (seconds), and the same sources always render the same JSON (a test of pipeline/render.py holds that)."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256(version("sagemaker").encode())
    sources = [REPO_ROOT / "pipeline" / "definition.py", REPO_ROOT / "pipeline" / "render.py",
               *sorted((REPO_ROOT / "functions" / "shared" / "yolopipe_shared").glob("*.py"))]
    for path in sources:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return Path(tempfile.gettempdir()) / "yolopipe-local-cache" / f"render-{digest.hexdigest()[:16]}"


def deploy_pipeline(emulator: Emulator, stack: LocalStack, work: Path, stack_parameters: Mapping[str, Any]) -> str:
    """CloudFormation's part: the custom resource's Create request, answered by functions/deploy."""
    function = build_deploy_function(work / "deploy")
    properties = {
        "PipelineName": stack.pipeline_name, "RoleArn": ROLE_ARN, "Bucket": stack.bucket, "Region": stack.region,
        "CodePrefix": "code/", "ModelPackageGroupName": stack.model_package_group, "EnvironmentName": "local",
        **{STACK_PROPERTIES[k]: parameters.BY_NAME[k].to_string(v) for k, v in stack_parameters.items()},
    }
    event = {"RequestType": "Create", "RequestId": str(uuid.uuid4()), "LogicalResourceId": "Pipeline",
             "ResourceType": "Custom::YolopipePipeline", "StackId": "local", "ResourceProperties": properties}
    env = {**process_env(emulator), "POWERTOOLS_TRACE_DISABLED": "1"}
    answer = invoke(function, event, env, log_file=work / "logs" / "deploy.log").result or {}
    if answer.get("Status") != "SUCCESS":
        raise LocalRunError(f"the deploy function answered {answer.get('Status')}: {answer.get('Reason')}")
    return str((answer.get("Data") or {}).get("CodeS3Uri", ""))
