"""The trigger's environment (template.yaml), read once into a typed, frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from yolopipe_shared.config import (
    DATASET_PREFIX,
    DEFAULT_DATASET_PREFIX,
    DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    IDEMPOTENCY_TABLE,
    IDEMPOTENCY_TTL_SECONDS,
    LABEL_SAMPLE,
    MAX_EPOCHS,
    NOTIFY_TOPIC_ARN,
    PIPELINE_NAME,
    integer,
    required,
)
from yolopipe_shared.validate import DEFAULT_LABEL_SAMPLE


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
        max_epochs = integer(env, MAX_EPOCHS, 0, minimum=0)
        prefix = env.get(DATASET_PREFIX, "").strip() or DEFAULT_DATASET_PREFIX
        return cls(
            pipeline_name=required(env, PIPELINE_NAME),
            idempotency_table=required(env, IDEMPOTENCY_TABLE),
            notify_topic_arn=required(env, NOTIFY_TOPIC_ARN),
            max_epochs=max_epochs or None,
            dataset_prefix=prefix if prefix.endswith("/") else prefix + "/",
            idempotency_ttl_seconds=integer(env, IDEMPOTENCY_TTL_SECONDS, DEFAULT_IDEMPOTENCY_TTL_SECONDS, 60),
            label_sample=integer(env, LABEL_SAMPLE, DEFAULT_LABEL_SAMPLE, 1),
        )


