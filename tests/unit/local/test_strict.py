"""The strict request layer: what moto accepts and AWS refuses is refused, in AWS's words.

tests/conftest.py installs the layer for the whole session, so these tests use plain boto3
clients on moto, exactly as every other test does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from yolopipe.local import strict

ROLE = "arn:aws:iam::123456789012:role/yolopipe-sagemaker"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-gpu-py312"
TOKEN = "0" * 32


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def training_step(instance_type: Any = "ml.g4dn.xlarge",
                  hyperparameters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "HyperParameters": hyperparameters or {"epochs": "3"},
            "InputDataConfig": [{
                "ChannelName": "dataset",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                "S3Uri": {"Get": "Parameters.DatasetS3Uri"}}},
            }],
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/artifacts/models"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 50},
            "RoleArn": ROLE,
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


def processing_step(entrypoint: list[str]) -> dict[str, Any]:
    return {
        "Name": "Evaluate",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": entrypoint},
            "ProcessingInputs": [{
                "InputName": "model",
                "S3Input": {"LocalPath": "/opt/ml/processing/model", "S3DataType": "S3Prefix", "S3InputMode": "File",
                            "S3Uri": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}},
            }],
            "ProcessingOutputConfig": {"Outputs": [{
                "OutputName": "evaluation",
                "S3Output": {"LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob",
                             "S3Uri": {"Std:Join": {"On": "/", "Values": [
                                 "s3://bucket/artifacts/evaluations", {"Get": "Execution.PipelineExecutionId"}]}}},
            }]},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.g4dn.xlarge",
                                                      "VolumeSizeInGB": 50}},
            "RoleArn": ROLE,
        },
    }


def register_step(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": {"Get": "Parameters.ModelPackageGroupName"},
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE,
                                "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "CustomerMetadataProperties": metadata,
        },
    }


def definition(*steps: dict[str, Any], instance_default: str = "ml.g4dn.xlarge") -> str:
    return json.dumps({
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "DatasetS3Uri", "Type": "String", "DefaultValue": ""},
            {"Name": "Epochs", "Type": "Integer", "DefaultValue": 100},
            {"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": instance_default},
            {"Name": "ModelPackageGroupName", "Type": "String", "DefaultValue": "yolopipe-models"},
        ],
        "Steps": list(steps),
    })


def create(sagemaker: Any, text: str, name: str = "yolopipe") -> dict[str, Any]:
    return sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=text, RoleArn=ROLE,
                                     ClientRequestToken=TOKEN)


def refusal(raised: pytest.ExceptionInfo[ClientError]) -> str:
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Message"])


def test_a_processing_entrypoint_longer_than_aws_allows_is_refused(sagemaker: Any) -> None:
    # GIVEN a definition whose Processing step's entrypoint script is one 300-character string
    script = "set -eu; " + "x" * 291
    text = definition(training_step(), processing_step(["/bin/bash", "-c", script]))
    # WHEN the pipeline is created
    with pytest.raises(ClientError) as raised:
        create(sagemaker, text)
    # THEN AWS's ValidationException names the member and the limit, and no pipeline exists
    message = refusal(raised)
    assert message.startswith("1 validation error detected: Value '[/bin/bash, -c, set -eu; xxx")
    assert "at 'pipelineDefinition.Steps.Evaluate.Arguments.appSpecification.containerEntrypoint'" in message
    assert "Member must have length less than or equal to 256" in message
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_a_model_metadata_value_with_parentheses_is_refused(sagemaker: Any) -> None:
    # GIVEN a Register step whose metadata carries a dataset name with parentheses
    text = definition(training_step(), register_step({"Dataset": "pcb-defects (2026)"}))
    # WHEN the pipeline is created
    with pytest.raises(ClientError) as raised:
        create(sagemaker, text)
    # THEN the metadata map is refused with the pattern AWS checks
    message = refusal(raised)
    assert "Value '{Dataset=pcb-defects (2026)}' at " in message
    assert "'pipelineDefinition.Steps.Register.Arguments.customerMetadataProperties'" in message
    assert "Map value must satisfy constraint: [" in message
    assert r"[\p{L}\p{Z}\p{N}_.:\/=+\-@]*" in message


def test_unicode_letters_and_spaces_in_model_metadata_are_accepted(sagemaker: Any) -> None:
    # GIVEN the same Register step with letters of any script, spaces and digits
    text = definition(training_step(), processing_step(["python3", "evaluate.py"]),
                      register_step({"Dataset": "Zebras Ünïcode v2", "Source": "s3://bucket/datasets/zebras"}))
    # WHEN the pipeline is created
    create(sagemaker, text)
    # THEN it exists
    assert sagemaker.describe_pipeline(PipelineName="yolopipe")["PipelineName"] == "yolopipe"


def test_an_instance_type_aws_does_not_offer_is_refused_through_the_parameter_default(sagemaker: Any) -> None:
    # GIVEN a Training step whose instance type is a parameter defaulting to a type that does not exist
    step = training_step(instance_type={"Get": "Parameters.TrainingInstanceType"})
    text = definition(step, instance_default="ml.nope.huge")
    # WHEN the pipeline is created
    with pytest.raises(ClientError) as raised:
        create(sagemaker, text)
    # THEN the enum is AWS's list of instance types
    message = refusal(raised)
    assert "Value 'ml.nope.huge' at 'pipelineDefinition.Steps.Train.Arguments.resourceConfig.instanceType'" in message
    assert "Member must satisfy enum value set: [" in message and "ml.g4dn.xlarge" in message


def test_an_integer_parameter_given_raw_as_a_hyperparameter_is_refused(sagemaker: Any) -> None:
    # GIVEN hyperparameters holding an Integer parameter as such (not joined into a string)
    text = definition(training_step(hyperparameters={"epochs": {"Get": "Parameters.Epochs"}}))
    # WHEN the pipeline is created
    with pytest.raises(ClientError) as raised:
        create(sagemaker, text)
    # THEN CreateTrainingJob's map of strings refuses the number
    message = refusal(raised)
    assert "Value '{epochs=100}' at 'pipelineDefinition.Steps.Train.Arguments.hyperParameters'" in message


def test_what_only_the_run_knows_is_not_judged_at_creation(sagemaker: Any) -> None:
    # GIVEN S3 URIs from a parameter without default, the training step's artifacts and the execution id
    text = definition(training_step(), processing_step(["python3", "evaluate.py"]),
                      register_step({"Dataset": {"Get": "Parameters.DatasetS3Uri"}}))
    # WHEN the pipeline is created
    create(sagemaker, text)
    # THEN it exists: an empty default is given at start, the rest resolves to valid values
    assert sagemaker.list_pipelines()["PipelineSummaries"][0]["PipelineName"] == "yolopipe"


def test_a_definition_stored_in_s3_is_checked_too(sagemaker: Any) -> None:
    # GIVEN a definition with an over-long entrypoint, uploaded to S3
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="defs")
    s3.put_object(Bucket="defs", Key="p.json",
                  Body=definition(training_step(), processing_step(["sh", "-c", "y" * 300])).encode())
    # WHEN the pipeline is created from its S3 location
    with pytest.raises(ClientError) as raised:
        sagemaker.create_pipeline(PipelineName="yolopipe", RoleArn=ROLE, ClientRequestToken=TOKEN,
                                  PipelineDefinitionS3Location={"Bucket": "defs", "ObjectKey": "p.json"})
    # THEN it is refused as the inline one is
    assert "appSpecification.containerEntrypoint" in refusal(raised)


def test_an_execution_display_name_of_83_characters_is_refused(sagemaker: Any) -> None:
    # GIVEN a pipeline
    create(sagemaker, definition(training_step()))
    # WHEN an execution is started with an 83-character display name
    with pytest.raises(ClientError) as raised:
        sagemaker.start_pipeline_execution(PipelineName="yolopipe", PipelineExecutionDisplayName="a" * 83)
    # THEN AWS's limit of 82 is named (and its pattern)
    message = refusal(raised)
    assert message.startswith("2 validation errors detected: ")
    assert "at 'pipelineExecutionDisplayName' failed to satisfy constraint: " \
           "Member must have length less than or equal to 82" in message
    # and 82 characters start it
    started = sagemaker.start_pipeline_execution(PipelineName="yolopipe", PipelineExecutionDisplayName="a" * 82)
    assert started["PipelineExecutionArn"]


def test_every_plain_boto3_client_in_the_test_session_is_strict() -> None:
    # GIVEN clients made the plain way, for a service other than SageMaker too
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        dynamodb = boto3.session.Session(region_name="us-east-1").client("dynamodb")
        # WHEN they send what AWS refuses (a log group name with a space; 1,000 results per page)
        with pytest.raises(ClientError) as bad_group:
            logs.create_log_group(logGroupName="my group")
        with pytest.raises(ClientError) as bad_limit:
            dynamodb.list_tables(Limit=1000)
    # THEN both are refused by the layer, which moto would have let through
    assert "at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern" \
        in refusal(bad_group)
    assert "Value '1000' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100" \
        in refusal(bad_limit)


def test_botocore_still_reports_what_it_checks_itself(sagemaker: Any) -> None:
    # GIVEN a request missing a required member (botocore refuses it before sending, against AWS too)
    # WHEN it is sent
    # THEN the caller sees botocore's own error, as it would against AWS
    with pytest.raises(ParamValidationError):
        sagemaker.start_pipeline_execution()


def test_the_emulator_refuses_on_the_wire_for_clients_without_the_layer() -> None:
    from yolopipe.local.emulator import Emulator

    # GIVEN the emulator and a client with the layer taken off
    with Emulator() as emulator:
        client = emulator.client("sagemaker")
        client.meta.events.unregister("before-parameter-build", strict.before_parameter_build)
        # (AWS refuses a prefix with a space and "!"; moto answers it: the layer is off for this client)
        assert client.list_pipelines(PipelineNamePrefix="bad name!")["PipelineSummaries"] == []
        text = definition(training_step(), processing_step(["sh", "-c", "z" * 257]))
        # WHEN it creates a pipeline whose entrypoint is too long
        with pytest.raises(ClientError) as raised:
            create(client, text)
        # THEN the emulator answers AWS's ValidationException
        assert "appSpecification.containerEntrypoint" in refusal(raised)
        # and a valid one is created
        create(client, definition(training_step()))
        assert client.describe_pipeline(PipelineName="yolopipe")["PipelineName"] == "yolopipe"


def test_validate_request_lists_each_complaint() -> None:
    # GIVEN a StartPipelineExecution request with two bad members
    params = {"PipelineName": "p", "ClientRequestToken": "short", "PipelineExecutionDisplayName": "no_underscores"}
    # WHEN it is validated without a client
    found = strict.validate_request("sagemaker", "StartPipelineExecution", params)
    # THEN each broken constraint is one line
    assert found == [
        "Value 'short' at 'clientRequestToken' failed to satisfy constraint: "
        "Member must have length greater than or equal to 32",
        "Value 'no_underscores' at 'pipelineExecutionDisplayName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}",
    ]


def test_the_rendered_definition_is_accepted_by_create_pipeline() -> None:
    from pipeline.render import render_definition

    # GIVEN the definition `sam deploy` ships, as the deploy function fills it
    text = render_definition(bucket="yolopipe-artifacts-123456789012", role_arn=ROLE, region="us-east-1",
                             code_s3_uri="s3://yolopipe-artifacts-123456789012/code/0123abcd.tar.gz")
    # WHEN CreatePipeline is checked
    found = strict.validate_request("sagemaker", "CreatePipeline",
                                    {"PipelineName": "yolopipe", "PipelineDefinition": text, "RoleArn": ROLE,
                                     "ClientRequestToken": TOKEN})
    # THEN AWS accepts it
    assert found == []
