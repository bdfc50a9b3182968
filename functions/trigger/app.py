"""Trigger: s3:ObjectCreated on datasets/<name>/data.yaml -> validate -> start the pipeline once.

Env (template.yaml): PIPELINE_NAME, IDEMPOTENCY_TABLE, NOTIFY_TOPIC_ARN; optional MAX_EPOCHS,
DATASET_PREFIX, IDEMPOTENCY_TTL_SECONDS, LABEL_SAMPLE, ALLOWED_INSTANCE_TYPES, MAX_RUNTIME_SECONDS,
MAX_INSTANCE_COUNT.
Logic: start_training.py; a refusal is recorded and announced by record_refusal.py.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from s3_events import DatasetMarker
from start_training import handle_s3_event, start_training
from trigger_config import TriggerConfig

from yolopipe_shared.idempotency import once

CONFIG = TriggerConfig.from_env()
logger = Logger(service="yolopipe-trigger")
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
sns = boto3.client("sns")
events = boto3.client("events")
# One record per dataset version: (bucket, key, versionId or eTag).
idempotency = once(table_name=CONFIG.idempotency_table, dynamodb=boto3.client("dynamodb"),
                   key_prefix="yolopipe-trigger", data_keyword_argument="marker",
                   key_jmespath="[bucket, key, version]", expires_after_seconds=CONFIG.idempotency_ttl_seconds)
persistence = idempotency.persistence


@idempotency.decorate
def start_once(marker: dict[str, str]) -> dict[str, Any]:
    return start_training(DatasetMarker.from_dict(marker), s3=s3, sagemaker=sagemaker, sns=sns, events=events,
                          config=CONFIG)


@logger.inject_lambda_context(correlation_id_path='Records[0].responseElements."x-amz-request-id"', clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return handle_s3_event(event, start_once, CONFIG.dataset_prefix, context.get_remaining_time_in_millis)
