"""The stack's resources, created in the emulator from template.yaml itself.

What the functions see locally comes from the same template as the deployed stack: each
function's code folder, handler and environment variables (Globals plus its own), the idempotency
table's key schema. Intrinsic functions are resolved against the emulator's resources; a value
the template computes in ways the emulator cannot follow (`!Sub` of the stack id, `!If`) is
taken from the resource the variable names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import yolopipe_shared.config as env_names

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref X` -> `{"Ref": "X"}`)."""


def _cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as a dict ({} when there is none: the contract's defaults apply)."""
    if not path.is_file():
        return {}
    document = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)
    return document if isinstance(document, dict) else {}


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function as the template declares it."""

    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any]
    timeout: int = 60

    @property
    def module_path(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def function_spec(template: dict[str, Any], logical_id: str, default_dir: str) -> FunctionSpec:
    resources = template.get("Resources") or {}
    properties = (resources.get(logical_id) or {}).get("Properties") or {}
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    environment = {
        **((globals_.get("Environment") or {}).get("Variables") or {}),
        **((properties.get("Environment") or {}).get("Variables") or {}),
    }
    code_dir = REPO_ROOT / str(properties.get("CodeUri") or default_dir)
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=code_dir,
        handler=str(properties.get("Handler") or "app.lambda_handler"),
        environment=environment,
        timeout=int(properties.get("Timeout") or globals_.get("Timeout") or 60),
    )


def table_key(template: dict[str, Any], logical_id: str = "IdempotencyTable") -> tuple[str, str | None]:
    """(partition key name, TTL attribute) of a table in the template; ("id", None) if absent."""
    properties = ((template.get("Resources") or {}).get(logical_id) or {}).get("Properties") or {}
    keys = [k["AttributeName"] for k in properties.get("KeySchema") or [] if k.get("KeyType") == "HASH"]
    ttl = (properties.get("TimeToLiveSpecification") or {}).get("AttributeName")
    return (keys[0] if keys else "id"), ttl


@dataclass
class LocalStack:
    """The emulated stack: names and ARNs of what was created, and each function's environment."""

    bucket: str
    pipeline_name: str
    table: str
    topic_arn: str
    secret_arn: str
    email_queue_url: str
    model_package_group: str
    region: str
    template: dict[str, Any] = field(default_factory=dict)

    def refs(self) -> dict[str, str]:
        """What the template's `!Ref`s to the stack's resources resolve to here."""
        return self._refs()

    def _refs(self) -> dict[str, str]:
        return {
            "DatasetsBucket": self.bucket,
            "IdempotencyTable": self.table,
            "NotificationTopic": self.topic_arn,
            "SlackWebhookSecret": self.secret_arn,
            "SlackWebhookSecretArn": self.secret_arn,
            "AWS::Region": self.region,
        }

    def _by_variable(self) -> dict[str, str]:
        return {
            env_names.PIPELINE_NAME: self.pipeline_name,
            env_names.IDEMPOTENCY_TABLE: self.table,
            env_names.NOTIFY_TOPIC_ARN: self.topic_arn,
            env_names.SLACK_SECRET_ARN: self.secret_arn,
        }

    def _resolve(self, name: str, value: Any) -> str | None:
        if isinstance(value, str | int | float | bool):
            return str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            ref = str(value["Ref"])
            if ref in self._refs():
                return self._refs()[ref]
            parameter = ((self.template.get("Parameters") or {}).get(ref) or {}).get("Default")
            if parameter is not None:
                return str(parameter)
        if isinstance(value, dict) and set(value) == {"Fn::Join"}:
            # `!Join [",", !Ref SomeList]`: a CommaDelimitedList's default is one comma-separated string.
            separator, items = value["Fn::Join"]
            if isinstance(items, list) and all(isinstance(item, str) for item in items):
                return str(separator).join(items)
            listed = self._resolve(name, items)
            return None if listed is None else str(separator).join(listed.split(","))
        return self._by_variable().get(name)

    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's variables as the deployed stack would set them, pointing at the emulator."""
        env: dict[str, str] = {}
        for name, value in spec.environment.items():
            resolved = self._resolve(name, value)
            if resolved is not None:
                env[name] = resolved
        return {
            **env,
            "AWS_LAMBDA_FUNCTION_NAME": f"yolopipe-local-{spec.logical_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
            "POWERTOOLS_METRICS_NAMESPACE": "yolopipe-local",
        }


def create_stack(clients: dict[str, Any], *, region: str, slack_webhook_url: str,
                 name: str = "local", min_map50_95: float | None = None) -> LocalStack:
    """Create the bucket, table, topic (with an email queue), secret and model package group."""
    template = load_template()
    bucket = f"yolopipe-{name}-123456789012"
    pipeline_name = f"yolopipe-{name}"
    s3, ddb, sns, sqs = clients["s3"], clients["dynamodb"], clients["sns"], clients["sqs"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key, ttl = table_key(template)
    table = f"yolopipe-{name}-idempotency"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    if ttl:
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True})
    topic_arn = sns.create_topic(Name=f"yolopipe-{name}-notifications")["TopicArn"]
    # The email subscription: a queue stands in for the inbox, each message printed as an email.
    queue_url = sqs.create_queue(QueueName=f"yolopipe-{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    secret_arn = clients["secretsmanager"].create_secret(
        Name=f"yolopipe-{name}/slack-webhook", SecretString=json.dumps({"webhook_url": slack_webhook_url})
    )["ARN"]
    group = f"yolopipe-{name}-models"
    clients["sagemaker"].create_model_package_group(ModelPackageGroupName=group,
                                                    ModelPackageGroupDescription="yolopipe local mode")
    return LocalStack(bucket=bucket, pipeline_name=pipeline_name, table=table, topic_arn=topic_arn,
                      secret_arn=secret_arn, email_queue_url=queue_url, model_package_group=group,
                      region=region, template=template)
