"""What a local run ended with (`LocalRunResult`), and what it leaves in runs/<execution>/: the
model, evaluation.json, the notifications, the step logs and a summary."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolopipe_shared import evaluation
from yolopipe_shared.execution_report import finite_headline_metrics, read_evaluation

from .. import artifacts
from . import sinks
from .scheduler import Execution, LocalExecutor
from .stack import LocalStack

Echo = Callable[[str], None]


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


def collect(result: LocalRunResult, execution: Execution, clients: dict[str, Any], stack: LocalStack) -> None:
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
            if output.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME:
                # A failed evaluation leaves no file: no metrics, and the summary says so.
                document = read_evaluation(clients["s3"], output["S3Output"]["S3Uri"])
                result.metrics = finite_headline_metrics(document)


def step_phases(result: LocalRunResult, execution: Execution) -> None:
    names = {"Training": "train", "Processing": "evaluate", "Condition": "gate", "RegisterModel": "register"}
    for step in execution.steps:
        if step.end is not None and step.type in names:
            key = names[step.type]
            result.phases[key] = result.phases.get(key, 0.0) + (step.end - step.start).total_seconds()


def show(say: Echo, messages: list[dict[str, Any]], emails: list[sinks.Email]) -> None:
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


def save_refusal(root: Path, result: LocalRunResult, work: Path) -> Path:
    folder = _fresh(root / f"refused-{result.dataset}")
    _write_notifications(folder, result, work)
    (folder / "summary.json").write_text(json.dumps(result.to_dict() | {"output_dir": str(folder)}, indent=2))
    return folder


def save_execution(root: Path, result: LocalRunResult, execution: Execution, executor: LocalExecutor,
                    clients: dict[str, Any], work: Path) -> Path:
    folder = _fresh(root / execution.execution_id)
    s3 = clients["s3"]
    # What `yolopipe download` writes: model/, training/ (plots), evaluation.json and evaluation/ (plots).
    if result.model_artifact and execution.status != "Stopped":
        artifacts.fetch_training(s3, result.model_artifact, folder)
    if result.metrics and execution.scope is not None:
        for properties in execution.scope.steps.values():
            for output in (properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                if output.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME:
                    artifacts.fetch_evaluation(s3, output["S3Output"]["S3Uri"], folder)
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
