"""Local mode: the whole event-driven run on this machine, no AWS account, no Docker.

    emulator ─► stack (template.yaml) ─► deploy (rendered definition + code tarball)
      ─► dataset uploaded, data.yaml last ─► S3 event ─► functions/trigger
      ─► StartPipelineExecution ─► local executor: Train ─► Evaluate ─► CheckQuality ─► Register | Fail
      ─► status-change events ─► functions/notifier ─► Slack receiver + inbox ─► summary, runs/<execution>/
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from yolopipe_shared import parameters
from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.layout import TERMINAL_STATUSES

from . import sinks
from .emulator import Emulator
from .lambdas import InvocationFailed, invoke
from .scheduler import Execution, LocalExecutor, short_reason
from .stack import REPO_ROOT, FunctionSpec, LocalStack, create_stack, function_spec

Echo = Callable[[str], None]
ROLE_ARN = "arn:aws:iam::123456789012:role/yolopipe-local-sagemaker"
#: What the demo changes from the defaults so that 2 CPU cores train in about a minute and the
#: model finds some of the generated shapes (mAP50-95 around 0.15). The quality gate is lowered
#: to 0 so that the demo always shows the success path; the output says so.
DEMO_DEFAULTS: dict[str, Any] = {"Epochs": 12, "ImageSize": 96, "BatchSize": 8, "MinMap50_95": 0.0}
#: The generated sample dataset: train, val and test images.
SAMPLE_SIZE = (96, 16, 16)
#: Parameters that are the stack's to set (deploy custom resource property -> pipeline parameter);
#: the others a run sets per dataset, in yolopipe.yaml beside data.yaml, as a user would.
_STACK_PROPERTIES = {"MinMap50_95": "MinMap50_95", "TrainingInstanceType": "DefaultTrainingInstanceType"}


class LocalRunError(YolopipeError):
    """Local mode could not run (not the pipeline failing: that is a result)."""


@dataclass
class LocalRunResult:
    """What a local run ended with: the summary a person reads, as data."""

    dataset: str
    dataset_uri: str
    outcome: str  # "started" | "refused"
    status: str  # Succeeded | Failed | Stopped | Refused
    execution_arn: str | None = None
    display_name: str | None = None
    failed_step: str | None = None
    failure_reason: str | None = None
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    model_artifact: str | None = None
    model_package_arn: str | None = None
    output_dir: Path | None = None
    slack_messages: list[dict[str, Any]] = field(default_factory=list)
    emails: list[sinks.Email] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "Succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "dataset_uri": self.dataset_uri, "outcome": self.outcome,
            "status": self.status, "execution_arn": self.execution_arn, "display_name": self.display_name,
            "failed_step": self.failed_step, "failure_reason": self.failure_reason, "problems": self.problems,
            "metrics": self.metrics, "parameters": self.parameters, "model_artifact": self.model_artifact,
            "model_package_arn": self.model_package_arn,
            "output_dir": str(self.output_dir) if self.output_dir else None,
            "slack_messages": len(self.slack_messages), "emails": [e.subject for e in self.emails],
            "phases": {k: round(v, 3) for k, v in self.phases.items()}, "seconds": round(self.seconds, 3),
        }


class _Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _process_env(emulator: Emulator) -> dict[str, str]:
    """A function's process environment: like Lambda's, nothing inherited but the basics."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **emulator.environment()}


def run_local(
    dataset_path: str | Path | None = None,
    *,
    name: str | None = None,
    epochs: int | None = None,
    imgsz: int | None = None,
    model_variant: str | None = None,
    min_map50_95: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    slack_webhook_url: str | None = None,
    output_dir: str | Path = "runs",
    sample_size: tuple[int, int, int] = SAMPLE_SIZE,
    echo: Echo | None = print,
    timeout_s: float = 1800.0,
) -> LocalRunResult:
    """Run the whole product locally on `dataset_path` (a YOLO dataset folder; None: a generated one).

    `epochs`, `imgsz`, `model_variant`, `min_map50_95` and `overrides` (any parameter, any
    spelling) set this run's parameters the way a user would on AWS: MinMap50_95 and
    TrainingInstanceType are the stack's (deploy properties), the others go into the dataset's
    yolopipe.yaml (over the one in the folder, if any). Nothing given: the stack's defaults and the
    dataset's own yolopipe.yaml; no dataset: the demo's settings (DEMO_DEFAULTS). Slack goes to a
    local receiver unless `slack_webhook_url` (or SLACK_WEBHOOK_URL) names a real one; emails to
    an inbox (an SQS queue subscribed to the topic). Raises LocalRunError (one line) when local
    mode itself cannot run; a refused dataset or a failed execution is a result, not an error.
    """
    started = time.perf_counter()
    say: Echo = echo or (lambda _: None)
    if dataset_path is not None:
        _check_dataset(Path(dataset_path))

    def log(text: str) -> None:
        say(f"[{time.perf_counter() - started:6.1f}s] {text}")

    phases = _Phases()
    chosen = _chosen_parameters(epochs, imgsz, model_variant, min_map50_95, overrides, sample=dataset_path is None)
    stack_parameters = {k: v for k, v in chosen.items() if k in _STACK_PROPERTIES}
    dataset_parameters = {k: v for k, v in chosen.items() if k not in _STACK_PROPERTIES}
    slack_webhook_url = slack_webhook_url or os.environ.get("SLACK_WEBHOOK_URL") or None
    work = Path(tempfile.mkdtemp(prefix="yolopipe-local-"))
    emulator = Emulator()
    receiver = sinks.SlackReceiver() if not slack_webhook_url else None
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    try:
        with phases("emulator"):
            emulator.start()
            if receiver is not None:
                receiver.start()
            clients = {s: emulator.client(s) for s in ("s3", "dynamodb", "sns", "sqs", "secretsmanager", "sagemaker")}
            stack = create_stack(clients, region=emulator.region,
                                 slack_webhook_url=slack_webhook_url or (receiver.url if receiver else ""))
            executor = LocalExecutor(
                emulator.client("s3"), emulator.client("sagemaker"), work / "jobs", region=emulator.region,
                on_event=events.put, on_progress=lambda _e, text: log(text), extra_env=_job_env(work),
            )
            emulator.attach(executor)
        log(f"AWS emulator on {emulator.endpoint_url}: bucket {stack.bucket}, topic, table, secret, "
            f"model package group {stack.model_package_group}")

        with phases("deploy"):
            code_uri = deploy_pipeline(emulator, stack, work, stack_parameters)
        shown = ", ".join(f"{k}={v}" for k, v in stack_parameters.items())
        log(f"pipeline {stack.pipeline_name} deployed by functions/deploy (training code {code_uri})"
            + (f"; stack parameters: {shown}" if shown else ""))
        if dataset_path is None and "MinMap50_95" in stack_parameters:
            log(f"demo: the quality gate MinMap50_95 is lowered to {stack_parameters['MinMap50_95']} (default "
                f"{parameters.BY_NAME['MinMap50_95'].default}) so a few CPU epochs show the success path")

        with phases("dataset"):
            root, name = _dataset(dataset_path, name, work, sample_size, int(chosen.get("ImageSize", 64)))
        if dataset_path is None:
            log(f"generated a sample dataset '{name}': {sample_size[0]} train, {sample_size[1]} val, "
                f"{sample_size[2]} test images of {chosen.get('ImageSize', 64)} px, 3 classes of shapes")

        with phases("upload"):
            marker_key, uploaded = _upload(clients["s3"], root, stack.bucket, name, dataset_parameters)
        log(f"uploaded {uploaded} files to s3://{stack.bucket}/datasets/{name}/ (data.yaml last)"
            + (f"; yolopipe.yaml sets {', '.join(f'{k}={v}' for k, v in dataset_parameters.items())}"
               if dataset_parameters else ""))

        with phases("trigger"):
            event = s3_marker_event(clients["s3"], stack.bucket, marker_key, emulator.region)
            trigger = function_spec(stack.template, "TriggerFunction", "functions/trigger")
            env = {**_process_env(emulator), **stack.environment(trigger)}
            outcome = invoke(trigger, event, env, log_file=work / "logs" / "trigger.log").result
        result = LocalRunResult(dataset=name, dataset_uri=f"s3://{stack.bucket}/datasets/{name}/",
                                outcome="refused", status="Refused")
        item = _single_outcome(outcome)
        if item.get("outcome") != "started":
            result.problems = [str(p) for p in item.get("problems") or []]
            log(f"trigger refused the dataset ({len(result.problems)} problem(s)); nothing was started")
            result.emails = sinks.Inbox(clients["sqs"], stack.email_queue_url).take()
            _show(say, [], result.emails)
            result.output_dir = _save_refusal(Path(output_dir), result, work)
        else:
            arn = str(item["execution_arn"])
            log(f"trigger started execution {arn.rsplit('/', 1)[-1]} (display name {item.get('dataset')})")
            result.outcome = "started"
            result.execution_arn = arn
            execution = _deliver_until_done(executor, arn, events, emulator, stack, work, phases, say, log, timeout_s,
                                             result, receiver, clients)
            _collect(result, execution, clients, stack)
            _step_phases(result, execution)
            result.output_dir = _save_execution(Path(output_dir), result, execution, executor, clients, work)
        result.seconds = time.perf_counter() - started
        result.phases = {**phases.seconds, **result.phases}
        _summary(say, result)
        return result
    except InvocationFailed as exc:
        raise LocalRunError(str(exc)) from exc
    finally:
        if receiver is not None:
            receiver.stop()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


# --- set-up --------------------------------------------------------------------------------------

def _chosen_parameters(epochs: int | None, imgsz: int | None, variant: str | None, min_map: float | None,
                    overrides: Mapping[str, Any] | None, *, sample: bool) -> dict[str, Any]:
    given: dict[str, Any] = dict(DEMO_DEFAULTS) if sample else {}
    for key, value in (("Epochs", epochs), ("ImageSize", imgsz), ("ModelVariant", variant),
                       ("MinMap50_95", min_map)):
        if value is not None:
            given[key] = value
    given.update(overrides or {})
    return dict(parameters.resolve(given))


def _job_env(work: Path) -> dict[str, str]:
    """Every job process: offline Ultralytics with a settings folder of its own."""
    return {"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "ultralytics"), "MPLBACKEND": "Agg"}


def build_deploy_function(target: Path, python: str = sys.executable) -> FunctionSpec:
    """What `sam build` makes of functions/deploy (its Makefile's build-DeployFunction): the
    function's code, the rendered definition JSON and the training-code tarball, in one folder."""
    from pipeline import code_bundle

    source = REPO_ROOT / "functions" / "deploy"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.py"):
        shutil.copy(path, target / path.name)
    cached = _render_cache()
    if not cached.is_file():
        rendered = subprocess.run([python, "-m", "pipeline.render", "--output", str(target / "rendered.json")],
                                  cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if rendered.returncode != 0:
            message = (rendered.stderr.strip().splitlines() or ["no output"])[-1]
            raise LocalRunError(f"rendering the pipeline definition failed: {message}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target / "rendered.json", cached)
    shutil.copy(cached, target / "pipeline_definition.json")
    (target / "training_code.tar.gz").write_bytes(code_bundle.build_bundle().data)
    return FunctionSpec(logical_id="DeployFunction", code_dir=target, handler="app.lambda_handler",
                        environment={}, timeout=300)


def _render_cache() -> Path:
    """Where the rendered definition of these sources is kept: rendering imports the SageMaker SDK
    (seconds), and the same sources always render the same JSON (H2's determinism guarantee)."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256(version("sagemaker").encode())
    sources = [REPO_ROOT / "pipeline" / "definition.py", REPO_ROOT / "pipeline" / "render.py",
               *sorted((REPO_ROOT / "functions" / "shared" / "yolopipe_shared").glob("*.py"))]
    for path in sources:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return Path(tempfile.gettempdir()) / "yolopipe-local-cache" / f"definition-{digest.hexdigest()[:16]}.json"


def deploy_pipeline(emulator: Emulator, stack: LocalStack, work: Path, stack_parameters: Mapping[str, Any]) -> str:
    """CloudFormation's part: the custom resource's Create request, answered by functions/deploy."""
    function = build_deploy_function(work / "deploy")
    properties = {
        "PipelineName": stack.pipeline_name, "RoleArn": ROLE_ARN, "Bucket": stack.bucket, "Region": stack.region,
        "CodePrefix": "code/", "ModelPackageGroupName": stack.model_package_group, "EnvironmentName": "local",
        **{_STACK_PROPERTIES[k]: parameters.BY_NAME[k].to_string(v) for k, v in stack_parameters.items()},
    }
    event = {"RequestType": "Create", "RequestId": str(uuid.uuid4()), "LogicalResourceId": "Pipeline",
             "ResourceType": "Custom::YolopipePipeline", "StackId": "local", "ResourceProperties": properties}
    env = {**_process_env(emulator), "POWERTOOLS_TRACE_DISABLED": "1"}
    answer = invoke(function, event, env, log_file=work / "logs" / "deploy.log").result or {}
    if answer.get("Status") != "SUCCESS":
        raise LocalRunError(f"the deploy function answered {answer.get('Status')}: {answer.get('Reason')}")
    return str((answer.get("Data") or {}).get("CodeS3Uri", ""))


def _dataset(path: str | Path | None, name: str | None, work: Path, sample_size: tuple[int, int, int],
             sample_imgsz: int) -> tuple[Path, str]:
    if path is None:
        from yolopipe.datasets.sample import generate_dataset

        train, val, test = sample_size
        generated = generate_dataset(work / "sample", train=train, val=val, test=test, imgsz=sample_imgsz)
        return generated.root, name or "sample"
    root = _check_dataset(Path(path))
    return root, name or root.name


def _check_dataset(path: Path) -> Path:
    root = path.expanduser().resolve()
    if not root.is_dir():
        raise LocalRunError(f"{path} is not a folder; give a YOLO dataset folder with data.yaml at its root")
    if not (root / "data.yaml").is_file():
        raise LocalRunError(f"{root}/data.yaml not found; a dataset folder has data.yaml at its root")
    return root


def _upload(s3: Any, root: Path, bucket: str, name: str, chosen: Mapping[str, Any]) -> tuple[str, int]:
    """Upload as a user would (`yolopipe upload`: everything, data.yaml last); returns the marker key.

    Parameters chosen for this run go in the dataset's yolopipe.yaml (merged over the one in the
    folder, if any), written before the marker.
    """
    import yaml

    from yolopipe.upload import dataset_prefix, upload_dataset

    prefix = dataset_prefix(name)
    result = upload_dataset(s3, root, bucket, name, trigger=not chosen)
    uploaded = int(result.uploaded)
    if chosen:
        from yolopipe_shared.overrides import OVERRIDES_FILE

        local = root / OVERRIDES_FILE
        merged = dict(yaml.safe_load(local.read_text()) or {}) if local.is_file() else {}
        merged.update({parameters.BY_NAME[k].snake: v for k, v in chosen.items()})
        s3.put_object(Bucket=bucket, Key=prefix + OVERRIDES_FILE, Body=yaml.safe_dump(merged).encode())
        s3.upload_file(str(root / "data.yaml"), bucket, prefix + "data.yaml")
        uploaded += 1
    return f"{prefix}data.yaml", uploaded


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


def _single_outcome(outcome: Any) -> dict[str, Any]:
    """The trigger's outcome for the one marker we sent (it answers per record)."""
    if isinstance(outcome, dict):
        for key in ("results", "outcomes", "records"):
            items = outcome.get(key)
            if isinstance(items, list) and items:
                return dict(items[0])
        return outcome
    if isinstance(outcome, list) and outcome:
        return dict(outcome[0])
    return {}


# --- the execution -----------------------------------------------------------------------------

def _deliver_until_done(executor: LocalExecutor, arn: str, events: queue.Queue[dict[str, Any]], emulator: Emulator,
                        stack: LocalStack, work: Path, phases: _Phases, say: Echo, log: Echo, timeout_s: float,
                        result: LocalRunResult, receiver: sinks.SlackReceiver | None,
                        clients: dict[str, Any]) -> Execution:
    """EventBridge's part: every status-change event of the execution goes to the notifier."""
    notifier = function_spec(stack.template, "NotifierFunction", "functions/notifier")
    env = {**_process_env(emulator), **stack.environment(notifier)}
    inbox = sinks.Inbox(clients["sqs"], stack.email_queue_url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            event = events.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            executor.stop(arn)
            raise LocalRunError(f"the execution did not finish within {timeout_s:.0f}s; stopped it") from None
        if event["detail"].get("pipelineExecutionArn") != arn:
            continue
        status = event["detail"]["currentPipelineExecutionStatus"]
        with phases("notify"):
            try:
                invoke(notifier, event, env, log_file=work / "logs" / "notifier.log")
            except InvocationFailed as exc:  # EventBridge would retry; show it and go on
                log(f"notifier failed on {status}: {exc}")
            messages = receiver.take() if receiver else []
            emails = inbox.take()
        result.slack_messages += messages
        result.emails += emails
        log(f"execution status {status}: notifier sent {len(messages)} Slack message(s), {len(emails)} email(s)")
        _show(say, messages, emails)
        if status in TERMINAL_STATUSES:
            return executor.wait(arn, 5)


def _collect(result: LocalRunResult, execution: Execution, clients: dict[str, Any], stack: LocalStack) -> None:
    result.status = execution.status
    result.display_name = execution.display_name
    result.parameters = {k: v["Value"] for k, v in ((p["Name"], p) for p in execution.parameter_list())}
    for step in execution.steps:  # most recent first
        if step.status == "Failed" and result.failed_step is None:
            result.failed_step = step.name
            result.failure_reason = (step.metadata.get("Fail") or {}).get("ErrorMessage") or step.failure_reason
        if "RegisterModel" in step.metadata:
            result.model_package_arn = step.metadata["RegisterModel"]["Arn"]
    if result.failure_reason is None and execution.failure_reason and execution.status == "Failed":
        result.failure_reason = execution.failure_reason
    scope = execution.scope
    if scope is None:
        return
    for properties in scope.steps.values():
        artifact = (properties.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if artifact:
            result.model_artifact = str(artifact)
        for output in (properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            from yolopipe_shared import evaluation

            if output.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME:
                uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{evaluation.EVALUATION_FILE}"
                bucket, _, key = uri[5:].partition("/")
                try:
                    document = json.loads(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
                    result.metrics = evaluation.headline_metrics(document)
                except Exception:  # noqa: S110 - a failed evaluation leaves no file; the summary says so
                    pass


def _step_phases(result: LocalRunResult, execution: Execution) -> None:
    names = {"Training": "train", "Processing": "evaluate", "Condition": "gate", "RegisterModel": "register"}
    for step in execution.steps:
        if step.end is not None and step.type in names:
            key = names[step.type]
            result.phases[key] = result.phases.get(key, 0.0) + (step.end - step.start).total_seconds()


# --- output --------------------------------------------------------------------------------------

def _show(say: Echo, messages: list[dict[str, Any]], emails: list[sinks.Email]) -> None:
    for message in messages:
        say("  ┌─ Slack " + "─" * 60)
        for line in sinks.render(message).splitlines():
            say(f"  │ {line}")
        say("  └" + "─" * 68)
    for email in emails:
        say("  ┌─ Email " + "─" * 60)
        say(f"  │ Subject: {email.subject}")
        say("  │")
        for line in email.body.rstrip().splitlines():
            say(f"  │ {line}")
        say("  └" + "─" * 68)


def _summary(say: Echo, result: LocalRunResult) -> None:
    say("")
    say("yolopipe local run")
    say(f"  dataset     {result.dataset_uri}")
    if result.outcome == "refused":
        say("  status      Refused by the trigger (nothing was trained)")
        for problem in result.problems[:10]:
            say(f"    - {problem}")
    else:
        say(f"  execution   {result.display_name} ({result.execution_arn})")
        say(f"  status      {result.status}")
        if result.failed_step:
            say(f"  failed step {result.failed_step}: {short_reason(result.failure_reason)}")
        if result.metrics:
            from yolopipe_shared.evaluation import METRICS

            say("  metrics     " + ", ".join(f"{METRICS[k]} {v:.3f}" for k, v in result.metrics.items()))
        gate = result.parameters.get("MinMap50_95")
        if gate is not None and "map50_95" in result.metrics:
            verdict = ">=" if result.metrics["map50_95"] >= float(gate) else "<"
            default = parameters.BY_NAME["MinMap50_95"].default
            lowered = f" (lowered for the demo; the default is {default})" if result.dataset == "sample" else ""
            say(f"  gate        mAP50-95 {result.metrics['map50_95']:.3f} {verdict} MinMap50_95 {gate}{lowered}")
        if result.model_artifact:
            say(f"  model       {result.model_artifact}")
        if result.model_package_arn:
            say(f"  registered  {result.model_package_arn} (PendingManualApproval)")
    if result.output_dir:
        say(f"  artifacts   {result.output_dir}/")
    order = ("emulator", "deploy", "dataset", "upload", "trigger", "train", "evaluate", "notify")
    say("  time        " + ", ".join(f"{k} {result.phases[k]:.1f}s" for k in order if k in result.phases)
        + f"; total {result.seconds:.1f}s")


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _write_notifications(folder: Path, result: LocalRunResult, work: Path) -> None:
    (folder / "slack.json").write_text(json.dumps(result.slack_messages, indent=2, ensure_ascii=False))
    emails = "".join(f"Subject: {e.subject}\n\n{e.body}\n{'=' * 70}\n" for e in result.emails)
    (folder / "emails.txt").write_text(emails)
    logs = work / "logs"
    if logs.is_dir():
        shutil.copytree(logs, folder / "logs", dirs_exist_ok=True)


def _save_refusal(root: Path, result: LocalRunResult, work: Path) -> Path:
    folder = _fresh(root / f"refused-{result.dataset}")
    _write_notifications(folder, result, work)
    (folder / "summary.json").write_text(json.dumps(result.to_dict() | {"output_dir": str(folder)}, indent=2))
    return folder


def _save_execution(root: Path, result: LocalRunResult, execution: Execution, executor: LocalExecutor,
                    clients: dict[str, Any], work: Path) -> Path:
    folder = _fresh(root / execution.execution_id)
    s3 = clients["s3"]
    if result.model_artifact and execution.status != "Stopped":
        bucket, _, key = result.model_artifact[5:].partition("/")
        archive = folder / "model.tar.gz"
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(folder / "model", filter="data")
    if result.metrics and execution.scope is not None:
        from yolopipe_shared import evaluation

        for properties in execution.scope.steps.values():
            for output in (properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                if output.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME:
                    uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{evaluation.EVALUATION_FILE}"
                    bucket, _, key = uri[5:].partition("/")
                    s3.download_file(bucket, key, str(folder / evaluation.EVALUATION_FILE))
    _write_notifications(folder, result, work)
    for step in execution.steps:
        log = executor.log_path(execution, step.name)
        if log.is_file():
            (folder / "logs").mkdir(exist_ok=True)
            shutil.copy(log, folder / "logs" / f"{step.name}.log")
    steps = [s.to_api() for s in reversed(execution.steps)]
    (folder / "steps.json").write_text(json.dumps(steps, indent=2, default=str))
    (folder / "summary.json").write_text(json.dumps(result.to_dict() | {"output_dir": str(folder)}, indent=2))
    return folder


def main(argv: list[str] | None = None) -> int:
    """`python -m yolopipe.local [run] [DATASET] [--epochs N] [--imgsz N] [--output DIR]`
    (also `yolopipe local run [DATASET] ...`)."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from .serve import main as serve_main

        return serve_main(argv[1:])
    if argv[:1] == ["run"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="yolopipe local run",
                                     description="Run yolopipe end to end on this machine (no AWS account).")
    parser.add_argument("dataset", nargs="?", help="YOLO dataset folder (data.yaml at its root); default: a sample")
    parser.add_argument("--name", help="dataset name (default: the folder's name)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--imgsz", type=int)
    parser.add_argument("--model-variant", choices=("n", "s", "m", "l", "x"))
    parser.add_argument("--min-map50-95", type=float)
    parser.add_argument("--output", default="runs", help="where runs/<execution>/ goes (default: runs)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before the execution is stopped")
    args = parser.parse_args(argv)
    try:
        result = run_local(args.dataset, name=args.name, epochs=args.epochs, imgsz=args.imgsz,
                           model_variant=args.model_variant, min_map50_95=args.min_map50_95,
                           output_dir=args.output, timeout_s=args.timeout)
    except YolopipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1

