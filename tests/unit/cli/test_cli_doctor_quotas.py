"""`yolopipe doctor` and the SageMaker quotas the pipeline needs: the Train step's training quota
(spot or on-demand, as the pipeline trains) and the Evaluate step's processing quota.

moto implements Service Quotas for VPC only (no ListServiceQuotas, no SageMaker). These tests
answer the Service Quotas calls of every client made during the test with a botocore `before-call`
handler (what botocore's Stubber does), from quotas listed the way AWS lists them; each answer is
checked against the operation's output shape in botocore's model, each request against its input
shape. Everything else (stack, bucket, pipeline, role) is moto.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.handlers
import fake_pipeline
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters

ACCOUNT = "123456789012"
REGION = "us-east-1"


def quota(name: str, value: float) -> dict[str, Any]:
    """A SageMaker quota as ListServiceQuotas returns it. The code is made up (AWS assigns them);
    the shape is the service model's."""
    code = "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
    return {"ServiceCode": "sagemaker", "ServiceName": "Amazon SageMaker",
            "QuotaArn": f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:sagemaker/{code}", "QuotaCode": code,
            "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
            "QuotaAppliedAtLevel": "ACCOUNT"}


def code_of(name: str) -> str:
    return str(quota(name, 0)["QuotaCode"])


#: Quotas every listing carries besides the ones a test is about (so a lookup has to page and pick).
OTHER_QUOTAS = [quota("ml.m5.large for training job usage", 20), quota("ml.m5.large for processing job usage", 20),
                quota("Number of instances across all training jobs", 4),
                quota("ml.p4d.24xlarge for training job usage", 0)]


@dataclass
class ServiceQuotas:
    """The account's SageMaker quotas as Service Quotas serves them: `applied` (ListServiceQuotas
    lists only quotas with an applied value) and AWS's `defaults` (ListAWSDefaultServiceQuotas)."""

    applied: list[dict[str, Any]] = field(default_factory=lambda: list(OTHER_QUOTAS))
    defaults: list[dict[str, Any]] = field(default_factory=lambda: list(OTHER_QUOTAS))
    denied: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2

    def answer(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = json.loads(params.get("body") or b"{}")  # what went over the wire
        if model.name in self.denied:
            return AWSResponse(None, 400, {}, None), {"Error": {
                "Code": "AccessDeniedException",
                "Message": f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: "
                           f"servicequotas:{model.name}"}}
        if model.name in ("ListServiceQuotas", "ListAWSDefaultServiceQuotas"):
            assert request["ServiceCode"] == "sagemaker"
            listed = self.applied if model.name == "ListServiceQuotas" else self.defaults
            start = int(request.get("NextToken") or 0)
            end = start + min(int(request.get("MaxResults") or self.page_size), self.page_size)
            response: dict[str, Any] = {"Quotas": listed[start:end]}
            if end < len(listed):
                response["NextToken"] = str(end)
        elif model.name == "RequestServiceQuotaIncrease":
            self.requests.append(request)
            [known] = [q for q in self.applied + self.defaults if q["QuotaCode"] == request["QuotaCode"]][:1]
            response = {"RequestedQuota": {
                "Id": "c2f2b3a0d7e64f6e8a1a6f1e2d3c4b5a", "ServiceCode": "sagemaker", "QuotaCode": known["QuotaCode"],
                "QuotaName": known["QuotaName"], "DesiredValue": request["DesiredValue"], "Status": "PENDING"}}
        else:
            raise AssertionError(f"doctor called {model.name}, which this account does not answer")
        validate_parameters(response, model.output_shape)  # AWS's shape, or the test is wrong
        return AWSResponse(None, 200, {}, None), response


@pytest.fixture
def service_quotas(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceQuotas]:
    """Service Quotas for every botocore session made during the test (the CLI makes its own)."""
    account = ServiceQuotas()
    entry = ("before-call.service-quotas", account.answer)
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, entry])
    yield account


def run_aws_cli_line(line: str) -> dict[str, Any]:
    """Send an `aws <service> <operation> --member value ...` line as the AWS CLI would: the names
    mapped through botocore's model (which refuses an unknown operation or member), values typed
    by their shapes."""
    aws, service, operation, *options = shlex.split(line)
    assert aws == "aws"
    session = boto3.session.Session(region_name=REGION)
    client = session.client(service)
    model = client.meta.service_model
    [name] = [op for op in model.operation_names if xform_name(op, "-") == operation]
    members = model.operation_model(name).input_shape.members
    by_option = {"--" + xform_name(member, "-"): member for member in members}
    params: dict[str, Any] = {}
    region = REGION
    for option, value in zip(options[::2], options[1::2], strict=True):
        if option == "--region":
            region = value
            continue
        member = by_option[option]
        kind = members[member].type_name
        params[member] = float(value) if kind == "double" else int(value) if kind == "integer" else value
    assert region == REGION
    return dict(getattr(client, xform_name(name))(**params))


def statuses(result: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result.json()["checks"]}


# --------------------------------------------------------------------------------------------------

def test_zero_gpu_quotas_fail_with_the_request_to_make(cli: Any, aws: dict[str, Any],
                                                       service_quotas: ServiceQuotas) -> None:
    # GIVEN a new account: on-demand training quota for the pipeline's ml.g4dn.xlarge but 0 for spot
    # (the pipeline trains on spot), and the processing quota at AWS's default of 0 (never applied,
    # so only ListAWSDefaultServiceQuotas lists it)
    spot = "ml.g4dn.xlarge for spot training job usage"
    processing = "ml.g4dn.xlarge for processing job usage"
    service_quotas.applied += [quota("ml.g4dn.xlarge for training job usage", 2), quota(spot, 0)]
    service_quotas.defaults += [quota(processing, 0)]
    # WHEN the user runs doctor
    result = cli("doctor")
    # THEN it exits 1; each quota check fails naming the quota, its service code and quota code,
    # with a command line that asks for one instance
    assert result.code == 1, result.out
    assert "[FAIL] training quota" in result.out and "[FAIL] processing quota" in result.out
    for name in (spot, processing):
        command = (f"aws service-quotas request-service-quota-increase --service-code sagemaker "
                   f"--quota-code {code_of(name)} --desired-value 1 --region {REGION}")
        assert f"run: {command}" in result.out
        assert name in result.out
    assert "service code sagemaker" in result.out
    assert "not ready" in result.out
    # AND --json carries each quota's code and the command
    checks = statuses(cli("doctor", "--json"))
    assert checks["training quota"]["status"] == "fail"
    assert checks["training quota"]["quota_code"] == code_of(spot)
    assert checks["processing quota"]["quota_code"] == code_of(processing)
    # AND the command, sent as the AWS CLI sends it, asks Service Quotas for exactly that
    run_aws_cli_line(checks["processing quota"]["request_command"])
    [request] = service_quotas.requests
    assert request == {"ServiceCode": "sagemaker", "QuotaCode": code_of(processing), "DesiredValue": 1.0}


def test_quotas_that_allow_a_run_pass(cli: Any, aws: dict[str, Any], service_quotas: ServiceQuotas) -> None:
    # GIVEN quotas raised for the pipeline's instance type
    service_quotas.applied += [quota("ml.g4dn.xlarge for spot training job usage", 1),
                               quota("ml.g4dn.xlarge for processing job usage", 1)]
    # WHEN the user runs doctor
    result = cli("doctor")
    # THEN every check passes, no request is suggested
    assert result.code == 0, result.out
    assert "ready to train" in result.out and "request-service-quota-increase" not in result.out
    checks = statuses(cli("doctor", "--json"))
    assert {checks[name]["status"] for name in ("training quota", "processing quota")} == {"ok"}


def test_quotas_the_caller_cannot_read_are_a_warning(cli: Any, aws: dict[str, Any],
                                                     service_quotas: ServiceQuotas) -> None:
    # GIVEN credentials without servicequotas:ListServiceQuotas
    service_quotas.denied = {"ListServiceQuotas", "ListAWSDefaultServiceQuotas"}
    # WHEN the user runs doctor
    result = cli("doctor")
    # THEN both quota checks warn (nothing is known to be wrong) and doctor still passes
    assert result.code == 0, result.out
    checks = statuses(cli("doctor", "--json"))
    for name in ("training quota", "processing quota"):
        assert checks[name]["status"] == "warn"
        assert "access denied for ListServiceQuotas" in checks[name]["detail"]
    assert "ready to train" in result.out


def test_instance_types_come_from_the_deployed_pipeline(cli: Any, aws: dict[str, Any],
                                                        service_quotas: ServiceQuotas) -> None:
    # GIVEN a deployed pipeline whose Evaluate step runs on ml.g5.2xlarge and whose Train step trains
    # on the TrainingInstanceType parameter, deployed with the default ml.g6.xlarge, on spot
    [pipeline] = [p["PipelineName"] for p in aws["sagemaker"].list_pipelines()["PipelineSummaries"]]
    [bucket] = [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]]
    definition = copy.deepcopy(fake_pipeline.definition(bucket, aws["role"], TrainingInstanceType="ml.g6.xlarge"))
    train, evaluate = definition["Steps"][0], definition["Steps"][1]
    train["Arguments"]["ResourceConfig"]["InstanceType"] = {"Get": "Parameters.TrainingInstanceType"}
    train["Arguments"]["EnableManagedSpotTraining"] = True
    train["Arguments"]["StoppingCondition"]["MaxWaitTimeInSeconds"] = 1200
    evaluate["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.g5.2xlarge"
    aws["sagemaker"].update_pipeline(PipelineName=pipeline, PipelineDefinition=json.dumps(definition),
                                     RoleArn=aws["role"])
    # AND quotas for those types: spot training on g6 granted, processing on g5.2xlarge none; the
    # code's defaults (g4dn.xlarge) would pass
    service_quotas.applied += [quota("ml.g6.xlarge for spot training job usage", 1),
                               quota("ml.g5.2xlarge for processing job usage", 0),
                               quota("ml.g4dn.xlarge for spot training job usage", 1),
                               quota("ml.g4dn.xlarge for processing job usage", 1)]
    # WHEN the user runs doctor
    result = cli("doctor")
    # THEN the deployed types are the ones checked: training passes, processing fails for ml.g5.2xlarge
    assert result.code == 1, result.out
    checks = statuses(cli("doctor", "--json"))
    assert checks["training quota"]["status"] == "ok" and "ml.g6.xlarge" in checks["training quota"]["detail"]
    assert checks["processing quota"]["status"] == "fail"
    assert "ml.g5.2xlarge" in checks["processing quota"]["detail"]
    assert checks["processing quota"]["quota_code"] == code_of("ml.g5.2xlarge for processing job usage")
    assert "deployed pipeline" in checks["processing quota"]["detail"]
