"""Where things live, and the names every side reads: the dataset layout in the stack's bucket
(prefix, marker, URI, version rule), the pipeline's step names and its execution statuses.

The trigger, the notifier, the CLI, the local mode and the definition import these; nothing else
spells them.
"""

from __future__ import annotations

from .data_yaml import DATA_YAML

#: Datasets live under `datasets/<name>/`; their data.yaml, written last, is the marker.
DATASET_PREFIX = "datasets/"
MARKER_FILE = DATA_YAML
#: Spot checkpoints, per dataset and version (a lifecycle rule expires them).
CHECKPOINTS_PREFIX = "checkpoints/"

# Step names: the definition names its steps with these; the notifier, the CLI and the local
# executor read them.
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_CHECK_QUALITY = "CheckQuality"
STEP_REGISTER = "Register"
STEP_FAIL = "QualityGateFailed"

#: Pipeline execution statuses that end an execution (SageMaker's PipelineExecutionStatus enum).
TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")
#: Statuses the team is told about.
NOTIFY_STATUSES = ("Executing", *TERMINAL_STATUSES)


def dataset_prefix(name: str, root: str = DATASET_PREFIX) -> str:
    """`datasets/<name>/`."""
    return f"{root}{name}/"


def dataset_uri(bucket: str, name: str, root: str = DATASET_PREFIX) -> str:
    """`s3://<bucket>/datasets/<name>/`: the pipeline's DatasetS3Uri."""
    return s3_uri(bucket, dataset_prefix(name, root))


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri[:200]!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri[:200]!r}")
    return bucket, key


def dataset_version(version_id: str | None, etag: str | None) -> str:
    """A marker's DatasetVersion: its S3 versionId, or its ETag (quotes stripped) on a bucket
    without versioning. A new upload gives a new version, which keys the training cache."""
    version = (version_id or "").strip()
    if version and version != "null":
        return version
    return (etag or "").strip().strip('"')
