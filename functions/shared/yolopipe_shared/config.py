"""The functions' configuration: every environment variable template.yaml sets, read once into a
typed, frozen object that fails at start with a one-line message when something is missing.

Env names are constants here so template.yaml, the tests and the local mode spell them the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import YolopipeError

PIPELINE_NAME = "PIPELINE_NAME"
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
NOTIFY_TOPIC_ARN = "NOTIFY_TOPIC_ARN"
MAX_EPOCHS = "MAX_EPOCHS"
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
DEFAULT_LABEL_SAMPLE = 200


class ConfigurationError(YolopipeError):
    """A required environment variable is missing or malformed (a deployment mistake)."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; deploy with template.yaml or export it")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
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


def _region(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


@dataclass(frozen=True)
class TriggerConfig:
    """What functions/trigger needs: where to start, where to remember, whom to tell."""

    pipeline_name: str
    idempotency_table: str
    notify_topic_arn: str
    max_epochs: int | None
    dataset_prefix: str
    idempotency_ttl_seconds: int
    label_sample: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TriggerConfig:
        env = os.environ if env is None else env
        max_epochs = _integer(env, MAX_EPOCHS, 0, minimum=0)
        prefix = env.get(DATASET_PREFIX, "").strip() or DEFAULT_DATASET_PREFIX
        return cls(
            pipeline_name=_required(env, PIPELINE_NAME),
            idempotency_table=_required(env, IDEMPOTENCY_TABLE),
            notify_topic_arn=_required(env, NOTIFY_TOPIC_ARN),
            max_epochs=max_epochs or None,
            dataset_prefix=prefix if prefix.endswith("/") else prefix + "/",
            idempotency_ttl_seconds=_integer(env, IDEMPOTENCY_TTL_SECONDS, DEFAULT_IDEMPOTENCY_TTL_SECONDS, 60),
            label_sample=_integer(env, LABEL_SAMPLE, DEFAULT_LABEL_SAMPLE, 1),
        )


@dataclass(frozen=True)
class NotifierConfig:
    """What functions/notifier needs. Slack is optional: no secret and no URL means email only."""

    idempotency_table: str
    notify_topic_arn: str
    slack_secret_arn: str | None
    #: Only for the local mode (no Secrets Manager); never set on the deployed stack.
    slack_webhook_url: str | None
    slack_timeout_seconds: float
    slack_max_attempts: int
    region: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierConfig:
        env = os.environ if env is None else env
        return cls(
            idempotency_table=_required(env, IDEMPOTENCY_TABLE),
            notify_topic_arn=_required(env, NOTIFY_TOPIC_ARN),
            slack_secret_arn=env.get(SLACK_SECRET_ARN, "").strip() or None,
            slack_webhook_url=env.get(SLACK_WEBHOOK_URL, "").strip() or None,
            slack_timeout_seconds=float(_integer(env, SLACK_TIMEOUT_SECONDS, 5, 1)),
            slack_max_attempts=_integer(env, SLACK_MAX_ATTEMPTS, 4, 1),
            region=_region(env),
        )

    def __repr__(self) -> str:  # the webhook URL is a secret: never in a log line
        url = "<set>" if self.slack_webhook_url else None
        return (f"NotifierConfig(idempotency_table={self.idempotency_table!r}, "
                f"notify_topic_arn={self.notify_topic_arn!r}, slack_secret_arn={self.slack_secret_arn!r}, "
                f"slack_webhook_url={url!r})")
