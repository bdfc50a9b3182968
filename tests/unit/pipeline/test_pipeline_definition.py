"""The pipeline's structure as SageMaker will run it: steps, order, parameters, property paths."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from yolopipe.local.expressions import Scope, evaluate
from yolopipe.local.strict import pipeline_violations
from yolopipe_shared import parameters
from yolopipe_shared.evaluation import (
    EVALUATION_FILE,
    EVALUATION_OUTPUT_NAME,
    EVALUATION_PROPERTY_FILE,
    QUALITY_METRIC_JSON_PATH,
)
from yolopipe_shared.parameters import PARAMETERS
from yolopipe_shared.pipeline_template import check_definition


def test_graph_is_train_evaluate_check_then_register_or_fail(definition, steps):
    """GIVEN the default definition WHEN SageMaker reads it THEN the graph is
    Train -> Evaluate -> CheckQuality -> Register | QualityGateFailed, each step fed by the one before."""
    assert [step["Name"] for step in definition["Steps"]] == ["Train", "Evaluate", "CheckQuality"]
    assert {name: step["Type"] for name, step in steps.items()} == {
        "Train": "Training",
        "Evaluate": "Processing",
        "CheckQuality": "Condition",
        "Register": "RegisterModel",
        "QualityGateFailed": "Fail",
    }
    check = steps["CheckQuality"]["Arguments"]
    assert [s["Name"] for s in check["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in check["ElseSteps"]] == ["QualityGateFailed"]
    model_input = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert model_input["model"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert check_definition(definition) == []


def test_parameters_are_exactly_the_shared_specs(definition):
    """GIVEN the shared parameter specs WHEN the definition is built THEN it declares each one, same
    name, type and default, and nothing else (one source of truth)."""
    declared = [(p["Name"], p["Type"], p["DefaultValue"]) for p in definition["Parameters"]]
    assert declared == [(s.name, s.sagemaker_type, s.default) for s in PARAMETERS]


def test_training_job_takes_parameters_code_by_uri_and_spot(steps):
    """GIVEN a Train step WHEN SageMaker starts the training job THEN the toolkit runs train.py from the
    code tarball, the hyperparameters and capacity come from the execution's parameters, spot and
    checkpoints are on, and the dataset arrives as the `dataset` channel."""
    args = steps["Train"]["Arguments"]
    hps = args["HyperParameters"]
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"] == "${CodeS3Uri}"
    assert hps["variant"] == {"Get": "Parameters.ModelVariant"}
    numbers = {"epochs": "Epochs", "batch": "BatchSize", "imgsz": "ImageSize", "lr0": "LearningRate"}
    for key, parameter in numbers.items():
        # Hyperparameters are strings: numbers go through Join (`.to_string()`), never a bare Get.
        assert hps[key] == {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{parameter}"}]}}
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert args["ResourceConfig"]["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}
    # Spot is on in the definition; a stack with UseSpotInstances=false switches it off at deploy.
    assert args["EnableManagedSpotTraining"] is True
    # The dataset's version is part of Train's arguments, so of its cache key and checkpoint path:
    # a new upload under the same prefix retrains instead of reusing the old model.
    assert args["Environment"]["YOLOPIPE_DATASET_VERSION"] == {"Get": "Parameters.DatasetVersion"}
    assert {"Get": "Parameters.DatasetVersion"} in args["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"]
    assert args["StoppingCondition"] == {
        "MaxRuntimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"},
        "MaxWaitTimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"},
    }
    assert args["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert "s3://${Bucket}/checkpoints" in json.dumps(args["CheckpointConfig"]["S3Uri"])
    [channel] = args["InputDataConfig"]
    assert channel["ChannelName"] == "dataset"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == {"Get": "Parameters.DatasetS3Uri"}
    assert args["RoleArn"] == "${RoleArn}"
    assert "pytorch-training" in args["AlgorithmSpecification"]["TrainingImage"]


def test_checkpoints_are_keyed_by_dataset_label_version_and_training_settings(steps):
    """GIVEN the dataset `s3://b/datasets/Zebras & Ünïcode v2/` at version `3Lk.x` WHEN its training
    saves checkpoints THEN they go to checkpoints/<label>/<version>/<settings>: no second scheme, no
    empty segment, a key a retry of the same training finds again."""
    values = {spec.name: spec.default for spec in PARAMETERS}
    values.update(parameters.dataset_parameters("s3://b/datasets/Zebras & Ünïcode v2/", "3Lk.x"))
    scope = Scope(parameters=values, execution={})
    uri = evaluate(steps["Train"]["Arguments"]["CheckpointConfig"]["S3Uri"], scope)
    label = parameters.dataset_label("Zebras & Ünïcode v2")
    assert uri == f"s3://${{Bucket}}/checkpoints/{label}/3Lk.x/n/640/100/-1/0.01"
    key = uri.removeprefix("s3://").split("/", 1)[1]
    assert "s3:" not in key and "" not in key.split("/")


# --- Arguments as SageMaker validates them when the pipeline is created --------------------------

_DEPLOYED = {"bucket": "yolopipe-123456789012-eu-west-1", "role_arn": "arn:aws:iam::123456789012:role/yolopipe-sm",
             "region": "eu-west-1", "code_s3_uri": "s3://yolopipe-123456789012-eu-west-1/code/training-0123.tar.gz"}


@pytest.fixture(scope="module")
def deployed() -> str:
    """The definition as the deploy function upserts it: bucket, role, region and code filled in."""
    from pipeline.render import render_definition

    return render_definition(**_DEPLOYED)


def _refusals(definition: dict[str, Any] | str) -> list[str]:
    """What CreatePipeline would refuse in the steps' Arguments (botocore's model: max, pattern...)."""
    text = definition if isinstance(definition, str) else json.dumps(definition)
    request = {"PipelineName": "yolopipe", "PipelineDefinition": text, "RoleArn": _DEPLOYED["role_arn"]}
    return [str(v) for v in pipeline_violations(request, region=_DEPLOYED["region"])]


def _with_defaults(definition_text: str, values: dict[str, Any]) -> dict[str, Any]:
    """The definition with `values` as its parameters' defaults: what an execution started with them runs."""
    definition: dict[str, Any] = json.loads(definition_text)
    for declared in definition["Parameters"]:
        if declared["Name"] in values:
            declared["DefaultValue"] = values[declared["Name"]]
    return definition


def test_every_step_argument_fits_the_api_request_sagemaker_checks(deployed):
    """GIVEN the definition as deployed WHEN SageMaker creates the pipeline THEN no step's Arguments break
    a constraint of their request in botocore's model; in particular every ContainerEntrypoint and
    ContainerArguments string of Evaluate is within the model's maximum (256)."""
    assert _refusals(deployed) == []
    app = json.loads(deployed)["Steps"][1]["Arguments"]["AppSpecification"]
    members = botocore.session.get_session().get_service_model("sagemaker").shape_for("AppSpecification").members
    for name in ("ContainerEntrypoint", "ContainerArguments"):
        limit = members[name].member.metadata["max"]
        assert app[name] and all(len(text) <= limit for text in app[name]), (name, limit)


def test_the_old_evaluate_entrypoint_would_be_refused(deployed):
    """GIVEN the 351-character `bash -c` entrypoint the Evaluate step once had WHEN the pipeline is
    created THEN SageMaker refuses it: the check above can fail."""
    definition = json.loads(deployed)
    definition["Steps"][1]["Arguments"]["AppSpecification"]["ContainerEntrypoint"] = ["/bin/bash", "-c", "x" * 351]
    [refusal] = _refusals(definition)
    assert "containerEntrypoint" in refusal and "less than or equal to 256" in refusal


@pytest.mark.parametrize("name", ["pcb-defects (2026)", "Zebras & Ünïcode v2", "a,b#c", "x" * 300, "&&&", "cats"])
def test_any_dataset_name_makes_a_valid_execution(deployed, name: str):
    """GIVEN a dataset named with spaces, brackets, `&`, `#`, Unicode or 300 characters WHEN an execution
    starts with its dataset_parameters THEN every request its steps send is valid (the registered
    model's CustomerMetadataProperties and the checkpoint URI included), and a plain name stays as is."""
    values = parameters.dataset_parameters(f"s3://{_DEPLOYED['bucket']}/datasets/{name}/", "3Lk.x_y")
    assert _refusals(_with_defaults(deployed, values)) == []
    assert parameters.BY_NAME["DatasetName"].coerce(values["DatasetName"]) == values["DatasetName"]
    if name == "cats":
        assert values["DatasetName"] == "cats"


def test_different_dataset_names_keep_different_checkpoints():
    """GIVEN dataset names that differ only in what a label cannot hold, or past its 64 characters
    WHEN they become DatasetName THEN each gets its own label, so no training resumes another's
    checkpoints."""
    names = ["a&b", "a(b", "a b", "a-b", "x" * 300, "x" * 300 + "y"]
    labels = {parameters.dataset_label(name) for name in names}
    assert len(labels) == len(names)
    assert all(0 < len(label) <= parameters.DATASET_LABEL_MAX for label in labels)


def test_a_dataset_uri_in_the_model_metadata_would_be_refused(deployed):
    """GIVEN the Register step as it was (the dataset's URI as a CustomerMetadataProperties value) WHEN a
    dataset named `pcb-defects (2026)` is registered THEN SageMaker refuses it: the check above can fail."""
    definition = _with_defaults(deployed, parameters.dataset_parameters("s3://b/datasets/pcb-defects (2026)/", "v1"))
    register = definition["Steps"][2]["Arguments"]["IfSteps"][0]
    register["Arguments"]["CustomerMetadataProperties"]["DatasetName"] = {"Get": "Parameters.DatasetS3Uri"}
    [refusal] = _refusals(definition)
    assert "customerMetadataProperties" in refusal and "regular expression pattern" in refusal


def test_quality_gate_reads_the_evaluation_constants(steps):
    """GIVEN evaluate.py's evaluation.json contract WHEN CheckQuality runs THEN it compares
    metrics.map50_95 from the Evaluate step's property file with MinMap50_95."""
    evaluate = steps["Evaluate"]
    assert evaluate["PropertyFiles"] == [
        {
            "PropertyFileName": EVALUATION_PROPERTY_FILE,
            "OutputName": EVALUATION_OUTPUT_NAME,
            "FilePath": EVALUATION_FILE,
        }
    ]
    outputs = evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert [o["OutputName"] for o in outputs] == [EVALUATION_OUTPUT_NAME]
    condition, _champion_challenger = steps["CheckQuality"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.Evaluate.PropertyFiles.{EVALUATION_PROPERTY_FILE}"},
            "Path": QUALITY_METRIC_JSON_PATH,
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.MinMap50_95"}


def test_failure_message_names_metric_value_and_threshold(steps):
    """GIVEN a model under the gate WHEN the execution fails THEN its reason says which metric, its
    value and the threshold (what the notifier shows)."""
    message = steps["QualityGateFailed"]["Arguments"]["ErrorMessage"]["Std:Join"]
    text = json.dumps(message)
    assert "map50_95" in text
    assert QUALITY_METRIC_JSON_PATH in text
    assert json.dumps({"Get": "Parameters.MinMap50_95"}) in text


def test_register_awaits_approval_with_evaluation_attached(steps):
    """GIVEN a model that passed WHEN it is registered THEN it waits for manual approval in the
    parameter's model package group, with the Train artifact and evaluation.json as its metrics."""
    args = steps["Register"]["Arguments"]
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    assert args["ModelPackageGroupName"] == {"Get": "Parameters.ModelPackageGroupName"}
    [container] = args["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    statistics = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"]["Std:Join"]["Values"] == [
        {"Get": f"Steps.Evaluate.ProcessingOutputConfig.Outputs['{EVALUATION_OUTPUT_NAME}'].S3Output.S3Uri"},
        EVALUATION_FILE,
    ]


def test_jobs_retry_capacity_and_throttling_and_are_cached(steps):
    """GIVEN spot capacity runs out or the API throttles WHEN a job step fails that way THEN it is
    retried; and re-running the same inputs reuses Train instead of paying again (Evaluate runs again:
    it compares with the model approved now, which its arguments do not name)."""
    for name in ("Train", "Evaluate"):
        step = steps[name]
        kinds = {kind for policy in step["RetryPolicies"] for kind in policy["ExceptionType"]}
        assert {"SageMaker.CAPACITY_ERROR", "Step.THROTTLING"} <= kinds
    assert steps["Train"]["CacheConfig"]["Enabled"] is True
    assert "CacheConfig" not in steps["Evaluate"]
    register_kinds = {k for p in steps["Register"]["RetryPolicies"] for k in p["ExceptionType"]}
    assert "Step.THROTTLING" in register_kinds


def test_check_catches_broken_references(definition):
    """GIVEN a definition with a typo'd parameter, a step reading a later step and a wrong JSON path
    WHEN it is checked THEN each problem is reported."""
    train: dict[str, Any] = definition["Steps"][0]
    train["Arguments"]["HyperParameters"]["variant"] = {"Get": "Parameters.ModelVarient"}
    train["Arguments"]["Environment"]["X"] = {"Get": "Steps.Evaluate.ProcessingJobName"}
    condition = definition["Steps"][2]["Arguments"]["Conditions"][0]
    condition["LeftValue"]["Std:JsonGet"]["Path"] = "metrics.map"
    problems = "\n".join(check_definition(definition))
    assert "Parameters.ModelVarient is not a declared parameter" in problems
    assert "'Evaluate', which is not an earlier step" in problems
    assert "JsonGet path 'metrics.map'" in problems


def test_training_job_runs_torchrun_on_every_instance(steps):
    """GIVEN a Train step WHEN SageMaker starts it on TrainingInstanceCount instances THEN the PyTorch
    toolkit's torch_distributed switch is on (as the SDK's distribution={"torch_distributed": ...} sets
    it), so every instance runs train.py under torchrun; one instance is one process, as before."""
    hps = steps["Train"]["Arguments"]["HyperParameters"]
    assert hps["sagemaker_torch_distributed_enabled"] == "true"
