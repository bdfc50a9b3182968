"""A pipeline step's job output, read from CloudWatch Logs where SageMaker writes it (the local
emulator's executor writes the same groups and streams): the lines themselves (`yolopipe logs`)
and the Train step's epoch lines made into progress (`yolopipe watch`).

Bounded: pages of at most PAGE_LIMIT events; progress reads at most MAX_PROGRESS_PAGES pages of
epoch lines; lines are yielded as read, never held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from yolopipe_shared.training_progress import (
    FILTER_PATTERN,
    LOG_GROUPS,
    TrainingProgress,
    progress_from_events,
)

PAGE_LIMIT = 1000
MAX_PROGRESS_PAGES = 10
#: A job has one stream per instance (TrainingInstanceCount is at most a few).
MAX_STREAMS = 100


def training_progress(logs: Any, job_name: str) -> TrainingProgress:
    """The training job's epoch lines so far (none yet: an empty progress)."""
    def events() -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(MAX_PROGRESS_PAGES):
            try:
                page = logs.filter_log_events(logGroupName=LOG_GROUPS["TrainingJob"],
                                              logStreamNamePrefix=f"{job_name}/", filterPattern=FILTER_PATTERN,
                                              limit=PAGE_LIMIT, **({"nextToken": token} if token else {}))
            except logs.exceptions.ResourceNotFoundException:
                return  # no job has logged in this account and region yet
            yield from page.get("events") or []
            token = page.get("nextToken")
            if not token:
                return

    return progress_from_events(job_name, events())


def job_streams(logs: Any, kind: str, job_name: str) -> list[str]:
    """The job's log streams (`<job name>/algo-1-<epoch seconds>`, one per instance)."""
    streams: list[str] = []
    token: str | None = None
    while len(streams) < MAX_STREAMS:
        try:
            page = logs.describe_log_streams(logGroupName=LOG_GROUPS[kind], logStreamNamePrefix=f"{job_name}/",
                                             **({"nextToken": token} if token else {}))
        except logs.exceptions.ResourceNotFoundException:
            return []
        streams += [str(s["logStreamName"]) for s in page.get("logStreams") or []]
        token = page.get("nextToken")
        if not token:
            break
    return sorted(streams[:MAX_STREAMS])


def log_lines(logs: Any, kind: str, job_name: str, *, follow: bool = False,
              finished: Callable[[], bool] = lambda: True, interval: float = 5.0,
              sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Every line the job logged, stream by stream; with `follow`, then the new ones as they come
    until `finished()` says the job has ended (everything logged before that is read)."""
    tokens: dict[str, str] = {}
    while True:
        done = finished() if follow else True  # asked first: what was logged before the end is read below
        new = 0
        for stream in job_streams(logs, kind, job_name):
            for message in _new_events(logs, LOG_GROUPS[kind], stream, tokens):
                new += 1
                yield message
        if done:
            return
        if not new:
            sleep(interval)


def _new_events(logs: Any, group: str, stream: str, tokens: dict[str, str]) -> Iterator[str]:
    """The stream's events after `tokens[stream]` (GetLogEvents' forward token; the same token back
    means the end)."""
    while True:
        token = tokens.get(stream)
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=PAGE_LIMIT,
                                   **({"nextToken": token} if token else {}))
        events = page.get("events") or []
        following = page.get("nextForwardToken")
        if following:
            tokens[stream] = str(following)
        for event in events:
            yield str(event.get("message") or "")
        if not events or following == token:
            return

