"""`yolopipe doctor`: is this machine and account ready to train? Each check says how to fix it.

Checks, in order (a failed prerequisite skips what depends on it): credentials, region, dataset
bucket, pipeline, the pipeline's execution role, the SageMaker quota for the training instance
type (on-demand and spot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from yolopipe_shared import parameters
from yolopipe_shared.errors import YolopipeError

from .aws import AccessDenied, Aws, aws_errors

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def run_checks(aws: Aws, *, instance_type: str | None = None) -> list[Check]:
    """Every check, in order; never raises for an expected failure (it becomes a failed check)."""
    instance_type = instance_type or str(parameters.BY_NAME["TrainingInstanceType"].default)
    checks: list[Check] = []

    def attempt(name: str, fn: Callable[[], Check], fix: str) -> Check:
        try:
            check = fn()
        except YolopipeError as error:
            check = Check(name, "fail", str(error), fix)
        checks.append(check)
        return check

    def skip(name: str, why: str) -> None:
        checks.append(Check(name, "skip", why))

    region = aws.region
    if region:
        checks.append(Check("region", "ok", region + (f" via {aws.settings.endpoint_url}"
                                                       if aws.settings.endpoint_url else "")))
    else:
        checks.append(Check("region", "fail", "no AWS region configured",
                            "pass --region us-east-1, set AWS_REGION, or run `aws configure`"))
        for name in ("credentials", "bucket", "pipeline", "execution role", "training quota"):
            skip(name, "needs a region")
        return checks

    def credentials() -> Check:
        with aws_errors():
            identity = aws.client("sts").get_caller_identity()
        return Check("credentials", "ok", f"account {identity.get('Account')} as {identity.get('Arn')}")

    if attempt("credentials", credentials, "run `aws configure` or `aws sso login`, or set AWS_PROFILE").status != "ok":
        for name in ("bucket", "pipeline", "execution role", "training quota"):
            skip(name, "needs credentials")
        return checks

    def bucket() -> Check:
        name = aws.bucket()
        with aws_errors(what=f"bucket {name!r}"):
            aws.client("s3").head_bucket(Bucket=name)
        return Check("bucket", "ok", f"s3://{name}/datasets/ is reachable")

    attempt("bucket", bucket, f"deploy the stack (`sam deploy --guided`) or pass --bucket / --stack "
                              f"(looked in stack {aws.settings.stack!r})")

    role_arn: list[str] = []

    def pipeline() -> Check:
        name = aws.pipeline_name()
        with aws_errors(what=f"pipeline {name!r}"):
            described = aws.client("sagemaker").describe_pipeline(PipelineName=name)
        if described.get("RoleArn"):
            role_arn.append(str(described["RoleArn"]))
        return Check("pipeline", "ok", f"{name} ({described.get('PipelineStatus', 'Active')})")

    pipeline_ok = attempt("pipeline", pipeline, "deploy the stack (`sam deploy`), or pass --pipeline NAME "
                                                "(see `yolopipe pipelines list`)").status == "ok"
    if aws.settings.local:  # the local executor runs jobs as this user: no role, no quota
        skip("execution role", "not used by the local mode")
        skip("training quota", "not used by the local mode")
        return checks
    if not pipeline_ok:
        skip("execution role", "needs the pipeline")
    elif not role_arn:
        checks.append(Check("execution role", "warn", "the pipeline names no role"))
    else:
        attempt("execution role", lambda: _role_check(aws, role_arn[0]),
                "redeploy the stack: it creates the role SageMaker assumes")

    attempt("training quota", lambda: _quota_check(aws, instance_type),
            f"request a quota increase for {instance_type} in the Service Quotas console (SageMaker)")
    return checks


def _role_check(aws: Aws, role_arn: str) -> Check:
    name = role_arn.rsplit("/", 1)[-1]
    try:
        with aws_errors(what=f"role {name!r}"):
            role = aws.client("iam").get_role(RoleName=name)["Role"]
    except AccessDenied as error:  # reading IAM is optional for someone who only runs the pipeline
        return Check("execution role", "warn", f"{role_arn} (cannot read it: {error})")
    policy = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(policy, str):
        import json
        from urllib.parse import unquote

        policy = json.loads(unquote(policy))
    principals: list[str] = []
    for statement in policy.get("Statement") or []:
        service = (statement.get("Principal") or {}).get("Service") or []
        principals.extend([service] if isinstance(service, str) else service)
    if "sagemaker.amazonaws.com" not in principals:
        return Check("execution role", "fail", f"{role_arn} cannot be assumed by SageMaker",
                     "its trust policy must allow sagemaker.amazonaws.com: redeploy the stack")
    return Check("execution role", "ok", f"{role_arn} (trusted by sagemaker.amazonaws.com)")


def _quota_check(aws: Aws, instance_type: str) -> Check:
    from botocore.exceptions import ClientError

    wanted = {f"{instance_type} for training job usage": "on-demand",
              f"{instance_type} for spot training job usage": "spot"}
    found: dict[str, float] = {}
    client = aws.client("service-quotas")
    try:
        with aws_errors():
            for page in client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
                for quota in page.get("Quotas") or []:
                    kind = wanted.get(str(quota.get("QuotaName", "")))
                    if kind:
                        found[kind] = float(quota.get("Value", 0))
    except ClientError as error:
        return Check("training quota", "warn", f"could not read SageMaker quotas ({error.response['Error']['Code']})")
    except NotImplementedError:  # an emulator without Service Quotas (moto)
        return Check("training quota", "warn", "this endpoint has no Service Quotas API: not checked")
    except YolopipeError as error:
        return Check("training quota", "warn", f"could not read SageMaker quotas: {error}")
    if not found:
        return Check("training quota", "warn", f"no quota listed for {instance_type}: is it a training instance type?")
    text = ", ".join(f"{kind} {value:g}" for kind, value in found.items())
    needed = "spot"  # the stack's default (template parameter UseSpotInstances=true)
    if found.get(needed, found.get("on-demand", 0)) < 1:
        return Check("training quota", "fail", f"{instance_type}: {text}",
                     f"request at least 1 {instance_type} ({needed} training) in the Service Quotas console, "
                     "or run with --training-instance-type of a type you have")
    return Check("training quota", "ok", f"{instance_type}: {text}")


def summary(checks: list[Check]) -> dict[str, Any]:
    return {"ok": not any(c.status == "fail" for c in checks), "checks": [c.to_dict() for c in checks]}
