"""Run a SageMaker pipeline definition on this machine: the same JSON SageMaker runs.

Steps run one at a time in dependency order (`DependsOn` plus the steps an argument reads with
`{"Get": "Steps.X..."}`), each in its own folder laid out like a SageMaker container:

  Training   channels downloaded to opt/ml/input/data/<channel>; the code tarball named by the
             `sagemaker_submit_directory` hyperparameter unpacked and `sagemaker_program` started
             with this interpreter, SageMaker's SM_* environment and `--name value` arguments (the
             sagemaker-training toolkit's convention); opt/ml/model tarred to model.tar.gz and
             uploaded to <S3OutputPath>/<job>/output/.
  Processing inputs downloaded to their LocalPath, `/opt/ml/...` in the entrypoint and arguments
             rewritten to the step's folder, outputs uploaded at the end; property files declared.
  Condition  conditions evaluated (all must hold), then the IfSteps or the ElseSteps run.
  RegisterModel  CreateModelPackage with the step's arguments.
  Fail       the execution fails with the step's ErrorMessage.

Execution status changes are reported as the EventBridge events SageMaker emits. Step caching
(CacheConfig) is honoured while the executor lives, without expiry; RetryPolicies and
ParallelismConfiguration are not modelled (steps run once, one at a time). A job's
requirements.txt is not installed: the local environment provides the training packages.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import YolopipeError

from .expressions import ExpressionError, PropertyFileRef, Scope, condition, evaluate, step_references

STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
TERMINAL = ("Succeeded", "Failed", "Stopped")
#: Container paths that get a folder of their own per step (the container's filesystem).
_CONTAINER_PATHS = re.compile(r"(?<![\w/.])/(opt/ml|tmp)(?=/|$|\s|[\"';])")
#: `python3` / `python` inside a step: this interpreter, except that `-m pip install` is skipped
#: (the job's requirements.txt is what the local environment already provides, and nothing is
#: downloaded at run time).
_PYTHON_SHIM = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ] && [ "$3" = "install" ]; then
  echo "local mode: pip install skipped (the local environment provides the requirements)"; exit 0
fi
exec "{python}" "$@"
"""
_EPOCH = re.compile(r"\bepoch\W{0,3}(\d+)\s*(?:/|of)\s*(\d+)", re.IGNORECASE)
_ULTRALYTICS_EPOCH = re.compile(r"^\s*(\d+)/(\d+)\s+\S*G\s")
_ERROR_LINE = re.compile(r"^([A-Za-z_.]*(Error|Exception|Exit)\b.*|error: .*)$")


class ExecutionValidationError(YolopipeError):
    """StartPipelineExecution refused: bad parameters or a definition the executor cannot run."""


class StepFailed(YolopipeError):
    """A step failed; the message is the step's FailureReason."""


class StepStopped(YolopipeError):
    """The execution was stopped while this step ran."""


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


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


def toolkit_args(hyperparameters: dict[str, str]) -> list[str]:
    """`--name value` pairs as the sagemaker-training toolkit builds them (JSON-decoded, sorted)."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        if key.startswith("sagemaker_"):
            continue
        value = _decode_hp(hyperparameters[key])
        args += [f"--{key}" if len(key) > 1 else f"-{key}", str(value)]
    return args


def _decode_hp(raw: Any) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return raw


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise StepFailed(f"ClientError: expected an s3:// URI, got {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


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
        #: Training / processing job name -> its Describe*Job response (what the notifier reads).
        self.jobs: dict[str, dict[str, Any]] = {}
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
        if execution is None or execution.status in TERMINAL:
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
            read_s3=self._read_s3,
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
        job = _job_name(execution, step["Name"])
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{job}"
        record.metadata = {"TrainingJob": {"Arn": arn}}
        folder = self._step_folder(execution, step["Name"])
        ml = folder / "opt" / "ml"
        hyperparameters = {k: str(v) for k, v in (arguments.get("HyperParameters") or {}).items()}
        program = _decode_hp(hyperparameters.get("sagemaker_program", ""))
        submit = _decode_hp(hyperparameters.get("sagemaker_submit_directory", ""))
        if not program or not submit:
            raise StepFailed("ClientError: the local executor runs training code given by the "
                             "sagemaker_program and sagemaker_submit_directory hyperparameters")
        code = ml / "code"
        self._fetch_code(str(submit), code)
        if not (code / str(program)).is_file():
            raise StepFailed(f"AlgorithmError: {program} is not in the code tarball {submit}")

        channels: list[str] = []
        for channel in arguments.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            target = ml / "input" / "data" / name
            count = self._download_prefix(source["S3Uri"], target)
            if count == 0:
                raise StepFailed(f"ClientError: no objects under {source['S3Uri']} (channel {name})")
            channels.append(name)
            self._progress(execution, f"step {step['Name']}: channel {name}: {count} files downloaded")
        model_dir, output_data, checkpoints = ml / "model", ml / "output" / "data", ml / "checkpoints"
        for path in (model_dir, output_data, checkpoints, ml / "input" / "config"):
            path.mkdir(parents=True, exist_ok=True)
        checkpoint = arguments.get("CheckpointConfig") or {}
        if checkpoint.get("S3Uri"):
            self._download_prefix(checkpoint["S3Uri"], checkpoints)
        user_hps = {k: _decode_hp(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
        (ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        resource = arguments.get("ResourceConfig") or {}
        env = {
            **{k: _to_host(folder, str(v)) for k, v in (arguments.get("Environment") or {}).items()},
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DIR": str(ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(output_data),
            "SM_INPUT_DIR": str(ml / "input"),
            "SM_INPUT_CONFIG_DIR": str(ml / "input" / "config"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps),
            "SM_USER_ARGS": json.dumps(toolkit_args(hyperparameters)),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_CURRENT_INSTANCE_TYPE": str(resource.get("InstanceType", "local")),
            "SM_MODULE_DIR": str(submit),
            "SM_MODULE_NAME": str(program).removesuffix(".py"),
            "SM_USER_ENTRY_POINT": str(program),
            "SM_TRAINING_ENV": json.dumps({"job_name": job, "hyperparameters": user_hps,
                                           "channel_input_dirs": {c: str(ml / "input" / "data" / c) for c in channels},
                                           "model_dir": str(model_dir), "num_gpus": 0, "current_host": "algo-1"}),
            "TRAINING_JOB_NAME": job,
            "TRAINING_JOB_ARN": arn,
            # Where SageMaker mounts CheckpointConfig.LocalPath (/opt/ml/checkpoints) in the container.
            "SM_CHECKPOINT_DIR": str(checkpoints),
        }
        for name in channels:
            env[f"SM_CHANNEL_{name.upper()}"] = str(ml / "input" / "data" / name)
        command = [self.python, str(program), *toolkit_args(hyperparameters)]
        if checkpoint.get("S3Uri"):
            # SageMaker syncs CheckpointConfig.LocalPath with S3; here that folder is the step's own.
            command += ["--checkpoint-dir", str(checkpoints)]
        description = self._job(job, "TrainingJob", arn, arguments)
        limit = float((arguments.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or 0) or None
        self._run_job(description, "TrainingJob", execution, step["Name"], command, cwd=code, env=env,
                      limit=limit, failure_file=ml / "output" / "failure",
                      kind="AlgorithmError: ExecuteUserScriptError:")
        if checkpoint.get("S3Uri"):
            self._upload_folder(checkpoints, checkpoint["S3Uri"])
        output_path = (arguments.get("OutputDataConfig") or {}).get("S3OutputPath", "")
        if not output_path:
            raise StepFailed("ClientError: OutputDataConfig.S3OutputPath is missing")
        artifact = f"{output_path.rstrip('/')}/{job}/output/model.tar.gz"
        self._upload_tarball(model_dir, artifact)
        if any(output_data.iterdir()):
            self._upload_tarball(output_data, f"{output_path.rstrip('/')}/{job}/output/output.tar.gz")
        description.update({"ModelArtifacts": {"S3ModelArtifacts": artifact}, "FinalMetricDataList": []})
        scope.steps[step["Name"]] = description

    def _step_processing(self, execution: Execution, step: dict[str, Any], arguments: dict[str, Any],
                         record: StepRecord, scope: Scope) -> None:
        job = _job_name(execution, step["Name"])
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:processing-job/{job}"
        record.metadata = {"ProcessingJob": {"Arn": arn}}
        folder = self._step_folder(execution, step["Name"])

        def host(text: str) -> str:
            return _to_host(folder, text)

        for item in arguments.get("ProcessingInputs") or []:
            source = item.get("S3Input")
            if not source:
                raise StepFailed(f"ClientError: input {item.get('InputName')} is not an S3 input")
            target = Path(host(source["LocalPath"]))
            if self._download_prefix(source["S3Uri"], target) == 0:
                raise StepFailed(f"ClientError: no objects under {source['S3Uri']} "
                                 f"(input {item.get('InputName')})")
        outputs = (arguments.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        for item in outputs:
            Path(host(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        app = arguments.get("AppSpecification") or {}
        entry = [host(str(part)) for part in app.get("ContainerEntrypoint") or []]
        if not entry:
            raise StepFailed("ClientError: the local executor needs AppSpecification.ContainerEntrypoint")
        if Path(entry[0]).name.startswith("python"):
            entry[0] = self.python
        command = entry + [host(str(part)) for part in app.get("ContainerArguments") or []]
        env = {k: host(str(v)) for k, v in (arguments.get("Environment") or {}).items()}
        env["PROCESSING_JOB_NAME"] = job
        limit = float((arguments.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or 0) or None
        (folder / "opt" / "ml" / "output").mkdir(parents=True, exist_ok=True)
        description = self._job(job, "ProcessingJob", arn, arguments)
        self._run_job(description, "ProcessingJob", execution, step["Name"], command, cwd=folder, env=env,
                      limit=limit, failure_file=folder / "opt" / "ml" / "output" / "message",
                      kind="AlgorithmError:")
        for item in outputs:
            self._upload_folder(Path(host(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
        scope.steps[step["Name"]] = description

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _cache_key(execution: Execution, step: dict[str, Any], arguments: dict[str, Any]) -> str | None:
        """SageMaker step caching: same pipeline, step and resolved arguments -> the earlier result."""
        cache = step.get("CacheConfig") or {}
        if not cache.get("Enabled") or step["Type"] not in ("Training", "Processing"):
            return None
        return json.dumps([execution.pipeline_name, step["Name"], step["Type"], arguments], sort_keys=True,
                          default=str)

    def _step_folder(self, execution: Execution, step: str) -> Path:
        folder = self.work_dir / execution.execution_id / step
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def _job(self, name: str, kind: str, arn: str, arguments: dict[str, Any]) -> dict[str, Any]:
        description = {**arguments, f"{kind}Name": name, f"{kind}Arn": arn, f"{kind}Status": "InProgress",
                       "CreationTime": now(), f"{kind.removesuffix('Job')}StartTime": now()}
        self.jobs[name] = description
        return description

    def _run_job(self, description: dict[str, Any], job_kind: str, *args: Any, **kwargs: Any) -> None:
        kind = job_kind
        try:
            self._run_process(*args, **kwargs)
        except StepStopped:
            description[f"{kind}Status"] = "Stopped"
            raise
        except StepFailed as exc:
            description.update({f"{kind}Status": "Failed", "FailureReason": str(exc)[:1024]})
            raise
        finally:
            description[f"{kind.removesuffix('Job')}EndTime"] = description["LastModifiedTime"] = now()
        description[f"{kind}Status"] = "Completed"
        if kind == "TrainingJob":
            description["SecondaryStatus"] = "Completed"

    def log_path(self, execution: Execution, step: str) -> Path:
        return self.work_dir / execution.execution_id / f"{step}.log"

    def _run_process(self, execution: Execution, step: str, command: list[str], *, cwd: Path,
                     env: dict[str, str], limit: float | None, failure_file: Path, kind: str) -> None:
        shims = self.work_dir / "bin"
        if not (shims / "python3").exists():
            shims.mkdir(parents=True, exist_ok=True)
            for name in ("python3", "python"):
                (shims / name).write_text(_PYTHON_SHIM.format(python=self.python))
                (shims / name).chmod(0o755)
        full_env = {**os.environ, **self.extra_env, **env, "PYTHONUNBUFFERED": "1"}
        full_env["PATH"] = f"{shims}{os.pathsep}{full_env.get('PATH', '')}"
        log_path = self.log_path(execution, step)
        tail: deque[str] = deque(maxlen=60)
        started = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(command) + "\n")
            process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
            watchdog = threading.Thread(target=self._watch, args=(execution, process, started, limit), daemon=True)
            watchdog.start()
            last_epoch: tuple[int, int] | None = None
            assert process.stdout is not None
            for raw in process.stdout:
                log.write(raw)
                for line in raw.replace("\r", "\n").splitlines():
                    tail.append(line)
                    epoch = _epoch(line)
                    if epoch and epoch != last_epoch:
                        last_epoch = epoch
                        self._progress(execution, f"step {step}: epoch {epoch[0]}/{epoch[1]}{_epoch_facts(line)}")
            code = process.wait()
        if execution.stop_requested.is_set():
            raise StepStopped()
        if limit and time.monotonic() - started >= limit:
            raise StepFailed(f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds={int(limit)}")
        if code != 0:
            message = failure_file.read_text(errors="replace").strip() if failure_file.is_file() else ""
            if not message:
                message = _error_message(tail)
            shown = " ".join(command[1:3])
            # What the job saw: container paths, not this machine's step folder.
            step_folder = self.work_dir / execution.execution_id / step
            for local, container in (("opt/ml", "/opt/ml"), ("tmp", "/tmp")):  # noqa: S108 (a container path)
                message = message.replace(str(step_folder / local), container)
            raise StepFailed(f"{kind}\nExitCode {code}\nErrorMessage \"{message}\"\nCommand \"{shown} ...\"")

    @staticmethod
    def _watch(execution: Execution, process: subprocess.Popen[str], started: float, limit: float | None) -> None:
        while process.poll() is None:
            if execution.stop_requested.is_set() or (limit and time.monotonic() - started >= limit):
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                return
            time.sleep(0.2)

    def _read_s3(self, uri: str) -> bytes:
        bucket, key = split_s3(uri)
        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as exc:
            raise ExpressionError(f"cannot read {uri}: {exc}") from exc

    def _fetch_code(self, uri: str, target: Path) -> None:
        bucket, key = split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        archive = target.parent / "sourcedir.tar.gz"
        try:
            self.s3.download_file(bucket, key, str(archive))
        except Exception as exc:
            raise StepFailed(f"ClientError: cannot download the training code {uri}: {exc}") from exc
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")  # refuses absolute paths, .. and device files

    def _download_prefix(self, uri: str, target: Path) -> int:
        """S3Prefix semantics: every object whose key starts with the URI's key, relative to it."""
        bucket, prefix = split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue
                    relative = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
                    destination = (target / relative).resolve()
                    if not destination.is_relative_to(target.resolve()):
                        raise StepFailed(f"ClientError: object key {key!r} escapes the input folder")
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    self.s3.download_file(bucket, key, str(destination))
                    count += 1
        except StepFailed:
            raise
        except Exception as exc:
            raise StepFailed(f"ClientError: cannot download {uri}: {exc}") from exc
        return count

    def _upload_folder(self, folder: Path, uri: str) -> None:
        bucket, prefix = split_s3(uri)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
            self.s3.upload_file(str(path), bucket, key)

    def _upload_tarball(self, folder: Path, uri: str) -> None:
        archive = folder.parent / (folder.name + ".tar.gz")
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        bucket, key = split_s3(uri)
        self.s3.upload_file(str(archive), bucket, key)


def _to_host(folder: Path, text: str) -> str:
    """`/opt/ml/processing/x` -> `<step folder>/opt/ml/processing/x` (also `/tmp/...`)."""
    return _CONTAINER_PATHS.sub(lambda m: str(folder / m.group(1)), text)


def _job_name(execution: Execution, step: str) -> str:
    suffix = secrets.token_hex(5)
    return f"pipelines-{execution.execution_id}-{re.sub(r'[^a-zA-Z0-9-]', '-', step)}"[:52] + f"-{suffix}"


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


def _epoch(line: str) -> tuple[int, int] | None:
    match = _EPOCH.search(line) or _ULTRALYTICS_EPOCH.match(line)
    if not match:
        return None
    done, total = int(match.group(1)), int(match.group(2))
    return (done, total) if 0 < done <= total else None


_FACT = re.compile(r"\b(box_loss|map50_95|map50|images_per_second)=([0-9.]+)")
_FACT_LABELS = {"box_loss": "box loss", "map50": "mAP50", "map50_95": "mAP50-95", "images_per_second": "images/s"}


def _epoch_facts(line: str) -> str:
    """`epoch 3/12 ... box_loss=2.1 map50_95=0.05 images_per_second=46` -> `  box loss 2.1, ...`."""
    facts = dict(_FACT.findall(line))
    shown = [f"{_FACT_LABELS[key]} {facts[key]}" for key in _FACT_LABELS if key in facts]
    return ("  " + ", ".join(shown)) if shown else ""


def short_reason(reason: str | None) -> str:
    """The line of a failure reason a person needs: the script's error, not the toolkit's framing."""
    text = (reason or "").strip()
    marker = 'ErrorMessage "'
    begin = text.find(marker)
    if begin >= 0:
        begin += len(marker)
        end = text.rfind('"\nCommand')
        end = end if end >= begin else text.rfind('"')
        message = text[begin:end].strip() if end >= begin else ""
        if message:
            return message.splitlines()[-1]
    return text.splitlines()[0] if text else "no reason given"


def _error_message(tail: deque[str]) -> str:
    lines = [line.strip() for line in tail if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    message = errors[-1] if errors else (lines[-1] if lines else "the script exited without output")
    return message[:700]
