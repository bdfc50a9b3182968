"""The notice links to the execution's MLflow run when the pipeline tracked it (evaluation.json's
`mlflow` entry), and says nothing of MLflow otherwise. Same harness as test_notifier.py."""

from __future__ import annotations

from function_harness import Aws, LambdaContext
from notifier_harness import (
    EVALUATION,
    all_text,
    answer_steps,
    evaluation_job,
    start_execution,
    status_event,
    succeeded_steps,
    use_slack,
)

RUN = {"tracking_uri": "http://mlflow.example.com:5000", "experiment_id": "3", "run_id": "9f1c0e",
       "run_name": "a1b2c3d4e5f6", "url": "http://mlflow.example.com:5000/#/experiments/3/runs/9f1c0e"}


def _notify(aws: Aws, notifier, slack_server, report: dict) -> tuple[str, str]:
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws, report=report)))
    notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())
    [message] = slack_server.received
    [mail] = aws.inbox()
    return all_text(message) + message["text"], mail["message"]


def test_a_tracked_execution_links_its_mlflow_run_in_slack_and_email(aws: Aws, notifier, slack_server) -> None:
    """GIVEN an execution tracked in MLflow WHEN it succeeds THEN Slack (blocks and fallback) and the
    email name the run and link to it."""
    slack_text, mail = _notify(aws, notifier, slack_server, {**EVALUATION, "mlflow": RUN})
    for text in (slack_text, mail):
        assert f"MLflow run a1b2c3d4e5f6 (run id 9f1c0e): {RUN['url']}" in text


def test_a_sagemaker_tracking_server_run_is_named_with_its_server(aws: Aws, notifier, slack_server) -> None:
    server = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team"
    _, mail = _notify(aws, notifier, slack_server,
                      {**EVALUATION, "mlflow": {**RUN, "tracking_uri": server, "url": None}})
    assert f"MLflow run a1b2c3d4e5f6 (run id 9f1c0e): {server} (open it from SageMaker Studio's MLflow)" in mail


def test_an_untracked_execution_says_nothing_of_mlflow(aws: Aws, notifier, slack_server) -> None:
    slack_text, mail = _notify(aws, notifier, slack_server, {**EVALUATION, "mlflow": None})
    assert "MLflow" not in slack_text and "MLflow" not in mail
