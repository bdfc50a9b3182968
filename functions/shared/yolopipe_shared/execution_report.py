"""What a pipeline execution status change means to the team: gathered from the event,
DescribePipelineExecution, ListPipelineParametersForExecution, ListPipelineExecutionSteps (failed
step and reason, evaluation job, registered model package) and evaluation.json.

The status event itself carries no pipeline name and no failure reason (see ARCHITECTURE).
Enrichment is best effort: a missing evaluation.json or step list never stops the notification.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from . import evaluation, parameters
from .errors import ExecutionNotFound

logger = logging.getLogger(__name__)

NOTIFY_STATUSES = ("Executing", "Succeeded", "Failed", "Stopped")
TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")
EVALUATE_STEP = "Evaluate"
EVALUATION_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ExecutionReport:
    """The facts a Slack message and an email both show."""

    status: str
    pipeline_name: str
    execution_arn: str
    display_name: str
    region: str
    dataset_uri: str = ""
    started: datetime | None = None
    ended: datetime | None = None
    parameters: dict[str, parameters.Value] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    model_package_arn: str = ""
    failed_step: str = ""
    failure_reason: str = ""

    @property
    def dataset(self) -> str:
        """The dataset's name (`s3://b/datasets/<name>/` -> `<name>`)."""
        return self.dataset_uri.rstrip("/").rsplit("/", 1)[-1] if self.dataset_uri else ""

    @property
    def duration(self) -> str:
        if self.started is None:
            return ""
        end = self.ended or (datetime.now(UTC) if self.status == "Executing" else None)
        if end is None:
            return ""
        seconds = max(0, int((end - self.started).total_seconds()))
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"

    @property
    def console_url(self) -> str:
        execution_id = self.execution_arn.rsplit("/", 1)[-1]
        return (f"https://{self.region}.console.aws.amazon.com/sagemaker/home?region={self.region}"
                f"#/pipelines/{quote(self.pipeline_name)}/executions/{quote(execution_id)}")


def parse_time(value: Any) -> datetime | None:
    """An API time as boto3 (datetime), an emulator (epoch seconds) or an event (ISO text) gives it; aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def pipeline_name_from_arn(arn: str) -> str:
    """`arn:aws:sagemaker:r:a:pipeline/<name>[/execution/<id>]` -> `<name>`."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) > 1 else resource


def gather_report(detail: dict[str, Any], *, sagemaker: Any, s3: Any, region: str) -> ExecutionReport:
    """Everything worth saying about one status change (`detail` is the EventBridge event's detail)."""
    arn = str(detail["pipelineExecutionArn"])
    status = str(detail.get("currentPipelineExecutionStatus", ""))
    try:
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ValidationException"):
            raise ExecutionNotFound(f"pipeline execution {arn} does not exist") from error
        raise
    steps = _steps(sagemaker, arn)
    failed_step, reason = _failure(steps, status, str(described.get("FailureReason") or ""))
    report = ExecutionReport(
        status=status,
        pipeline_name=pipeline_name_from_arn(str(described.get("PipelineArn") or detail.get("pipelineArn") or arn)),
        execution_arn=arn,
        display_name=str(detail.get("pipelineExecutionDisplayName") or described.get("PipelineExecutionDisplayName")
                         or ""),
        region=region,
        started=parse_time(detail.get("executionStartTime")) or parse_time(described.get("CreationTime")),
        ended=(parse_time(detail.get("executionEndTime")) or parse_time(described.get("LastModifiedTime"))
               if status in TERMINAL_STATUSES else None),
        parameters=_parameters(sagemaker, arn),
        metrics=_metrics(sagemaker, s3, steps) if status == "Succeeded" else {},
        model_package_arn=_model_package(steps),
        failed_step=failed_step,
        failure_reason=reason,
    )
    dataset_uri = str(report.parameters.get("DatasetS3Uri", ""))
    return ExecutionReport(**{**report.__dict__, "dataset_uri": dataset_uri})


def described_status(sagemaker: Any, arn: str) -> str:
    """The execution's status now (events can arrive late or out of order)."""
    return str(sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn).get("PipelineExecutionStatus", ""))


def _parameters(sagemaker: Any, arn: str) -> dict[str, parameters.Value]:
    items: list[dict[str, str]] = []
    token: str | None = None
    try:
        while True:
            kwargs = {"PipelineExecutionArn": arn, **({"NextToken": token} if token else {})}
            page = sagemaker.list_pipeline_parameters_for_execution(**kwargs)
            items.extend(page.get("PipelineParameters") or [])
            token = page.get("NextToken")
            if not token:
                break
    except (ClientError, BotoCoreError) as error:
        logger.warning("could not list the execution's parameters: %s", type(error).__name__)
    return parameters.from_execution_parameters(items)


def _steps(sagemaker: Any, arn: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while True:
            kwargs = {"PipelineExecutionArn": arn, "SortOrder": "Ascending", **({"NextToken": token} if token else {})}
            page = sagemaker.list_pipeline_execution_steps(**kwargs)
            steps.extend(page.get("PipelineExecutionSteps") or [])
            token = page.get("NextToken")
            if not token:
                break
    except (ClientError, BotoCoreError, NotImplementedError) as error:
        logger.warning("could not list the execution's steps: %s", type(error).__name__)
    return steps


def _failure(steps: list[dict[str, Any]], status: str, execution_reason: str) -> tuple[str, str]:
    """The failed step's name and its reason (a Fail step's message says e.g. `map50_95 0.41 < 0.50`)."""
    if status != "Failed":
        return "", ""
    for step in steps:
        if step.get("StepStatus") == "Failed":
            fail_meta = (step.get("Metadata") or {}).get("Fail") or {}
            reason = str(fail_meta.get("ErrorMessage") or step.get("FailureReason") or execution_reason)
            return str(step.get("StepDisplayName") or step.get("StepName") or ""), reason
    return "", execution_reason


def _model_package(steps: list[dict[str, Any]]) -> str:
    for step in steps:
        arn = ((step.get("Metadata") or {}).get("RegisterModel") or {}).get("Arn")
        if arn:
            return str(arn)
    return ""


def _metrics(sagemaker: Any, s3: Any, steps: list[dict[str, Any]]) -> dict[str, float]:
    """Headline metrics from the Evaluate step's evaluation.json ({} when it cannot be read)."""
    jobs = [(s.get("StepName"), ((s.get("Metadata") or {}).get("ProcessingJob") or {}).get("Arn")) for s in steps]
    jobs = [(name, job) for name, job in jobs if job]
    jobs.sort(key=lambda item: item[0] != EVALUATE_STEP)
    if not jobs:
        return {}
    job_name = str(jobs[0][1]).rsplit("/", 1)[-1]
    try:
        job = sagemaker.describe_processing_job(ProcessingJobName=job_name)
        outputs = (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        uris = [o["S3Output"]["S3Uri"] for o in outputs
                if o.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME and o.get("S3Output")]
        if not uris:
            return {}
        bucket, _, prefix = str(uris[0]).removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/{evaluation.EVALUATION_FILE}" if prefix else evaluation.EVALUATION_FILE
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(EVALUATION_MAX_BYTES)
        document = json.loads(body)  # a list, a string, NaN, nesting too deep: no metrics, never an error
        metrics = evaluation.headline_metrics(document) if isinstance(document, dict) else {}
        return {name: value for name, value in metrics.items() if math.isfinite(value)}
    except (ClientError, BotoCoreError, ValueError, KeyError, TypeError, ArithmeticError, RecursionError) as error:
        logger.warning("could not read %s: %s", evaluation.EVALUATION_FILE, type(error).__name__)
        return {}
