"""Deploy: the CloudFormation custom resource (template.yaml `Pipeline`) that uploads the training code
and creates, updates or deletes the SageMaker pipeline, answering CloudFormation exactly once.

Logic: deploy_pipeline.py (properties and outputs documented there); answering: cfn_response.py;
environment: deploy_config.py. Invoked without a ResponseURL, it returns the answer instead.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from cfn_response import answer_cloudformation
from deploy_config import DeployConfig
from deploy_pipeline import handle_request

CONFIG = DeployConfig.from_env()
logger = Logger(service="yolopipe-deploy")
sagemaker = boto3.client("sagemaker", region_name=CONFIG.region)
s3 = boto3.client("s3", region_name=CONFIG.region)


@logger.inject_lambda_context(correlation_id_path="RequestId", clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer_cloudformation(
        event, context, lambda: handle_request(event, sagemaker=sagemaker, s3=s3, region=CONFIG.region),
        timeout_margin_seconds=CONFIG.timeout_margin_seconds, attempts=CONFIG.response_attempts, log=logger,
    )
