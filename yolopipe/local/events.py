"""The events AWS sends our functions in local mode: the S3 notification for a dataset marker
(to the trigger) and the EventBridge event SageMaker emits when a pipeline execution's status
changes (to the notifier)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

if TYPE_CHECKING:
    from .scheduler import Execution

STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def status_change_event(execution: Execution, previous: str | None, region: str, account: str) -> dict[str, Any]:
    """The EventBridge event SageMaker emits when an execution's status changes."""
    detail: dict[str, Any] = {
        "pipelineArn": execution.pipeline_arn,
        "pipelineExecutionArn": execution.arn,
        "pipelineExecutionDisplayName": execution.display_name,
        "currentPipelineExecutionStatus": execution.status,
        "previousPipelineExecutionStatus": previous or "Starting",
        "executionStartTime": iso(execution.created),
        "executionEndTime": iso(execution.ended),
        "pipelineExecutionDescription": execution.description,
    }
    detail = {k: v for k, v in detail.items() if v is not None}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": "aws.sagemaker",
        "account": account,
        "time": iso(now()),
        "region": region,
        "resources": [execution.pipeline_arn, execution.arn],
        "detail": detail,
    }


def s3_marker_event(s3: Any, bucket: str, key: str, region: str, *, version: str | None = None) -> dict[str, Any]:
    """The s3:ObjectCreated:Put event S3 sends for the marker (key URL-encoded, eTag, versionId)."""
    head = s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": int(head["ContentLength"]),
                           "eTag": str(head["ETag"]).strip('"'), "sequencer": f"{time.time_ns():018X}"}
    if head.get("VersionId") and head["VersionId"] != "null":
        obj["versionId"] = head["VersionId"]
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:LOCAL"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "yolopipe-dataset-marker",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "LOCAL"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj},
    }]}
