"""The pipeline's structure as SageMaker will run it: steps, order, parameters, property paths."""

from __future__ import annotations

import json
from typing import Any

from yolopipe_shared.evaluation import (
    EVALUATION_FILE,
    EVALUATION_OUTPUT_NAME,
    EVALUATION_PROPERTY_FILE,
    QUALITY_METRIC_JSON_PATH,
)
from yolopipe_shared.parameters import PARAMETERS
from yolopipe_shared.pipeline_template import check_definition

_TYPES = {"string": "String", "integer": "Integer", "float": "Float", "boolean": "Boolean"}


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
    assert declared == [(s.name, _TYPES[s.kind], s.default) for s in PARAMETERS]


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
    [condition] = steps["CheckQuality"]["Arguments"]["Conditions"]
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
    assert "map50_95" in message["Values"][0]
    assert QUALITY_METRIC_JSON_PATH in text
    assert {"Get": "Parameters.MinMap50_95"} in message["Values"]


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
    retried; and re-running the same inputs reuses Train and Evaluate instead of paying again."""
    for name in ("Train", "Evaluate"):
        step = steps[name]
        kinds = {kind for policy in step["RetryPolicies"] for kind in policy["ExceptionType"]}
        assert {"SageMaker.CAPACITY_ERROR", "Step.THROTTLING"} <= kinds
        assert step["CacheConfig"]["Enabled"] is True
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
