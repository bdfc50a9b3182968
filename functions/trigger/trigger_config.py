"""The trigger's environment (template.yaml), read once into a typed, frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from yolopipe_shared import parameters
from yolopipe_shared.config import (
    ALLOWED_INSTANCE_TYPES,
    DATASET_PREFIX,
    DEFAULT_DATASET_PREFIX,
    DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    IDEMPOTENCY_TABLE,
    IDEMPOTENCY_TTL_SECONDS,
    LABEL_SAMPLE,
    MAX_EPOCHS,
    MAX_INSTANCE_COUNT,
    MAX_RUNTIME_SECONDS,
    NOTIFY_TOPIC_ARN,
    PIPELINE_NAME,
    ConfigurationError,
    integer,
    required,
)
from yolopipe_shared.overrides import StackLimits
from yolopipe_shared.validate import DEFAULT_LABEL_SAMPLE

#: When ALLOWED_INSTANCE_TYPES / MAX_RUNTIME_SECONDS are unset (a run outside the stack): template.yaml's
#: defaults of AllowedTrainingInstanceTypes and MaxTrainingRuntimeSeconds.
DEFAULT_ALLOWED_INSTANCE_TYPES = ("ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge", "ml.g5.2xlarge",
                                  "ml.g6.xlarge", "ml.g6.2xlarge")
DEFAULT_MAX_RUNTIME_SECONDS = 86400
#: template.yaml's default of MaxTrainingInstanceCount: an uploader trains on one instance.
DEFAULT_MAX_INSTANCE_COUNT = 1


@dataclass(frozen=True)
class TriggerConfig:
    """What functions/trigger needs: where to start, where to remember, whom to tell, what it may cost."""

    pipeline_name: str
    idempotency_table: str
    notify_topic_arn: str
    max_epochs: int | None
    dataset_prefix: str
    idempotency_ttl_seconds: int
    label_sample: int
    allowed_instance_types: tuple[str, ...] = DEFAULT_ALLOWED_INSTANCE_TYPES
    max_runtime_seconds: int = DEFAULT_MAX_RUNTIME_SECONDS
    max_instance_count: int = DEFAULT_MAX_INSTANCE_COUNT

    @property
    def limits(self) -> StackLimits:
        """The stack's bounds on what a dataset's yolopipe.yaml may ask for."""
        return StackLimits(self.max_epochs, self.allowed_instance_types, self.max_runtime_seconds,
                           self.max_instance_count)

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
            allowed_instance_types=instance_types(env),
            max_runtime_seconds=integer(env, MAX_RUNTIME_SECONDS, DEFAULT_MAX_RUNTIME_SECONDS, minimum=1),
            max_instance_count=integer(env, MAX_INSTANCE_COUNT, DEFAULT_MAX_INSTANCE_COUNT, minimum=1),
        )


def instance_types(env: Mapping[str, str]) -> tuple[str, ...]:
    """ALLOWED_INSTANCE_TYPES (comma-separated, as CloudFormation joins a CommaDelimitedList)."""
    raw = env.get(ALLOWED_INSTANCE_TYPES, "").strip()
    if not raw:
        return DEFAULT_ALLOWED_INSTANCE_TYPES
    types = tuple(t.strip() for t in raw.split(",") if t.strip())
    spec = parameters.BY_NAME["TrainingInstanceType"]
    for name in types:
        try:
            spec.coerce(name)
        except ValueError:
            raise ConfigurationError(f"environment variable {ALLOWED_INSTANCE_TYPES} lists {name[:60]!r}, "
                                     "which is not a SageMaker instance type (ml.<family>.<size>)") from None
    return types
