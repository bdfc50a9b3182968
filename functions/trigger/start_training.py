"""The trigger's logic: a dataset marker arrives -> validate the dataset -> start the pipeline once,
or refuse it and say why on the notification topic. Clients come in as arguments.

Overrides: an optional `yolopipe.yaml` beside data.yaml sets pipeline parameters for this dataset
(any spelling: `epochs: 50`, `model_variant: s`), checked against the shared parameter bounds,
`only_overridable` (a dataset cannot lower its own quality gate) and the stack's cost bounds
(MaxEpochs, AllowedTrainingInstanceTypes, MaxTrainingRuntimeSeconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.exceptions import ClientError
from record_refusal import record_refusal
from s3_events import DatasetMarker, markers_from_event
from trigger_config import TriggerConfig

from yolopipe_shared import parameters, topic
from yolopipe_shared.data_yaml import Problem
from yolopipe_shared.dataset_sources import S3DatasetSource
from yolopipe_shared.errors import PipelineNotFound, YolopipeError
from yolopipe_shared.layout import MARKER_FILE, dataset_version
from yolopipe_shared.overrides import OVERRIDES_FILE, OVERRIDES_MAX_BYTES, StackLimits, parse_overrides
from yolopipe_shared.validate import validate_dataset

logger = logging.getLogger(__name__)

#: Problems listed in a refusal message; the rest are counted.
MAX_PROBLEMS_LISTED = 50
#: A problem quotes what it found (a value, a path): at most this much of it.
MAX_PROBLEM_CHARS = 500
#: Most files the trigger validates: 500,000 images with their labels. Its listing takes ~140 MB of
#: the function's 512 MB (tests/unit/dataset/test_dataset_memory.py measures it); a larger dataset
#: is refused with a message, never an out-of-memory crash.
MAX_DATASET_FILES = 1_000_000


def read_overrides(s3: Any, marker: DatasetMarker, limits: StackLimits) -> tuple[
        dict[str, parameters.Value], list[Problem]]:
    """The dataset's parameter overrides from `yolopipe.yaml` (none if absent), or the problems in it."""
    key = marker.prefix + OVERRIDES_FILE
    try:
        obj = s3.get_object(Bucket=marker.bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return {}, []
        raise
    body = obj["Body"]
    if int(obj.get("ContentLength") or 0) > OVERRIDES_MAX_BYTES:
        body.close()
        return {}, [Problem(OVERRIDES_FILE, 1, f"file is larger than {OVERRIDES_MAX_BYTES // 1024} KiB; "
                                               "it should hold a few parameters only")]
    text = body.read(OVERRIDES_MAX_BYTES + 1).decode("utf-8", errors="replace")
    return parse_overrides(text, limits)


def start_training(marker: DatasetMarker, *, s3: Any, sagemaker: Any, sns: Any, events: Any,
                   config: TriggerConfig) -> dict[str, Any]:
    """Validate one dataset version and start its pipeline execution, or refuse it.

    Returns a JSON-able outcome (the idempotency layer stores it and replays it for duplicates).
    A refusal is a normal outcome: the problems are recorded under refusals/ (the CLI reads them),
    announced to the notifier (Slack) and sent to the topic (email); nothing is retried. So is a
    misplaced marker (a data.yaml not at `datasets/<name>/data.yaml`): the uploader is told where it
    belongs, once per object version, as this runs under the same idempotency record.
    """
    if marker.misplaced:
        publish_misplaced_marker(sns, config.notify_topic_arn, marker, config.dataset_prefix)
        logger.info("misplaced marker ignored", extra={"key": marker.key, "version": marker.version})
        return {"outcome": "ignored", "key": marker.key, "notice": MARKER_IGNORED}
    current = current_version(s3, marker)
    if current != marker.version:
        # A late or out-of-order event: the prefix now holds another upload (its own event starts it)
        # or none; training now would run on data this version does not describe.
        logger.info("marker superseded", extra={"dataset": marker.dataset, "version": marker.version,
                                                "current": current})
        return {"outcome": "superseded", "dataset": marker.dataset, "version": marker.version,
                "current_version": current}
    report = validate_dataset(S3DatasetSource(s3, marker.bucket, marker.prefix), label_sample=config.label_sample,
                              max_files=MAX_DATASET_FILES)
    overrides, override_problems = read_overrides(s3, marker, config.limits)
    problems: list[Problem] = [*report.problems, *override_problems]
    if problems:
        # Record and event first: repeating them is harmless (one Slack post per record), an email is not.
        refusal = record_refusal(s3, events, marker, problems)
        publish_refusal(sns, config.notify_topic_arn, marker, problems)
        logger.info("dataset refused", extra={"dataset": marker.dataset, "problems": len(problems)})
        # The outcome is stored in the idempotency record (a DynamoDB item holds at most 400 KB)
        return {"outcome": "refused", "dataset": marker.dataset, "problem_count": len(problems),
                "refusal_uri": refusal.uri,
                "problems": [_truncate(str(p), MAX_PROBLEM_CHARS) for p in problems[:MAX_PROBLEMS_LISTED]]}

    values = {**parameters.dataset_parameters(marker.dataset_uri, marker.version), **overrides}
    try:
        response = sagemaker.start_pipeline_execution(
            PipelineName=config.pipeline_name,
            PipelineExecutionDisplayName=marker.display_name,
            PipelineExecutionDescription=_truncate(f"dataset {marker.marker_uri} version {marker.version}", 3072),
            PipelineParameters=parameters.to_execution_parameters(values),
            ClientRequestToken=marker.client_request_token,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFound":
            raise PipelineNotFound(f"pipeline {config.pipeline_name!r} does not exist; deploy the stack "
                                   "(sam deploy) before uploading datasets") from error
        raise
    arn = response["PipelineExecutionArn"]
    logger.info("pipeline started", extra={"dataset": marker.dataset, "execution": arn})
    return {"outcome": "started", "dataset": marker.dataset, "execution_arn": arn,
            "parameters": {k: parameters.BY_NAME[k].to_string(v) for k, v in values.items()}}


def current_version(s3: Any, marker: DatasetMarker) -> str:
    """The version data.yaml has now (layout.dataset_version's rule), "" when it was deleted."""
    try:
        head = s3.head_object(Bucket=marker.bucket, Key=marker.key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return ""
        raise
    return dataset_version(head.get("VersionId"), head.get("ETag"))


def publish_refusal(sns: Any, topic_arn: str, marker: DatasetMarker, problems: list[Problem]) -> None:
    """Tell the team, in plain text, why a dataset did not start training."""
    listed = [f"  {_truncate(str(p), MAX_PROBLEM_CHARS)}" for p in problems[:MAX_PROBLEMS_LISTED]]
    if len(problems) > MAX_PROBLEMS_LISTED:
        listed.append(f"  ... and {len(problems) - MAX_PROBLEMS_LISTED} more")
    message = "\n".join([
        f"yolopipe did not start training for dataset {marker.dataset!r}.",
        f"Marker: {marker.marker_uri} (version {marker.version})",
        "",
        f"{len(problems)} problem(s) found:",
        *listed,
        "",
        f"Fix them and upload {marker.prefix}data.yaml again (write it last: it starts training).",
    ])
    topic.publish(sns, topic_arn, f"yolopipe: dataset {marker.dataset} refused", message, "dataset-refused",
                  dataset=marker.dataset)


#: The topic's event kind for a data.yaml in the wrong place (subscribers can filter on it).
MARKER_IGNORED = "marker-ignored"


def publish_misplaced_marker(sns: Any, topic_arn: str, marker: DatasetMarker, root: str) -> None:
    """One line to the uploader: this data.yaml starts nothing, and where the marker must be."""
    message = (f"yolopipe ignored {_truncate(marker.marker_uri, 1200)} (version {marker.version}): {marker.misplaced}. "
               f"Nothing was started: a dataset's marker must be {root}<name>/{MARKER_FILE}, "
               "directly in the dataset folder and written last.")
    topic.publish(sns, topic_arn, f"yolopipe: {MARKER_FILE} ignored, not at {root}<name>/{MARKER_FILE}", message,
                  MARKER_IGNORED, dataset=marker.dataset)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


StartOnce = Callable[..., dict[str, Any]]
RemainingMillis = Callable[[], int]

#: Time an invocation keeps to validate and start once it holds a dataset version's record: it waits
#: for another holder no longer than that (a retry that cannot finish in time leaves it to the next).
TIME_TO_START_MS = 60_000
#: Polls of a record held by another invocation: 0.2 s, doubling up to 2 s (a few DynamoDB writes).
FIRST_POLL_S, MAX_POLL_S = 0.2, 2.0


class DeliveryInProgress(YolopipeError):
    """Another invocation holds this dataset version's record and did not finish while this one could
    wait. Raised so that Lambda retries the event: a holder that crashed (out of memory, killed) left
    its record INPROGRESS until its own time ran out, and only a retry after that starts the dataset."""


def handle_s3_event(event: Mapping[str, Any], start_once: StartOnce, dataset_prefix: str,
                    remaining_ms: RemainingMillis, *, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Every record of an S3 notification: markers go through `start_once(marker=...)` (the
    idempotent wrapper of `start_training`), anything else is ignored successfully.

    Exactly once: a marker that was not acted on raises (after the other records were handled), so
    Lambda retries the event and finally sends it to the trigger's on-failure queue; a marker acted
    on answers its stored outcome again.
    """
    outcomes: list[dict[str, Any]] = []
    failures: list[Exception] = []
    for record, marker in markers_from_event(event, dataset_prefix):
        if marker is None:
            outcomes.append({"outcome": "ignored", "key": _safe_key(record)})
            continue
        try:
            outcomes.append(start_when_free(start_once, marker, remaining_ms, sleep=sleep))
        except Exception as error:  # noqa: BLE001 - raised again below, once every record had its turn
            logger.exception("dataset not started; the event will be retried",
                             extra={"dataset": marker.dataset, "version": marker.version})
            failures.append(error)
    if failures:
        raise failures[0]
    return {"records": len(outcomes), "outcomes": outcomes}


def start_when_free(start_once: StartOnce, marker: DatasetMarker, remaining_ms: RemainingMillis, *,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """`start_once` for one marker; while another invocation holds the version's record, wait for
    its outcome (a concurrent duplicate delivery) or for its record to expire (a crashed holder),
    as long as this invocation would still have TIME_TO_START_MS left; then raise DeliveryInProgress."""
    attempt = 0
    while True:
        try:
            return start_once(marker=marker.as_dict())
        except IdempotencyAlreadyInProgressError as error:
            pause = min(MAX_POLL_S, FIRST_POLL_S * 2**attempt)
            if remaining_ms() - pause * 1000 < TIME_TO_START_MS:
                raise DeliveryInProgress(
                    f"dataset {marker.dataset!r} version {marker.version} is held by another invocation "
                    "that has not finished; Lambda retries this event") from error
            sleep(pause)
            attempt += 1


def _safe_key(record: Mapping[str, Any]) -> str:
    try:
        return str(record["s3"]["object"]["key"])
    except (KeyError, TypeError):
        return ""
