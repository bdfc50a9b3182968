"""The EventBridge events SageMaker emits when a pipeline execution's status changes, as the
local executor reports them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
