"""Notifier: "SageMaker Model Building Pipeline Execution Status Change" -> Slack + email, once
per (execution, status); the trigger's "Dataset Refused" -> Slack, once per refusal record.

Env (template.yaml): IDEMPOTENCY_TABLE, NOTIFY_TOPIC_ARN, SLACK_SECRET_ARN (optional; the webhook
URL lives only in Secrets Manager). Logic: notify.py (email, then Slack through slack.py),
notify_refusal.py (refusals).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from notifier_config import NotifierConfig
from notify import notify_status, webhook_url
from notify_refusal import notify_refusal

from yolopipe_shared.cost import PriceList, pricing_client
from yolopipe_shared.idempotency import once
from yolopipe_shared.refusal import DETAIL_TYPE as DATASET_REFUSED

#: Seconds kept after Slack for the idempotency record and the return.
RESERVE_SECONDS = 10.0
CONFIG = NotifierConfig.from_env()
logger = Logger(service="yolopipe-notifier")
sagemaker = boto3.client("sagemaker")
s3 = boto3.client("s3")
sns = boto3.client("sns")
secrets = boto3.client("secretsmanager")
# The Price List API (us-east-1); its answers are cached for this execution environment's lifetime.
prices = PriceList(pricing_client(boto3.session.Session()))
# Once per (execution, status): EventBridge may deliver an event twice.
idempotency = once(table_name=CONFIG.idempotency_table, dynamodb=boto3.client("dynamodb"),
                   key_prefix="yolopipe-notifier", data_keyword_argument="detail",
                   key_jmespath="[pipelineExecutionArn, currentPipelineExecutionStatus]",
                   expires_after_seconds=7 * 24 * 3600, raise_on_no_key=False)
persistence = idempotency.persistence
# Once per refusal record (refusals/<name>/<version>.json): the trigger's retries and EventBridge's
# repeats post one message.
refusal_idempotency = once(table_name=CONFIG.idempotency_table, dynamodb=boto3.client("dynamodb"),
                           key_prefix="yolopipe-notifier-refusal", data_keyword_argument="refusal",
                           key_jmespath="[bucket, key]", expires_after_seconds=7 * 24 * 3600,
                           raise_on_no_key=False)


@idempotency.decorate
def notify_once(detail: dict[str, Any], slack_deadline: float, done: dict[str, Any]) -> dict[str, Any]:
    """`done` receives the result as soon as the notice is out (before Powertools records it)."""
    done.update(notify_status(detail, sagemaker=sagemaker, s3=s3, sns=sns, config=CONFIG,
                              webhook=lambda: webhook_url(CONFIG, secrets), slack_deadline=slack_deadline,
                              prices=prices))
    return done


@refusal_idempotency.decorate
def notify_refusal_once(refusal: dict[str, Any], slack_deadline: float, done: dict[str, Any]) -> dict[str, Any]:
    done.update(notify_refusal(refusal, config=CONFIG, webhook=lambda: webhook_url(CONFIG, secrets),
                               slack_deadline=slack_deadline))
    return done


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    refusal_idempotency.register_lambda_context(context)
    # Slack must finish with time to spare: a timed-out invocation is retried and would mail twice.
    slack_deadline = max(0.0, context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS)
    done: dict[str, Any] = {}
    try:
        if event.get("detail-type") == DATASET_REFUSED:
            return notify_refusal_once(refusal=dict(event.get("detail") or {}), slack_deadline=slack_deadline,
                                       done=done)
        return notify_once(detail=dict(event.get("detail") or {}), slack_deadline=slack_deadline, done=done)
    except IdempotencyAlreadyInProgressError:
        # Another invocation holds this notice until its own deadline: it sends it, or fails and is
        # retried by Lambda (a minute after a failure or a timeout, once that deadline has passed).
        logger.info("another invocation is sending this notice")
        return {"sent": False, "reason": "another invocation is sending this notice"}
    except IdempotencyPersistenceLayerError:
        if not done:
            raise  # nothing sent: Lambda's retry sends it
        # The team has been told; only marking the record done failed. Failing the invocation would
        # make Lambda retry it once the record's in-progress time ran out, and mail them again.
        logger.exception("notified, but the idempotency record could not be marked done")
        return done
