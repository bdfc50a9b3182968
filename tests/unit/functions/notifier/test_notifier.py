"""The notifier: each pipeline status change reaches Slack (Block Kit + text fallback) and email
with the facts the team needs, once, even when Slack is slow or down; the webhook never leaks.

moto does not implement ListPipelineExecutionSteps: these tests answer that ONE call with a
botocore `before-call` hook on the handler's SageMaker client (what botocore's Stubber does, but
for one operation, so every other call still goes to moto). Everything else is moto.
"""

from __future__ import annotations

import copy
import json
import logging

import notify
import pytest
import slack
from function_harness import ACCOUNT, BUCKET, PIPELINE, REGION, Aws, LambdaContext
from notifier_harness import (
    MODEL_PACKAGE,
    all_text,
    answer_steps,
    evaluation_job,
    failed_steps,
    set_status,
    start_execution,
    status_event,
    succeeded_steps,
    use_slack,
)

from yolopipe_shared import evaluation
from yolopipe_shared.execution_report import EVALUATION_MAX_BYTES, ExecutionReport


# --------------------------------------------------------------------------- success and failure
def test_succeeded_sends_metrics_and_model_package_to_slack_and_email(aws: Aws, slack_server, monkeypatch) -> None:
    """GIVEN an execution that trained, evaluated and registered a model
    WHEN its Succeeded event arrives
    THEN Slack gets Block Kit with a text fallback and email gets plain text, both with the dataset,
    the four headline metrics and the registered model package."""
    from function_harness import load_handler

    use_slack(aws, slack_server, 200)
    handler = load_handler("notifier")
    arn = start_execution(aws)
    answer_steps(handler, succeeded_steps(evaluation_job(aws)))

    result = handler.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())

    assert result["sent"] is True
    [message] = slack_server.received
    assert message["text"] and 0 < len(message["blocks"]) <= 50
    text = all_text(message)
    for expected in ("shapes", "0.734", "0.912", "0.880", "0.810", MODEL_PACKAGE, "mAP50-95", "42m 14s"):
        assert expected in text, expected
    assert "0.734" in message["text"]  # the fallback alone tells the story
    [mail] = aws.inbox()
    assert mail["subject"] == "yolopipe: Training succeeded: shapes"
    for expected in ("mAP50-95:", "0.734", "precision:", "0.880", MODEL_PACKAGE, f"s3://{BUCKET}/datasets/shapes/",
                     "Epochs=50", "Console: https://"):
        assert expected in mail["message"], expected


def test_failed_says_which_step_failed_and_why(aws: Aws, notifier, slack_server) -> None:
    """GIVEN an execution stopped by the quality gate
    WHEN its Failed event arrives
    THEN Slack and email both name the failed step and its reason."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    set_status(arn, "Failed")
    answer_steps(notifier, failed_steps())

    notifier.lambda_handler(status_event("pipeline_failed", arn), LambdaContext())

    [message] = slack_server.received
    assert "QualityGateFailed" in all_text(message) and "map50_95 0.41 &lt; 0.50" in all_text(message)
    assert "map50_95 0.41 < 0.50" in message["text"]
    [mail] = aws.inbox()
    assert "Training failed: shapes" in mail["subject"]
    assert "Failed step: QualityGateFailed" in mail["message"]
    assert "Reason: map50_95 0.41 < 0.50" in mail["message"]


@pytest.mark.parametrize("event_name,status,headline", [
    ("pipeline_executing", "Executing", "Training started: shapes"),
    ("pipeline_stopped", "Stopped", "Training stopped: shapes"),
])
def test_started_and_stopped_are_announced(aws: Aws, notifier, slack_server, event_name, status, headline) -> None:
    """GIVEN a running (or stopped) execution WHEN its event arrives THEN Slack and email say so."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    set_status(arn, status)
    answer_steps(notifier, [])

    notifier.lambda_handler(status_event(event_name, arn), LambdaContext())

    assert headline in slack_server.received[0]["text"]
    assert [m["subject"] for m in aws.inbox()] == [f"yolopipe: {headline}"]


def test_late_executing_event_after_the_end_is_not_sent(aws: Aws, notifier, slack_server) -> None:
    """GIVEN an execution that already succeeded WHEN its Executing event arrives late (out of order)
    THEN nobody is told "started" after "succeeded"."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)  # moto: Succeeded at once
    answer_steps(notifier, [])
    result = notifier.lambda_handler(status_event("pipeline_executing", arn), LambdaContext())
    assert result["sent"] is False
    assert slack_server.received == [] and aws.inbox() == []


def test_same_status_twice_is_sent_once(aws: Aws, notifier, slack_server) -> None:
    """GIVEN a Succeeded event already notified WHEN EventBridge delivers it again
    THEN Slack and email each got one message."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws)))
    event = status_event("pipeline_succeeded", arn)
    notifier.lambda_handler(event, LambdaContext())
    notifier.lambda_handler(copy.deepcopy(event), LambdaContext())

    assert len(slack_server.received) == 1
    assert len(aws.inbox()) == 1


def test_missing_evaluation_report_still_notifies(aws: Aws, notifier, slack_server) -> None:
    """GIVEN a succeeded execution whose evaluation.json cannot be read
    WHEN its event arrives THEN the message still goes out, without metrics."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws, report=None)))
    notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())
    [mail] = aws.inbox()
    assert "Training succeeded" in mail["subject"] and "mAP50-95" not in mail["message"]


@pytest.mark.parametrize("document", [
    "[0.9, 0.8]",
    '"map50_95: 0.9"',
    '{"metrics": ',
    '{"metrics": {"map50": NaN, "map50_95": NaN, "precision": Infinity, "recall": -1e999}}',  # json.dumps writes NaN
    '{"metrics": {"map50_95": ' + "9" * 4000 + "}}",  # an integer no float holds
    "[" * 100_000 + "]" * 100_000,  # nested past the parser's recursion limit
    '{"metrics": {"map50_95": 0.5}, "pad": "' + "x" * EVALUATION_MAX_BYTES + '"}',  # past the read limit
], ids=["list", "string", "truncated", "nan-inf", "overflow", "deep", "huge"])
def test_evaluation_report_of_the_wrong_shape_means_no_metrics(aws: Aws, notifier, slack_server, document) -> None:
    """GIVEN a succeeded execution whose evaluation.json is not the contract's object (a list, a string,
    broken or huge JSON, NaN, numbers no float holds) WHEN its event arrives THEN Slack and email go out
    without metrics, and no "nan"/"inf" is shown."""
    use_slack(aws, slack_server, 200)
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws, report=None)))
    aws.put(f"artifacts/shapes/evaluation/{evaluation.EVALUATION_FILE}", document)

    result = notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())

    assert result["sent"] is True and result["slack"] == "delivered after 1 attempt(s)"
    [mail] = aws.inbox()
    [message] = slack_server.received
    assert "Training succeeded: shapes" in mail["subject"] and MODEL_PACKAGE in mail["message"]
    for shown in (mail["message"], all_text(message)):
        assert "mAP50-95" not in shown and "nan" not in shown.lower() and "inf" not in shown.lower()


# --------------------------------------------------------------------------- Slack trouble
def test_slack_429_and_500_are_retried_until_delivered(aws: Aws, notifier, slack_server) -> None:
    """GIVEN Slack answering 429, then 500, then 200
    WHEN a status change is notified
    THEN the message is delivered on the third attempt and the email goes out once."""
    use_slack(aws, slack_server, 429, 500, 200)
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws)))

    result = notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())

    assert result["slack"] == "delivered after 3 attempt(s)"
    assert len(slack_server.received) == 3
    assert len(aws.inbox()) == 1


@pytest.mark.parametrize("failure", [500, "hang"])
def test_slack_down_never_stops_the_email(aws: Aws, slack_server, monkeypatch, caplog, capsys, failure) -> None:
    """GIVEN Slack always failing (500) or hanging past the timeout
    WHEN a status change is notified
    THEN the invocation succeeds, the email goes out, and the webhook URL is in no log line (at the
    stack's INFO level: botocore's own DEBUG logging prints response bodies, secrets included)."""
    from function_harness import load_handler

    monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("SLACK_MAX_ATTEMPTS", "2")
    slack_server.hang_seconds = 2.5
    use_slack(aws, slack_server, failure)
    handler = load_handler("notifier")
    arn = start_execution(aws)
    set_status(arn, "Failed")
    answer_steps(handler, failed_steps())

    with caplog.at_level(logging.INFO):
        result = handler.lambda_handler(status_event("pipeline_failed", arn), LambdaContext())

    assert result["sent"] is True and result["slack"].startswith("failed")
    assert len(slack_server.received) == 2
    [mail] = aws.inbox()
    assert "Failed step: QualityGateFailed" in mail["message"]
    logs = caplog.text + capsys.readouterr().out + capsys.readouterr().err + json.dumps(result)
    assert "XXXXSECRETXXXX" not in logs and "127.0.0.1" not in logs


def test_slack_not_configured_sends_email_only(aws: Aws, notifier, slack_server) -> None:
    """GIVEN the stack's Slack secret still holding its placeholder
    WHEN a status change is notified THEN the email goes out and Slack is skipped."""
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws)))
    result = notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())
    assert result["slack"] == "not configured"
    assert slack_server.received == [] and len(aws.inbox()) == 1


# --------------------------------------------------------------------------- Slack's limits
def test_message_stays_within_slack_limits_with_a_huge_failure_reason() -> None:
    """GIVEN a failure reason of 20,000 characters with Slack control characters
    WHEN the message is built THEN every section fits 3,000 chars, at most 50 blocks, text is escaped."""
    report = ExecutionReport(status="Failed", pipeline_name=PIPELINE, region=REGION, display_name="shapes",
                             execution_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/x",
                             dataset_uri=f"s3://{BUCKET}/datasets/shapes/", failed_step="Train",
                             failure_reason="<b>&" + "x" * 20_000)
    message = notify.slack_message(report)
    assert len(message["blocks"]) <= slack.MAX_BLOCKS and message["text"]
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= slack.MAX_SECTION_TEXT
        for f in block.get("fields", []):
            assert len(f["text"]) <= slack.MAX_FIELD_TEXT
    assert "&lt;b&gt;&amp;" in all_text(message)


def test_unreadable_slack_secret_never_stops_the_email(aws: Aws, notifier) -> None:
    """GIVEN the Slack secret was deleted (or the role cannot read it)
    WHEN a status change is notified THEN the email still goes out and the invocation succeeds."""
    aws.secrets.delete_secret(SecretId=aws.secret_arn, ForceDeleteWithoutRecovery=True)
    arn = start_execution(aws)
    answer_steps(notifier, succeeded_steps(evaluation_job(aws)))
    result = notifier.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())
    assert result["slack"].startswith("failed")
    assert len(aws.inbox()) == 1
