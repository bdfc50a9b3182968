"""Local mode: the whole event-driven run on this machine, no AWS account, no Docker.

    emulator ─► stack (template.yaml) ─► deploy (rendered definition + code tarball)
      ─► dataset uploaded, data.yaml last ─► S3 event ─► functions/trigger
      ─► StartPipelineExecution ─► local executor: Train ─► Evaluate ─► CheckQuality ─► Register | Fail
      ─► status-change events ─► functions/notifier ─► Slack receiver + inbox ─► summary, runs/<execution>/
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yolopipe_shared import parameters
from yolopipe_shared.layout import MARKER_FILE, TERMINAL_STATUSES

from . import sinks
from .deployment import STACK_PROPERTIES, LocalRunError, deploy_pipeline, job_env, process_env
from .emulator import Emulator
from .events import route_custom_events, s3_marker_event, take_routed_events
from .lambdas import InvocationFailed, invoke
from .results import LocalRunResult, collect, save_execution, save_refusal, show, step_phases
from .scheduler import Execution, LocalExecutor, short_reason
from .stack import LocalStack, create_stack, function_spec
from .weights_choice import choose_weights

Echo = Callable[[str], None]
#: What the demo changes from the defaults so that 2 CPU cores train in about a minute and the
#: model finds some of the generated shapes (mAP50-95 around 0.15). The quality gate is lowered
#: to 0 so that the demo always shows the success path; the output says so.
DEMO_DEFAULTS: dict[str, Any] = {"Epochs": 12, "ImageSize": 96, "BatchSize": 8, "MinMap50_95": 0.0}
#: The generated sample dataset: train, val and test images.
SAMPLE_SIZE = (96, 16, 16)


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
    stack_parameters = {k: v for k, v in chosen.items() if k in STACK_PROPERTIES}
    dataset_parameters = {k: v for k, v in chosen.items() if k not in STACK_PROPERTIES}
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
            clients = {s: emulator.client(s) for s in ("s3", "dynamodb", "sns", "sqs", "secretsmanager", "sagemaker",
                                                       "events")}
            stack = create_stack(clients, region=emulator.region,
                                 slack_webhook_url=slack_webhook_url or (receiver.url if receiver else ""))
            routed = route_custom_events(clients["events"], clients["sqs"], stack.template, "NotifierFunction",
                                         stack.refs(), "yolopipe-local")
            executor = LocalExecutor(
                emulator.client("s3"), emulator.client("sagemaker"), work / "jobs", region=emulator.region,
                on_event=events.put, on_progress=lambda _e, text: log(text),
                # jobs reach the emulator as SageMaker's reach AWS (evaluate.py: the approved baseline)
                extra_env={**job_env(work), **emulator.environment()},
                logs=emulator.client("logs"),
            )
            emulator.attach(executor)
        log(f"AWS emulator on {emulator.endpoint_url}: bucket {stack.bucket}, topic, table, secret, "
            f"model package group {stack.model_package_group}")

        if "Weights" not in stack_parameters:  # the official weights when at hand, else scratch (said)
            variant = str(chosen.get("ModelVariant", parameters.BY_NAME["ModelVariant"].default))
            stack_parameters["Weights"] = choose_weights(clients["s3"], stack.bucket, variant, log)
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
            env = {**process_env(emulator), **stack.environment(trigger)}
            outcome = invoke(trigger, event, env, log_file=work / "logs" / "trigger.log").result
        result = LocalRunResult(dataset=name, dataset_uri=f"s3://{stack.bucket}/datasets/{name}/",
                                outcome="refused", status="Refused")
        item = _single_outcome(outcome)
        if item.get("outcome") != "started":
            result.problems = [str(p) for p in item.get("problems") or []]
            log(f"trigger refused the dataset ({len(result.problems)} problem(s)); nothing was started")
            notifier = function_spec(stack.template, "NotifierFunction", "functions/notifier")
            for routed_event in take_routed_events(clients["sqs"], routed):  # Dataset Refused -> Slack
                invoke(notifier, routed_event, {**process_env(emulator), **stack.environment(notifier)},
                       log_file=work / "logs" / "notifier.log")
            result.slack_messages = receiver.take() if receiver else []
            result.emails = sinks.Inbox(clients["sqs"], stack.email_queue_url).take()
            show(say, result.slack_messages, result.emails)
            result.output_dir = save_refusal(Path(output_dir), result, work)
        else:
            arn = str(item["execution_arn"])
            log(f"trigger started execution {arn.rsplit('/', 1)[-1]} (display name {item.get('dataset')})")
            result.outcome = "started"
            result.execution_arn = arn
            execution = _deliver_until_done(executor, arn, events, emulator, stack, work, phases, say, log, timeout_s,
                                             result, receiver, clients)
            collect(result, execution, clients, stack)
            step_phases(result, execution)
            result.output_dir = save_execution(Path(output_dir), result, execution, executor, clients, work)
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
    if not (root / MARKER_FILE).is_file():
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
        s3.upload_file(str(root / MARKER_FILE), bucket, prefix + MARKER_FILE)
        uploaded += 1
    return prefix + MARKER_FILE, uploaded


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
    env = {**process_env(emulator), **stack.environment(notifier)}
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
        show(say, messages, emails)
        if status in TERMINAL_STATUSES:
            return executor.wait(arn, 5)


# --- output --------------------------------------------------------------------------------------

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
        if result.parameters.get("Weights"):
            say(f"  weights     {result.parameters['Weights']}")
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


