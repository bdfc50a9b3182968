"""The notifier's environment (template.yaml), read once into a typed, frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from yolopipe_shared.config import (
    IDEMPOTENCY_TABLE,
    NOTIFY_TOPIC_ARN,
    SLACK_MAX_ATTEMPTS,
    SLACK_SECRET_ARN,
    SLACK_TIMEOUT_SECONDS,
    SLACK_WEBHOOK_URL,
    integer,
    region,
    required,
)


@dataclass(frozen=True)
class NotifierConfig:
    """What functions/notifier needs. Slack is optional: no secret and no URL means email only."""

    idempotency_table: str
    notify_topic_arn: str
    slack_secret_arn: str | None
    #: Only for the local mode (no Secrets Manager); never set on the deployed stack.
    slack_webhook_url: str | None
    #: The most one Slack attempt takes, connect to last byte (not per read); the whole delivery,
    #: waits included, takes at most slack_timeout_seconds * slack_max_attempts.
    slack_timeout_seconds: float
    slack_max_attempts: int
    region: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierConfig:
        env = os.environ if env is None else env
        return cls(
            idempotency_table=required(env, IDEMPOTENCY_TABLE),
            notify_topic_arn=required(env, NOTIFY_TOPIC_ARN),
            slack_secret_arn=env.get(SLACK_SECRET_ARN, "").strip() or None,
            slack_webhook_url=env.get(SLACK_WEBHOOK_URL, "").strip() or None,
            slack_timeout_seconds=float(integer(env, SLACK_TIMEOUT_SECONDS, 5, 1)),
            slack_max_attempts=integer(env, SLACK_MAX_ATTEMPTS, 4, 1),
            region=region(env),
        )

    def __repr__(self) -> str:  # the webhook URL is a secret: never in a log line
        url = "<set>" if self.slack_webhook_url else None
        return (f"NotifierConfig(idempotency_table={self.idempotency_table!r}, "
                f"notify_topic_arn={self.notify_topic_arn!r}, slack_secret_arn={self.slack_secret_arn!r}, "
                f"slack_webhook_url={url!r})")
