"""MLflow tracking's settings: the MlflowTrackingUri parameter and stack parameter accept the same
URIs (a SageMaker MLflow tracking server ARN, an http(s) URL, empty = off), and the execution role
gets MLflow permissions only on a SageMaker tracking server, only that server, no wildcards."""

from __future__ import annotations

import re

import pytest

from yolopipe.local.stack import load_template
from yolopipe_shared import parameters as p
from yolopipe_shared.errors import ParameterError

SPEC = p.BY_NAME["MlflowTrackingUri"]
SERVER = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team-a"
ACCEPTED = ["", SERVER, "http://127.0.0.1:5000", "https://mlflow.example.com/team",
            "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:mlflow-tracking-server/x"]
REFUSED = ["https://user:secret@mlflow.example.com", "file:///tmp/mlruns", "databricks", "http://",
           "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x", "https://a.example.com/" + "x" * 200,
           "http://host/path with space", "http://host\n"]
TEMPLATE = load_template()


@pytest.mark.parametrize("uri", ACCEPTED)
def test_tracking_uris_the_jobs_can_use_are_accepted_by_the_parameter_and_the_stack(uri):
    assert SPEC.coerce(uri) == uri
    pattern = TEMPLATE["Parameters"]["MlflowTrackingUri"]["AllowedPattern"]
    assert re.fullmatch(pattern, uri)  # CloudFormation matches the whole value


@pytest.mark.parametrize("uri", REFUSED)
def test_other_uris_are_refused_by_both_without_echoing_credentials(uri):
    with pytest.raises(ParameterError) as refused:
        SPEC._check(uri)  # the rule itself (coerce would strip the newline first)
    assert "secret" not in str(refused.value) and "MlflowTrackingUri" in str(refused.value)
    pattern = TEMPLATE["Parameters"]["MlflowTrackingUri"]["AllowedPattern"]
    assert not re.fullmatch(pattern, uri)


def test_a_dataset_cannot_send_its_training_to_a_tracking_server_of_its_choosing():
    with pytest.raises(ParameterError, match="cannot be set by a dataset"):
        p.resolve({"mlflow_tracking_uri": "https://elsewhere.example.com"}, only_overridable=True)
    assert p.resolve({"--mlflow-tracking-uri": SERVER}) == {"MlflowTrackingUri": SERVER}


def _condition(name: str, uri: str) -> bool:
    """template.yaml's condition, evaluated as CloudFormation does for MlflowTrackingUri = `uri`."""
    condition = TEMPLATE["Conditions"][name]
    select, expected = condition["Fn::Equals"]
    select_index, split = select["Fn::Select"]
    separator, ref = split["Fn::Split"]
    assert ref == {"Ref": "MlflowTrackingUri"}
    return uri.split(separator)[select_index] == expected


@pytest.mark.parametrize(("uri", "granted"), [("", False), ("https://mlflow.example.com", False), (SERVER, True)])
def test_mlflow_permissions_exist_only_for_a_sagemaker_tracking_server(uri, granted):
    assert _condition("UsesSageMakerMlflow", uri) is granted
    assert TEMPLATE["Resources"]["SageMakerMlflowPolicy"]["Condition"] == "UsesSageMakerMlflow"


def test_the_role_gets_named_mlflow_actions_on_that_server_only():
    policy = TEMPLATE["Resources"]["SageMakerMlflowPolicy"]["Properties"]
    assert policy["RoleName"] == {"Ref": "SageMakerExecutionRole"}
    [track, artifacts] = policy["PolicyDocument"]["Statement"]
    assert track["Resource"] == {"Ref": "MlflowTrackingUri"}
    assert all(re.fullmatch(r"sagemaker-mlflow:[A-Z][A-Za-z]+", action) for action in track["Action"])
    # the artifact store statement exists only when the stack names the server's artifact store
    condition, statement, otherwise = artifacts["Fn::If"]
    assert condition == "HasMlflowArtifactStore" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert "*" not in str(statement["Action"]) and statement["Resource"]["Fn::Sub"][0].endswith("${Store}/*")
