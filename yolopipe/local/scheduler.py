"""Run a SageMaker pipeline definition on this machine: the same JSON SageMaker runs.

The scheduler: executions (StartPipelineExecution's idempotency token, stop, wait), steps one at
a time in dependency order (`DependsOn` plus the steps an argument reads with
`{"Get": "Steps.X..."}`), Condition / Fail / RegisterModel steps itself, and Training /
Processing steps through the container jobs (`jobs.ContainerJobs`). Status changes are reported
as the EventBridge events SageMaker emits (`events`).

  Condition  conditions evaluated (all must hold), then the IfSteps or the ElseSteps run.
  RegisterModel  CreateModelPackage with the step's arguments.
  Fail       the execution fails with the step's ErrorMessage.

Step caching (CacheConfig) is honoured while the executor lives, without expiry; RetryPolicies
and ParallelismConfiguration are not modelled (steps run once, one at a time).
"""

from __future__ import annotations

import ast
import json
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.layout import TERMINAL_STATUSES

from .events import iso, now, status_change_event
from .expressions import ExpressionError, PropertyFileRef, Scope, condition, evaluate, step_references
from .jobs import ContainerJobs, StepFailed, StepStopped, short_reason

__all__ = ["Execution", "ExecutionValidationError", "LocalExecutor", "StepRecord", "short_reason"]


class ExecutionValidationError(YolopipeError):
    """StartPipelineExecution refused: bad parameters or a definition the executor cannot run."""


@dataclass
class StepRecord:
    """One row of ListPipelineExecutionSteps."""

    name: str
    type: str
    display_name: str | None = None
    status: str = "Starting"
    start: datetime = field(default_factory=now)
    end: datetime | None = None
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cache_hit: str | None = None

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "StepName": self.name,
            "StartTime": self.start,
            "StepStatus": self.status,
            "AttemptCount": 1,
            "Metadata": self.metadata,
        }
        if self.display_name:
            item["StepDisplayName"] = self.display_name
        if self.end:
            item["EndTime"] = self.end
        if self.failure_reason:
            item["FailureReason"] = self.failure_reason
        if self.cache_hit:
            item["CacheHitResult"] = {"SourcePipelineExecutionArn": self.cache_hit}
        return item


@dataclass
class Execution:
    """One pipeline execution and what DescribePipelineExecution says about it."""

    pipeline_name: str
    pipeline_arn: str
    execution_id: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    overrides: list[dict[str, str]]
    display_name: str
    description: str | None = None
    client_request_token: str | None = None
    status: str = "Executing"
    failure_reason: str | None = None
    created: datetime = field(default_factory=now)
    modified: datetime = field(default_factory=now)
    ended: datetime | None = None
    steps: list[StepRecord] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    scope: Scope | None = None

    @property
    def arn(self) -> str:
        return f"{self.pipeline_arn}/execution/{self.execution_id}"

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "PipelineArn": self.pipeline_arn,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": self.display_name,
            "PipelineExecutionStatus": self.status,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "PipelineExperimentConfig": {
                "ExperimentName": self.pipeline_name,
                "TrialName": self.execution_id,
            },
        }
        if self.description:
            item["PipelineExecutionDescription"] = self.description
        if self.failure_reason:
            item["FailureReason"] = self.failure_reason
        return item

    def summary(self) -> dict[str, Any]:
        return {
            "PipelineExecutionArn": self.arn,
            "StartTime": self.created,
            "PipelineExecutionStatus": self.status,
            "PipelineExecutionDisplayName": self.display_name,
        }

    def parameter_list(self) -> list[dict[str, str]]:
        """ListPipelineParametersForExecution: every parameter's effective value, as strings."""
        return [{"Name": name, "Value": _param_text(value)} for name, value in self.parameters.items()]


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_parameter(kind: str, raw: Any, name: str) -> Any:
    try:
        if kind == "Integer":
            return int(float(raw)) if float(raw).is_integer() else int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise ValueError(raw)
    except (TypeError, ValueError):
        raise ExecutionValidationError(f"Parameter {name} must be of type {kind}, got {raw!r}") from None
    return str(raw)


def load_definition(text: str | dict[str, Any]) -> dict[str, Any]:
    """Parse a definition; moto hands back ones stored via S3 location as a Python repr."""
    if isinstance(text, dict):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ExecutionValidationError("the pipeline definition is not valid JSON") from None
    if not isinstance(document, dict) or "Steps" not in document:
        raise ExecutionValidationError("the pipeline definition has no Steps")
    return document


def resolve_parameters(definition: dict[str, Any], overrides: list[dict[str, str]]) -> dict[str, Any]:
    """Defaults from the definition, then the execution's overrides, each parsed by its declared type."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if "DefaultValue" in spec:
            values[name] = _parse_parameter(spec.get("Type", "String"), spec["DefaultValue"], name)
    for item in overrides:
        name = item.get("Name", "")
        if name not in declared:
            raise ExecutionValidationError(f"Pipeline parameter {name!r} is not defined in the pipeline")
        values[name] = _parse_parameter(declared[name].get("Type", "String"), item.get("Value"), name)
    missing = [name for name in declared if name not in values]
    if missing:
        raise ExecutionValidationError(f"Pipeline parameters without a default need a value: {', '.join(missing)}")
    return values


class LocalExecutor:
    """Starts, tracks, stops and lists executions; runs their steps as local subprocesses.

    `s3` and `sagemaker` are boto3 clients (pointed at the emulator, or moto in tests);
    `on_event` gets every status-change event; `on_progress` one line per thing a person
    would want to follow (step started / epoch / finished).
    """

    def __init__(
        self,
        s3: Any,
        sagemaker: Any,
        work_dir: str | Path,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_progress: Callable[[Execution, str], None] | None = None,
        python: str = sys.executable,
        extra_env: dict[str, str] | None = None,
        logs: Any = None,
    ) -> None:
        self.s3 = s3
        self.sagemaker = sagemaker
        self.work_dir = Path(work_dir)
        self.region = region
        self.account = account
        self.on_event = on_event
        self.on_progress = on_progress
        self.python = python
        self.extra_env = dict(extra_env or {})
        self.executions: dict[str, Execution] = {}
        self.container_jobs = ContainerJobs(s3, self.work_dir, region=region, account=account, python=python,
                                            extra_env=extra_env, progress=self._progress, logs=logs)
        #: Training / processing job name -> its Describe*Job response (what the notifier reads).
        self.jobs = self.container_jobs.jobs
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one execution's steps at a time: this is a small machine
        self._threads: list[threading.Thread] = []
        #: Step cache (CacheConfig): key -> (source execution ARN, step properties, step metadata).
        #: Kept while the executor lives (the emulator's lifetime); expiry is not modelled.
        self._cache: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}

    # --- the API the emulator serves ------------------------------------------------------

    def start(
        self,
        *,
        pipeline_name: str,
        pipeline_arn: str,
        definition: str | dict[str, Any],
        parameters: list[dict[str, str]] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        client_request_token: str | None = None,
        background: bool = True,
    ) -> Execution:
        """StartPipelineExecution: the same token for the same pipeline returns the same execution."""
        with self._lock:
            if client_request_token:
                known = self._tokens.get((pipeline_name, client_request_token))
                if known:
                    return self.executions[known]
            document = load_definition(definition)
            values = resolve_parameters(document, parameters or [])
            execution_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
            execution = Execution(
                pipeline_name=pipeline_name,
                pipeline_arn=pipeline_arn,
                execution_id=execution_id,
                definition=document,
                parameters=values,
                overrides=list(parameters or []),
                display_name=display_name or f"execution-{int(time.time() * 1000)}",
                description=description,
                client_request_token=client_request_token,
            )
            self.executions[execution.arn] = execution
            if client_request_token:
                self._tokens[(pipeline_name, client_request_token)] = execution.arn
        self._emit(execution, None)
        if background:
            thread = threading.Thread(target=self.run, args=(execution,), name=f"execution-{execution_id}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        return execution

    def get(self, arn: str) -> Execution | None:
        return self.executions.get(arn)

    def list_executions(self, pipeline_name: str) -> list[Execution]:
        found = [e for e in self.executions.values() if e.pipeline_name == pipeline_name]
        return sorted(found, key=lambda e: e.created, reverse=True)

    def stop(self, arn: str) -> Execution | None:
        execution = self.executions.get(arn)
        if execution is None or execution.status in TERMINAL_STATUSES:
            return execution
        execution.stop_requested.set()
        previous = execution.status
        execution.status = "Stopping"
        execution.modified = now()
        self._emit(execution, previous)
        return execution

    def wait(self, arn: str, timeout: float | None = None) -> Execution:
        execution = self.executions[arn]
        execution.finished.wait(timeout)
        return execution

    # --- running ----------------------------------------------------------------------------

    def log_path(self, execution: Execution, step: str) -> Path:
        return self.container_jobs.log_path(execution.execution_id, step)

    def _emit(self, execution: Execution, previous: str | None) -> None:
        if self.on_event is not None:
            self.on_event(status_change_event(execution, previous, self.region, self.account))

    def _progress(self, execution: Execution, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(execution, text)

    def run(self, execution: Execution) -> Execution:
        """Run every step to the end; never raises (a failure ends the execution as Failed)."""
        with self._run_lock:
            try:
                self._run_steps(execution)
                final, reason = "Succeeded", None
            except StepStopped:
                final, reason = "Stopped", None
            except StepFailed as exc:
                final, reason = "Failed", str(exc)
            except Exception as exc:  # a bug or a definition we cannot run: fail visibly, never hang
                final, reason = "Failed", f"InternalError: {type(exc).__name__}: {exc}"
            previous = execution.status
            execution.status = final
            execution.failure_reason = reason
            execution.ended = execution.modified = now()
        self._emit(execution, previous)
        execution.finished.set()
        return execution

    def _run_steps(self, execution: Execution) -> None:
        definition = execution.definition
        scope = Scope(
            parameters=dict(execution.parameters),
            execution={
                "PipelineExecutionId": execution.execution_id,
                "PipelineExecutionArn": execution.arn,
                "PipelineName": execution.pipeline_name,
                "PipelineArn": execution.pipeline_arn,
                "StartDateTime": iso(execution.created),
                "CurrentDateTime": iso(now()),
            },
            read_s3=self.container_jobs.read_s3,
        )
        execution.scope = scope
        top = list(definition["Steps"])
        everything = _all_steps(top)
        known = set(everything)
        for step in everything.values():
            for name in _dependencies(step):
                if name not in known:
                    raise StepFailed(f"ValidationError: step {step['Name']!r} depends on unknown step {name!r}")
            for pf in step.get("PropertyFiles", []):
                scope.property_files[(step["Name"], pf["PropertyFileName"])] = PropertyFileRef(
                    step["Name"], pf["PropertyFileName"], pf["OutputName"], pf["FilePath"]
                )
        pending: deque[dict[str, Any]] = deque(top)
        done: set[str] = set()
        failures: list[str] = []
        while pending:
            runnable = next((s for s in pending if _dependencies(s) <= done), None)
            if runnable is None:
                break  # what is left depends on steps that did not run (other branch, or failed)
            pending.remove(runnable)
            if execution.stop_requested.is_set():
                raise StepStopped()
            scope.execution["CurrentDateTime"] = iso(now())
            try:
                branch = self._run_step(execution, runnable, scope)
            except StepFailed as exc:
                failures.append(f"{runnable['Name']}: {exc}")
                break
            done.add(runnable["Name"])
            pending.extend(branch)
        if failures:
            raise StepFailed("Step failure: One or multiple steps failed.")
        if execution.stop_requested.is_set():
            raise StepStopped()

    def _run_step(self, execution: Execution, step: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
        record = StepRecord(name=step["Name"], type=step["Type"], display_name=step.get("DisplayName"))
        execution.steps.insert(0, record)
        record.status = "Executing"
        started = time.monotonic()
        self._progress(execution, f"step {record.name} ({record.type}) started")
        runner = getattr(self, f"_step_{step['Type'].lower()}", None)
        branch: list[dict[str, Any]] = []
        try:
            if runner is None:
                raise StepFailed(f"the local executor cannot run steps of type {step['Type']!r}")
            try:
                arguments = step.get("Arguments", {})
                if step["Type"] != "Condition":  # conditions are evaluated lazily, branch by branch
                    arguments = evaluate(arguments, scope)
            except ExpressionError as exc:
                raise StepFailed(f"ClientError: {exc}") from exc
            cache_key = self._cache_key(execution, step, arguments)
            hit = self._cache.get(cache_key) if cache_key else None
            if hit is not None:
                source, properties, metadata = hit
                scope.steps[step["Name"]] = properties
                record.metadata = {**metadata}
                record.cache_hit = source
                record.status, record.end = "Succeeded", now()
                self._progress(execution, f"step {record.name}: cache hit (same arguments as execution "
                                          f"{source.rsplit('/', 1)[-1]}), not run again")
                return branch
            try:
                branch = runner(execution, step, arguments, record, scope) or []
                if cache_key:
                    self._cache[cache_key] = (execution.arn, scope.steps.get(step["Name"], {}), dict(record.metadata))
            except (StepStopped, StepFailed):
                raise
            except Exception as exc:  # a bug or an argument shape we do not know: the step's reason
                raise StepFailed(f"InternalError: {type(exc).__name__}: {exc}") from exc
        except StepStopped:
            record.status, record.end = "Stopped", now()
            raise
        except StepFailed as exc:
            record.status, record.end, record.failure_reason = "Failed", now(), str(exc)[:1024]
            self._progress(execution, f"step {record.name} failed after {time.monotonic() - started:.0f}s: "
                                      f"{short_reason(record.failure_reason)}")
            raise
        record.status, record.end = "Succeeded", now()
        self._progress(execution, f"step {record.name} succeeded in {time.monotonic() - started:.1f}s")
        return branch

    # --- step types --------------------------------------------------------------------------

    def _step_condition(self, execution: Execution, step: dict[str, Any], arguments: dict[str, Any],
                        record: StepRecord, scope: Scope) -> list[dict[str, Any]]:
        try:
            outcome = all(condition(c, scope) for c in arguments.get("Conditions", []))
        except ExpressionError as exc:
            raise StepFailed(f"ClientError: {exc}") from exc
        record.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
        scope.steps[step["Name"]] = {"Outcome": outcome}
        self._progress(execution, f"step {step['Name']}: condition is {str(outcome).lower()}")
        return list(arguments.get("IfSteps" if outcome else "ElseSteps", []))

    def _step_fail(self, execution: Execution, step: dict[str, Any], arguments: dict[str, Any],
                   record: StepRecord, scope: Scope) -> None:
        message = str(arguments.get("ErrorMessage", "") or "")
        record.metadata = {"Fail": {"ErrorMessage": message}}
        raise StepFailed(message)

    def _step_registermodel(self, execution: Execution, step: dict[str, Any], arguments: dict[str, Any],
                            record: StepRecord, scope: Scope) -> None:
        request = {k: v for k, v in arguments.items() if v not in (None, "", [], {})}
        try:
            response = self.sagemaker.create_model_package(**request)
        except Exception as exc:  # botocore ClientError / ParamValidationError: the step's reason
            raise StepFailed(f"ClientError: {exc}") from exc
        arn = response["ModelPackageArn"]
        record.metadata = {"RegisterModel": {"Arn": arn}}
        scope.steps[step["Name"]] = {"ModelPackageArn": arn, **request}
        self._progress(execution, f"registered model package {arn}")

    def _step_training(self, execution: Execution, step: dict[str, Any], arguments: dict[str, Any],
                       record: StepRecord, scope: Scope) -> None:
        scope.steps[step["Name"]] = self.container_jobs.training(execution, step["Name"], arguments, record)

    def _step_processing(self, execution: Execution, step: dict[str, Any], arguments: dict[str, Any],
                         record: StepRecord, scope: Scope) -> None:
        scope.steps[step["Name"]] = self.container_jobs.processing(execution, step["Name"], arguments, record)

    @staticmethod
    def _cache_key(execution: Execution, step: dict[str, Any], arguments: dict[str, Any]) -> str | None:
        """SageMaker step caching: same pipeline, step and resolved arguments -> the earlier result."""
        cache = step.get("CacheConfig") or {}
        if not cache.get("Enabled") or step["Type"] not in ("Training", "Processing"):
            return None
        return json.dumps([execution.pipeline_name, step["Name"], step["Type"], arguments], sort_keys=True,
                          default=str)


def _all_steps(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for step in steps:
        found[step["Name"]] = step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            found.update(_all_steps(list(arguments.get("IfSteps", [])) + list(arguments.get("ElseSteps", []))))
    return found


def _dependencies(step: dict[str, Any]) -> set[str]:
    names = set(step.get("DependsOn") or [])
    arguments = step.get("Arguments", {})
    if step.get("Type") == "Condition":
        arguments = {"Conditions": arguments.get("Conditions", [])}
    names |= step_references(arguments)
    names.discard(step["Name"])
    return names


