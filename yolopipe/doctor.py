"""`yolopipe doctor`: is this machine and account ready to train? Each check says how to fix it.

Checks, in order (a failed prerequisite skips what depends on it): credentials, region, dataset
bucket, pipeline, the pipeline's execution role, then the SageMaker quotas its jobs need: the
training quota for the Train step's instance type (spot or on-demand, as the pipeline trains) and
the processing quota for the Evaluate step's. Instance types, counts and spot are read from the
deployed definition (DescribePipeline), else the code's defaults.

A quota of 0 (new accounts have 0 for most GPU types) fails with the quota's name and code and a
ready `aws service-quotas request-service-quota-increase` command line; a quota the caller may not
read is a warning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from yolopipe_shared import parameters
from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.layout import STEP_EVALUATE, STEP_TRAIN

from .aws import AccessDenied, Aws, aws_errors

Status = Literal["ok", "warn", "fail", "skip"]

#: Service Quotas' service code for SageMaker.
SERVICE_CODE = "sagemaker"
QUOTA_CHECKS = ("training quota", "processing quota")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    #: For a quota check: the Service Quotas code of the quota that matters ('' otherwise).
    quota_code: str = ""
    #: For a quota too low to run: the command line that asks for the increase.
    request_command: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Quota:
    """One SageMaker quota as Service Quotas lists it."""

    name: str
    code: str
    value: float


@dataclass(frozen=True)
class JobNeeds:
    """What the pipeline's jobs run on: instance type and count per job, and whether training uses spot."""

    training_instance_type: str
    training_instance_count: int
    spot: bool
    processing_instance_type: str
    processing_instance_count: int
    #: Where these come from: "the deployed pipeline" or "the code's defaults".
    source: str

    @property
    def training_quota_names(self) -> dict[str, str]:
        """Quota name -> "spot" / "on-demand"; the first is the one the pipeline needs."""
        spot = f"{self.training_instance_type} for spot training job usage"
        on_demand = f"{self.training_instance_type} for training job usage"
        return {spot: "spot", on_demand: "on-demand"} if self.spot else {on_demand: "on-demand", spot: "spot"}

    @property
    def processing_quota_name(self) -> str:
        return f"{self.processing_instance_type} for processing job usage"


def request_command(quota: Quota, desired: int, region: str | None) -> str:
    """The AWS CLI line that asks for `desired` of `quota` (RequestServiceQuotaIncrease)."""
    command = (f"aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} "
               f"--quota-code {quota.code} --desired-value {desired}")
    return command + (f" --region {region}" if region else "")


def run_checks(aws: Aws, *, instance_type: str | None = None) -> list[Check]:
    """Every check, in order; never raises for an expected failure (it becomes a failed check).

    `instance_type`: the training instance type to check instead of the pipeline's own.
    """
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
        for name in ("credentials", "bucket", "pipeline", "execution role", *QUOTA_CHECKS):
            skip(name, "needs a region")
        return checks

    def credentials() -> Check:
        with aws_errors():
            identity = aws.client("sts").get_caller_identity()
        return Check("credentials", "ok", f"account {identity.get('Account')} as {identity.get('Arn')}")

    if attempt("credentials", credentials, "run `aws configure` or `aws sso login`, or set AWS_PROFILE").status != "ok":
        for name in ("bucket", "pipeline", "execution role", *QUOTA_CHECKS):
            skip(name, "needs credentials")
        return checks

    def bucket() -> Check:
        name = aws.bucket()
        with aws_errors(what=f"bucket {name!r}"):
            aws.client("s3").head_bucket(Bucket=name)
        return Check("bucket", "ok", f"s3://{name}/datasets/ is reachable")

    attempt("bucket", bucket, f"deploy the stack (`sam deploy --guided`) or pass --bucket / --stack "
                              f"(looked in stack {aws.settings.stack!r})")

    described: dict[str, Any] = {}

    def pipeline() -> Check:
        name = aws.pipeline_name()
        with aws_errors(what=f"pipeline {name!r}"):
            described.update(aws.client("sagemaker").describe_pipeline(PipelineName=name))
        return Check("pipeline", "ok", f"{name} ({described.get('PipelineStatus', 'Active')})")

    pipeline_ok = attempt("pipeline", pipeline, "deploy the stack (`sam deploy`), or pass --pipeline NAME "
                                                "(see `yolopipe pipelines list`)").status == "ok"
    if aws.settings.local:  # the local executor runs jobs as this user: no role, no quota
        skip("execution role", "not used by the local mode")
        for name in QUOTA_CHECKS:
            skip(name, "not used by the local mode")
        return checks
    role_arn = str(described.get("RoleArn") or "")
    if not pipeline_ok:
        skip("execution role", "needs the pipeline")
    elif not role_arn:
        checks.append(Check("execution role", "warn", "the pipeline names no role"))
    else:
        attempt("execution role", lambda: _role_check(aws, role_arn),
                "redeploy the stack: it creates the role SageMaker assumes")

    needs = job_needs(described.get("PipelineDefinition"), training_instance_type=instance_type)
    checks.extend(quota_checks(aws, needs))
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


# --- what the pipeline's jobs run on -------------------------------------------------------------

def job_needs(definition_text: Any, *, training_instance_type: str | None = None) -> JobNeeds:
    """Instance types and counts of the Train and Evaluate jobs, from a deployed definition (its
    JSON text), else the code's defaults; `training_instance_type` overrides the Train step's."""
    from pipeline.definition import PipelineConfig

    defaults = JobNeeds(
        training_instance_type=str(parameters.BY_NAME["TrainingInstanceType"].default),
        training_instance_count=_count(parameters.BY_NAME["TrainingInstanceCount"].default),
        spot=True,  # the stack's default (template parameter UseSpotInstances=true)
        processing_instance_type=PipelineConfig.evaluation_instance_type,
        processing_instance_count=1,
        source="the code's defaults",
    )
    definition = _parse(definition_text)
    steps = list(_steps(definition.get("Steps") or []))
    train = _step(steps, "Training", STEP_TRAIN)
    evaluate = _step(steps, "Processing", STEP_EVALUATE)
    if train is None and evaluate is None:
        needs = defaults
    else:
        defaults_by_name = {str(p.get("Name")): p.get("DefaultValue") for p in definition.get("Parameters") or []
                            if isinstance(p, dict)}

        def value(step: dict[str, Any] | None, *path: str) -> Any:
            found: Any = (step or {}).get("Arguments") or {}
            for key in path:
                found = found.get(key) if isinstance(found, dict) else None
            if isinstance(found, dict) and str(found.get("Get", "")).startswith("Parameters."):
                return defaults_by_name.get(str(found["Get"]).split(".", 1)[1])  # the execution's default
            return None if isinstance(found, dict | list) else found

        needs = JobNeeds(
            training_instance_type=str(value(train, "ResourceConfig", "InstanceType")
                                       or defaults.training_instance_type),
            training_instance_count=_count(value(train, "ResourceConfig", "InstanceCount"),
                                           defaults.training_instance_count),
            spot=bool(value(train, "EnableManagedSpotTraining")) if train is not None else defaults.spot,
            processing_instance_type=str(value(evaluate, "ProcessingResources", "ClusterConfig", "InstanceType")
                                         or defaults.processing_instance_type),
            processing_instance_count=_count(value(evaluate, "ProcessingResources", "ClusterConfig", "InstanceCount")),
            source="the deployed pipeline",
        )
    if training_instance_type:
        needs = replace(needs, training_instance_type=training_instance_type)
    return needs


def _parse(definition_text: Any) -> dict[str, Any]:
    if isinstance(definition_text, dict):
        return definition_text
    try:
        parsed = json.loads(definition_text) if definition_text else {}
    except (TypeError, ValueError):  # not JSON (e.g. an emulator's repr): use the defaults
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _steps(steps: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every step, condition branches included."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        yield step
        arguments = step.get("Arguments") or {}
        if step.get("Type") == "Condition" and isinstance(arguments, dict):
            yield from _steps([*(arguments.get("IfSteps") or []), *(arguments.get("ElseSteps") or [])])


def _step(steps: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    """The step of that type with that name, else the first of that type."""
    of_kind = [s for s in steps if s.get("Type") == kind]
    return next((s for s in of_kind if s.get("Name") == name), of_kind[0] if of_kind else None)


def _count(value: Any, default: int = 1) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


# --- the quotas ------------------------------------------------------------------------------------

def read_quotas(client: Any, names: Iterable[str]) -> dict[str, Quota]:
    """The SageMaker quotas of those names: the account's applied values (ListServiceQuotas), and
    AWS's defaults for any it does not list (it lists only quotas with an applied value)."""
    wanted = set(names)
    found: dict[str, Quota] = {}
    for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
        if not wanted - found.keys():
            break
        for page in client.get_paginator(operation).paginate(ServiceCode=SERVICE_CODE):
            for quota in page.get("Quotas") or []:
                name = str(quota.get("QuotaName", ""))
                if name in wanted and name not in found:
                    found[name] = Quota(name, str(quota.get("QuotaCode", "")), float(quota.get("Value", 0)))
    return found


def quota_checks(aws: Aws, needs: JobNeeds) -> list[Check]:
    """The training and processing quota checks for what the pipeline's jobs run on."""
    from botocore.exceptions import ClientError

    names = [*needs.training_quota_names, needs.processing_quota_name]
    try:
        with aws_errors():
            quotas = read_quotas(aws.client("service-quotas"), names)
    except (ClientError, YolopipeError, NotImplementedError) as error:
        if isinstance(error, ClientError):
            why = f"could not read SageMaker quotas ({error.response.get('Error', {}).get('Code')})"
        elif isinstance(error, NotImplementedError):  # an emulator without Service Quotas (moto)
            why = "this endpoint has no Service Quotas API: not checked"
        else:
            why = f"could not read SageMaker quotas: {error}"
        fix = ("allow servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas, "
               "or look the quotas up in the Service Quotas console (AWS services > Amazon SageMaker)")
        return [Check(name, "warn", why, fix) for name in QUOTA_CHECKS]
    return [_training_check(aws, needs, quotas), _processing_check(aws, needs, quotas)]


def _training_check(aws: Aws, needs: JobNeeds, quotas: dict[str, Quota]) -> Check:
    kinds = needs.training_quota_names
    needed_name = next(iter(kinds))
    where = f"{needs.training_instance_type} ({'spot' if needs.spot else 'on-demand'}, from {needs.source})"
    if needed_name not in quotas:
        return Check("training quota", "warn", f"{where}: no quota named {needed_name!r}: "
                     "is it a SageMaker training instance type in this region?")
    text = ", ".join(f"{kinds[name]} {quotas[name].value:g}" for name in kinds if name in quotas)
    flag = parameters.BY_NAME["TrainingInstanceType"].flag
    alternative = (f"or train on a type you have quota for (`yolopipe run --dataset NAME {flag} TYPE`, "
                   "or the stack's DefaultTrainingInstanceType)")
    return _verdict("training quota", f"{where}: {text}", quotas[needed_name], needs.training_instance_count,
                    aws.region, alternative)


def _processing_check(aws: Aws, needs: JobNeeds, quotas: dict[str, Quota]) -> Check:
    name = needs.processing_quota_name
    where = f"{needs.processing_instance_type} (the Evaluate step, from {needs.source})"
    if name not in quotas:
        return Check("processing quota", "warn", f"{where}: no quota named {name!r}: "
                     "is it a SageMaker processing instance type in this region?")
    return _verdict("processing quota", f"{where}: {quotas[name].value:g}", quotas[name],
                    needs.processing_instance_count, aws.region, "")


def _verdict(check: str, detail: str, quota: Quota, needed: int, region: str | None, alternative: str) -> Check:
    if quota.value >= needed:
        return Check(check, "ok", detail, quota_code=quota.code)
    fix = (f"request at least {needed} for the quota {quota.name!r} (service code {SERVICE_CODE}, "
           f"quota code {quota.code}) in the Service Quotas console or with the command below"
           + (f"; {alternative}" if alternative else ""))
    return Check(check, "fail", f"{detail} (needs {needed})", fix, quota_code=quota.code,
                 request_command=request_command(quota, needed, region))


def summary(checks: list[Check]) -> dict[str, Any]:
    return {"ok": not any(c.status == "fail" for c in checks), "checks": [c.to_dict() for c in checks]}
