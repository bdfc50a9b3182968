"""The local executor runs pipeline definitions as SageMaker would, behind the emulator's API.

Small hand-written definitions with tiny scripts as training / evaluation code: what a user would
notice is the execution's status, its steps, their failure reasons and what lands in S3.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_pipeline
import pytest
from botocore.exceptions import ClientError

from yolopipe.local.emulator import Emulator
from yolopipe.local.jobs import toolkit_args
from yolopipe.local.scheduler import LocalExecutor

BUCKET = "yolopipe-unit-local"
ROLE = "arn:aws:iam::123456789012:role/unit"
GROUP = "unit-models"

def _definition(score: str = "0.7", mode: str = "ok") -> dict[str, Any]:
    """The shared fake pipeline (tests/fake_pipeline.py): 2 epochs on datasets/d by default, gate 0.5."""
    return fake_pipeline.definition(BUCKET, ROLE, score=float(score), mode=mode, Epochs=2,
                                    DatasetS3Uri=f"s3://{BUCKET}/datasets/d/", ModelPackageGroupName=GROUP)


@pytest.fixture
def local_aws(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An emulator with a bucket, a dataset, the code tarball and a model package group."""
    events: list[dict[str, Any]] = []
    with Emulator() as emulator:
        s3, sagemaker = emulator.client("s3"), emulator.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=fake_pipeline.CODE_KEY, Body=fake_pipeline.code_tarball())
        s3.put_object(Bucket=BUCKET, Key="datasets/d/data.yaml", Body=b"names: [a]\n")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        executor = LocalExecutor(emulator.client("s3"), emulator.client("sagemaker"), tmp_path / "jobs",
                                 on_event=events.append)
        emulator.attach(executor)
        yield {"s3": s3, "sagemaker": sagemaker, "executor": executor, "events": events}


def _deploy(sagemaker: Any, definition: dict[str, Any], name: str = "unit") -> None:
    sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)


def _run(aws: dict[str, Any], parameters: list[dict[str, str]] | None = None, **start: Any) -> dict[str, Any]:
    arn = aws["sagemaker"].start_pipeline_execution(PipelineName="unit", PipelineParameters=parameters or [],
                                                    **start)["PipelineExecutionArn"]
    aws["executor"].wait(arn, 60)
    return dict(aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=arn))


def _steps(aws: dict[str, Any], arn: str) -> dict[str, dict[str, Any]]:
    steps = aws["sagemaker"].list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return {s["StepName"]: s for s in steps}


def test_good_model_is_trained_evaluated_and_registered(local_aws: dict[str, Any]) -> None:
    # GIVEN a pipeline whose evaluation scores 0.7 against a gate of 0.5
    _deploy(local_aws["sagemaker"], _definition(score="0.7"))
    # WHEN an execution runs with Epochs overridden to 3
    described = _run(local_aws, [{"Name": "Epochs", "Value": "3"}])
    # THEN it succeeds through Register, the model package exists and the artifacts are in S3
    assert described["PipelineExecutionStatus"] == "Succeeded"
    steps = _steps(local_aws, described["PipelineExecutionArn"])
    assert [s["StepStatus"] for s in steps.values()] == ["Succeeded"] * 4
    assert steps["CheckQuality"]["Metadata"]["Condition"]["Outcome"] == "True"
    package = steps["Register"]["Metadata"]["RegisterModel"]["Arn"]
    listed = local_aws["sagemaker"].list_model_packages(ModelPackageGroupName=GROUP)
    assert [p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"]] == [package]
    job = steps["Train"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    artifact = local_aws["sagemaker"].describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/{job}/output/model.tar.gz"
    body = local_aws["s3"].get_object(Bucket=BUCKET, Key=artifact.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        env = json.load(tar.extractfile("env.json"))  # type: ignore[arg-type]
    # the script saw SageMaker's contract: hyperparameters (sagemaker_* excluded), no GPU
    assert env == {"hps": {"epochs": 3, "mode": "ok"}, "gpus": "0"}
    # and the status changes went out as EventBridge events
    statuses = [e["detail"]["currentPipelineExecutionStatus"] for e in local_aws["events"]]
    assert statuses == ["Executing", "Succeeded"]


def test_quality_gate_fails_with_the_metric_in_the_message(local_aws: dict[str, Any]) -> None:
    # GIVEN a model that scores 0.25 against a gate of 0.5
    _deploy(local_aws["sagemaker"], _definition(score="0.25"))
    # WHEN it runs
    described = _run(local_aws)
    # THEN the execution fails in the Fail step whose message names the metric, value and threshold
    assert described["PipelineExecutionStatus"] == "Failed"
    steps = _steps(local_aws, described["PipelineExecutionArn"])
    assert "Register" not in steps
    assert steps["CheckQuality"]["Metadata"]["Condition"]["Outcome"] == "False"
    fail = steps["QualityGateFailed"]
    assert fail["StepStatus"] == "Failed"
    assert fail["Metadata"]["Fail"]["ErrorMessage"] == "map50_95 0.25 < 0.5"
    assert local_aws["events"][-1]["detail"]["currentPipelineExecutionStatus"] == "Failed"


def test_training_crash_fails_the_step_with_the_scripts_error(local_aws: dict[str, Any]) -> None:
    # GIVEN training code that raises on this dataset
    _deploy(local_aws["sagemaker"], _definition(mode="crash"))
    # WHEN it runs
    described = _run(local_aws)
    # THEN Train is Failed with the script's exception as its reason, and nothing after it ran
    assert described["PipelineExecutionStatus"] == "Failed"
    steps = _steps(local_aws, described["PipelineExecutionArn"])
    assert list(steps) == ["Train"]
    reason = steps["Train"]["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:")
    assert "RuntimeError: No valid images found" in reason
    job = steps["Train"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    assert local_aws["sagemaker"].describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Failed"


def test_same_client_request_token_starts_one_execution(local_aws: dict[str, Any]) -> None:
    # GIVEN a deployed pipeline
    _deploy(local_aws["sagemaker"], _definition())
    token = "a" * 40
    # WHEN the same start is sent twice with one token, and once with another
    first = local_aws["sagemaker"].start_pipeline_execution(PipelineName="unit", ClientRequestToken=token)
    again = local_aws["sagemaker"].start_pipeline_execution(PipelineName="unit", ClientRequestToken=token)
    other = local_aws["sagemaker"].start_pipeline_execution(PipelineName="unit", ClientRequestToken="b" * 40)
    # THEN the first two are the same execution, Executing (not done at once), and there are two in all
    assert first["PipelineExecutionArn"] == again["PipelineExecutionArn"] != other["PipelineExecutionArn"]
    status = local_aws["sagemaker"].describe_pipeline_execution(
        PipelineExecutionArn=first["PipelineExecutionArn"])["PipelineExecutionStatus"]
    assert status == "Executing"
    listed = local_aws["sagemaker"].list_pipeline_executions(PipelineName="unit")["PipelineExecutionSummaries"]
    assert len(listed) == 2
    for arn in (first["PipelineExecutionArn"], other["PipelineExecutionArn"]):
        local_aws["executor"].wait(arn, 60)


def test_stop_ends_a_running_training_as_stopped(local_aws: dict[str, Any]) -> None:
    # GIVEN a training that would take a minute
    _deploy(local_aws["sagemaker"], _definition(mode="sleep"))
    arn = local_aws["sagemaker"].start_pipeline_execution(PipelineName="unit")["PipelineExecutionArn"]
    # WHEN it is stopped
    local_aws["sagemaker"].stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="c" * 40)
    local_aws["executor"].wait(arn, 30)
    # THEN the execution ends Stopped, quickly
    described = local_aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Stopped"
    statuses = [e["detail"]["currentPipelineExecutionStatus"] for e in local_aws["events"]]
    assert statuses == ["Executing", "Stopping", "Stopped"]


def test_unknown_pipeline_and_parameter_are_refused_like_sagemaker(local_aws: dict[str, Any]) -> None:
    # GIVEN a deployed pipeline
    _deploy(local_aws["sagemaker"], _definition())
    # WHEN an execution names a missing pipeline, or a parameter the pipeline lacks
    with pytest.raises(ClientError) as missing:
        local_aws["sagemaker"].start_pipeline_execution(PipelineName="nope")
    with pytest.raises(ClientError) as unknown:
        local_aws["sagemaker"].start_pipeline_execution(PipelineName="unit",
                                                        PipelineParameters=[{"Name": "Epoch", "Value": "3"}])
    # THEN the errors carry SageMaker's codes
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
    assert unknown.value.response["Error"]["Code"] == "ValidationException"
    assert "Epoch" in unknown.value.response["Error"]["Message"]


def test_step_cache_reuses_a_training_with_the_same_arguments(local_aws: dict[str, Any]) -> None:
    # GIVEN a pipeline whose Train step has caching on (as the rendered definition does)
    definition = _definition()
    definition["Steps"][0]["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P30D"}
    _deploy(local_aws["sagemaker"], definition)
    # WHEN the same parameters run twice, then with another Epochs
    first = _run(local_aws)
    second = _run(local_aws)
    third = _run(local_aws, [{"Name": "Epochs", "Value": "1"}])
    # THEN the second Train is a cache hit pointing at the first execution, with the same model;
    # Evaluate (its output path holds the execution id) runs again; other arguments train again
    trains = [_steps(local_aws, d["PipelineExecutionArn"])["Train"] for d in (first, second, third)]
    assert "CacheHitResult" not in trains[0]
    assert trains[1]["CacheHitResult"] == {"SourcePipelineExecutionArn": first["PipelineExecutionArn"]}
    assert trains[1]["Metadata"] == trains[0]["Metadata"]
    assert "CacheHitResult" not in trains[2] and trains[2]["Metadata"] != trains[0]["Metadata"]
    assert "CacheHitResult" not in _steps(local_aws, second["PipelineExecutionArn"])["Evaluate"]
    assert second["PipelineExecutionStatus"] == "Succeeded"


def test_hyperparameters_become_arguments_as_the_toolkit_builds_them() -> None:
    # GIVEN hyperparameters as the SDK writes them (JSON-encoded strings)
    hps = {"sagemaker_program": '"train.py"', "epochs": "5", "variant": '"n"', "lr0": "0.01", "cache": "true"}
    # WHEN turned into the script's arguments
    # THEN they are sorted `--name value` pairs, JSON-decoded, without the sagemaker_ keys
    assert toolkit_args(hps) == ["--cache", "True", "--epochs", "5", "--lr0", "0.01", "--variant", "n"]


def test_several_instances_train_as_torchrun_processes_and_rank_0s_model_ships(local_aws: dict[str, Any]) -> None:
    # GIVEN a pipeline whose Train step runs on TrainingInstanceCount instances
    definition = _definition()
    definition["Steps"][0]["Arguments"]["ResourceConfig"]["InstanceCount"] = {
        "Get": "Parameters.TrainingInstanceCount"}
    _deploy(local_aws["sagemaker"], definition)
    # WHEN an execution runs with TrainingInstanceCount=2
    described = _run(local_aws, [{"Name": "TrainingInstanceCount", "Value": "2"}])
    # THEN it succeeds; two training processes ran, each with torchrun's environment and its own copy of
    # the dataset, and the model SageMaker ships is the first instance's (rank 0's)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    job = _steps(local_aws, described["PipelineExecutionArn"])["Train"]["Metadata"]["TrainingJob"]["Arn"]
    training = local_aws["sagemaker"].describe_training_job(TrainingJobName=job.rsplit("/", 1)[-1])
    assert training["ResourceConfig"]["InstanceCount"] == 2
    artifact = training["ModelArtifacts"]["S3ModelArtifacts"]
    body = local_aws["s3"].get_object(Bucket=BUCKET, Key=artifact.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        env = json.load(tar.extractfile("env.json"))  # type: ignore[arg-type]
    assert env["world"] == ["0", "2", "algo-1"]
    [second] = list(local_aws["executor"].work_dir.rglob("algo-2/opt/ml/model/env.json"))
    assert json.loads(second.read_text())["world"] == ["1", "2", "algo-2"]
