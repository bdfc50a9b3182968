"""Refused datasets, as the CLI reads them: the records the trigger writes to
`refusals/<name>/<version>.json` (yolopipe_shared.refusal), and the wait after an upload that ends
as soon as the trigger has either started an execution or refused the dataset.

    read_refusal(s3, bucket, dataset, version) -> Refusal | None
    list_refusals(s3, bucket, limit=20) -> newest first
    wait_for_outcome(sm, s3, ...) -> execution ARN | Refusal | None (timeout)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from yolopipe_shared.execution_report import parse_time
from yolopipe_shared.refusal import MAX_REFUSAL_BYTES, REFUSALS_PREFIX, Refusal, refusal_key

from . import executions as ex
from .aws import aws_errors

__all__ = ["Refusal", "list_refusals", "read_refusal", "refusal_row", "wait_for_outcome"]

#: Refusal records listed at most, to find the newest (a bucket's history of refusals stays small).
MAX_LISTED = 10_000


def _read(s3: Any, bucket: str, key: str) -> Refusal | None:
    """The record at `key`, None when there is none or it is not a refusal record."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    with obj["Body"] as body:
        raw = body.read(MAX_REFUSAL_BYTES + 1)
    try:
        return Refusal.from_json(raw)
    except ValueError:
        return None


def read_refusal(s3: Any, bucket: str, dataset: str, version: str) -> Refusal | None:
    """The trigger's refusal of this dataset version, or None (not refused, or not yet)."""
    with aws_errors(what=f"bucket {bucket!r}"):
        return _read(s3, bucket, refusal_key(dataset, version))


def _listing(s3: Any, bucket: str, prefix: str) -> list[tuple[datetime, str]]:
    """(LastModified, key) of the refusal records under `prefix`, newest first."""
    found: list[tuple[datetime, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents") or []:
            if item["Key"].endswith(".json"):
                found.append((parse_time(item["LastModified"]) or datetime.min.replace(tzinfo=UTC), item["Key"]))
        if len(found) >= MAX_LISTED:
            break
    return sorted(found, reverse=True)


def list_refusals(s3: Any, bucket: str, *, limit: int = 20, dataset: str | None = None,
                  since: datetime | None = None) -> list[Refusal]:
    """The newest refusals (of one dataset when given; written at or after `since` when given)."""
    prefix = REFUSALS_PREFIX + (f"{dataset}/" if dataset else "")
    refusals: list[Refusal] = []
    with aws_errors(what=f"bucket {bucket!r}"):
        for modified, key in _listing(s3, bucket, prefix):
            if len(refusals) >= limit or (since is not None and modified < since):
                break
            refusal = _read(s3, bucket, key)
            if refusal is not None:
                refusals.append(refusal)
    return refusals


def refusal_row(refusal: Refusal) -> dict[str, Any]:
    """A refusal as a row of `executions list` (status Refused; no execution was started)."""
    first = refusal.problems[0] if refusal.problems else ""
    return {"arn": "", "id": "", "status": "Refused", "started": refusal.refused_at.replace("Z", "+00:00"),
            "display_name": refusal.dataset, "failure_reason": f"{refusal.problem_count} problem(s): {first}",
            "refusal_uri": refusal.uri}


def wait_for_outcome(sm: Any, s3: Any, *, pipeline: str, bucket: str, dataset: str, dataset_uri: str,
                     since: datetime, version: str = "", timeout: float = 120.0, interval: float = 1.0,
                     sleep: Callable[[float], None] = time.sleep) -> str | Refusal | None:
    """What the trigger did with the upload of `dataset` at `since`: the execution it started, its
    refusal, or None after `timeout` seconds (the trigger is slow or failed: its dead-letter queue says)."""
    deadline = time.monotonic() + timeout
    earliest = since.astimezone(UTC).replace(microsecond=0)
    while True:
        if version:
            refusal = read_refusal(s3, bucket, dataset, version)
        else:
            refusal = next(iter(list_refusals(s3, bucket, limit=1, dataset=dataset, since=earliest)), None)
        if refusal is not None:
            return refusal
        arn = ex.wait_for_execution(sm, pipeline, dataset_uri, since=since, timeout=0, sleep=sleep)
        if arn is not None:
            return arn
        if time.monotonic() >= deadline:
            return None
        sleep(interval)
