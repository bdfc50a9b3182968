"""Promise: every status change reaches the team once, whatever AWS does meanwhile.

Each test makes one AWS API the notifier calls answer with throttling or a 5xx, on the wire: the
fault is an HTTP answer in the service's own protocol, served through botocore's `before-send` hook
on the handler's own client, so botocore parses it and applies its own retries (standard mode:
throttling codes and 500/502/503/504 are retried with backoff before our code sees the error; SNS's
"Throttled" is a modeled 429 that botocore does not retry). The fault lasts for every attempt
botocore makes (AWS_MAX_ATTEMPTS=2 here, 3 on Lambda), so the test is about what our code does then:

- an enrichment call (steps, parameters, the Evaluate job, evaluation.json, the Slack secret) fails:
  the email still goes, with fewer facts, and the invocation succeeds;
- a call the notice cannot do without fails (DescribePipelineExecution, SNS Publish, the idempotency
  record's PutItem): nothing is sent and the invocation raises, so that Lambda retries the event
  (twice, a minute or more apart; then the notifier's dead-letter queue, whose alarm tells the team);
- the email and Slack are out but DynamoDB cannot mark the record done (UpdateItem): the invocation
  succeeds anyway, since a failed one would be retried once its in-progress record expired (the
  function's 60 s timeout) and would mail the team a second time; the same event arriving while that
  record is still in progress is dropped (its holder sends it, or fails and is retried by Lambda).

Then the same event arrives again in a fresh runtime (Lambda's retry, or EventBridge delivering twice):
in total the SNS inbox holds exactly one email and the Slack stand-in at most one message.
ListPipelineExecutionSteps (moto lacks it) is answered on the same wire, as JSON SageMaker would send.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from function_harness import BUCKET, Aws, LambdaContext, load_handler
from notifier_harness import (
    MODEL_PACKAGE,
    evaluation_job,
    failed_steps,
    set_status,
    start_execution,
    status_event,
    succeeded_steps,
    use_slack,
)

#: An AWS fault per service, as that service names it: (error code, HTTP status).
THROTTLING = {"sagemaker": ("ThrottlingException", 400), "s3": ("SlowDown", 503), "sns": ("Throttled", 429),
              "dynamodb": ("ThrottlingException", 400), "secretsmanager": ("ThrottlingException", 400)}
SERVER_ERROR = {"sagemaker": ("InternalFailure", 500), "s3": ("InternalError", 500), "sns": ("InternalError", 500),
                "dynamodb": ("InternalServerError", 500), "secretsmanager": ("InternalServiceError", 500)}
#: botocore's attempts per call in these tests (one retry, under a second of backoff).
ATTEMPTS = 2


def notifier_runtime(aws_wire: Any, steps: list[dict[str, Any]]) -> Any:
    """A fresh Lambda runtime of the notifier (module-scope clients built now), with SageMaker's
    ListPipelineExecutionSteps (moto lacks it) answered on the wire from `steps`."""
    handler = load_handler("notifier")
    aws_wire.answers(handler.sagemaker, "ListPipelineExecutionSteps", {"PipelineExecutionSteps": steps})
    return handler


def client_of(handler: Any, service: str) -> Any:
    return {"dynamodb": handler.persistence.client, "secretsmanager": handler.secrets}.get(service) or getattr(
        handler, service)


@pytest.fixture
def world(aws: Aws, slack_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """GIVEN-side: Slack configured and answering 200; botocore making ATTEMPTS tries per call; one
    execution that failed at the quality gate and one that succeeded with an evaluation and a model."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", str(ATTEMPTS))
    use_slack(aws, slack_server)
    failed = start_execution(aws)
    set_status(failed, "Failed")
    succeeded = start_execution(aws)
    job = evaluation_job(aws)
    return {"Failed": (status_event("pipeline_failed", failed), failed_steps()),
            "Succeeded": (status_event("pipeline_succeeded", succeeded), succeeded_steps(job))}


def deliver_twice(world: dict[str, Any], status: str, service: str, operation: str, fault: tuple[str, int],
                  aws_wire: Any, *, times: int = ATTEMPTS) -> dict[str, Any]:
    """WHEN-side: the event arrives while `operation` fails for `times` attempts; then it arrives
    again in a fresh runtime with AWS healthy. Returns the first outcome, the inbox after it and the
    emails and Slack messages in total."""
    event, steps = world[status]
    first = notifier_runtime(aws_wire, steps)
    answered = aws_wire.fails(client_of(first, service), operation, *fault, times=times)
    try:
        outcome: Any = first.lambda_handler(event, LambdaContext())
    except Exception as error:  # noqa: BLE001 - what Lambda records as a failed invocation
        outcome = error
    after_first = world["aws"].inbox()
    again = notifier_runtime(aws_wire, steps).lambda_handler(event, LambdaContext())
    return {"outcome": outcome, "again": again, "answered": answered, "after_first": after_first,
            "emails": after_first + world["aws"].inbox(), "slack": list(world["slack"].received)}


@pytest.fixture
def run(world: dict[str, Any], aws: Aws, slack_server: Any, aws_wire: Any) -> Callable[..., Any]:
    world.update(aws=aws, slack=slack_server)
    return functools.partial(deliver_twice, world, aws_wire=aws_wire)


def both_faults(service: str) -> list[Any]:
    return [pytest.param(THROTTLING[service], id="throttled"), pytest.param(SERVER_ERROR[service], id="5xx")]


def assert_told_once(result: dict[str, Any], subject: str) -> str:
    """THEN exactly one email in total, with `subject`, and at most one Slack message; the email's body."""
    [mail] = result["emails"]
    assert mail["subject"] == f"yolopipe: {subject}"
    assert len(result["slack"]) <= 1
    return mail["message"]


# --------------------------------------------------------------------------- enrichment degrades
@pytest.mark.parametrize("fault", both_faults("sagemaker"))
def test_failed_steps_unreadable_the_failure_is_still_mailed(run, fault) -> None:
    """GIVEN ListPipelineExecutionSteps failing past botocore's retries WHEN a Failed event arrives
    THEN the first invocation mails the failure without the failed step (SageMaker did not say which),
    Slack gets it too, and the event arriving again sends nothing more."""
    result = run("Failed", "sagemaker", "ListPipelineExecutionSteps", fault)

    assert not isinstance(result["outcome"], Exception) and len(result["after_first"]) == 1
    body = assert_told_once(result, "Training failed: shapes")
    assert "Failed step: ?" in body and "QualityGateFailed" not in body
    assert len(result["slack"]) == 1 and len(result["answered"]) == ATTEMPTS


@pytest.mark.parametrize("fault", both_faults("sagemaker"))
def test_parameters_unreadable_the_failure_is_still_mailed(run, fault) -> None:
    """GIVEN ListPipelineParametersForExecution failing WHEN a Failed event arrives THEN the email
    goes at once with the failed step but without the dataset's S3 URI and parameters, once."""
    result = run("Failed", "sagemaker", "ListPipelineParametersForExecution", fault)

    assert not isinstance(result["outcome"], Exception) and len(result["after_first"]) == 1
    body = assert_told_once(result, "Training failed: shapes")
    assert "Failed step: QualityGateFailed" in body
    assert f"s3://{BUCKET}/datasets/shapes/" not in body and "Epochs=" not in body
    assert len(result["slack"]) == 1


@pytest.mark.parametrize("service,operation,fault", [
    pytest.param("sagemaker", "DescribeProcessingJob", THROTTLING["sagemaker"], id="DescribeProcessingJob-throttled"),
    pytest.param("sagemaker", "DescribeProcessingJob", SERVER_ERROR["sagemaker"], id="DescribeProcessingJob-5xx"),
    pytest.param("s3", "GetObject", THROTTLING["s3"], id="GetObject-throttled"),
    pytest.param("s3", "GetObject", SERVER_ERROR["s3"], id="GetObject-5xx"),
])
def test_evaluation_unreadable_the_success_is_still_mailed(run, service, operation, fault) -> None:
    """GIVEN the Evaluate job or its evaluation.json unreadable WHEN a Succeeded event arrives THEN the
    email goes at once with the registered model package but no metrics, and only once."""
    result = run("Succeeded", service, operation, fault)

    assert not isinstance(result["outcome"], Exception) and len(result["after_first"]) == 1
    body = assert_told_once(result, "Training succeeded: shapes")
    assert MODEL_PACKAGE in body and "Evaluation:" not in body and "0.734" not in body
    assert len(result["slack"]) == 1


@pytest.mark.parametrize("fault", both_faults("secretsmanager"))
def test_slack_secret_unreadable_the_email_still_goes(run, fault) -> None:
    """GIVEN Secrets Manager failing GetSecretValue WHEN a Failed event arrives THEN the full email
    goes, Slack is skipped (no webhook to post to), and the event arriving again posts nothing."""
    result = run("Failed", "secretsmanager", "GetSecretValue", fault)

    assert result["outcome"]["slack"] == "failed: the Slack secret could not be read"
    body = assert_told_once(result, "Training failed: shapes")
    assert "Failed step: QualityGateFailed" in body and result["slack"] == []


# --------------------------------------------------------------------------- the invocation is retried
@pytest.mark.parametrize("status", ["Failed", "Succeeded"])
@pytest.mark.parametrize("fault", both_faults("sagemaker"))
def test_execution_unreadable_the_retry_tells_the_team(run, status, fault) -> None:
    """GIVEN DescribePipelineExecution failing (the execution itself: without it there is no notice to
    trust) WHEN the event arrives THEN nothing is sent and the invocation fails; Lambda's retry sends
    the full email and the Slack message, once."""
    result = run(status, "sagemaker", "DescribePipelineExecution", fault)

    assert isinstance(result["outcome"], Exception) and result["after_first"] == []
    body = assert_told_once(result, f"Training {status.lower()}: shapes")
    assert ("Failed step: QualityGateFailed" if status == "Failed" else "0.734") in body
    assert len(result["slack"]) == 1


@pytest.mark.parametrize("fault", both_faults("sns"))
def test_email_refused_the_retry_sends_it_and_slack_once(run, fault) -> None:
    """GIVEN SNS failing Publish WHEN a Failed event arrives THEN the invocation fails before Slack is
    posted (email first: Slack alone would be posted again by the retry), and the retry sends the email
    and the Slack message, one each."""
    result = run("Failed", "sns", "Publish", fault)

    assert isinstance(result["outcome"], Exception) and result["after_first"] == []
    assert "Failed step: QualityGateFailed" in assert_told_once(result, "Training failed: shapes")
    assert len(result["slack"]) == 1


@pytest.mark.parametrize("fault", both_faults("dynamodb"))
def test_idempotency_record_unwritable_the_retry_tells_the_team(run, fault) -> None:
    """GIVEN DynamoDB failing PutItem (the "once" record) WHEN a Failed event arrives THEN nothing is
    sent (without the record a duplicate could not be recognised) and the invocation fails; the retry
    sends one email and one Slack message."""
    result = run("Failed", "dynamodb", "PutItem", fault)

    assert isinstance(result["outcome"], Exception) and result["after_first"] == []
    assert_told_once(result, "Training failed: shapes")
    assert len(result["slack"]) == 1


@pytest.mark.parametrize("fault", both_faults("dynamodb"))
def test_record_not_marked_done_the_invocation_still_succeeds(run, fault) -> None:
    """GIVEN DynamoDB failing UpdateItem (marking the record done) after the email and Slack are out
    WHEN a Failed event arrives THEN the invocation succeeds, so Lambda does not retry it (a retry after
    the in-progress record's expiry would mail again); the event arriving again meanwhile finds the
    record still in progress and sends nothing more, without failing (no retry to mail again later)."""
    result = run("Failed", "dynamodb", "UpdateItem", fault)

    assert result["outcome"]["sent"] is True and len(result["after_first"]) == 1
    assert result["again"]["sent"] is False
    assert_told_once(result, "Training failed: shapes")
    assert len(result["slack"]) == 1


# --------------------------------------------------------------------------- botocore's retry gets through
@pytest.mark.parametrize("service,operation", [
    ("sagemaker", "DescribePipelineExecution"),
    ("sagemaker", "ListPipelineExecutionSteps"),
    ("s3", "GetObject"),
    ("sns", "Publish"),
    ("dynamodb", "PutItem"),
])
def test_a_single_5xx_is_absorbed_by_botocore(run, service, operation) -> None:
    """GIVEN one 5xx from `operation`, then health WHEN the event arrives THEN botocore's retry gets
    through: the first invocation sends the full email and Slack message, once."""
    result = run("Succeeded", service, operation, SERVER_ERROR[service], times=1)

    assert result["outcome"]["sent"] is True and result["answered"] == [SERVER_ERROR[service][0]]
    body = assert_told_once(result, "Training succeeded: shapes")
    assert "0.734" in body and MODEL_PACKAGE in body
    assert len(result["slack"]) == 1
