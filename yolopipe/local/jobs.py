"""The container jobs of local mode: Training and Processing steps run as local subprocesses,
each in its own folder laid out like a SageMaker container.

  Training   channels downloaded to opt/ml/input/data/<channel>; the code tarball named by the
             `sagemaker_submit_directory` hyperparameter unpacked and `sagemaker_program` started
             with this interpreter, SageMaker's SM_* environment and `--name value` arguments (the
             sagemaker-training toolkit's convention); opt/ml/model tarred to model.tar.gz and
             uploaded to <S3OutputPath>/<job>/output/.
  Processing inputs downloaded to their LocalPath, `/opt/ml/...` in the entrypoint and arguments
             rewritten to the step's folder, outputs uploaded at the end.

A job's requirements.txt is not installed: the local environment provides the training packages.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.layout import split_s3_uri

from .events import now
from .expressions import ExpressionError
from .instances import OtherInstances, torchrun_environment
from .job_output import JobOutput

if TYPE_CHECKING:
    from .scheduler import Execution, StepRecord

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


class StepFailed(YolopipeError):
    """A step failed; the message is the step's FailureReason."""


class StepStopped(YolopipeError):
    """The execution was stopped while this step ran."""


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
    try:
        return split_s3_uri(uri)
    except ValueError as exc:
        raise StepFailed(f"ClientError: {exc}") from None


class ContainerJobs:
    """Runs Training and Processing jobs for the scheduler; `jobs` holds each job's Describe*Job
    response (what DescribeTrainingJob / DescribeProcessingJob answer)."""

    def __init__(self, s3: Any, work_dir: Path, *, region: str, account: str, python: str,
                 extra_env: dict[str, str] | None, progress: Callable[[Execution, str], None],
                 logs: Any = None) -> None:
        self.s3 = s3
        #: The emulator's CloudWatch Logs: each job's output goes there too (job_output.JobOutput).
        self.logs = logs
        self.work_dir = work_dir
        self.region = region
        self.account = account
        self.python = python
        self.extra_env = dict(extra_env or {})
        self._progress = progress
        self.jobs: dict[str, dict[str, Any]] = {}

    def training(self, execution: Execution, step_name: str, arguments: dict[str, Any],
                 record: StepRecord) -> dict[str, Any]:
        """Run a Training step's job; returns its DescribeTrainingJob response (the step's properties)."""
        job = _job_name(execution, step_name)
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{job}"
        record.metadata = {"TrainingJob": {"Arn": arn}}
        folder = self._step_folder(execution, step_name)
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
            self._progress(execution, f"step {step_name}: channel {name}: {count} files downloaded")
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
        # Several instances: one process each with torchrun's environment, as the PyTorch toolkit starts them.
        others = OtherInstances(folder, int(resource.get("InstanceCount") or 1))
        if others.count > 1:
            channel_uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                            for c in arguments.get("InputDataConfig") or []}
            others.prepare(ml, self._download_prefix, channel_uris, checkpoint.get("S3Uri"))
            env.update(torchrun_environment(0, others.count, others.port))
            self._progress(execution, f"step {step_name}: {others.count} instances, one training process each")
            others.start(command, {**os.environ, **self.extra_env, **env, "PYTHONUNBUFFERED": "1"}, folder, code)
        try:
            self._run_job(description, "TrainingJob", execution, step_name, command, cwd=code, env=env,
                          limit=limit, failure_file=ml / "output" / "failure",
                          kind="AlgorithmError: ExecuteUserScriptError:")
            failure = others.wait(timeout=120)
        finally:
            others.stop()
        if failure:
            description.update({"TrainingJobStatus": "Failed", "FailureReason": f"AlgorithmError: {failure}"[:1024]})
            raise StepFailed(f"AlgorithmError: {failure}")
        if checkpoint.get("S3Uri"):
            self._upload_folder(checkpoints, checkpoint["S3Uri"])
        output_path = (arguments.get("OutputDataConfig") or {}).get("S3OutputPath", "")
        if not output_path:
            raise StepFailed("ClientError: OutputDataConfig.S3OutputPath is missing")
        artifact = f"{output_path.rstrip('/')}/{job}/output/model.tar.gz"
        self._upload_tarball(model_dir, artifact)
        if any(output_data.iterdir()):
            self._upload_tarball(output_data, f"{output_path.rstrip('/')}/{job}/output/output.tar.gz")
        description.update({"ModelArtifacts": {"S3ModelArtifacts": artifact}})
        return description

    def processing(self, execution: Execution, step_name: str, arguments: dict[str, Any],
                   record: StepRecord) -> dict[str, Any]:
        """Run a Processing step's job; returns its DescribeProcessingJob response."""
        job = _job_name(execution, step_name)
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:processing-job/{job}"
        record.metadata = {"ProcessingJob": {"Arn": arn}}
        folder = self._step_folder(execution, step_name)

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
        self._run_job(description, "ProcessingJob", execution, step_name, command, cwd=folder, env=env,
                      limit=limit, failure_file=folder / "opt" / "ml" / "output" / "message",
                      kind="AlgorithmError:")
        for item in outputs:
            self._upload_folder(Path(host(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
        return description

    # --- helpers --------------------------------------------------------------------------

    def _step_folder(self, execution: Execution, step: str) -> Path:
        folder = self.work_dir / execution.execution_id / step
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def _job(self, name: str, kind: str, arn: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Record the job as SageMaker would create it: the request, with this execution's real
        values, checked against AWS's API model first (CreateTrainingJob / CreateProcessingJob)."""
        from botocore.exceptions import ClientError

        from .strict import check_request

        try:
            check_request("sagemaker", f"Create{kind}", {**arguments, f"{kind}Name": name}, region=self.region)
        except ClientError as exc:
            raise StepFailed(f"ClientError: {exc.response['Error']['Message']}") from exc
        description = {**arguments, f"{kind}Name": name, f"{kind}Arn": arn, f"{kind}Status": "InProgress",
                       "CreationTime": now(), f"{kind.removesuffix('Job')}StartTime": now()}
        self.jobs[name] = description
        return description

    def _run_job(self, description: dict[str, Any], job_kind: str, *args: Any, **kwargs: Any) -> JobOutput:
        kind = job_kind
        metrics = (description.get("AlgorithmSpecification") or {}).get("MetricDefinitions")
        output = JobOutput(self.logs, kind, description[f"{kind}Name"], metrics)
        try:
            self._run_process(*args, output=output, **kwargs)
        except StepStopped:
            description[f"{kind}Status"] = "Stopped"
            raise
        except StepFailed as exc:
            description.update({f"{kind}Status": "Failed", "FailureReason": str(exc)[:1024]})
            raise
        finally:
            output.flush()
            ended = description[f"{kind.removesuffix('Job')}EndTime"] = description["LastModifiedTime"] = now()
            if kind == "TrainingJob":
                description["FinalMetricDataList"] = output.final_metric_data()
                # What SageMaker reports (the cost line reads them); no spot here, so all of it is billable.
                seconds = max(1, round((ended - description["TrainingStartTime"]).total_seconds()))
                description["TrainingTimeInSeconds"] = description["BillableTimeInSeconds"] = seconds
        description[f"{kind}Status"] = "Completed"
        if kind == "TrainingJob":
            description["SecondaryStatus"] = "Completed"
        return output

    def log_path(self, execution_id: str, step: str) -> Path:
        return self.work_dir / execution_id / f"{step}.log"

    def _run_process(self, execution: Execution, step: str, command: list[str], *, cwd: Path,
                     env: dict[str, str], limit: float | None, failure_file: Path, kind: str,
                     output: JobOutput) -> None:
        shims = self.work_dir / "bin"
        if not (shims / "python3").exists():
            shims.mkdir(parents=True, exist_ok=True)
            for name in ("python3", "python"):
                (shims / name).write_text(_PYTHON_SHIM.format(python=self.python))
                (shims / name).chmod(0o755)
        full_env = {**os.environ, **self.extra_env, **env, "PYTHONUNBUFFERED": "1"}
        full_env["PATH"] = f"{shims}{os.pathsep}{full_env.get('PATH', '')}"
        log_path = self.log_path(execution.execution_id, step)
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
                    output.line(line)
                    epoch = _epoch(line)
                    if epoch and epoch != last_epoch:
                        last_epoch = epoch
                        self._progress(execution, f"step {step}: epoch {epoch[0]}/{epoch[1]}{_epoch_facts(line)}")
            code = process.wait()
            output.flush()
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

    def read_s3(self, uri: str) -> bytes:
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
