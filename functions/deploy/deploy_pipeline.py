"""Deploy the pipeline: upload the training code once, fill the definition's placeholders, create or
update the SageMaker pipeline, tag it; or delete it. Plain functions taking boto3 clients.

The definition JSON, the code tarball and the image-account table were produced at build time
(`make build-DeployFunction`) and ship next to this file; nothing here needs the SageMaker SDK.

    Create / Update ──► upload code (once per content) ──► fill ${Bucket} ${RoleArn} ${Region}
                        ${CodeS3Uri} ${ImageAccountId} ──► create or update the pipeline ──► tag
    Delete ──► a failed Create's id (`Pipeline-not-created-...`): nothing to do, no AWS call
           └─► otherwise delete the pipeline unless KeepOnDelete

Custom resource properties (CloudFormation sends every value as a string):
    PipelineName, Bucket, RoleArn (the SageMaker execution role): required.
    Region (default: the function's)   CodePrefix (default code/)   EnvironmentName (a tag)
    KeepOnDelete ("true": keep the pipeline when the resource is deleted)
    UseSpotInstances (default "true")  ContainerImageAccountId (empty: the build's table for Region)
    DefaultTrainingInstanceType, MinMap50_95, MinImprovement, ModelPackageGroupName, DefaultWeights,
    MlflowTrackingUri: the stack's defaults for those pipeline parameters (an empty MlflowTrackingUri leaves
    tracking off). CodeVersion: the deploy function's published version; it changes with
    every build, so CloudFormation sends an Update whenever the definition or code changed.
    Any other property is ignored.
Returns (Fn::GetAtt): PipelineArn, PipelineName, CodeS3Uri, DefinitionSha256, ImageAccountId;
    PhysicalResourceId = the pipeline name (a new name replaces the pipeline; CloudFormation then
    deletes the old one).
IAM: sagemaker:CreatePipeline, UpdatePipeline, DeletePipeline, DescribePipeline, AddTags on the
    pipeline; s3:GetObject, s3:PutObject on <bucket>/code/* and <bucket>/pipelines/*; s3:ListBucket
    on the bucket (a missing code object is then a 404, not a 403); iam:PassRole on the execution
    role (PassedToService sagemaker.amazonaws.com).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from cfn_response import is_not_created
from container_images import ACCOUNT_PARAMETER, ImageAccounts

from yolopipe_shared.errors import DefinitionError, ParameterError, YolopipeError
from yolopipe_shared.parameters import BY_NAME
from yolopipe_shared.pipeline_template import (
    check_definition,
    find_placeholders,
    load_definition,
    set_managed_spot,
    substitute,
)

logger = Logger(service="yolopipe-deploy", child=True)

ASSETS_DIR = Path(__file__).resolve().parent
DEFINITION_FILE = "pipeline_definition.json"
CODE_FILE = "training_code.tar.gz"
IMAGE_ACCOUNTS_FILE = "image_accounts.json"
#: CreatePipeline takes at most 100 KB inline; larger definitions go through S3.
INLINE_DEFINITION_LIMIT = 100 * 1024
DEFINITIONS_PREFIX = "pipelines/"

#: Custom resource properties that set a pipeline parameter's default (property -> parameter).
DEFAULT_PROPERTIES = {
    "DefaultTrainingInstanceType": "TrainingInstanceType",
    "MinMap50_95": "MinMap50_95",
    "MinImprovement": "MinImprovement",
    "ModelPackageGroupName": "ModelPackageGroupName",
    "DefaultWeights": "Weights",
    "MlflowTrackingUri": "MlflowTrackingUri",
}


class DeployError(YolopipeError):
    """The deployment cannot proceed (bad properties, AWS refused); the message says why."""


@dataclass(frozen=True)
class DeployRequest:
    """The custom resource's properties, checked."""

    pipeline_name: str
    bucket: str
    role_arn: str
    region: str
    code_prefix: str = "code/"
    keep_on_delete: bool = False
    parameter_defaults: tuple[tuple[str, str], ...] = ()
    environment_name: str = ""
    #: Managed spot for training (a stack setting: see yolopipe_shared.pipeline_template.set_managed_spot).
    use_spot: bool = True
    #: The DLC registry account the stack names explicitly; empty: the build's table for the region.
    image_account: str = ""

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any], *, default_region: str) -> DeployRequest:
        missing = [name for name in ("PipelineName", "Bucket", "RoleArn") if not properties.get(name)]
        if missing:
            raise DeployError(f"missing custom resource properties: {', '.join(missing)}")
        role_arn = str(properties["RoleArn"])
        if not role_arn.startswith("arn:") or ":role/" not in role_arn:
            raise DeployError(f"RoleArn must be an IAM role ARN, got {role_arn!r}")
        code_prefix = str(properties.get("CodePrefix") or "code/")
        if not code_prefix.endswith("/"):
            code_prefix += "/"
        defaults = []
        for prop, parameter in DEFAULT_PROPERTIES.items():
            if properties.get(prop) not in (None, ""):
                try:
                    value = BY_NAME[parameter].coerce(properties[prop])
                except ParameterError as exc:
                    raise DeployError(f"{prop}: {exc}") from exc
                defaults.append((parameter, BY_NAME[parameter].to_string(value)))
        return cls(
            pipeline_name=str(properties["PipelineName"]),
            bucket=str(properties["Bucket"]),
            role_arn=role_arn,
            region=str(properties.get("Region") or default_region),
            code_prefix=code_prefix,
            keep_on_delete=_flag(properties, "KeepOnDelete", default=False),
            parameter_defaults=tuple(defaults),
            environment_name=str(properties.get("EnvironmentName") or ""),
            use_spot=_flag(properties, "UseSpotInstances", default=True),
            image_account=str(properties.get(ACCOUNT_PARAMETER) or ""),
        )


def _flag(properties: Mapping[str, Any], name: str, *, default: bool) -> bool:
    """A boolean custom resource property (CloudFormation sends every value as a string)."""
    raw = str(properties.get(name, "")).strip().lower()
    if raw == "":
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise DeployError(f"{name} must be true or false, got {properties[name]!r}")


@dataclass(frozen=True)
class DeployResult:
    pipeline_arn: str
    pipeline_name: str
    code_s3_uri: str
    definition_sha256: str
    created: bool
    code_uploaded: bool
    #: The DLC registry account in the image URIs ("" when the definition names its images itself).
    image_account: str = ""

    def as_data(self) -> dict[str, str]:
        """What the custom resource returns (Fn::GetAtt-able, all strings)."""
        return {
            "PipelineArn": self.pipeline_arn,
            "PipelineName": self.pipeline_name,
            "CodeS3Uri": self.code_s3_uri,
            "DefinitionSha256": self.definition_sha256,
            "ImageAccountId": self.image_account,
        }


@dataclass(frozen=True)
class Assets:
    """What the build put next to this file."""

    definition_template: str
    code_tarball: bytes
    image_accounts: ImageAccounts


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise DeployError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
    return True


def upload_code(s3: Any, bucket: str, prefix: str, tarball: bytes) -> tuple[str, bool]:
    """Upload the tarball under its content address unless it is there; (s3 uri, uploaded?)."""
    digest = _sha256(tarball)
    key = f"{prefix}training-{digest[:16]}.tar.gz"
    if _object_exists(s3, bucket, key):
        return f"s3://{bucket}/{key}", False
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=tarball,
            ContentType="application/gzip",
            Metadata={"sha256": digest},
        )
    except ClientError as exc:
        raise DeployError(f"cannot upload the training code to s3://{bucket}/{key}: {exc}") from exc
    return f"s3://{bucket}/{key}", True


def image_account(template: str, request: DeployRequest, accounts: ImageAccounts) -> str:
    """The registry account the definition's image URIs need in the request's region ("" if none)."""
    if "ImageAccountId" not in find_placeholders(template):
        return ""
    return accounts.account_for(request.region, request.image_account)


def prepare_definition(template: str, request: DeployRequest, code_s3_uri: str, image_account_id: str = "") -> str:
    """Fill the placeholders, apply the stack's parameter defaults, check the references."""
    values = {"Bucket": request.bucket, "RoleArn": request.role_arn, "Region": request.region, "CodeS3Uri": code_s3_uri}
    text = substitute(template, values | ({"ImageAccountId": image_account_id} if image_account_id else {}))
    document = set_managed_spot(load_definition(text), request.use_spot)
    defaults = dict(request.parameter_defaults)
    for parameter in document.get("Parameters", []):
        if parameter["Name"] in defaults:
            spec = BY_NAME[parameter["Name"]]
            value = spec.coerce(defaults[parameter["Name"]])
            parameter["DefaultValue"] = value
    problems = check_definition(document)
    if problems:
        raise DefinitionError(f"the pipeline definition is inconsistent: {'; '.join(problems)}")
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _tags(request: DeployRequest, definition_sha: str, code_s3_uri: str) -> list[dict[str, str]]:
    tags = [
        {"Key": "yolopipe:definition-sha256", "Value": definition_sha},
        {"Key": "yolopipe:code", "Value": code_s3_uri.rsplit("/", 1)[-1]},
        {"Key": "yolopipe:managed-by", "Value": "yolopipe-deploy"},
    ]
    if request.environment_name:
        tags.append({"Key": "yolopipe:environment", "Value": request.environment_name})
    return tags


#: DescribePipeline's error codes for a pipeline that is not there (moto answers ValidationException;
#: an invalid name is refused again, with its own message, by Create/Update).
_NOT_FOUND_CODES = {"ResourceNotFound", "ValidationException"}


def pipeline_exists(sagemaker: Any, name: str) -> bool:
    """Does the pipeline exist (DescribePipeline)?"""
    try:
        sagemaker.describe_pipeline(PipelineName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES:
            return False
        raise DeployError(f"cannot look up pipeline {name}: {exc}") from exc
    return True


def upsert_pipeline(
    sagemaker: Any,
    s3: Any,
    request: DeployRequest,
    *,
    assets: Assets,
    client_request_token: str | None = None,
) -> DeployResult:
    """Upload the code, substitute, create or update the pipeline, tag it."""
    account = image_account(assets.definition_template, request, assets.image_accounts)
    code_s3_uri, code_uploaded = upload_code(s3, request.bucket, request.code_prefix, assets.code_tarball)
    definition = prepare_definition(assets.definition_template, request, code_s3_uri, account)
    definition_sha = _sha256(definition.encode())
    source: dict[str, Any]
    if len(definition.encode()) >= INLINE_DEFINITION_LIMIT:
        key = f"{DEFINITIONS_PREFIX}{request.pipeline_name}/definition-{definition_sha[:16]}.json"
        try:
            s3.put_object(Bucket=request.bucket, Key=key, Body=definition.encode(), ContentType="application/json")
        except ClientError as exc:
            raise DeployError(f"cannot upload the definition to s3://{request.bucket}/{key}: {exc}") from exc
        source = {"PipelineDefinitionS3Location": {"Bucket": request.bucket, "ObjectKey": key}}
    else:
        source = {"PipelineDefinition": definition}
    description = "yolopipe: dataset -> Train -> Evaluate -> CheckQuality -> Register"
    tags = _tags(request, definition_sha, code_s3_uri)
    created = not pipeline_exists(sagemaker, request.pipeline_name)
    try:
        if created:
            extra = {"ClientRequestToken": client_request_token[:128]} if client_request_token else {}
            response = sagemaker.create_pipeline(
                PipelineName=request.pipeline_name,
                PipelineDisplayName=request.pipeline_name,
                PipelineDescription=description,
                RoleArn=request.role_arn,
                Tags=tags,
                **source,
                **extra,
            )
        else:
            response = sagemaker.update_pipeline(
                PipelineName=request.pipeline_name,
                PipelineDisplayName=request.pipeline_name,
                PipelineDescription=description,
                RoleArn=request.role_arn,
                **source,
            )
            sagemaker.add_tags(ResourceArn=response["PipelineArn"], Tags=tags)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        verb = "create" if created else "update"
        raise DeployError(
            f"SageMaker refused to {verb} pipeline {request.pipeline_name}: "
            f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
        ) from exc
    return DeployResult(
        pipeline_arn=response["PipelineArn"],
        pipeline_name=request.pipeline_name,
        code_s3_uri=code_s3_uri,
        definition_sha256=definition_sha,
        created=created,
        code_uploaded=code_uploaded,
        image_account=account,
    )


def delete_pipeline(sagemaker: Any, name: str, *, keep: bool = False) -> bool:
    """Delete the pipeline unless `keep`; a pipeline that is not there is already deleted. Deleted?"""
    if keep or not name or not pipeline_exists(sagemaker, name):
        return False
    try:
        sagemaker.delete_pipeline(PipelineName=name, ClientRequestToken=uuid.uuid4().hex)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeployError(f"cannot delete pipeline {name}: {error.get('Code')}: {error.get('Message')}") from exc
    return True


def load_assets(assets_dir: Path = ASSETS_DIR) -> Assets:
    """The build-time definition template, code tarball and image-account table shipped with the function."""
    try:
        template = (assets_dir / DEFINITION_FILE).read_text(encoding="utf-8")
        tarball = (assets_dir / CODE_FILE).read_bytes()
        accounts = (assets_dir / IMAGE_ACCOUNTS_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise DeployError(
            f"build artifact missing ({Path(str(exc.filename)).name}): build the function with `sam build` "
            "(BuildMethod: makefile, target build-DeployFunction)"
        ) from exc
    return Assets(definition_template=template, code_tarball=tarball, image_accounts=ImageAccounts.from_json(accounts))


def handle_request(
    event: Mapping[str, Any], *, sagemaker: Any, s3: Any, region: str, assets_dir: Path = ASSETS_DIR
) -> tuple[str, dict[str, str]]:
    """Do what CloudFormation asks: (physical resource id, data). Raises YolopipeError on refusal."""
    request_type = event.get("RequestType")
    properties = event.get("ResourceProperties") or {}
    if request_type == "Delete":
        return delete_resource(event, sagemaker), {}
    if request_type not in ("Create", "Update"):
        raise DeployError(f"RequestType must be Create, Update or Delete, got {request_type!r}")
    request = DeployRequest.from_properties(properties, default_region=region)
    result = upsert_pipeline(
        sagemaker, s3, request, assets=load_assets(assets_dir), client_request_token=event.get("RequestId")
    )
    logger.info("upserted", extra={"pipeline": result.pipeline_name, "pipeline_created": result.created,
                                   "code": result.code_s3_uri, "code_uploaded": result.code_uploaded,
                                   "image_account": result.image_account})
    return result.pipeline_name, result.as_data()


def delete_resource(event: Mapping[str, Any], sagemaker: Any) -> str:
    """Delete what the physical id names; a failed Create's id names nothing, so no AWS call is made
    (the function may not even be allowed one: its policy names only the stack's pipeline)."""
    properties = event.get("ResourceProperties") or {}
    name = str(event.get("PhysicalResourceId") or properties.get("PipelineName") or "")
    if not name or is_not_created(name):
        logger.info("nothing to delete", extra={"physical_resource_id": name})
        return name
    keep = _flag(properties, "KeepOnDelete", default=False)
    deleted = delete_pipeline(sagemaker, name, keep=keep)
    logger.info("deleted" if deleted else "not deleted", extra={"pipeline": name, "kept": keep})
    return name
