"""`yolopipe watch`'s view of an execution: on a terminal a rich live display (the step table and
the Train job's epoch progress, redrawn in place); elsewhere one line per change, never one per
poll (a 2-hour run piped into a CI log stays a few dozen lines); with --json one JSON object per poll.
It formats what Yolopipe.watch hands it (ExecutionStatus with its TrainingProgress)."""

from __future__ import annotations

import json
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from .output import fmt_seconds

if TYPE_CHECKING:
    from yolopipe_shared.execution_report import ExecutionStatus, Step
    from yolopipe_shared.training_progress import TrainingProgress


def step_elapsed(step: dict[str, Any]) -> str:
    """A step's ELAPSED cell: its time, or where a cached step's job came from (not "0m00s")."""
    if step.get("reused_from"):
        return f"reused from execution {step['reused_from']}"
    return fmt_seconds(step.get("elapsed_s"))


def progress_line(progress: TrainingProgress) -> str:
    """`epoch 3/12  mAP50-95 0.051  box 1.93  cls 3.10  dfl 1.41  22.8 images/s  ETA 0m41s` ('' before epoch 1)."""
    latest = progress.latest
    if latest is None:
        return ""
    values = latest.values
    parts = [f"epoch {latest.epoch}/{latest.epochs}"]
    if "map50_95" in values:
        parts.append(f"mAP50-95 {values['map50_95']:.3f}")
    parts += [f"{name} {values[f'{name}_loss']:.2f}" for name in ("box", "cls", "dfl") if f"{name}_loss" in values]
    if progress.images_per_second:
        parts.append(f"{progress.images_per_second:g} images/s")
    eta = progress.eta_s
    if eta is not None and latest.epoch < latest.epochs:
        parts.append(f"ETA {fmt_seconds(eta)}")
    return "  ".join(parts)


def training_line(training: dict[str, Any]) -> str:
    """A finished training job: `best epoch 7 of 12, 1m02s training, 48.2 images/s`."""
    parts = []
    if training.get("best_epoch"):
        of = f" of {training['epochs_done']}" if training.get("epochs_done") else ""
        parts.append(f"best epoch {training['best_epoch']}{of}")
    if training.get("training_seconds") is not None:
        parts.append(f"{fmt_seconds(training['training_seconds'])} training")
    if training.get("images_per_second"):
        parts.append(f"{training['images_per_second']:g} images/s")
    return ", ".join(parts) or "no epoch metrics"


def _step_note(step: Step) -> str:
    if step.reused_from:
        return f"reused from execution {step.reused_from}"
    return step.failure_reason.strip().split("\n")[0][:70]


class WatchView:
    """Called with each poll's ExecutionStatus; a context manager (the live display ends with it)."""

    def __init__(self, out: TextIO, *, json_lines: bool) -> None:
        self.out = out
        self.json_lines = json_lines
        self.terminal = out.isatty() and not json_lines
        self.live: Any = None
        self.seen: set[str] = set()

    def __enter__(self) -> WatchView:
        if self.terminal:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(file=self.out), auto_refresh=False, transient=False)
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, status: ExecutionStatus) -> None:
        if self.json_lines:
            self.out.write(json.dumps(status.to_dict(), default=str) + "\n")
        elif self.live is not None:
            self.live.update(self._renderable(status), refresh=True)
            return
        else:
            for line in self.changes(status):
                self.out.write(line + "\n")
        self.out.flush()

    def changes(self, status: ExecutionStatus) -> list[str]:
        """The lines this poll adds: the execution's status, each step's, each new epoch (each once)."""
        name = status.display_name or status.arn.rsplit("/", 1)[-1]
        candidates: list[str] = []
        for step in status.steps:
            done = step.status not in ("Starting", "Executing", "Stopping")
            when = f" after {fmt_seconds(step.elapsed_s)}" if done and step.elapsed_s is not None else ""
            note = _step_note(step)
            candidates.append(f"  {step.name}: {step.status}" + (f" ({note})" if note else when))
            if step.job_kind == "TrainingJob" and status.progress is not None and not step.reused_from:
                line = progress_line(status.progress)
                if line:
                    candidates.append(f"  {step.name}: {line}")
        overall = f"{name}: {status.status}"  # first while it runs, after its steps once it has ended
        candidates = [*candidates, overall] if status.done else [overall, *candidates]
        new = [line for line in candidates if line not in self.seen]
        self.seen.update(new)
        return new

    def _renderable(self, status: ExecutionStatus) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"{status.display_name or status.arn.rsplit('/', 1)[-1]}: {status.status} "
                            f"({fmt_seconds(status.elapsed_s)})", title_justify="left", box=None)
        for header in ("STEP", "TYPE", "STATUS", "ELAPSED", "NOTE"):
            table.add_column(header)
        for step in status.steps:
            table.add_row(step.name, step.type, step.status,
                          "" if step.reused_from else fmt_seconds(step.elapsed_s), _step_note(step))
        parts: list[Any] = [table if status.steps else Text("(no step started yet)")]
        progress = status.progress
        if progress is not None and progress.latest is not None:
            parts += [Text(""), ProgressBar(total=progress.latest.epochs, completed=progress.latest.epoch, width=40),
                      Text(progress_line(progress))]
        return Group(*parts)
