"""The functions' environment contract: every variable name template.yaml sets, and the readers that
turn them into typed values or fail at start with a one-line message. Each function reads its own
frozen config object (functions/<name>/<name>_config.py) with these.

Env names are constants here so template.yaml, the tests and the local mode spell them the same.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import YolopipeError

PIPELINE_NAME = "PIPELINE_NAME"
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
NOTIFY_TOPIC_ARN = "NOTIFY_TOPIC_ARN"
MAX_EPOCHS = "MAX_EPOCHS"
ALLOWED_INSTANCE_TYPES = "ALLOWED_INSTANCE_TYPES"
MAX_RUNTIME_SECONDS = "MAX_RUNTIME_SECONDS"
MAX_INSTANCE_COUNT = "MAX_INSTANCE_COUNT"
DATASET_PREFIX = "DATASET_PREFIX"
IDEMPOTENCY_TTL_SECONDS = "IDEMPOTENCY_TTL_SECONDS"
LABEL_SAMPLE = "LABEL_SAMPLE"
SLACK_SECRET_ARN = "SLACK_SECRET_ARN"  # noqa: S105 (a variable name, not a secret)
SLACK_WEBHOOK_URL = "SLACK_WEBHOOK_URL"  # local mode only; the deployed stack reads the secret
SLACK_TIMEOUT_SECONDS = "SLACK_TIMEOUT_SECONDS"
SLACK_MAX_ATTEMPTS = "SLACK_MAX_ATTEMPTS"
CONSOLE_REGION = "AWS_REGION"

DEFAULT_DATASET_PREFIX = "datasets/"
#: S3 may redeliver an event hours later; the ClientRequestToken covers anything older.
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
#: Labels checked per split before training (class ids within `names`); images/labels pairing is
#: always checked in full from the listing.


class ConfigurationError(YolopipeError):
    """A required environment variable is missing or malformed (a deployment mistake)."""


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; deploy with template.yaml or export it")
    return value


def integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"environment variable {name} must be at least {minimum}, got {value}")
    return value


def region(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
