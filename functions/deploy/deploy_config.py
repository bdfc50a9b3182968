"""The deploy function's environment, read once into a typed, frozen object.

Lambda sets AWS_REGION; the two knobs are optional and have the defaults template.yaml relies on
(Timeout 300 s, custom resource ServiceTimeout 600 s).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from yolopipe_shared.config import CONSOLE_REGION, ConfigurationError, integer, required

#: Answer FAILED this many seconds before the Lambda's deadline if the work has not finished; the
#: answer's own retries fit in this margin.
DEPLOY_TIMEOUT_MARGIN_SECONDS = "DEPLOY_TIMEOUT_MARGIN_SECONDS"
#: Tries of the PUT to CloudFormation's pre-signed response URL (5xx and connection errors).
DEPLOY_RESPONSE_ATTEMPTS = "DEPLOY_RESPONSE_ATTEMPTS"

DEFAULT_TIMEOUT_MARGIN_SECONDS = 15
DEFAULT_RESPONSE_ATTEMPTS = 5


@dataclass(frozen=True)
class DeployConfig:
    """What functions/deploy needs besides the request: where it runs and how hard it tries to answer."""

    region: str
    timeout_margin_seconds: int = DEFAULT_TIMEOUT_MARGIN_SECONDS
    response_attempts: int = DEFAULT_RESPONSE_ATTEMPTS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeployConfig:
        env = os.environ if env is None else env
        margin = integer(env, DEPLOY_TIMEOUT_MARGIN_SECONDS, DEFAULT_TIMEOUT_MARGIN_SECONDS, minimum=2)
        if margin > 120:
            raise ConfigurationError(f"environment variable {DEPLOY_TIMEOUT_MARGIN_SECONDS} must be at most 120, "
                                     f"got {margin}")
        return cls(
            region=required(env, CONSOLE_REGION),
            timeout_margin_seconds=margin,
            response_attempts=integer(env, DEPLOY_RESPONSE_ATTEMPTS, DEFAULT_RESPONSE_ATTEMPTS, minimum=1),
        )
