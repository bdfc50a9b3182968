"""S3 event records -> dataset markers.

A dataset is the prefix `datasets/<name>/`; its `data.yaml`, written last, is the marker that
starts training. Keys arrive URL-encoded (`a b.yaml` as `a+b.yaml`), one record at a time (an
event may carry several, and Powertools' `S3Event.object_key` decodes only the first).

A `data.yaml` anywhere else under the datasets prefix (`datasets/a/b/data.yaml`, `datasets/data.yaml`)
is a misplaced marker: it starts nothing, but the uploader is told where the marker belongs. The
bucket notification (prefix `datasets/`, suffix `data.yaml`, both case-sensitive) delivers those two
shapes; `datasets/a/Data.YAML` never reaches the function on AWS, and is treated alike if it does.
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
    #: Non-empty for a misplaced marker (why it is not one): nothing starts, the uploader is told.
    misplaced: str = ""

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


def misplaced_marker_from_key(bucket: str, key: str, version: str, root: str = DATASET_PREFIX,
                              event_time: str = "") -> DatasetMarker | None:
    """A DatasetMarker with `misplaced` set for a key under `root` whose file name is data.yaml in any
    letter case but that is not `<root><name>/data.yaml`; None for any other key (images, labels...)."""
    if not key.startswith(root) or key.rpartition("/")[2].casefold() != MARKER_FILE.casefold():
        return None
    folders = key[len(root):].split("/")[:-1]
    if not folders:
        why = "it is not in a dataset folder"
    elif len(folders) > 1:
        why = f"it is {len(folders) - 1} folder(s) too deep"
    elif key.rpartition("/")[2] != MARKER_FILE:
        why = f"the file name must be {MARKER_FILE} in lower case"
    else:
        why = "the dataset folder's name is blank, '.' or '..'"
    name = folders[0] if folders else ""
    return DatasetMarker(bucket=bucket, key=key, version=version, dataset=name,
                         prefix=dataset_prefix(name, root) if name else root, event_time=event_time,
                         misplaced=why)


def record_key(record: Mapping[str, Any]) -> str:
    """The decoded object key of one S3 event record."""
    return unquote_plus(str(record["s3"]["object"]["key"]))


def markers_from_event(event: Mapping[str, Any], dataset_prefix: str = "datasets/") -> Iterator[
        tuple[Mapping[str, Any], DatasetMarker | None]]:
    """Each record of an S3 notification with its marker (None: not a dataset marker, ignore it;
    `misplaced` set: a data.yaml in the wrong place, tell the uploader)."""
    for record in event.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            yield record, None
            continue
        obj = record["s3"]["object"]
        version = dataset_version(obj.get("versionId"), obj.get("eTag")) or str(obj.get("sequencer") or "")
        bucket, key, event_time = record["s3"]["bucket"]["name"], record_key(record), str(record.get("eventTime", ""))
        yield record, (marker_from_key(bucket, key, version, dataset_prefix, event_time)
                       or misplaced_marker_from_key(bucket, key, version, dataset_prefix, event_time))
