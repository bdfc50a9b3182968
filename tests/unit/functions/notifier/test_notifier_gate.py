"""The notification flags a run whose quality gate was lowered below the stack's (`run --lower-gate`)."""

from __future__ import annotations

from function_harness import BUCKET, PIPELINE, Aws, LambdaContext
from notifier_harness import answer_steps, evaluation_job, status_event, succeeded_steps


def test_a_lowered_gate_is_a_warning_in_the_email_and_in_slack(aws: Aws, notifier, slack_server) -> None:
    """GIVEN the stack's pipeline (MinMap50_95 default 0.5) and an execution started with MinMap50_95 0.3
    WHEN its Succeeded event arrives
    THEN the email and the Slack message both carry a warning that the gate was lowered, and to what."""
    from notifier_harness import use_slack

    use_slack(aws, slack_server, 200)
    arn = aws.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE, PipelineExecutionDisplayName="shapes",
        PipelineParameters=[{"Name": "DatasetS3Uri", "Value": f"s3://{BUCKET}/datasets/shapes/"},
                            {"Name": "MinMap50_95", "Value": "0.3"}])["PipelineExecutionArn"]
    answer_steps(notifier, succeeded_steps(evaluation_job(aws)))

    notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())

    warning = "quality gate lowered to 0.3 for this run (the stack's MinMap50_95 is 0.5)"
    [mail] = aws.inbox()
    assert "Warning:" in mail["message"] and warning in mail["message"]
    [message] = slack_server.received
    assert warning in message["text"]
