"""Deploy the pipeline: upload the training code once, fill the definition's placeholders, create or
update the SageMaker pipeline, tag it; or delete it. Plain functions taking boto3 clients.

The definition JSON and the code tarball were produced at build time (`make build-DeployFunction`)
and ship next to this file; nothing here needs the SageMaker SDK.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from yolopipe_shared.errors import DefinitionError, ParameterError, YolopipeError
from yolopipe_shared.parameters import BY_NAME
from yolopipe_shared.pipeline_template import check_definition, load_definition, set_managed_spot, substitute

ASSETS_DIR = Path(__file__).resolve().parent
DEFINITION_FILE = "pipeline_definition.json"
CODE_FILE = "training_code.tar.gz"
#: CreatePipeline takes at most 100 KB inline; larger definitions go through S3.
INLINE_DEFINITION_LIMIT = 100 * 1024
DEFINITIONS_PREFIX = "pipelines/"

#: Custom resource properties that set a pipeline parameter's default (property -> parameter).
DEFAULT_PROPERTIES = {
    "DefaultTrainingInstanceType": "TrainingInstanceType",
    "MinMap50_95": "MinMap50_95",
    "ModelPackageGroupName": "ModelPackageGroupName",
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

    def as_data(self) -> dict[str, str]:
        """What the custom resource returns (Fn::GetAtt-able, all strings)."""
        return {
            "PipelineArn": self.pipeline_arn,
            "PipelineName": self.pipeline_name,
            "CodeS3Uri": self.code_s3_uri,
            "DefinitionSha256": self.definition_sha256,
        }


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


def prepare_definition(template: str, request: DeployRequest, code_s3_uri: str) -> str:
    """Fill the placeholders, apply the stack's parameter defaults, check the references."""
    text = substitute(
        template,
        {"Bucket": request.bucket, "RoleArn": request.role_arn, "Region": request.region, "CodeS3Uri": code_s3_uri},
    )
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
    template: str,
    tarball: bytes,
    client_request_token: str | None = None,
) -> DeployResult:
    """Upload the code, substitute, create or update the pipeline, tag it."""
    code_s3_uri, code_uploaded = upload_code(s3, request.bucket, request.code_prefix, tarball)
    definition = prepare_definition(template, request, code_s3_uri)
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


def load_assets(assets_dir: Path = ASSETS_DIR) -> tuple[str, bytes]:
    """The build-time definition template and code tarball shipped with the function."""
    try:
        template = (assets_dir / DEFINITION_FILE).read_text(encoding="utf-8")
        tarball = (assets_dir / CODE_FILE).read_bytes()
    except OSError as exc:
        raise DeployError(
            f"build artifact missing ({exc.filename}): build the function with `sam build` "
            "(BuildMethod: makefile, target build-DeployFunction)"
        ) from exc
    return template, tarball
