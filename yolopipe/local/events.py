"""The events AWS sends our functions in local mode: the S3 notification for a dataset marker
(to the trigger), the EventBridge event SageMaker emits when a pipeline execution's status
changes (to the notifier), and EventBridge's routing of our own custom events (the trigger's
"Dataset Refused") by template.yaml's rules: the emulator's rules send them to a queue, and local
mode hands each one to the notifier, as EventBridge invokes it."""

from __future__ import annotations

import json
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


def custom_event_patterns(template: dict[str, Any], function: str, refs: dict[str, str]) -> list[dict[str, Any]]:
    """The EventBridge rule patterns of `function` in template.yaml for events that are not AWS's
    own (`source` not `aws.*`), with `!Ref`s resolved from `refs`."""
    events = ((((template.get("Resources") or {}).get(function) or {}).get("Properties") or {}).get("Events") or {})
    patterns = []
    for event in events.values():
        pattern = (event.get("Properties") or {}).get("Pattern") or {}
        if event.get("Type") == "EventBridgeRule" and not any(
                str(source).startswith("aws.") for source in pattern.get("source") or []):
            patterns.append(_resolve_refs(pattern, refs))
    return patterns


def _resolve_refs(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and str(value["Ref"]) in refs:
            return refs[str(value["Ref"])]
        return {key: _resolve_refs(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(item, refs) for item in value]
    return value


def route_custom_events(events: Any, sqs: Any, template: dict[str, Any], function: str, refs: dict[str, str],
                        name: str) -> str:
    """Create `function`'s custom-event rules on the emulator's default bus, each targeting one queue;
    return the queue's URL (drain it with `take_routed_events`)."""
    queue_url = str(sqs.create_queue(QueueName=f"{name}-events")["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for index, pattern in enumerate(custom_event_patterns(template, function, refs)):
        rule = f"{name}-{function}-{index}"[:64]
        events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=rule, Targets=[{"Id": function[:64], "Arn": queue_arn}])
    return queue_url


def take_routed_events(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every event the rules routed so far, in order (removed from the queue)."""
    taken: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages")
        if not messages:
            return taken
        for message in messages:
            taken.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
