"""Pipelines and their executions, as plain functions a notebook can call.

Each takes boto3 clients (`sagemaker`, `s3`) so the same code runs against AWS, the local
emulator or moto. Failures surface as domain errors through `yolopipe.aws.aws_errors`.

    list_pipelines(sm) / list_executions(sm, pipeline)
    plan_run(...) -> RunRequest; start_run(sm, request) -> execution ARN
    find_execution(sm, pipeline, "latest" | id | ARN) -> ARN
    execution_status(sm, arn) -> ExecutionStatus (status + step table); watch(...) polls it
    report(sm, s3, arn, prices=...) -> dict (parameters, metrics, per-class, model package, artifacts, cost)
    stop(sm, arn)
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from yolopipe_shared import cost, evaluation, layout, parameters
from yolopipe_shared import execution_report as read
from yolopipe_shared.errors import ExecutionNotFound, ParameterError, YolopipeError
from yolopipe_shared.execution_report import ExecutionStatus, Step, iso, parse_time, pipeline_name_from_arn, reason
from yolopipe_shared.parameters import Value
from yolopipe_shared.training_progress import TrainingSummary, job_console_url, job_logs_url

from .aws import NotFound, aws_errors

__all__ = ["ExecutionStatus", "Step"]

_DISPLAY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}")


# --- pipelines ---------------------------------------------------------------------------------

def list_pipelines(sm: Any) -> list[dict[str, Any]]:
    """Every pipeline in the account/region: name, ARN, created, last execution (newest first)."""
    found: list[dict[str, Any]] = []
    with aws_errors():
        token: str | None = None
        while True:
            page = sm.list_pipelines(MaxResults=100, SortBy="CreationTime", SortOrder="Descending",
                                     **({"NextToken": token} if token else {}))
            for item in page.get("PipelineSummaries") or []:
                found.append({
                    "name": item.get("PipelineName", ""),
                    "arn": item.get("PipelineArn", ""),
                    "created": iso(item.get("CreationTime")),
                    "last_execution": iso(item.get("LastExecutionTime")),
                    "description": item.get("PipelineDescription") or "",
                })
            token = page.get("NextToken")
            if not token:
                return found


def pipeline_arn(sm: Any, pipeline: str) -> str:
    with aws_errors(what=f"pipeline {pipeline!r}"):
        return str(sm.describe_pipeline(PipelineName=pipeline)["PipelineArn"])


# --- starting an execution ---------------------------------------------------------------------

@dataclass(frozen=True)
class RunRequest:
    """What `yolopipe run` starts: checked against the shared parameter specs before any API call."""

    pipeline: str
    parameters: dict[str, Value]
    display_name: str
    client_request_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: What the user must see before it starts (a lowered quality gate).
    warnings: list[str] = field(default_factory=list)

    def api_request(self) -> dict[str, Any]:
        return {
            "PipelineName": self.pipeline,
            "PipelineExecutionDisplayName": self.display_name,
            "PipelineParameters": parameters.to_execution_parameters(self.parameters),
            "PipelineExecutionDescription": "started by yolopipe run",
            "ClientRequestToken": self.client_request_token,
        }

    def to_dict(self, pipeline_defaults: Mapping[str, Value] | None = None) -> dict[str, Any]:
        """The request, with every parameter's effective value (defaults included) for a dry run.

        `pipeline_defaults` are the deployed pipeline's own defaults (a stack may set them, e.g.
        ModelPackageGroupName); the shared specs' defaults fill in the rest."""
        return {
            "pipeline": self.pipeline,
            "display_name": self.display_name,
            "parameters": self.parameters,
            "effective_parameters": {**parameters.defaults(), **(pipeline_defaults or {}), **self.parameters},
            "warnings": self.warnings,
        }


def pipeline_defaults(sm: Any, pipeline: str) -> dict[str, Value]:
    """The deployed pipeline's parameter defaults, read from its definition ({} if unreadable)."""
    with aws_errors(what=f"pipeline {pipeline!r}"):
        described = sm.describe_pipeline(PipelineName=pipeline)
    try:
        document = json.loads(described.get("PipelineDefinition") or "{}")
    except ValueError:
        return {}
    items = [{"Name": p["Name"], "Value": str(p["DefaultValue"]).lower() if isinstance(p["DefaultValue"], bool)
              else str(p["DefaultValue"])}
             for p in document.get("Parameters") or [] if isinstance(p, dict) and "DefaultValue" in p]
    return parameters.from_execution_parameters(items)


def dataset_uri(dataset: str, bucket: Callable[[], str] | None = None) -> str:
    """`s3://b/datasets/x` or just `x` (a dataset in the stack's bucket) -> `s3://b/datasets/x/`."""
    text = dataset.strip()
    if not text.startswith("s3://"):
        if "/" in text or not text:
            raise ParameterError(f"--dataset {dataset!r}: give s3://<bucket>/datasets/<name>/ or a dataset name")
        if bucket is None:
            raise ParameterError(f"--dataset {dataset!r}: give the full s3:// URI")
        text = layout.dataset_uri(bucket(), text)
    return text if text.endswith("/") else text + "/"


def plan_run(
    pipeline: str,
    dataset: str,
    overrides: Mapping[str, object] | None = None,
    *,
    bucket: Callable[[], str] | None = None,
    display_name: str | None = None,
) -> RunRequest:
    """Check every parameter (ParameterError names the bad one and its bounds); call no AWS API
    unless the dataset is given by name and the bucket must be looked up."""
    values = parameters.resolve(dict(overrides or {}))
    for name in ("DatasetS3Uri", "DatasetName"):  # they come from the dataset
        values.pop(name, None)
    uri = str(parameters.spec_for("DatasetS3Uri").coerce(dataset_uri(dataset, bucket)))
    given_version = values.pop("DatasetVersion", None)
    values = {**parameters.dataset_parameters(uri, str(given_version or "")), **values}
    if given_version is None:
        values.pop("DatasetVersion")  # the data.yaml's version, looked up before the run starts
    name = display_name or _display_name(uri)
    if not _DISPLAY_NAME.fullmatch(name):
        raise ParameterError(f"--display-name {name!r}: use letters, digits and '-' (at most 82 characters)")
    return RunRequest(pipeline=pipeline, parameters=values, display_name=name)


def _display_name(uri: str) -> str:
    dataset = re.sub(r"[^a-zA-Z0-9]+", "-", uri.rstrip("/").rsplit("/", 1)[-1]).strip("-") or "dataset"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"cli-{dataset[:55]}-{stamp}".replace("--", "-")


def check_dataset(s3: Any, uri: str) -> str:
    """Refuse to start a training whose dataset has no data.yaml (it would fail minutes later);
    return the data.yaml's version (versionId, else ETag): the run's DatasetVersion, as the trigger sets it."""
    from botocore.exceptions import ClientError

    bucket, prefix = layout.split_s3_uri(uri)
    with aws_errors(what=f"bucket {bucket!r}"):
        try:
            head = s3.head_object(Bucket=bucket, Key=f"{prefix}{layout.MARKER_FILE}")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            raise DatasetMissing(
                f"no data.yaml at {uri}: upload the dataset first (`yolopipe upload PATH --name NAME`)"
            ) from error
    return layout.dataset_version(head.get("VersionId"), head.get("ETag"))


class DatasetMissing(NotFound):
    """The dataset a run names is not (completely) in S3: "not found", exit 3 like a missing execution."""


def start_run(sm: Any, request: RunRequest) -> str:
    with aws_errors(what=f"pipeline {request.pipeline!r}"):
        return str(sm.start_pipeline_execution(**request.api_request())["PipelineExecutionArn"])


# --- finding executions ------------------------------------------------------------------------

def list_executions(sm: Any, pipeline: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The pipeline's most recent executions, newest first."""
    rows: list[dict[str, Any]] = []
    with aws_errors(what=f"pipeline {pipeline!r}"):
        token: str | None = None
        while len(rows) < limit:
            page = sm.list_pipeline_executions(
                PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending",
                MaxResults=min(100, max(1, limit)), **({"NextToken": token} if token else {}),
            )
            for item in page.get("PipelineExecutionSummaries") or []:
                rows.append({
                    "arn": item.get("PipelineExecutionArn", ""),
                    "id": str(item.get("PipelineExecutionArn", "")).rsplit("/", 1)[-1],
                    "status": item.get("PipelineExecutionStatus", ""),
                    "started": iso(item.get("StartTime")),
                    "display_name": item.get("PipelineExecutionDisplayName") or "",
                    "failure_reason": reason(item.get("PipelineExecutionFailureReason")),
                })
            token = page.get("NextToken")
            if not token:
                break
    # moto ignores the sort: sort here, newest first
    rows.sort(key=lambda r: r["started"] or "", reverse=True)
    return rows[:limit]


def find_execution(sm: Any, pipeline: str, ref: str) -> str:
    """An execution ARN from a full ARN, an execution id of `pipeline`, or `latest`."""
    if ref.startswith("arn:"):
        arn = ref
    elif ref == "latest":
        rows = list_executions(sm, pipeline, limit=1)
        if not rows:
            raise ExecutionNotFound(
                f"pipeline {pipeline!r} has no executions yet: start one with `yolopipe run --dataset NAME`")
        return str(rows[0]["arn"])
    elif re.fullmatch(r"[a-z0-9]{1,64}", ref):
        arn = f"{pipeline_arn(sm, pipeline)}/execution/{ref}"
    else:
        raise ExecutionNotFound(
            f"execution {ref!r} is neither an ARN, an execution id nor 'latest': see `yolopipe executions list`"
        )
    describe_execution(sm, arn)  # fails with ExecutionNotFound when it does not exist
    return arn


def wait_for_execution(
    sm: Any,
    pipeline: str,
    dataset_uri: str,
    *,
    since: datetime,
    timeout: float = 120.0,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """The execution the trigger starts for `dataset_uri` after `since` (the marker's upload), or
    None if none starts within `timeout` seconds (the trigger refused the dataset, or is slow)."""
    deadline = time.monotonic() + timeout
    checked: set[str] = set()
    earliest = since.astimezone(UTC).replace(microsecond=0)
    while True:
        for row in list_executions(sm, pipeline, limit=10):
            started = parse_time(row["started"])
            if row["arn"] in checked or started is None or started < earliest:
                continue
            checked.add(row["arn"])
            with aws_errors(what=f"execution {row['id']!r}"):
                values = read.execution_parameters(sm, row["arn"])
            if str(values.get("DatasetS3Uri", "")).rstrip("/") == dataset_uri.rstrip("/"):
                return str(row["arn"])
        if time.monotonic() >= deadline:
            return None
        sleep(interval)


def describe_execution(sm: Any, arn: str) -> dict[str, Any]:
    with aws_errors(what=f"execution {read.execution_id(arn)!r}"):
        return read.describe(sm, arn)


# --- status and steps --------------------------------------------------------------------------

def execution_status(sm: Any, arn: str) -> ExecutionStatus:
    with aws_errors(what=f"execution {read.execution_id(arn)!r}"):
        return read.execution_status(sm, arn)


def watch(
    sm: Any,
    arn: str,
    *,
    on_update: Callable[[ExecutionStatus], None],
    interval: float = 10.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionStatus:
    """Poll until the execution ends (or `timeout` seconds pass); `on_update` sees every poll."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = execution_status(sm, arn)
        on_update(status)
        if status.done:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            raise WatchTimeout(f"still {status.status} after {timeout:g}s: run `yolopipe watch {arn}` again")
        sleep(interval)


class WatchTimeout(YolopipeError):
    """`watch --timeout` ran out before the execution ended."""


def stop(sm: Any, arn: str) -> str:
    """Ask SageMaker to stop the execution; returns the status right after the request."""
    current = describe_execution(sm, arn)
    if current.get("PipelineExecutionStatus") in layout.TERMINAL_STATUSES:
        return str(current["PipelineExecutionStatus"])
    with aws_errors(what=f"execution {arn.rsplit('/', 1)[-1]!r}"):
        sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=uuid.uuid4().hex)
    return str(describe_execution(sm, arn).get("PipelineExecutionStatus") or "Stopping")


# --- report ------------------------------------------------------------------------------------

def report(sm: Any, s3: Any, arn: str, *, prices: cost.PriceList | None = None) -> dict[str, Any]:
    """Everything to judge one execution: status, parameters, step table, metrics, per-class
    metrics (evaluation.json), model package and its approval status, artifact URIs, and what each
    job cost (`prices`: the Price List API; None prices from the dated list-price table only)."""
    prices = prices or cost.PriceList(None)
    region = _region(sm)
    jobs: list[cost.JobCost] = []
    status = execution_status(sm, arn)
    with aws_errors(what=f"execution {read.execution_id(arn)!r}"):
        values = {**parameters.defaults(), **read.execution_parameters(sm, arn)}
    artifacts: dict[str, str] = {}
    evaluation_doc: dict[str, Any] = {}
    model_package: dict[str, Any] = {}
    step_jobs: list[dict[str, Any]] = []
    training: dict[str, Any] = {}
    for step in status.steps:
        if step.job_kind:
            step_jobs.append(_step_job(step, region))
        if "TrainingJob" in step.metadata:
            job = _describe_job(sm, "training", step.metadata["TrainingJob"].get("Arn", ""))
            jobs.append(_job_cost(step, cost.TRAINING, job, prices, region))
            if job and not step.cache_source:
                training = asdict(TrainingSummary.from_description(job))
            uri = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
            if uri:
                artifacts[f"{step.name}.model"] = str(uri)
            checkpoint = (job.get("CheckpointConfig") or {}).get("S3Uri")
            if checkpoint:
                artifacts[f"{step.name}.checkpoints"] = str(checkpoint)
        if "ProcessingJob" in step.metadata:
            job = _describe_job(sm, "processing", step.metadata["ProcessingJob"].get("Arn", ""))
            jobs.append(_job_cost(step, cost.PROCESSING, job, prices, region))
            for output in (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                uri = (output.get("S3Output") or {}).get("S3Uri")
                if not uri:
                    continue
                artifacts[f"{step.name}.{output.get('OutputName', 'output')}"] = str(uri)
                if output.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME and not evaluation_doc:
                    with aws_errors():
                        evaluation_doc = read.read_evaluation(s3, str(uri))
                    if evaluation_doc:
                        artifacts[evaluation.EVALUATION_FILE] = read.evaluation_file_uri(str(uri))
        if "RegisterModel" in step.metadata:
            package_arn = str(step.metadata["RegisterModel"].get("Arn") or "")
            model_package = {"arn": package_arn, **_describe_package(sm, package_arn)}
    with aws_errors():  # the training plots and the evaluation's plots: what `yolopipe download` fetches
        from .artifacts import listed

        model = next(((k, v) for k, v in artifacts.items() if k.endswith(".model")), ("", ""))
        evaluation_prefix = next((v for k, v in artifacts.items()
                                  if k.endswith(f".{evaluation.EVALUATION_OUTPUT_NAME}")), "")
        artifacts.update(listed(s3, model[1], evaluation_prefix, model[0].removesuffix(".model") or "Train"))
    return {
        "pipeline": pipeline_name_from_arn(arn),
        **status.to_dict(),
        "parameters": values,
        "metrics": read.finite_headline_metrics(evaluation_doc),
        "per_class": list(evaluation_doc.get("per_class") or []),
        "evaluation_split": evaluation_doc.get("split"),
        "verdict": evaluation.verdict(evaluation_doc) if evaluation_doc else None,
        "mlflow": evaluation_doc.get(evaluation.MLFLOW_KEY) if evaluation_doc else None,
        "model_package": model_package,
        "artifacts": artifacts,
        "cost": cost.ExecutionCost(jobs).to_dict(),
        # a quality gate lowered below the stack's for this run (`run --lower-gate`)
        "warnings": list(read.gate_warnings(sm, pipeline_name_from_arn(arn), values)),
        "jobs": step_jobs,
        "training": training,
    }


def _step_job(step: Step, region: str) -> dict[str, Any]:
    """The step's job and where to look at it: its console page and its CloudWatch Logs streams."""
    return {"step": step.name, "step_name": step.step_name or step.name, "kind": step.job_kind,
            "job_name": step.job_name, "reused_from": step.reused_from or None,
            "console_url": job_console_url(region, step.job_kind, step.job_name),
            "logs_url": job_logs_url(region, step.job_kind, step.job_name)}


def compare(sm: Any, s3: Any, arns: list[str], *, prices: cost.PriceList | None = None) -> list[dict[str, Any]]:
    """Reports of several executions, for a side-by-side table of metrics, differing parameters and
    the estimated cost of each."""
    prices = prices or cost.PriceList(None)
    return [report(sm, s3, arn, prices=prices) for arn in arns]


def _job_cost(step: Step, kind: str, job: dict[str, Any], prices: cost.PriceList, region: str) -> cost.JobCost:
    if step.cache_source:
        return cost.reused_job(step.name, kind, step.cache_source)
    return cost.job_cost(step.name, kind, job, prices, region)


def _region(sm: Any) -> str:
    return str(getattr(getattr(sm, "meta", None), "region_name", "") or cost.LIST_PRICES_REGION)


def _describe_job(sm: Any, kind: str, job_arn: str) -> dict[str, Any]:
    if not job_arn:
        return {}
    name = job_arn.rsplit("/", 1)[-1]
    with aws_errors(what=f"{kind} job {name!r}"):
        try:
            if kind == "training":
                return dict(sm.describe_training_job(TrainingJobName=name))
            return dict(sm.describe_processing_job(ProcessingJobName=name))
        except sm.exceptions.ResourceNotFound:
            return {}


def _describe_package(sm: Any, package_arn: str) -> dict[str, Any]:
    if not package_arn:
        return {}
    with aws_errors(what=f"model package {package_arn!r}"):
        described = sm.describe_model_package(ModelPackageName=package_arn)
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    return {
        "group": described.get("ModelPackageGroupName", ""),
        "version": described.get("ModelPackageVersion"),
        "approval_status": described.get("ModelApprovalStatus", ""),
        "model_data": containers[0].get("ModelDataUrl", "") if containers else "",
    }
