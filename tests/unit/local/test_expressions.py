"""Pipeline expressions evaluate as SageMaker evaluates them: Get, Join, JsonGet, conditions."""

from __future__ import annotations

import json

import pytest

from yolopipe.local.expressions import (
    ExpressionError,
    PropertyFileRef,
    Scope,
    condition,
    evaluate,
    step_references,
)


def _scope() -> Scope:
    documents = {"s3://b/eval/abc/evaluation.json": json.dumps({"metrics": {"map50_95": 0.41, "map50": 0.7},
                                                                 "per_class": [{"name": "cat", "map50": 0.5}]})}
    scope = Scope(
        parameters={"Epochs": 5, "MinMap50_95": 0.5, "Variant": "n", "Spot": True},
        execution={"PipelineExecutionId": "abc"},
        read_s3=lambda uri: documents[uri].encode(),
    )
    scope.steps["Train"] = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/models/job/output/model.tar.gz"}}
    scope.steps["Evaluate"] = {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "other", "S3Output": {"S3Uri": "s3://b/other"}},
        {"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://b/eval/abc"}},
    ]}}
    scope.property_files[("Evaluate", "EvaluationReport")] = PropertyFileRef(
        "Evaluate", "EvaluationReport", "evaluation", "evaluation.json")
    return scope


METRIC = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                          "Path": "metrics.map50_95"}}


def test_join_prints_parameters_and_execution_variables_as_text() -> None:
    # GIVEN a Join of a literal, an integer, a boolean and the execution id
    expression = {"Std:Join": {"On": "/", "Values": ["s3://b/ckpt", {"Get": "Parameters.Epochs"},
                                                    {"Get": "Parameters.Spot"},
                                                    {"Get": "Execution.PipelineExecutionId"}]}}
    # WHEN evaluated  THEN it is the text SageMaker would pass on
    assert evaluate(expression, _scope()) == "s3://b/ckpt/5/true/abc"


def test_property_paths_pick_list_items_by_name_and_index() -> None:
    # GIVEN step properties in Describe*Job shape
    scope = _scope()
    # WHEN read with the SDK's bracket syntax  THEN the named or indexed item is used
    by_name = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}
    by_index = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}
    assert evaluate(by_name, scope) == "s3://b/eval/abc"
    assert evaluate(by_index, scope) == "s3://b/other"
    assert evaluate({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, scope).endswith("model.tar.gz")


def test_json_get_reads_the_property_file_and_an_s3_uri() -> None:
    # GIVEN evaluation.json written by the Evaluate step
    scope = _scope()
    # WHEN JsonGet reads it through the property file, or through a joined S3 URI
    by_file = evaluate(METRIC, scope)
    by_uri = evaluate({"Std:JsonGet": {"S3Uri": {"Std:Join": {"On": "/", "Values": [
        "s3://b/eval", {"Get": "Execution.PipelineExecutionId"}, "evaluation.json"]}},
        "Path": "per_class[0].map50"}}, scope)
    # THEN both find the values
    assert by_file == 0.41
    assert by_uri == 0.5


def test_quality_gate_condition_compares_the_metric_with_the_threshold() -> None:
    # GIVEN map50_95 = 0.41
    scope = _scope()
    gate = {"Type": "GreaterThanOrEqualTo", "LeftValue": METRIC, "RightValue": {"Get": "Parameters.MinMap50_95"}}
    # WHEN the gate is 0.5, then 0.4  THEN it fails, then passes; Not / Or / In combine as documented
    assert condition(gate, scope) is False
    scope.parameters["MinMap50_95"] = 0.4
    assert condition(gate, scope) is True
    assert condition({"Type": "Not", "Condition": gate}, scope) is False
    assert condition({"Type": "Or", "Conditions": [{"Type": "Not", "Condition": gate}, gate]}, scope) is True
    assert condition({"Type": "In", "QueryValue": {"Get": "Parameters.Variant"}, "Values": ["s", "n"]}, scope)
    assert condition({"Type": "LessThan", "LeftValue": "3", "RightValue": 10}, scope) is True


def test_references_to_missing_things_say_what_is_missing() -> None:
    # GIVEN a scope where Register has not run  WHEN an expression reads it or an unknown parameter
    scope = _scope()
    # THEN the error names the reference
    with pytest.raises(ExpressionError, match="Register"):
        evaluate({"Get": "Steps.Register.ModelPackageArn"}, scope)
    with pytest.raises(ExpressionError, match="Epoch"):
        evaluate({"Get": "Parameters.Epoch"}, scope)
    with pytest.raises(ExpressionError, match="no item named 'missing'"):
        evaluate({"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['missing'].S3Output.S3Uri"}, scope)


def test_step_references_are_the_data_dependencies() -> None:
    # GIVEN arguments reading two steps' properties
    arguments = {"A": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "B": [METRIC],
                 "C": {"Get": "Parameters.Epochs"}}
    # WHEN scanned  THEN both steps are dependencies, parameters are not
    assert step_references(arguments) == {"Train", "Evaluate"}
