"""Deploy function: the CloudFormation custom resource that upserts the yolopipe SageMaker pipeline.

For template.yaml (H3):
    Handler: app.lambda_handler        CodeUri: functions/deploy/        Runtime: python3.13
    Metadata: BuildMethod: makefile    (functions/deploy/Makefile, target build-DeployFunction: it
              renders pipeline_definition.json with `python -m pipeline.render` and packs
              training_code.tar.gz with `python -m pipeline.code_bundle`, using the repo's .venv)
    Layers: the shared layer (yolopipe_shared + aws-lambda-powertools); no SageMaker SDK.
    Timeout: 300 s or more (the function answers FAILED 15 s before its deadline in any case).
    Environment (all optional): POWERTOOLS_SERVICE_NAME; AWS_REGION comes with the runtime.
    Custom resource properties:
        PipelineName (required)  Bucket (required)  RoleArn (required: the SageMaker execution role)
        Region (default: the function's)   CodePrefix (default code/)   KeepOnDelete ("true": keep
        the pipeline when the resource is deleted)   EnvironmentName (a tag)
        DefaultTrainingInstanceType, MinMap50_95, ModelPackageGroupName: the stack's defaults for
        those pipeline parameters. Any other property is ignored.
    Returns (Fn::GetAtt): PipelineArn, PipelineName, CodeS3Uri, DefinitionSha256;
        PhysicalResourceId = the pipeline name (a new name replaces the pipeline; CloudFormation
        then deletes the old one).
    IAM: sagemaker:CreatePipeline, UpdatePipeline, DeletePipeline, DescribePipeline, AddTags on the
        pipeline; s3:GetObject, s3:PutObject on
        <bucket>/code/* and <bucket>/pipelines/*; s3:ListBucket on the bucket (so a missing code
        object is a 404, not a 403); iam:PassRole on the execution role (PassedToService
        sagemaker.amazonaws.com).

Invoked directly (no ResponseURL), it returns the answer instead of sending it:
    {"RequestType": "Create" | "Update" | "Delete", "ResourceProperties": {...}}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from cfn_response import FAILED, SUCCESS, Responder
from deploy_pipeline import ASSETS_DIR, DeployRequest, delete_pipeline, load_assets, upsert_pipeline

from yolopipe_shared.errors import YolopipeError

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "yolopipe-deploy"))
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
sagemaker_client = boto3.client("sagemaker", region_name=REGION)
s3_client = boto3.client("s3", region_name=REGION)


def handle(
    event: Mapping[str, Any], sagemaker: Any, s3: Any, *, assets_dir: Path = ASSETS_DIR
) -> tuple[str, dict[str, str]]:
    """Do what the request asks; (physical resource id, data). Raises YolopipeError on refusal."""
    request_type = event.get("RequestType")
    properties = event.get("ResourceProperties") or {}
    if request_type == "Delete":
        name = str(event.get("PhysicalResourceId") or properties.get("PipelineName") or "")
        keep = str(properties.get("KeepOnDelete", "false")).strip().lower() in ("true", "1", "yes")
        deleted = delete_pipeline(sagemaker, name, keep=keep)
        logger.info("delete", extra={"pipeline": name, "deleted": deleted, "kept": keep})
        return name, {}
    if request_type not in ("Create", "Update"):
        raise YolopipeError(f"RequestType must be Create, Update or Delete, got {request_type!r}")
    request = DeployRequest.from_properties(properties, default_region=REGION)
    template, tarball = load_assets(assets_dir)
    result = upsert_pipeline(
        sagemaker, s3, request, template=template, tarball=tarball, client_request_token=event.get("RequestId")
    )
    logger.info(
        "upsert",
        extra={
            "pipeline": result.pipeline_name,
            "pipeline_created": result.created,
            "code": result.code_s3_uri,
            "code_uploaded": result.code_uploaded,
        },
    )
    return result.pipeline_name, result.as_data()


def failure_physical_id(event: Mapping[str, Any]) -> str:
    """The id to answer FAILED with: the existing resource's, or (a failed Create) one that names no
    pipeline, so the rollback's Delete cannot remove a pipeline of that name that is not ours."""
    existing = event.get("PhysicalResourceId")
    if existing:
        return str(existing)
    return f"{event.get('LogicalResourceId', 'Pipeline')}-not-created-{str(event.get('RequestId', ''))[:8]}"


def respond(
    event: Mapping[str, Any], context: Any, sagemaker: Any, s3: Any, *, assets_dir: Path = ASSETS_DIR
) -> dict[str, Any]:
    """Run `handle` and answer CloudFormation whatever happens (exceptions and timeouts included)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    responder = Responder(event, remaining_ms=remaining, log=logger.error, failure_id=failure_physical_id(event))
    fallback_id = failure_physical_id(event)
    try:
        physical_id, data = handle(event, sagemaker, s3, assets_dir=assets_dir)
    except YolopipeError as exc:
        logger.error("refused", extra={"reason": str(exc)})
        body = responder.answer(FAILED, physical_resource_id=fallback_id, reason=str(exc))
    except Exception as exc:  # a bug must still answer CloudFormation, with the reason
        logger.exception("deploy function failed")
        body = responder.answer(FAILED, physical_resource_id=fallback_id, reason=f"{type(exc).__name__}: {exc}")
    else:
        body = responder.answer(SUCCESS, physical_resource_id=physical_id, data=data)
    finally:
        responder.cancel()
    return body or responder.sent or {}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return respond(event, context, sagemaker_client, s3_client)
