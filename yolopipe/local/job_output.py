"""Where a local job's output goes besides its log file, as SageMaker sends it: to CloudWatch Logs
(group /aws/sagemaker/TrainingJobs or /aws/sagemaker/ProcessingJobs, stream
`<job name>/algo-1-<epoch seconds>`) and, for a training job, through its MetricDefinitions into
DescribeTrainingJob's FinalMetricDataList (each regex's last match). `yolopipe watch` and
`yolopipe logs` then read the emulator exactly as they read AWS.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from yolopipe_shared.training_progress import LOG_GROUPS

from .events import now

logger = logging.getLogger(__name__)

#: PutLogEvents: at most 10,000 events and 1,048,576 bytes a batch (each event counts 26 bytes
#: more than its message), at most 256 KB an event. Sent every FLUSH_SECONDS or when full.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_MESSAGE_CHARS = 32_000
FLUSH_SECONDS = 1.0


class JobOutput:
    """One job's output lines -> its CloudWatch Logs stream (batched) and its final metric values."""

    def __init__(self, logs: Any, kind: str, job_name: str, metric_definitions: list[dict[str, str]] | None = None,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.logs = logs
        self.group = LOG_GROUPS[kind]
        self.stream = f"{job_name}/algo-1-{int(clock())}"
        self.clock = clock
        self.metrics = [(d["Name"], re.compile(d["Regex"])) for d in metric_definitions or []]
        self.final: dict[str, float] = {}
        self._batch: list[dict[str, Any]] = []
        self._bytes = 0
        self._sent_at = clock()
        self._open = logs is not None and self._create()

    def _create(self) -> bool:
        try:
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=self.group)
            self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except Exception as exc:  # noqa: BLE001 (the job runs on; only its CloudWatch copy is lost)
            logger.warning("local mode: cannot write %s to CloudWatch Logs: %s", self.stream, exc)
            return False
        return True

    def line(self, text: str) -> None:
        """One line of the job's output (without its newline)."""
        for name, regex in self.metrics:
            match = regex.search(text)
            if match:
                with contextlib.suppress(IndexError, ValueError):  # a regex without a number group
                    self.final[name] = float(match.group(1))
        if not self._open:
            return
        message = text[:MAX_MESSAGE_CHARS] or " "
        size = len(message.encode()) + EVENT_OVERHEAD
        if len(self._batch) >= MAX_BATCH_EVENTS or self._bytes + size > MAX_BATCH_BYTES:
            self.flush()
        self._batch.append({"timestamp": int(self.clock() * 1000), "message": message})
        self._bytes += size
        if self.clock() - self._sent_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._sent_at = self.clock()
        if not self._batch or not self._open:
            return
        batch, self._batch, self._bytes = self._batch, [], 0
        try:
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
        except Exception as exc:  # noqa: BLE001 (as in _create)
            logger.warning("local mode: CloudWatch Logs refused %s's output: %s", self.stream, exc)
            self._open = False

    def final_metric_data(self) -> list[dict[str, Any]]:
        """DescribeTrainingJob's FinalMetricDataList."""
        return [{"MetricName": name, "Value": value, "Timestamp": now()} for name, value in self.final.items()]
