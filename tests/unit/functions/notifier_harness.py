"""Pipeline executions as the notifier's tests need them: moto for the execution and the Evaluate
job, ListPipelineExecutionSteps (moto lacks it) answered by a botocore `before-call` hook on the
handler's SageMaker client, and the status events EventBridge sends. Shared by the notifier's tests
and the fault suite."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from botocore.awsrequest import AWSResponse
from function_harness import ACCOUNT, BUCKET, PIPELINE, REGION, ROLE_ARN, Aws, load_event
from moto.sagemaker.models import sagemaker_backends

from yolopipe_shared import evaluation

EVALUATION = {"metrics": {"map50": 0.912, "map50_95": 0.734, "precision": 0.88, "recall": 0.81},
              "per_class": [], "split": "val"}
MODEL_PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/yolopipe-dev-abcd1234-models/3"


def start_execution(aws: Aws, dataset: str = "shapes") -> str:
    return aws.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE, PipelineExecutionDisplayName=dataset,
        PipelineParameters=[{"Name": "DatasetS3Uri", "Value": f"s3://{BUCKET}/datasets/{dataset}/"},
                            {"Name": "Epochs", "Value": "50"}],
    )["PipelineExecutionArn"]


def evaluation_job(aws: Aws, report: dict[str, Any] | None = EVALUATION) -> str:
    """A finished Evaluate processing job whose output holds evaluation.json."""
    uri = f"s3://{BUCKET}/artifacts/shapes/evaluation"
    arn = aws.sagemaker.create_processing_job(
        ProcessingJobName="pipelines-abc-Evaluate-xyz",
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 30}},
        AppSpecification={"ImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"},
        RoleArn=ROLE_ARN,
        ProcessingOutputConfig={"Outputs": [{"OutputName": evaluation.EVALUATION_OUTPUT_NAME, "S3Output": {
            "S3Uri": uri, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
    )["ProcessingJobArn"]
    if report is not None:
        aws.put(f"artifacts/shapes/evaluation/{evaluation.EVALUATION_FILE}", json.dumps(report))
    return arn


def succeeded_steps(job_arn: str) -> list[dict[str, Any]]:
    t = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    return [
        {"StepName": "Train", "StepStatus": "Succeeded", "StartTime": t,
         "Metadata": {"TrainingJob": {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-abc"}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded", "StartTime": t,
         "Metadata": {"ProcessingJob": {"Arn": job_arn}}},
        {"StepName": "CheckQuality", "StepStatus": "Succeeded", "StartTime": t,
         "Metadata": {"Condition": {"Outcome": "True"}}},
        {"StepName": "Register", "StepStatus": "Succeeded", "StartTime": t,
         "Metadata": {"RegisterModel": {"Arn": MODEL_PACKAGE}}},
    ]


def failed_steps(reason: str = "map50_95 0.41 < 0.50") -> list[dict[str, Any]]:
    t = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    return [
        {"StepName": "Train", "StepStatus": "Succeeded", "StartTime": t, "Metadata": {}},
        {"StepName": "CheckQuality", "StepStatus": "Succeeded", "StartTime": t,
         "Metadata": {"Condition": {"Outcome": "False"}}},
        {"StepName": "QualityGateFailed", "StepStatus": "Failed", "StartTime": t, "FailureReason": reason,
         "Metadata": {"Fail": {"ErrorMessage": reason}}},
    ]


def answer_steps(module: Any, steps: list[dict[str, Any]]) -> list[int]:
    """Serve ListPipelineExecutionSteps (moto lacks it) from `steps`; returns a call counter."""
    calls: list[int] = []

    def handler(model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        calls.append(1)
        return AWSResponse(None, 200, {}, None), {"PipelineExecutionSteps": steps}

    module.sagemaker.meta.events.register_first("before-call.sagemaker.ListPipelineExecutionSteps", handler)
    return calls


def status_event(name: str, execution_arn: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    event["detail"]["pipelineExecutionArn"] = execution_arn
    event["resources"][-1] = execution_arn
    return event


def set_status(execution_arn: str, status: str) -> None:
    """moto marks every execution Succeeded at once; put it where the event says it is."""
    backend = sagemaker_backends[ACCOUNT][REGION]
    backend.pipelines[PIPELINE].pipeline_executions[execution_arn].pipeline_execution_status = status


def use_slack(aws: Aws, slack_server: Any, *script: int | str) -> None:
    aws.secrets.put_secret_value(SecretId=aws.secret_arn, SecretString=json.dumps({"webhook_url": slack_server.url}))
    slack_server.script[:] = list(script) or [200]


def all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)
