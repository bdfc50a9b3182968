"""A refused dataset, as every side sees it: the trigger writes it to `refusals/<name>/<version>.json`
(outside `datasets/`, so it triggers nothing) and puts a "Dataset Refused" event that an EventBridge
rule routes to the notifier (Slack); the CLI reads the JSON (`upload --watch`, `watch`, `executions list`).

The record is bounded whoever wrote it: at most MAX_PROBLEMS problems of MAX_PROBLEM_CHARS each,
and readers read at most MAX_REFUSAL_BYTES of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

#: Where refusals live in the stack's bucket; the trigger's S3 notification filters on `datasets/`.
REFUSALS_PREFIX = "refusals/"
#: The custom event the trigger puts on the default bus; template.yaml's rule matches these two.
EVENT_SOURCE = "yolopipe.trigger"
DETAIL_TYPE = "Dataset Refused"
#: Problems recorded per refusal (the rest are counted in `problem_count`), and characters each.
MAX_PROBLEMS = 50
MAX_PROBLEM_CHARS = 500
#: A refusal JSON is read up to this size (50 problems of 500 characters and the rest fit).
MAX_REFUSAL_BYTES = 64 << 10


def refusal_key(dataset: str, version: str) -> str:
    """`refusals/<name>/<version>.json`: one record per dataset version."""
    return f"{REFUSALS_PREFIX}{dataset}/{version}.json"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Refusal:
    """Why one version of a dataset started no training."""

    bucket: str
    dataset: str
    #: The marker's versionId (or ETag): the upload that was refused.
    version: str
    #: `s3://<bucket>/datasets/<name>/data.yaml`, the marker that was refused.
    marker_uri: str
    #: ISO 8601 UTC, when the trigger refused it.
    refused_at: str
    problem_count: int
    problems: tuple[str, ...]

    @property
    def key(self) -> str:
        return refusal_key(self.dataset, self.version)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def of(cls, *, bucket: str, dataset: str, version: str, marker_uri: str, refused_at: str,
           problems: list[Any]) -> Refusal:
        """A refusal with its problems bounded (the first MAX_PROBLEMS, each cut to MAX_PROBLEM_CHARS)."""
        return cls(bucket=bucket, dataset=dataset, version=version, marker_uri=marker_uri, refused_at=refused_at,
                   problem_count=len(problems),
                   problems=tuple(_cut(str(p), MAX_PROBLEM_CHARS) for p in problems[:MAX_PROBLEMS]))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": list(self.problems), "key": self.key}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1).encode()

    @classmethod
    def from_dict(cls, data: Any) -> Refusal:
        """A refusal from a record or an event's detail, bounded again (anyone who can write to the
        bucket can write this file); ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("a refusal is a JSON object")
        problems = data.get("problems")
        if not isinstance(problems, list):
            raise ValueError("a refusal lists its problems")
        fields = {name: _cut(str(data.get(name) or ""), 1024)
                  for name in ("bucket", "dataset", "version", "marker_uri", "refused_at")}
        try:
            count = int(data.get("problem_count") or len(problems))
        except (TypeError, ValueError):
            count = len(problems)
        return cls(**fields, problem_count=max(count, len(problems[:MAX_PROBLEMS])),
                   problems=tuple(_cut(str(p), MAX_PROBLEM_CHARS) for p in problems[:MAX_PROBLEMS]))

    @classmethod
    def from_json(cls, raw: bytes) -> Refusal:
        if len(raw) > MAX_REFUSAL_BYTES:
            raise ValueError(f"a refusal record is at most {MAX_REFUSAL_BYTES // 1024} KiB")
        try:
            return cls.from_dict(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError("a refusal record is JSON") from error

    def event_entry(self) -> dict[str, Any]:
        """The PutEvents entry the notifier's rule matches (its detail is this record: under 64 KiB,
        well within EventBridge's 256 KB per entry)."""
        return {"Source": EVENT_SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(self.to_dict())}

    def lines(self) -> list[str]:
        """The problems as shown to a person, with the count of those not recorded."""
        more = self.problem_count - len(self.problems)
        return [*self.problems, *([f"... and {more} more problem(s)"] if more > 0 else [])]
