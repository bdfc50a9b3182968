""""Once" for both functions: Powertools idempotency on the stack's DynamoDB table (partition key
`id`, template.yaml's IdempotencyTable), each function with its own key prefix so that the record's
key does not depend on how the module was loaded (Lambda, local mode, tests).

Powertools deletes a record only when the function raises; a runtime killed mid-call leaves it
INPROGRESS until the invocation's remaining time runs out (`register_lambda_context` sets that
time). The trigger handles a retry in that window (functions/trigger/start_training.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Once:
    """The persistence layer and config of one function's idempotency; `decorate` makes a function
    run once per key (its result stored and replayed)."""

    persistence: DynamoDBPersistenceLayer
    config: IdempotencyConfig
    key_prefix: str
    data_keyword_argument: str

    def decorate(self, function: F) -> F:
        return idempotent_function(data_keyword_argument=self.data_keyword_argument,  # type: ignore[return-value]
                                   persistence_store=self.persistence, config=self.config,
                                   key_prefix=self.key_prefix)(function)

    def register_lambda_context(self, context: Any) -> None:
        self.config.register_lambda_context(context)


def once(*, table_name: str, dynamodb: Any, key_prefix: str, key_jmespath: str, data_keyword_argument: str,
         expires_after_seconds: int, raise_on_no_key: bool = True) -> Once:
    """One function's idempotency on the stack's table."""
    return Once(
        persistence=DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb),
        config=IdempotencyConfig(event_key_jmespath=key_jmespath, raise_on_no_idempotency_key=raise_on_no_key,
                                 expires_after_seconds=expires_after_seconds),
        key_prefix=key_prefix,
        data_keyword_argument=data_keyword_argument,
    )
