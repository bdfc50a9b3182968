"""The champion/challenger gate in the rendered definition: Evaluate is told the model package group,
CheckQuality holds two conditions, the Fail message carries the verdict, Register the comparison."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from yolopipe.local.expressions import PropertyFileRef, Scope, condition, evaluate
from yolopipe.local.strict import validate_request
from yolopipe_shared.evaluation import (
    EVALUATION_FILE,
    EVALUATION_OUTPUT_NAME,
    EVALUATION_PROPERTY_FILE,
    IMPROVEMENT_JSON_PATH,
    compare_with_baseline,
)
from yolopipe_shared.parameters import defaults

OUTPUT_URI = "s3://bucket/artifacts/evaluations/abc"
BASELINE = {"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", "version": 3,
            "metrics": {"map50_95": 0.587}}


def _scope(document: dict[str, Any], **parameters: Any) -> Scope:
    """What the service sees once Evaluate wrote `document` as evaluation.json."""
    files = {OUTPUT_URI + "/" + EVALUATION_FILE: json.dumps(document).encode()}
    scope = Scope(parameters={**defaults(), **parameters},
                  execution={"PipelineExecutionId": "abc", "PipelineName": "yolopipe"},
                  read_s3=lambda uri: files[uri])
    scope.steps["Evaluate"] = {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": EVALUATION_OUTPUT_NAME, "S3Output": {"S3Uri": OUTPUT_URI}}]}}
    scope.property_files[("Evaluate", EVALUATION_PROPERTY_FILE)] = PropertyFileRef(
        "Evaluate", EVALUATION_PROPERTY_FILE, EVALUATION_OUTPUT_NAME, EVALUATION_FILE)
    return scope


def _document(candidate: float, baseline: dict[str, Any] | None, **thresholds: float) -> dict[str, Any]:
    return {"metrics": {"map50_95": candidate}, "baseline": baseline,
            "comparison": compare_with_baseline(candidate, baseline, **thresholds)}


def test_check_quality_needs_the_fixed_gate_and_the_improvement(steps):
    """GIVEN the rendered CheckQuality WHEN it is read THEN it holds two conditions: map50_95 >=
    MinMap50_95 and comparison.improvement >= MinImprovement, both from Evaluate's property file."""
    fixed, champion = steps["CheckQuality"]["Arguments"]["Conditions"]
    assert fixed["RightValue"] == {"Get": "Parameters.MinMap50_95"}
    assert champion["Type"] == "GreaterThanOrEqualTo"
    assert champion["LeftValue"]["Std:JsonGet"]["Path"] == IMPROVEMENT_JSON_PATH
    assert champion["RightValue"] == {"Get": "Parameters.MinImprovement"}


@pytest.mark.parametrize(("candidate", "baseline", "min_improvement", "registers"), [
    (0.612, BASELINE, 0.0, True),      # beats approved v3
    (0.571, BASELINE, 0.0, False),     # worse than approved v3
    (0.571, BASELINE, -0.02, True),    # worse, but within what MinImprovement allows
    (0.600, BASELINE, 0.05, False),    # better, but not by MinImprovement
    (0.571, None, 1.0, True),          # first model: the champion gate always passes
])
def test_the_gate_decides_as_the_verdict_says(steps, candidate, baseline, min_improvement, registers):
    """GIVEN evaluation.json as evaluate.py writes it WHEN the service evaluates CheckQuality THEN it
    registers exactly when the verdict says "registered"."""
    document = _document(candidate, baseline, min_map50_95=0.5, min_improvement=min_improvement)
    scope = _scope(document, MinMap50_95=0.5, MinImprovement=min_improvement)
    outcome = all(condition(c, scope) for c in steps["CheckQuality"]["Arguments"]["Conditions"])
    assert outcome is registers
    assert document["comparison"]["verdict"].endswith(", registered" if registers else "not registered")


def test_the_failure_message_says_which_condition_decided(steps):
    """GIVEN a candidate worse than approved v3 WHEN the gate fails THEN the execution's failure
    reason is the verdict, with the metric and both thresholds."""
    document = _document(0.571, BASELINE, min_map50_95=0.5, min_improvement=0.0)
    message = evaluate(steps["QualityGateFailed"]["Arguments"]["ErrorMessage"],
                       _scope(document, MinMap50_95=0.5, MinImprovement=0.0))
    assert message == ("quality gate: 0.571 < approved v3 0.587: -0.016, not registered "
                       "(map50_95 0.571, MinMap50_95 0.5, MinImprovement 0.0)")
    document = _document(0.41, BASELINE, min_map50_95=0.5, min_improvement=0.0)
    message = evaluate(steps["QualityGateFailed"]["Arguments"]["ErrorMessage"],
                       _scope(document, MinMap50_95=0.5, MinImprovement=0.0))
    assert message.startswith("quality gate: 0.410 < MinMap50_95 0.5: not registered; ")


@pytest.mark.parametrize("baseline", [BASELINE, None])
def test_registered_metadata_carries_the_comparison_and_sagemaker_accepts_it(steps, baseline):
    """GIVEN a registered candidate WHEN CreateModelPackage's metadata is resolved THEN it names the
    approved version and the gain, in the alphabet botocore's model allows."""
    document = _document(0.612, baseline)
    metadata = evaluate(steps["Register"]["Arguments"]["CustomerMetadataProperties"], _scope(document))
    assert metadata["ComparedWithApproved"] == ("vs v3: +0.025" if baseline else "first model")
    request = {"ModelPackageGroupName": "yolopipe-models", "CustomerMetadataProperties": metadata}
    assert validate_request("sagemaker", "CreateModelPackage", request) == []


def test_an_unsanitized_comparison_would_be_refused():
    """GIVEN the comparison written with brackets and commas WHEN it is registered THEN SageMaker
    refuses it: the check above can fail."""
    request = {"ModelPackageGroupName": "g", "CustomerMetadataProperties": {"ComparedWithApproved": "v3 (+0.025), ok"}}
    assert validate_request("sagemaker", "CreateModelPackage", request) != []


def test_evaluate_is_told_the_group_and_every_argument_fits(steps):
    """GIVEN the longest model package group name and any MinImprovement WHEN Evaluate's arguments
    are resolved THEN they name the group and the thresholds, each string within CreateProcessingJob's
    maximum, and Evaluate has the region boto3 needs."""
    evaluate_step = steps["Evaluate"]["Arguments"]
    group = "g" * 63
    resolved = evaluate(evaluate_step["AppSpecification"]["ContainerArguments"],
                        _scope({}, ModelPackageGroupName=group, MinImprovement=-0.123456, MinMap50_95=0.55))
    options = dict(zip(resolved[::2], resolved[1::2], strict=True))
    assert options["--model-package-group"] == group
    assert options["--min-improvement"] == "-0.123456" and options["--min-map50-95"] == "0.55"
    shapes = botocore.session.get_session().get_service_model("sagemaker").shape_for("AppSpecification").members
    limit = shapes["ContainerArguments"].member.metadata["max"]
    assert all(isinstance(text, str) and len(text) <= limit for text in resolved)
    assert "AWS_DEFAULT_REGION" in evaluate_step["Environment"]


def test_evaluate_is_told_where_to_track_and_which_execution_names_the_run(steps):
    """GIVEN MlflowTrackingUri set (or empty: off) WHEN Evaluate's arguments are resolved THEN evaluate.py
    gets the tracking URI, the pipeline's name as the experiment and the execution id as the run's name."""
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    for uri in ("", "https://mlflow.example.com"):
        resolved = evaluate(arguments, _scope({}, MlflowTrackingUri=uri))
        options = dict(zip(resolved[::2], resolved[1::2], strict=True))
        assert options["--mlflow-tracking-uri"] == uri
        assert options["--mlflow-experiment"] == "yolopipe" and options["--mlflow-run-name"] == "abc"
