"""The failure notice when a step failed on a SageMaker quota (ResourceLimitExceeded): Slack and
email say which instance type hit it and what to do, instead of only SageMaker's text.

Same harness as test_notifier.py: moto for everything but ListPipelineExecutionSteps, which moto
lacks and a `before-call` hook answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from function_harness import BUCKET, PIPELINE, Aws, LambdaContext
from notifier_harness import all_text, answer_steps, set_status, start_execution, status_event, use_slack

#: What SageMaker says when CreateTrainingJob is refused for a quota (the API error's text).
TRAINING_REFUSED = (
    "An error occurred (ResourceLimitExceeded) when calling the CreateTrainingJob operation: The account-level "
    "service limit 'ml.g5.xlarge for spot training job usage' is 0 Instances, with current utilization of 0 "
    "Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase for "
    "this quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this quota."
)
PROCESSING_REFUSED = (
    "ClientError: An error occurred (ResourceLimitExceeded) when calling the CreateProcessingJob operation: The "
    "account-level service limit 'ml.g4dn.xlarge for processing job usage' is 0 Instances, with current "
    "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an "
    "increase for this quota."
)


def step_failed(name: str, reason: str) -> list[dict[str, Any]]:
    """The steps of an execution whose `name` step was refused (no job was created, so no metadata)."""
    t = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    steps: list[dict[str, Any]] = []
    if name == "Evaluate":
        steps.append({"StepName": "Train", "StepStatus": "Succeeded", "StartTime": t, "EndTime": t, "Metadata": {
            "TrainingJob": {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/pipelines-abc-train"}}})
    steps.append({"StepName": name, "StepStatus": "Failed", "StartTime": t, "EndTime": t, "FailureReason": reason,
                  "Metadata": {}})
    return steps


def quota_line(instance_type: str, dataset: str = "shapes") -> str:
    return (f"SageMaker quota reached for {instance_type}: request an increase (`yolopipe doctor` shows which), "
            f"then run `yolopipe run --dataset {dataset}` again")


@pytest.mark.parametrize("step,reason,instance_type", [
    ("Train", TRAINING_REFUSED, "ml.g5.xlarge"),
    ("Evaluate", PROCESSING_REFUSED, "ml.g4dn.xlarge"),
], ids=["train", "evaluate"])
def test_a_step_refused_for_a_quota_says_which_quota_and_what_to_do(
        aws: Aws, notifier: Any, slack_server: Any, step: str, reason: str, instance_type: str) -> None:
    """GIVEN an execution whose step was refused with ResourceLimitExceeded (the account's quota for
    its instance type is 0) WHEN its Failed event arrives THEN the email and Slack (blocks and the
    text fallback) say the quota was reached for that instance type, how to find which quota, and
    the command that trains the dataset again."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws, "shapes")
    set_status(arn, "Failed")
    answer_steps(notifier, step_failed(step, reason))

    notifier.lambda_handler(status_event("pipeline_failed", arn), LambdaContext())

    [mail] = aws.inbox()
    assert f"Failed step: {step}" in mail["message"]
    assert quota_line(instance_type) in mail["message"].splitlines()
    [message] = slack_server.received
    assert quota_line(instance_type) in message["text"]
    sections = [b["text"]["text"] for b in message["blocks"] if b.get("type") == "section" and "text" in b]
    assert quota_line(instance_type) in sections


def test_the_training_instance_type_is_named_when_the_reason_does_not_quote_the_quota(
        aws: Aws, notifier: Any, slack_server: Any) -> None:
    """GIVEN a Train step refused with ResourceLimitExceeded in words that name no quota
    WHEN its Failed event arrives THEN the notice names the execution's TrainingInstanceType."""
    use_slack(aws, slack_server, 200)
    arn = aws.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE,
        PipelineExecutionDisplayName="cats",
        PipelineParameters=[{"Name": "DatasetS3Uri", "Value": f"s3://{BUCKET}/datasets/cats/"},
                            {"Name": "TrainingInstanceType", "Value": "ml.g6.2xlarge"}],
    )["PipelineExecutionArn"]
    set_status(arn, "Failed")
    answer_steps(notifier, step_failed("Train", "ResourceLimitExceeded: the account-level service limit was reached"))

    notifier.lambda_handler(status_event("pipeline_failed", arn), LambdaContext())

    [mail] = aws.inbox()
    assert quota_line("ml.g6.2xlarge", "cats") in mail["message"]
    assert quota_line("ml.g6.2xlarge", "cats") in slack_server.received[0]["text"]


def test_other_failures_carry_no_quota_line(aws: Aws, notifier: Any, slack_server: Any) -> None:
    """GIVEN a Train step that failed in the training code WHEN its Failed event arrives
    THEN nothing talks about quotas."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    set_status(arn, "Failed")
    answer_steps(notifier, step_failed("Train", "AlgorithmError: ExecuteUserScriptError: exit code 1"))

    notifier.lambda_handler(status_event("pipeline_failed", arn), LambdaContext())

    [mail] = aws.inbox()
    assert "AlgorithmError" in mail["message"] and "quota" not in mail["message"]
    assert "quota" not in all_text(slack_server.received[0])

