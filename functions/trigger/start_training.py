"""The trigger's logic: a dataset marker arrives -> validate the dataset -> start the pipeline once,
or refuse it and say why on the notification topic. Clients come in as arguments.

Overrides: an optional `yolopipe.yaml` beside data.yaml sets pipeline parameters for this dataset
(any spelling: `epochs: 50`, `model_variant: s`), checked against the shared parameter bounds,
`only_overridable` (a dataset cannot lower its own quality gate) and the stack's MaxEpochs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError
from s3_events import DatasetMarker, markers_from_event
from trigger_config import TriggerConfig

from yolopipe_shared import parameters, topic
from yolopipe_shared.data_yaml import Problem
from yolopipe_shared.dataset_sources import S3DatasetSource
from yolopipe_shared.errors import PipelineNotFound
from yolopipe_shared.overrides import OVERRIDES_FILE, OVERRIDES_MAX_BYTES, parse_overrides
from yolopipe_shared.validate import validate_dataset

logger = logging.getLogger(__name__)

#: Problems listed in a refusal message; the rest are counted.
MAX_PROBLEMS_LISTED = 50


def read_overrides(s3: Any, marker: DatasetMarker, max_epochs: int | None) -> tuple[
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
    return parse_overrides(text, max_epochs)


def start_training(marker: DatasetMarker, *, s3: Any, sagemaker: Any, sns: Any,
                   config: TriggerConfig) -> dict[str, Any]:
    """Validate one dataset version and start its pipeline execution, or refuse it.

    Returns a JSON-able outcome (the idempotency layer stores it and replays it for duplicates).
    A refusal is a normal outcome: the problems go to the topic and nothing is retried.
    """
    report = validate_dataset(S3DatasetSource(s3, marker.bucket, marker.prefix), label_sample=config.label_sample)
    overrides, override_problems = read_overrides(s3, marker, config.max_epochs)
    problems: list[Problem] = [*report.problems, *override_problems]
    if problems:
        publish_refusal(sns, config.notify_topic_arn, marker, problems)
        logger.info("dataset refused", extra={"dataset": marker.dataset, "problems": len(problems)})
        return {"outcome": "refused", "dataset": marker.dataset, "problems": [str(p) for p in problems]}

    values = {"DatasetS3Uri": marker.dataset_uri, "DatasetVersion": marker.version, **overrides}
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


def publish_refusal(sns: Any, topic_arn: str, marker: DatasetMarker, problems: list[Problem]) -> None:
    """Tell the team, in plain text, why a dataset did not start training."""
    listed = [f"  {p}" for p in problems[:MAX_PROBLEMS_LISTED]]
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


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


StartOnce = Callable[..., dict[str, Any]]


def handle_s3_event(event: Mapping[str, Any], start_once: StartOnce, dataset_prefix: str) -> dict[str, Any]:
    """Every record of an S3 notification: markers go through `start_once(marker=...)` (the
    idempotent wrapper of `start_training`), anything else is ignored successfully."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    outcomes: list[dict[str, Any]] = []
    for record, marker in markers_from_event(event, dataset_prefix):
        if marker is None:
            outcomes.append({"outcome": "ignored", "key": _safe_key(record)})
            continue
        try:
            outcomes.append(start_once(marker=marker.as_dict()))
        except IdempotencyAlreadyInProgressError:
            # A concurrent delivery of the same version holds the record and will start it (or,
            # if it fails, delete the record so that its retry does).
            logger.info("duplicate delivery in progress elsewhere", extra={"dataset": marker.dataset})
            outcomes.append({"outcome": "duplicate", "dataset": marker.dataset})
    return {"records": len(outcomes), "outcomes": outcomes}


def _safe_key(record: Mapping[str, Any]) -> str:
    try:
        return str(record["s3"]["object"]["key"])
    except (KeyError, TypeError):
        return ""
