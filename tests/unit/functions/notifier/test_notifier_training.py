"""The final notice says how the training went (best epoch, training time, images/s, from
DescribeTrainingJob's FinalMetricDataList: the Train step's MetricDefinitions) and links to the
training job and its logs; a Train step reused from the step cache says which execution it came
from. What moto lacks (ListPipelineExecutionSteps, DescribeTrainingJob's timing and metrics) is
answered on the handler's client with responses checked against botocore's output model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.validate import validate_parameters
from function_harness import ACCOUNT, REGION, Aws, LambdaContext, load_handler
from notifier_harness import all_text, evaluation_job, start_execution, status_event, use_slack

JOB = "pipelines-abc-Train-xyz"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{JOB}"
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def answer(handler: Any, operation: str, response: dict[str, Any]) -> None:
    """Answer one SageMaker operation on the handler's client, with a response valid for its output shape."""
    model = handler.sagemaker.meta.service_model.operation_model(operation)
    validate_parameters(response, model.output_shape)

    def reply(model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        return AWSResponse(None, 200, {}, None), response

    handler.sagemaker.meta.events.register_first(f"before-call.sagemaker.{operation}", reply)


def notice(aws: Aws, slack_server: Any, train_step: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The email and the Slack message for a Succeeded run whose Train step is `train_step`."""
    use_slack(aws, slack_server, 200)
    handler = load_handler("notifier")
    evaluate_arn = evaluation_job(aws)
    answer(handler, "ListPipelineExecutionSteps", {"PipelineExecutionSteps": [
        {"StepName": "Train", "StepDisplayName": "Train YOLO11", "StepStatus": "Succeeded", "StartTime": T0,
         "EndTime": T0, **train_step},
        {"StepName": "Evaluate", "StepStatus": "Succeeded", "StartTime": T0,
         "Metadata": {"ProcessingJob": {"Arn": evaluate_arn}}}]})
    answer(handler, "DescribeTrainingJob", {
        "TrainingJobName": JOB, "TrainingJobArn": JOB_ARN, "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": "s3://b/artifacts/model.tar.gz"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400}, "CreationTime": T0,
        "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "TrainingTimeInSeconds": 3720, "BillableTimeInSeconds": 3720,
        "TrainingStartTime": T0, "TrainingEndTime": T0 + timedelta(seconds=3720),
        "FinalMetricDataList": [{"MetricName": "epoch", "Value": 12, "Timestamp": T0},
                                {"MetricName": "val:best_epoch", "Value": 7, "Timestamp": T0},
                                {"MetricName": "train:images_per_second", "Value": 48.2, "Timestamp": T0}]})

    def unreachable(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")

    handler.prices.pricing.meta.events.register("before-send.pricing.GetProducts", unreachable)
    arn = start_execution(aws)
    assert handler.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())["sent"] is True
    [mail] = aws.inbox()
    [message] = slack_server.received
    return mail["message"], message


def test_the_final_notice_tells_how_training_went_and_links_the_job_and_its_logs(aws: Aws, slack_server: Any) -> None:
    """GIVEN a run whose Train job trained 12 epochs in 1h02m, best at epoch 7, 48.2 images/s
    WHEN its Succeeded event arrives
    THEN the email and Slack say so and link to the job's console page and its CloudWatch logs."""
    mail, message = notice(aws, slack_server, {"Metadata": {"TrainingJob": {"Arn": JOB_ARN}}})
    line = "best epoch 7 of 12, 1h02m training, 48.2 images/s"
    console = f"https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/jobs/{JOB}"
    logs = (f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logsV2:log-groups/log-group/"
            f"$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3D{JOB}")
    assert f"Training: {line}" in mail
    assert f"Training job: {console}" in mail and f"Training logs: {logs}" in mail
    assert line in all_text(message) and line in message["text"]
    buttons = {e["text"]["text"]: e["url"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert buttons["Training job"] == console and buttons["Training logs"] == logs


def test_a_train_step_from_the_step_cache_names_the_execution_it_reused(aws: Aws, slack_server: Any) -> None:
    """GIVEN a run whose Train step SageMaker served from the step cache (CacheHitResult)
    WHEN its Succeeded event arrives
    THEN the notice says which execution trained the model, instead of an unexplained 0m00s."""
    source = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/yolopipe-dev/execution/k2x9h1p0q7ab"
    mail, message = notice(aws, slack_server, {"Metadata": {"TrainingJob": {"Arn": JOB_ARN}},
                                               "CacheHitResult": {"SourcePipelineExecutionArn": source}})
    line = "reused from execution k2x9h1p0q7ab (step cache: no training, no cost)"
    assert f"Training: {line}" in mail and line in all_text(message)
    assert "Training job:" not in mail and "best epoch" not in mail
