"""S3 event records -> dataset markers.

A dataset is the prefix `datasets/<name>/`; its `data.yaml`, written last, is the marker that
starts training. Keys arrive URL-encoded (`a b.yaml` as `a+b.yaml`), one record at a time (an
event may carry several, and Powertools' `S3Event.object_key` decodes only the first).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus

from yolopipe_shared.layout import DATASET_PREFIX, MARKER_FILE, dataset_prefix, dataset_version, s3_uri

#: SageMaker's PipelineExecutionDisplayName rule.
DISPLAY_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}")
DISPLAY_NAME_MAX = 82


@dataclass(frozen=True)
class DatasetMarker:
    """One dataset version announced by its data.yaml: what the trigger validates and starts."""

    bucket: str
    key: str
    #: The object's versionId, or its eTag on an unversioned bucket: a new upload, a new version.
    version: str
    dataset: str
    prefix: str
    event_time: str = ""

    @property
    def dataset_uri(self) -> str:
        """`s3://<bucket>/datasets/<name>/`: the pipeline's DatasetS3Uri."""
        return s3_uri(self.bucket, self.prefix)

    @property
    def marker_uri(self) -> str:
        return s3_uri(self.bucket, self.key)

    @property
    def client_request_token(self) -> str:
        """Deterministic StartPipelineExecution token (64 hex chars): same dataset version, same token."""
        return hashlib.sha256(f"{self.bucket}\n{self.key}\n{self.version}".encode()).hexdigest()

    @property
    def display_name(self) -> str:
        return display_name_for(self.dataset)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetMarker:
        return cls(**{name: str(data.get(name, "")) for name in cls.__dataclass_fields__})


def display_name_for(dataset: str) -> str:
    """A dataset name as a valid PipelineExecutionDisplayName: ASCII letters/digits joined by
    single hyphens, at most 82 characters (`Zebras & Ünïcode v2` -> `Zebras-Unicode-v2`)."""
    ascii_name = unicodedata.normalize("NFKD", dataset).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-zA-Z0-9]+", ascii_name)
    name = "-".join(words) or "dataset"
    name = name[:DISPLAY_NAME_MAX].rstrip("-")
    assert DISPLAY_NAME_PATTERN.fullmatch(name), name
    return name


def marker_from_key(bucket: str, key: str, version: str, root: str = DATASET_PREFIX,
                    event_time: str = "") -> DatasetMarker | None:
    """The marker for `datasets/<name>/data.yaml` (already URL-decoded), or None for any other key."""
    if not key.startswith(root):
        return None
    rest = key[len(root):]
    name, sep, file = rest.partition("/")
    if not sep or file != MARKER_FILE or not name.strip() or name in (".", ".."):
        return None
    return DatasetMarker(bucket=bucket, key=key, version=version, dataset=name,
                         prefix=dataset_prefix(name, root), event_time=event_time)


def record_key(record: Mapping[str, Any]) -> str:
    """The decoded object key of one S3 event record."""
    return unquote_plus(str(record["s3"]["object"]["key"]))


def markers_from_event(event: Mapping[str, Any], dataset_prefix: str = "datasets/") -> Iterator[
        tuple[Mapping[str, Any], DatasetMarker | None]]:
    """Each record of an S3 notification with its marker (None: not a dataset marker, ignore it)."""
    for record in event.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            yield record, None
            continue
        obj = record["s3"]["object"]
        version = dataset_version(obj.get("versionId"), obj.get("eTag")) or str(obj.get("sequencer") or "")
        yield record, marker_from_key(record["s3"]["bucket"]["name"], record_key(record), version,
                                      dataset_prefix, str(record.get("eventTime", "")))
