"""Trigger: s3:ObjectCreated on datasets/<name>/data.yaml -> validate -> start the pipeline once.

Env (template.yaml): PIPELINE_NAME, IDEMPOTENCY_TABLE, NOTIFY_TOPIC_ARN; optional MAX_EPOCHS,
DATASET_PREFIX, IDEMPOTENCY_TTL_SECONDS, LABEL_SAMPLE. Logic: yolopipe_shared.start_training.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from s3_events import DatasetMarker
from start_training import handle_s3_event, start_training
from trigger_config import TriggerConfig

CONFIG = TriggerConfig.from_env()
logger = Logger(service="yolopipe-trigger")
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
sns = boto3.client("sns")
persistence = DynamoDBPersistenceLayer(table_name=CONFIG.idempotency_table, boto3_client=boto3.client("dynamodb"))
# One record per dataset version: (bucket, key, versionId or eTag). A fixed key prefix keeps the
# record's key independent of how the module is loaded (Lambda, local mode, tests).
idempotency = IdempotencyConfig(event_key_jmespath="[bucket, key, version]", raise_on_no_idempotency_key=True,
                                expires_after_seconds=CONFIG.idempotency_ttl_seconds)


@idempotent_function(data_keyword_argument="marker", persistence_store=persistence, config=idempotency,
                     key_prefix="yolopipe-trigger")
def start_once(marker: dict[str, str]) -> dict[str, Any]:
    return start_training(DatasetMarker.from_dict(marker), s3=s3, sagemaker=sagemaker, sns=sns, config=CONFIG)


@logger.inject_lambda_context(correlation_id_path='Records[0].responseElements."x-amz-request-id"', clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return handle_s3_event(event, start_once, CONFIG.dataset_prefix, context.get_remaining_time_in_millis)
