"""The stack's MlflowTrackingUri reaches the pipeline as the default of its MlflowTrackingUri
parameter (empty: tracking off); a URI the jobs must not be given is refused at deploy."""

from __future__ import annotations

import json

import pytest
from deploy_harness import PIPELINE

SERVER = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team"


def _defaults(aws) -> dict:
    definition = json.loads(aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"])
    return {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}


@pytest.mark.parametrize("uri", [SERVER, "https://mlflow.example.com:8443/team", ""])
def test_the_stacks_tracking_uri_is_the_pipelines_default(deploy, aws, cloudformation, properties, uri):
    """GIVEN a stack with MlflowTrackingUri set (or left empty) WHEN CloudFormation creates the pipeline
    THEN every execution tracks there unless it says otherwise (empty: tracking off)."""
    deploy(cloudformation.event("Create", {**properties, "MlflowTrackingUri": uri}))
    assert cloudformation.answers[-1]["Status"] == "SUCCESS", cloudformation.answers[-1]["Reason"]
    assert _defaults(aws)["MlflowTrackingUri"] == uri


@pytest.mark.parametrize("uri", ["https://user:secret@mlflow.example.com", "file:///tmp/mlruns",
                                 "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"])
def test_a_tracking_uri_with_credentials_or_another_scheme_answers_failed(deploy, cloudformation, properties, uri):
    deploy(cloudformation.event("Create", {**properties, "MlflowTrackingUri": uri}))
    answer = cloudformation.answers[-1]
    assert answer["Status"] == "FAILED"
    assert "MlflowTrackingUri" in answer["Reason"] and "secret" not in answer["Reason"]
