"""Promise: every dataset version announced by its data.yaml starts exactly one training.

An event that was not acted on fails its invocation (Lambda retries it, then sends it to the
trigger's on-failure queue, whose alarm tells the team); an event acted on is never acted on twice,
whatever the world does: S3 delivers twice, late, out of order, for any key; the runtime is killed
at any point (out of memory, timeout); every AWS API the trigger calls throttles or fails.

The world: moto for AWS, with AWS's ClientRequestToken rule added (moto ignores it: on AWS a
second StartPipelineExecution with the same token returns the first execution). Faults are injected
through botocore's event hooks on the handler's own clients, never by patching our code.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError
from function_harness import Aws, LambdaContext, load_event, load_handler


class RuntimeKilled(BaseException):
    """What an out-of-memory kill or a timeout is from the inside: no `except Exception` runs, so
    Powertools leaves the idempotency record INPROGRESS until the invocation's time runs out."""


@pytest.fixture
def tokens() -> dict[str, Any]:
    """StartPipelineExecution responses by ClientRequestToken, as SageMaker remembers them."""
    return {}


def lambda_instance(tokens: dict[str, Any]) -> Any:
    """A fresh Lambda runtime for the trigger (a crashed one is never reused), on AWS's token rule."""
    handler = load_handler("trigger")
    events = handler.sagemaker.meta.events

    def remember_token(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["client_request_token"] = params.get("ClientRequestToken")

    def same_token_same_execution(context: dict[str, Any], **_: Any) -> Any:
        return tokens.get(context.get("client_request_token") or "")

    def record(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        token = context.get("client_request_token")
        if token and "PipelineExecutionArn" in parsed:
            tokens.setdefault(token, (http_response, parsed))

    events.register("before-parameter-build.sagemaker.StartPipelineExecution", remember_token)
    events.register("before-call.sagemaker.StartPipelineExecution", same_token_same_execution)
    events.register("after-call.sagemaker.StartPipelineExecution", record)
    return handler


def client_of(handler: Any, service: str) -> Any:
    return handler.persistence.client if service == "dynamodb" else getattr(handler, service)


def fail(handler: Any, service: str, operation: str, fault: str, *, times: int = 1, after: bool = False) -> None:
    """Make the handler's next `times` calls of `operation` fail: `fault` is an AWS error code
    (ThrottlingException, InternalError, SlowDown, ...) or "killed" (the runtime dies there).
    `after`: the call reached AWS and succeeded, then the fault struck (the response was lost)."""
    left = [times]

    def strike(**_: Any) -> None:
        if left[0] <= 0:
            return
        left[0] -= 1
        if fault == "killed":
            raise RuntimeKilled(f"{service}.{operation}")
        status = 400 if "Throttl" in fault else 503
        raise ClientError({"Error": {"Code": fault, "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    client_of(handler, service).meta.events.register(f"{'after' if after else 'before'}-call.{service}.{operation}",
                                                     strike)


def upload(aws: Aws, sample_dataset: Callable[..., Any], name: str = "shapes", **kwargs: Any) -> str:
    ds = sample_dataset("local-" + str(abs(hash(name))), train=4, val=2, **kwargs)
    return aws.upload_dataset(ds.root, name)


def marker_event(name: str, version: str, template: str = "s3_marker_put") -> dict[str, Any]:
    """The events/ marker event for datasets/<name>/data.yaml, key URL-encoded as S3 sends it."""
    event = copy.deepcopy(load_event(template))
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = quote_plus(f"datasets/{name}/data.yaml", safe="/")
    obj["versionId"] = version
    return event


def started(aws: Aws) -> list[str]:
    """DatasetVersion of every execution started so far."""
    return sorted(aws.execution_parameters(e["PipelineExecutionArn"])["DatasetVersion"] for e in aws.executions())


# --------------------------------------------------------------------------- S3 delivery
@pytest.mark.parametrize("name", ["a b+c", "100% real", "Zebras & Ünïcode v2 日本"])
def test_a_marker_delivered_twice_starts_once_for_any_key(aws: Aws, tokens, sample_dataset, name: str) -> None:
    """GIVEN a dataset whose folder name has spaces, `+`, `%`, punctuation or non-ASCII letters
    WHEN S3 delivers its marker twice (at-least-once delivery)
    THEN one execution starts, on that exact folder, and both deliveries answer "started"."""
    version = upload(aws, sample_dataset, name)
    first = lambda_instance(tokens).lambda_handler(marker_event(name, version), LambdaContext())
    again = lambda_instance(tokens).lambda_handler(marker_event(name, version), LambdaContext())

    assert first["outcomes"] == again["outcomes"] and first["outcomes"][0]["outcome"] == "started"
    [execution] = aws.executions()
    assert aws.execution_parameters(execution["PipelineExecutionArn"])["DatasetS3Uri"].endswith(f"/datasets/{name}/")


def test_concurrent_deliveries_start_once_and_all_answer_the_outcome(aws: Aws, tokens, sample_dataset) -> None:
    """GIVEN 6 deliveries of one marker at the same instant (moto ignores ClientRequestToken here:
    only the idempotency record can stop the duplicates)
    WHEN they run together
    THEN one execution starts, and every invocation succeeds with the same "started" outcome (the
    duplicates wait for it rather than answering before anything started)."""
    version = upload(aws, sample_dataset)
    handler = load_handler("trigger")
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        try:
            results.append(handler.lambda_handler(marker_event("shapes", version), LambdaContext()))
        except Exception as error:  # noqa: BLE001 - asserted below
            results.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(aws.executions()) == 1
    assert all(isinstance(r, dict) and r["outcomes"][0]["outcome"] == "started" for r in results), results


def test_a_late_event_for_an_older_version_starts_nothing(aws: Aws, tokens, sample_dataset) -> None:
    """GIVEN data.yaml uploaded twice (v1, then v2) and v2's event handled
    WHEN v1's event arrives late (S3 does not order events)
    THEN nothing more starts: the prefix holds v2's data, which v1's training would mislabel."""
    v1 = upload(aws, sample_dataset)
    v2 = aws.put("datasets/shapes/data.yaml", (sample_dataset("again", train=4, val=2).data_yaml).read_bytes())
    lambda_instance(tokens).lambda_handler(marker_event("shapes", v2), LambdaContext())
    late = lambda_instance(tokens).lambda_handler(marker_event("shapes", v1), LambdaContext())

    assert late["outcomes"][0]["outcome"] == "superseded"
    assert started(aws) == [v2]
    assert aws.inbox() == []


def test_events_out_of_order_start_the_current_version_once(aws: Aws, tokens, sample_dataset) -> None:
    """GIVEN v1 then v2 of a dataset uploaded quickly
    WHEN their events arrive v2 first, then v1, then v2 again
    THEN exactly one execution starts, for v2."""
    v1 = upload(aws, sample_dataset)
    v2 = aws.put("datasets/shapes/data.yaml", (sample_dataset("again", train=4, val=2).data_yaml).read_bytes())
    for version in (v2, v1, v2):
        lambda_instance(tokens).lambda_handler(marker_event("shapes", version), LambdaContext())
    assert started(aws) == [v2]


# --------------------------------------------------------------------------- crashes
CRASH_POINTS = {
    # before the idempotency record exists
    "before-the-record": ("dynamodb", "PutItem", False),
    # the record is INPROGRESS; nothing validated yet
    "before-validation": ("s3", "HeadObject", False),
    "while-listing": ("s3", "ListObjectsV2", False),
    # SageMaker started the execution; the record was never completed
    "after-start-succeeded": ("sagemaker", "StartPipelineExecution", True),
    "before-the-outcome-is-stored": ("dynamodb", "UpdateItem", False),
}


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_a_crash_anywhere_is_retried_until_the_dataset_starts_once(aws: Aws, tokens, sample_dataset,
                                                                   point: str) -> None:
    """GIVEN a valid dataset
    WHEN the runtime dies at some point of the first invocation (out of memory: no Python
    exception handler runs), and Lambda retries the event on a fresh runtime
    THEN the retry starts the dataset (it waits out the dead invocation's record if it must): one
    execution in all, never zero, never two."""
    version = upload(aws, sample_dataset)
    crashing = lambda_instance(tokens)
    service, operation, after = CRASH_POINTS[point]
    fail(crashing, service, operation, "killed", after=after)
    with pytest.raises(RuntimeKilled):
        # a 1.5 s function timeout: the dead invocation's record expires quickly
        crashing.lambda_handler(marker_event("shapes", version), LambdaContext(timeout_ms=1500))

    retry = lambda_instance(tokens).lambda_handler(marker_event("shapes", version), LambdaContext())

    assert retry["outcomes"][0]["outcome"] == "started"
    assert started(aws) == [version]
    assert aws.inbox() == []


def test_a_retry_too_early_fails_again_rather_than_dropping_the_event(aws: Aws, tokens, sample_dataset) -> None:
    """GIVEN an invocation killed after it wrote its record (INPROGRESS for its remaining time)
    WHEN Lambda's retry arrives with too little time left to wait that out
    THEN the retry fails (Lambda retries again, then the on-failure queue), it does not answer
    "duplicate"; and the next retry, after the record expired, starts the dataset once."""
    version = upload(aws, sample_dataset)
    crashing = lambda_instance(tokens)
    fail(crashing, "s3", "HeadObject", "killed")
    with pytest.raises(RuntimeKilled):
        crashing.lambda_handler(marker_event("shapes", version), LambdaContext(timeout_ms=2000))

    start_training = __import__("start_training")
    with pytest.raises(start_training.DeliveryInProgress):
        lambda_instance(tokens).lambda_handler(marker_event("shapes", version), LambdaContext(timeout_ms=60_500))
    assert aws.executions() == []

    time.sleep(2)
    retry = lambda_instance(tokens).lambda_handler(marker_event("shapes", version), LambdaContext())
    assert retry["outcomes"][0]["outcome"] == "started" and started(aws) == [version]


# --------------------------------------------------------------------------- AWS errors
AWS_FAULTS = [
    ("s3", "HeadObject", "SlowDown"),
    ("s3", "ListObjectsV2", "SlowDown"),
    ("s3", "GetObject", "InternalError"),
    ("sagemaker", "StartPipelineExecution", "ThrottlingException"),
    ("dynamodb", "PutItem", "ProvisionedThroughputExceededException"),
    ("dynamodb", "UpdateItem", "ThrottlingException"),
]


@pytest.mark.parametrize(("service", "operation", "code"), AWS_FAULTS, ids=[f"{s}.{o}" for s, o, _ in AWS_FAULTS])
def test_an_aws_error_fails_the_invocation_and_the_retry_starts_once(aws: Aws, tokens, sample_dataset,
                                                                     service: str, operation: str, code: str) -> None:
    """GIVEN a valid dataset
    WHEN an AWS API the trigger calls throttles or fails past botocore's own retries
    THEN the invocation fails (no refusal sent: the dataset is fine), and Lambda's retry starts it
    once."""
    version = upload(aws, sample_dataset)
    event = marker_event("shapes", version)
    first = lambda_instance(tokens)
    fail(first, service, operation, code, times=3)
    with pytest.raises(Exception):  # noqa: B017, PT011 - botocore's or Powertools' error, as Lambda reports it
        first.lambda_handler(event, LambdaContext(timeout_ms=1500))

    retry = lambda_instance(tokens).lambda_handler(event, LambdaContext())

    assert retry["outcomes"][0]["outcome"] == "started"
    assert started(aws) == [version]
    assert aws.inbox() == []


def test_a_refusal_whose_notice_fails_is_retried_and_sent_once(aws: Aws, tokens, sample_dataset) -> None:
    """GIVEN a broken dataset (a `download:` key)
    WHEN SNS throttles the refusal notice
    THEN the invocation fails, the retry sends the notice: the team hears once, nothing starts."""
    ds = sample_dataset("broken", train=4, val=2)
    (ds.root / "data.yaml").write_text(ds.data_yaml.read_text() + "download: https://example.com/x.sh\n")
    version = aws.upload_dataset(ds.root, "shapes")
    first = lambda_instance(tokens)
    fail(first, "sns", "Publish", "Throttling")
    with pytest.raises(ClientError):
        first.lambda_handler(marker_event("shapes", version), LambdaContext())

    retry = lambda_instance(tokens).lambda_handler(marker_event("shapes", version), LambdaContext())
    assert retry["outcomes"][0]["outcome"] == "refused"
    assert len(aws.inbox()) == 1 and aws.executions() == []


def test_one_failing_record_does_not_stop_the_others(aws: Aws, tokens, sample_dataset) -> None:
    """GIVEN one event with two datasets' markers, the first of which hits a SageMaker throttle
    WHEN it is handled, then retried
    THEN the second dataset starts in the first invocation, the first in the retry: one each."""
    va, vb = upload(aws, sample_dataset, "cats"), upload(aws, sample_dataset, "dogs")
    event = marker_event("cats", va)
    event["Records"].append(marker_event("dogs", vb)["Records"][0])
    first = lambda_instance(tokens)
    fail(first, "sagemaker", "StartPipelineExecution", "ThrottlingException")
    with pytest.raises(ClientError):
        first.lambda_handler(event, LambdaContext())
    assert started(aws) == [vb]

    retry = lambda_instance(tokens).lambda_handler(event, LambdaContext())
    assert [o["outcome"] for o in retry["outcomes"]] == ["started", "started"]
    assert started(aws) == sorted([va, vb])
