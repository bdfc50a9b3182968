"""The one reader of pipeline executions: status, steps, parameters, evaluation.json and the
registered model package, from DescribePipelineExecution, ListPipelineExecutionSteps,
ListPipelineParametersForExecution, DescribeProcessingJob and S3. The notifier, the CLI and the
API all read executions through it.

Readers take boto3 clients and raise what botocore raises; callers decide: the CLI turns errors
into one-line messages (yolopipe.aws.aws_errors), the notifier enriches on a best-effort basis
(`gather_report`: a missing evaluation.json or step list never stops a notification). The status
event itself carries no pipeline name and no failure reason, hence the API calls.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from . import evaluation, parameters
from .cost import ExecutionCost, PriceList, execution_cost
from .errors import ExecutionNotFound
from .layout import NOTIFY_STATUSES, STEP_EVALUATE, TERMINAL_STATUSES, split_s3_uri
from .training_progress import TrainingSummary, job_console_url, job_logs_url

__all__ = ["NOTIFY_STATUSES", "TERMINAL_STATUSES", "ExecutionReport", "ExecutionStatus", "Step", "gather_report"]

logger = logging.getLogger(__name__)

#: evaluation.json is a few KB (per-class rows); refuse to read more than this.
EVALUATION_MAX_BYTES = 4 * 1024 * 1024
#: ListPipelineExecutionSteps metadata key -> the step type it stands for.
STEP_TYPES = {"TrainingJob": "Training", "ProcessingJob": "Processing", "Condition": "Condition",
              "RegisterModel": "RegisterModel", "Fail": "Fail", "Model": "Model", "TransformJob": "Transform",
              "Lambda": "Lambda", "QualityCheck": "QualityCheck", "ClarifyCheck": "ClarifyCheck"}
#: The metadata keys of steps that run a job with logs of its own.
JOB_KINDS = ("TrainingJob", "ProcessingJob")


# --- small readers -----------------------------------------------------------------------------

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


def iso(value: Any) -> str | None:
    moment = parse_time(value)
    return moment.isoformat(timespec="seconds") if moment else None


def reason(value: Any) -> str:
    text = "" if value is None else str(value)
    return "" if text == "None" else text  # moto writes str(None)


def pipeline_name_from_arn(arn: str) -> str:
    """`arn:aws:sagemaker:r:a:pipeline/<name>[/execution/<id>]` -> `<name>`."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) > 1 else resource


def execution_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def pages(call: Callable[..., dict[str, Any]], items_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a NextToken-paged SageMaker list call."""
    token: str | None = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(items_key) or []
        token = page.get("NextToken")
        if not token:
            return


# --- one execution -----------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    type: str
    status: str
    started: datetime | None
    ended: datetime | None
    failure_reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    #: For a step served by SageMaker's step cache: the execution whose job it reused.
    cache_source: str = ""
    #: The definition's StepName (`name` is its display name when it has one).
    step_name: str = ""

    @property
    def elapsed_s(self) -> float | None:
        if self.started is None:
            return None
        return max(0.0, ((self.ended or datetime.now(UTC)) - self.started).total_seconds())

    def job_arn(self, kind: str) -> str:
        """The ARN of the step's `TrainingJob` / `ProcessingJob` / `RegisterModel` ('' if none)."""
        return str((self.metadata.get(kind) or {}).get("Arn") or "")

    @property
    def job_kind(self) -> str:
        """`TrainingJob` / `ProcessingJob` for a step that ran (or reused) a job, else ''."""
        return next((kind for kind in JOB_KINDS if self.job_arn(kind)), "")

    @property
    def job_name(self) -> str:
        return execution_id(self.job_arn(self.job_kind)) if self.job_kind else ""

    @property
    def reused_from(self) -> str:
        """The id of the execution whose job a cached step reused ('' if it ran its own)."""
        return execution_id(self.cache_source) if self.cache_source else ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "status": self.status, "started": iso(self.started),
                "ended": iso(self.ended), "elapsed_s": _round(self.elapsed_s), "failure_reason": self.failure_reason,
                "job_name": self.job_name or None, "reused_from": self.reused_from or None}


@dataclass
class ExecutionStatus:
    arn: str
    status: str
    display_name: str
    started: datetime | None
    ended: datetime | None
    failure_reason: str
    steps: list[Step]
    pipeline_arn: str = ""
    #: The running (or last) Train job's progress, when the reader asked for it (TrainingProgress).
    progress: Any = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def elapsed_s(self) -> float | None:
        if self.started is None:
            return None
        end = self.ended if self.done else None
        return max(0.0, ((end or datetime.now(UTC)) - self.started).total_seconds())

    def failed_step(self) -> tuple[str, str]:
        """The failed step's name and its reason (a Fail step's message says e.g. `map50_95 0.41 < 0.50`)."""
        if self.status != "Failed":
            return "", ""
        for step in self.steps:
            if step.status == "Failed":
                return step.name, step.failure_reason or self.failure_reason
        return "", self.failure_reason

    def model_package_arn(self) -> str:
        return next((arn for arn in (s.job_arn("RegisterModel") for s in self.steps) if arn), "")

    def evaluation_job_arn(self) -> str:
        """The Evaluate step's processing job (another processing step's if it has a different name)."""
        jobs = [s for s in self.steps if s.job_arn("ProcessingJob")]
        jobs.sort(key=lambda s: s.name != STEP_EVALUATE)
        return jobs[0].job_arn("ProcessingJob") if jobs else ""

    def to_dict(self) -> dict[str, Any]:
        return {"arn": self.arn, "status": self.status, "display_name": self.display_name,
                "started": iso(self.started), "ended": iso(self.ended), "elapsed_s": _round(self.elapsed_s),
                "failure_reason": self.failure_reason, "steps": [s.to_dict() for s in self.steps],
                **({"training": self.progress.to_dict()} if self.progress is not None else {})}

    def step(self, name: str) -> Step | None:
        """The step called `name` (its StepName or display name, any case)."""
        wanted = name.casefold()
        return next((s for s in self.steps if wanted in (s.step_name.casefold(), s.name.casefold())), None)


def list_steps(sm: Any, arn: str) -> list[Step]:
    """The execution's steps in the order they started."""
    steps = []
    for item in pages(sm.list_pipeline_execution_steps, "PipelineExecutionSteps",
                      PipelineExecutionArn=arn, SortOrder="Ascending"):
        metadata = dict(item.get("Metadata") or {})
        steps.append(Step(
            name=str(item.get("StepDisplayName") or item.get("StepName") or ""),
            type=next((STEP_TYPES[k] for k in metadata if k in STEP_TYPES), ""),
            status=str(item.get("StepStatus") or ""),
            started=parse_time(item.get("StartTime")),
            ended=parse_time(item.get("EndTime")),
            # A Fail step's own message says why (`map50_95 0.41 < 0.50`); prefer it to the generic reason.
            failure_reason=reason((metadata.get("Fail") or {}).get("ErrorMessage") or item.get("FailureReason")),
            metadata=metadata,
            cache_source=str((item.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn") or ""),
            step_name=str(item.get("StepName") or ""),
        ))
    return steps


def describe(sm: Any, arn: str) -> dict[str, Any]:
    return dict(sm.describe_pipeline_execution(PipelineExecutionArn=arn))


def execution_status(sm: Any, arn: str, *, steps: bool = True) -> ExecutionStatus:
    return _status(arn, describe(sm, arn), list_steps(sm, arn) if steps else [])


def _status(arn: str, described: dict[str, Any], steps: list[Step], status: str = "") -> ExecutionStatus:
    """`status`: the one to report (an event's), else the described one."""
    status = status or str(described.get("PipelineExecutionStatus") or "")
    return ExecutionStatus(
        arn=arn,
        status=status,
        display_name=str(described.get("PipelineExecutionDisplayName") or ""),
        started=parse_time(described.get("CreationTime")),
        ended=parse_time(described.get("LastModifiedTime")) if status in TERMINAL_STATUSES else None,
        failure_reason=reason(described.get("FailureReason")),
        steps=steps,
        pipeline_arn=str(described.get("PipelineArn") or ""),
    )


def execution_parameters(sm: Any, arn: str) -> dict[str, parameters.Value]:
    """The execution's parameter values as it was started (typed by the shared specs)."""
    items = list(pages(sm.list_pipeline_parameters_for_execution, "PipelineParameters", PipelineExecutionArn=arn))
    return parameters.from_execution_parameters(items)


def evaluation_output_uri(sm: Any, processing_job_arn: str) -> str:
    """The S3 folder of the evaluation output of a processing job ('' if it has none)."""
    job = sm.describe_processing_job(ProcessingJobName=execution_id(processing_job_arn))
    for output in (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        if output.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME and output.get("S3Output"):
            return str(output["S3Output"]["S3Uri"])
    return ""


def evaluation_file_uri(output_uri: str) -> str:
    return f"{output_uri.rstrip('/')}/{evaluation.EVALUATION_FILE}"


def read_evaluation(s3: Any, output_uri: str) -> dict[str, Any]:
    """evaluation.json from an evaluation output folder; {} when it is absent or not a JSON object
    (a list, a string, NaN, nesting too deep, more than EVALUATION_MAX_BYTES: no metrics, never an error)."""
    bucket, key = split_s3_uri(evaluation_file_uri(output_uri))
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(EVALUATION_MAX_BYTES + 1)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return {}
        raise
    if len(body) > EVALUATION_MAX_BYTES:
        logger.warning("%s is larger than %d bytes: ignored", evaluation.EVALUATION_FILE, EVALUATION_MAX_BYTES)
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def finite_headline_metrics(document: dict[str, Any]) -> dict[str, float]:
    """The headline metrics of an evaluation.json, finite values only ({} for a malformed one)."""
    try:
        metrics = evaluation.headline_metrics(document) if document else {}
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return {}
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


# --- what a status change means to the team (the notifier) -------------------------------------

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
    #: evaluation.json's champion/challenger verdict ("0.612 vs approved v3 0.587: +0.025, registered").
    verdict: str = ""
    #: Where the execution's MLflow run is (evaluation.mlflow_line), "" when it was not tracked.
    mlflow: str = ""
    model_package_arn: str = ""
    failed_step: str = ""
    failure_reason: str = ""
    #: What the jobs cost (final statuses only; None when it could not be read).
    cost: ExecutionCost | None = None
    #: What the team must not miss (a quality gate lowered below the stack's for this run).
    warnings: tuple[str, ...] = ()
    #: The Train step's job (final statuses): best epoch, training time, images/s; None if unread.
    training: TrainingSummary | None = None
    #: The Train step's job name, and the execution whose job it reused from the step cache ('' if none).
    training_job: str = ""
    reused_from: str = ""

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
        return (f"https://{self.region}.console.aws.amazon.com/sagemaker/home?region={self.region}"
                f"#/pipelines/{quote(self.pipeline_name)}/executions/{quote(execution_id(self.execution_arn))}")

    @property
    def training_job_url(self) -> str:
        return job_console_url(self.region, "TrainingJob", self.training_job) if self.training_job else ""

    @property
    def training_logs_url(self) -> str:
        return job_logs_url(self.region, "TrainingJob", self.training_job) if self.training_job else ""


def _best_effort(what: str, read: Callable[[], Any], default: Any) -> Any:
    try:
        return read()
    except (ClientError, BotoCoreError, NotImplementedError, ValueError) as error:
        logger.warning("could not read the execution's %s: %s", what, type(error).__name__)
        return default


def deployed_gate(sagemaker: Any, pipeline_name: str) -> float | None:
    """The stack's quality gate: the deployed definition's MinMap50_95 default (None when unreadable)."""
    described = sagemaker.describe_pipeline(PipelineName=pipeline_name)
    document = json.loads(described.get("PipelineDefinition") or "{}")
    for item in document.get("Parameters") or []:
        if isinstance(item, dict) and item.get("Name") == "MinMap50_95" and "DefaultValue" in item:
            return float(item["DefaultValue"])
    return None


def gate_warnings(sagemaker: Any, pipeline_name: str, values: dict[str, parameters.Value]) -> tuple[str, ...]:
    """`("quality gate lowered to 0.3 for this run (the stack's MinMap50_95 is 0.5)",)` or ()."""
    if "MinMap50_95" not in values:
        return ()
    gate = _best_effort("pipeline", lambda: deployed_gate(sagemaker, pipeline_name), None)
    warning = parameters.gate_warning(values["MinMap50_95"], gate) if gate is not None else ""
    return (warning,) if warning else ()


def gather_report(detail: dict[str, Any], *, sagemaker: Any, s3: Any, region: str,
                  prices: PriceList | None = None) -> ExecutionReport:
    """Everything worth saying about one status change (`detail` is the EventBridge event's detail);
    with `prices`, a final status also says what each job cost."""
    arn = str(detail["pipelineExecutionArn"])
    status = str(detail.get("currentPipelineExecutionStatus", ""))
    try:
        described = describe(sagemaker, arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ValidationException"):
            raise ExecutionNotFound(f"pipeline execution {arn} does not exist") from error
        raise
    steps = _best_effort("steps", lambda: list_steps(sagemaker, arn), [])
    execution = _status(arn, described, steps, status)  # the status this event announces
    failed_step, failure_reason = execution.failed_step()
    values = _best_effort("parameters", lambda: execution_parameters(sagemaker, arn), {})
    document: dict[str, Any] = {}
    if status == "Succeeded" and execution.evaluation_job_arn():
        def read_document() -> dict[str, Any]:
            output = evaluation_output_uri(sagemaker, execution.evaluation_job_arn())
            return read_evaluation(s3, output) if output else {}
        document = _best_effort(evaluation.EVALUATION_FILE, read_document, {})
    metrics = finite_headline_metrics(document)
    spent = None
    if prices is not None and execution.done:
        spent = _best_effort("cost", lambda: execution_cost(sagemaker, steps, prices, region), None)
    pipeline_name = pipeline_name_from_arn(execution.pipeline_arn or str(detail.get("pipelineArn") or arn))
    train = next((s for s in steps if s.job_kind == "TrainingJob"), None)
    training = None
    if train is not None and execution.done and not train.cache_source:
        training = _best_effort("training job", lambda: TrainingSummary.from_description(
            sagemaker.describe_training_job(TrainingJobName=train.job_name)), None)
    return ExecutionReport(
        status=status,
        pipeline_name=pipeline_name,
        execution_arn=arn,
        display_name=str(detail.get("pipelineExecutionDisplayName") or execution.display_name),
        region=region,
        dataset_uri=str(values.get("DatasetS3Uri", "")),
        started=parse_time(detail.get("executionStartTime")) or execution.started,
        ended=(parse_time(detail.get("executionEndTime")) or execution.ended) if execution.done else None,
        parameters=values,
        metrics=metrics,
        verdict=evaluation.verdict(document) or "",
        mlflow=evaluation.mlflow_line(document) or "",
        model_package_arn=execution.model_package_arn(),
        failed_step=failed_step,
        failure_reason=failure_reason,
        cost=spent,
        warnings=gate_warnings(sagemaker, pipeline_name, values),
        training=training,
        training_job=train.job_name if train else "",
        reused_from=train.reused_from if train else "",
    )


def described_status(sagemaker: Any, arn: str) -> str:
    """The execution's status now (events can arrive late or out of order)."""
    return describe(sagemaker, arn).get("PipelineExecutionStatus", "") or ""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
