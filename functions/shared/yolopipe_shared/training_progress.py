"""Training progress the SageMaker way: the per-epoch line train.py prints, the MetricDefinitions that
turn it into SageMaker metrics (console, CloudWatch, DescribeTrainingJob's FinalMetricDataList), and
what a reader makes of those lines (epoch/total, losses, mAP50-95, images/s, ETA, best epoch).

train.py prints once per epoch, on one line (`EpochReporter`):

    epoch 3/10 train_seconds=4.2 images_per_second=22.8 box_loss=1.9 cls_loss=3.1 dfl_loss=1.4
          map50=0.12 map50_95=0.05 best_epoch=3

The regexes below are the only parser of that line: the pipeline definition hands them to
SageMaker, the local executor applies them to a job's output like SageMaker, the CLI reads with them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

#: The line's prefix: `epoch <done>/<total> ` at the start of a line.
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) (.*)$")
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_FIELD = re.compile(r"\b([a-z0-9_]+)=" + _NUMBER + r"(?=\s|$)")
#: The numbers each epoch line carries, in the order the line prints them (metric name -> field).
METRIC_FIELDS = {
    "epoch": "epoch",
    "train:images_per_second": "images_per_second",
    "train:box_loss": "box_loss",
    "train:cls_loss": "cls_loss",
    "train:dfl_loss": "dfl_loss",
    "val:map50": "map50",
    "val:map50_95": "map50_95",
    "val:best_epoch": "best_epoch",
}
#: CreateTrainingJob's AlgorithmSpecification.MetricDefinitions (at most 40; names 1-255 and
#: regexes 1-500 characters: botocore's MetricDefinitionList, MetricName, MetricRegex). SageMaker
#: publishes each to CloudWatch (namespace /aws/sagemaker/TrainingJobs) and keeps the last value
#: in DescribeTrainingJob's FinalMetricDataList.
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name,
     "Regex": r"^epoch ([0-9]+)/[0-9]+ " if key == "epoch" else rf"^epoch [0-9]+/[0-9]+ .*\b{key}={_NUMBER}"}
    for name, key in METRIC_FIELDS.items()
]
#: A FilterLogEvents term that every epoch line contains (the lines are then parsed exactly).
FILTER_PATTERN = '"epoch"'
#: The most epoch lines a reader keeps (MaxEpochs is 300; a resumed job repeats a few).
MAX_EPOCHS_KEPT = 2000


@dataclass(frozen=True)
class Epoch:
    """One epoch line: `epoch`/`epochs`, its numbers by field name, and when it was logged (ms)."""

    epoch: int
    epochs: int
    values: dict[str, float]
    timestamp_ms: int = 0


def parse_epoch_line(message: str, timestamp_ms: int = 0) -> Epoch | None:
    """An epoch line (None for any other output)."""
    match = EPOCH_LINE.match(message.strip())
    if not match:
        return None
    done, total = int(match.group(1)), int(match.group(2))
    if not 0 < done <= total:
        return None
    values = {key: float(value) for key, value in _FIELD.findall(match.group(3))}
    return Epoch(done, total, values, timestamp_ms)


@dataclass(frozen=True)
class TrainingProgress:
    """What the epoch lines of one training job say so far (the latest line of each epoch)."""

    job_name: str
    epochs: list[Epoch] = field(default_factory=list)

    @property
    def latest(self) -> Epoch | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def images_per_second(self) -> float | None:
        """The median over the last epochs (the first epoch warms up)."""
        speeds = [e.values["images_per_second"] for e in self.epochs[1:][-5:] if e.values.get("images_per_second")]
        speeds = speeds or [e.values["images_per_second"] for e in self.epochs if e.values.get("images_per_second")]
        return round(statistics.median(speeds), 1) if speeds else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the time per epoch between the first and the latest line seen, times the
        epochs left (one epoch seen: its training pass, validation not counted)."""
        latest = self.latest
        if latest is None:
            return None
        left = latest.epochs - latest.epoch
        first = self.epochs[0]
        if latest.epoch > first.epoch and latest.timestamp_ms > first.timestamp_ms:
            per_epoch = (latest.timestamp_ms - first.timestamp_ms) / 1000 / (latest.epoch - first.epoch)
        else:
            per_epoch = latest.values.get("train_seconds") or 0.0
        return round(per_epoch * left, 1) if per_epoch or not left else None

    @property
    def best(self) -> Epoch | None:
        """The epoch Ultralytics kept as best.pt (its `best_epoch`), else the highest mAP50-95."""
        latest = self.latest
        if latest is None:
            return None
        best_epoch = int(latest.values.get("best_epoch", 0))
        by_number = {e.epoch: e for e in self.epochs}
        if best_epoch in by_number:
            return by_number[best_epoch]
        return max(self.epochs, key=lambda e: e.values.get("map50_95", float("-inf")))

    def to_dict(self) -> dict[str, Any]:
        latest, best = self.latest, self.best
        return {
            "job_name": self.job_name,
            "epoch": latest.epoch if latest else None,
            "epochs": latest.epochs if latest else None,
            "latest": dict(latest.values) if latest else {},
            "images_per_second": self.images_per_second,
            "eta_s": self.eta_s,
            "best_epoch": best.epoch if best else None,
        }


def progress_from_events(job_name: str, events: Iterable[dict[str, Any]]) -> TrainingProgress:
    """Log events (`message`, `timestamp`) -> the job's progress; a repeated epoch (a resumed spot
    job) keeps its latest line."""
    by_epoch: dict[int, Epoch] = {}
    for event in events:
        parsed = parse_epoch_line(str(event.get("message") or ""), int(event.get("timestamp") or 0))
        if parsed is not None:
            by_epoch.pop(parsed.epoch, None)
            by_epoch[parsed.epoch] = parsed
            if len(by_epoch) > MAX_EPOCHS_KEPT:
                by_epoch.pop(next(iter(by_epoch)))
    return TrainingProgress(job_name, sorted(by_epoch.values(), key=lambda e: e.epoch))


@dataclass(frozen=True)
class TrainingSummary:
    """A finished training job in a few numbers (DescribeTrainingJob: FinalMetricDataList, times)."""

    job_name: str
    training_seconds: int | None
    best_epoch: int | None
    epochs_done: int | None
    images_per_second: float | None

    @classmethod
    def from_description(cls, job: dict[str, Any]) -> TrainingSummary:
        final = {str(m.get("MetricName")): m.get("Value") for m in job.get("FinalMetricDataList") or []}

        def number(name: str) -> float | None:
            value = final.get(name)
            return float(value) if isinstance(value, int | float) else None

        best, done, speed = number("val:best_epoch"), number("epoch"), number("train:images_per_second")
        seconds = job.get("TrainingTimeInSeconds")
        return cls(job_name=str(job.get("TrainingJobName") or ""),
                   training_seconds=int(seconds) if isinstance(seconds, int | float) else None,
                   best_epoch=int(best) if best else None, epochs_done=int(done) if done else None,
                   images_per_second=speed)


# --- where a job's logs and pages are --------------------------------------------------------

#: The CloudWatch Logs groups SageMaker writes jobs' output to (one stream per instance,
#: `<job name>/algo-<n>-<epoch seconds>`).
LOG_GROUPS = {"TrainingJob": "/aws/sagemaker/TrainingJobs", "ProcessingJob": "/aws/sagemaker/ProcessingJobs"}
_CONSOLE_PATHS = {"TrainingJob": "jobs", "ProcessingJob": "processing-jobs"}


def job_console_url(region: str, kind: str, job_name: str) -> str:
    """The job's page in the SageMaker console (`kind`: TrainingJob or ProcessingJob)."""
    return (f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
            f"#/{_CONSOLE_PATHS[kind]}/{quote(job_name)}")


def job_logs_url(region: str, kind: str, job_name: str) -> str:
    """The job's log streams in the CloudWatch console (the URL form the SageMaker SDK's
    metrics_visualizer builds: `/` in the group as `$252F`, the stream filter as `$3F...$3D`)."""
    group = LOG_GROUPS[kind].replace("/", "$252F")
    return (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logsV2:log-groups/log-group/{group}$3FlogStreamNameFilter$3D{quote(job_name)}")
