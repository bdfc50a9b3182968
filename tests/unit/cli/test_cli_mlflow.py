"""`yolopipe run --mlflow URI` tracks one run in MLflow (the pipeline's MlflowTrackingUri); a URI the
jobs must not get is refused before any AWS call, without echoing its credentials."""

from __future__ import annotations

from typing import Any

BUCKET = "yolopipe-unit-cli"  # as tests/unit/cli/conftest.py creates them
PIPELINE = "yolopipe-unit-cli"


def test_run_with_mlflow_starts_an_execution_tracked_there(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN an uploaded dataset
    aws["s3"].put_object(Bucket=BUCKET, Key="datasets/cats/data.yaml", Body=b"names: [cat]\n")
    # WHEN the user starts a run with --mlflow
    result = cli("run", "--dataset", "cats", "--mlflow", "https://mlflow.example.com/team")
    # THEN the execution's MlflowTrackingUri is that URI
    assert result.code == 0, result.err
    [execution] = aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    sent = aws["sagemaker"].list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"])["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in sent}["MlflowTrackingUri"] == "https://mlflow.example.com/team"


def test_a_tracking_uri_with_credentials_is_refused_without_showing_them(cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    result = cli("run", "--dataset", "s3://b-ucket/datasets/x/", "--mlflow", "https://me:hunter2@mlflow.example.com")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "MlflowTrackingUri" in result.err and "hunter2" not in result.err + result.out
