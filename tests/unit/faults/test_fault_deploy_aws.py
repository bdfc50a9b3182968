"""Promise: CloudFormation always gets exactly one answer, and a throttled deploy is not a broken stack.

Each test makes one AWS API the deploy function calls (S3 HeadObject / PutObject for the training
code, SageMaker DescribePipeline / CreatePipeline / UpdatePipeline / AddTags / DeletePipeline) answer
with throttling or a 5xx, on the wire (the fault suite's `aws_wire`: an HTTP answer in the service's
protocol, so botocore parses it and applies its own retries; standard mode retries throttling codes and
500/502/503/504 with backoff). AWS_MAX_ATTEMPTS=2 here (3 on Lambda): a fault on one attempt is
absorbed by botocore's retry and the stack deploys (SUCCESS); a fault on every attempt reaches our code,
and CloudFormation hears FAILED once, promptly, with a one-line reason naming the error, and the
physical id its rollback needs. Whatever happened, the deployed pipeline never runs code that is not
in S3: its definition is wholly the old one or wholly the new one, and the rollback (or a retried
delete) completes.

The function is the real build (its Makefile, as `sam build` runs it), loaded as Lambda loads it,
against moto; CloudFormation's pre-signed response URL is a real HTTP server on 127.0.0.1 (the deploy
tests' harness, tests/unit/functions/deploy/conftest.py).
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

_DEPLOY_TESTS = Path(__file__).resolve().parents[1] / "functions" / "deploy"
if str(_DEPLOY_TESTS) not in sys.path:
    sys.path.insert(0, str(_DEPLOY_TESTS))

from deploy_harness import BUCKET, PIPELINE, Context, load_function  # noqa: E402


def _deploy_fixtures() -> Any:
    """The deploy tests' conftest as a module of its own name (every test folder has a `conftest`)."""
    spec = importlib.util.spec_from_file_location("deploy_fixtures_for_faults", _DEPLOY_TESTS / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_fixtures = _deploy_fixtures()
# The deploy world (these shadow the notifier world's `aws` of tests/unit/faults/conftest.py here).
aws = _fixtures.aws
build_dir = _fixtures.build_dir
cloudformation = _fixtures.cloudformation
properties = _fixtures.properties
function = _fixtures.function
rebuild = _fixtures.rebuild

#: botocore's attempts per call in these tests (one retry, under a second of backoff).
ATTEMPTS = 2
THROTTLING = {"sagemaker": ("ThrottlingException", 400), "s3": ("SlowDown", 503)}
SERVER_ERROR = {"sagemaker": ("InternalFailure", 500), "s3": ("InternalError", 500)}
#: A FAILED answer must come long before CloudFormation's 600 s ServiceTimeout: seconds, here.
PROMPT_SECONDS = 10
CODE_URI = re.compile(rf"s3://{BUCKET}/code/training-[0-9a-f]{{16}}\.tar\.gz")


@pytest.fixture(autouse=True)
def _botocore_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients are built when the function is loaded: the setting must be there first."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", str(ATTEMPTS))


def faults(services: list[tuple[str, str]]) -> list[Any]:
    """Each (service, operation), throttled and answering 5xx."""
    return [pytest.param(service, operation, table[service], id=f"{operation}-{kind}")
            for service, operation in services
            for kind, table in (("throttled", THROTTLING), ("5xx", SERVER_ERROR))]


def invoke(module: Any, event: dict[str, Any]) -> float:
    """WHEN CloudFormation invokes the function; the seconds it took."""
    started = time.monotonic()
    module.lambda_handler(event, Context())
    return time.monotonic() - started


def the_one_answer(cloudformation: Any, before: int = 0) -> dict[str, Any]:
    """THEN exactly one answer reached CloudFormation (in one PUT) since `before` answers."""
    assert len(cloudformation.answers) == before + 1 and cloudformation.puts == before + 1
    return cloudformation.answers[-1]


def assert_failed_reason(answer: dict[str, Any], fault: tuple[str, int]) -> None:
    """FAILED with a one-line reason that names the error (HEAD answers carry only their status)."""
    assert answer["Status"] == "FAILED"
    reason = answer["Reason"]
    assert "\n" not in reason and len(reason) < 500, reason
    assert fault[0] in reason or f"({fault[1]})" in reason, reason


def deployed(aws: Any) -> dict[str, Any] | None:
    """The pipeline as SageMaker runs it: its code URI, whether that object exists, and the training
    step's MaxRuntimeInSeconds (the definition's version); None when there is no pipeline."""
    if PIPELINE not in [p["PipelineName"] for p in aws.sagemaker.list_pipelines()["PipelineSummaries"]]:
        return None
    definition = json.loads(aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"])
    train = definition["Steps"][0]["Arguments"]
    code = train["HyperParameters"]["sagemaker_submit_directory"]
    assert CODE_URI.fullmatch(code), code
    objects = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=code.removeprefix(f"s3://{BUCKET}/")).get("KeyCount", 0)
    return {"code": code, "code_in_s3": objects == 1, "max_runtime": train["StoppingCondition"]["MaxRuntimeInSeconds"]}


# --------------------------------------------------------------------------- Create
CREATE_CALLS = [("s3", "HeadObject"), ("s3", "PutObject"), ("sagemaker", "DescribePipeline"),
                ("sagemaker", "CreatePipeline")]


@pytest.mark.parametrize("service,operation,fault", faults(CREATE_CALLS))
def test_a_create_failing_past_retries_answers_failed_once_and_rolls_back(
        function, aws, cloudformation, properties, aws_wire, service, operation, fault) -> None:
    """GIVEN `operation` failing on every attempt WHEN CloudFormation creates the resource THEN it hears
    FAILED once, within seconds, naming the error, with a not-created physical id; no pipeline exists;
    and the rollback's Delete (AWS still failing) answers SUCCESS without touching AWS."""
    answered = aws_wire.fails(getattr(function, service), operation, *fault, times=99)

    elapsed = invoke(function, cloudformation.event("Create", properties))

    answer = the_one_answer(cloudformation)
    assert_failed_reason(answer, fault)
    assert answer["PhysicalResourceId"].startswith("Pipeline-not-created-")
    assert elapsed < PROMPT_SECONDS and len(answered) == ATTEMPTS
    assert deployed(aws) is None
    invoke(function, cloudformation.event("Delete", properties, PhysicalResourceId=answer["PhysicalResourceId"]))
    assert the_one_answer(cloudformation, before=1)["Status"] == "SUCCESS"
    assert len(answered) == ATTEMPTS


@pytest.mark.parametrize("service,operation", CREATE_CALLS)
def test_a_create_throttled_once_is_deployed(function, aws, cloudformation, properties, aws_wire,
                                             service, operation) -> None:
    """GIVEN `operation` throttled once, then healthy WHEN CloudFormation creates the resource THEN
    botocore's retry gets through: SUCCESS once, and the pipeline runs code that is in S3."""
    aws_wire.fails(getattr(function, service), operation, *THROTTLING[service], times=1)

    invoke(function, cloudformation.event("Create", properties))

    answer = the_one_answer(cloudformation)
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    pipeline = deployed(aws)
    assert pipeline is not None and pipeline["code_in_s3"] and pipeline["code"] == answer["Data"]["CodeS3Uri"]


# --------------------------------------------------------------------------- Update
UPDATE_CALLS = [("s3", "HeadObject"), ("s3", "PutObject"), ("sagemaker", "DescribePipeline"),
                ("sagemaker", "UpdatePipeline"), ("sagemaker", "AddTags")]
NEW_MAX_RUNTIME = 7200


def _tarball_with(build_dir: Path, name: str, text: str) -> bytes:
    """The build's training-code tarball with one more file (a changed training_code/)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO((build_dir / "training_code.tar.gz").read_bytes()), mode="r:gz") as old, \
            tarfile.open(fileobj=out, mode="w:gz") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(name)
        info.size = len(text.encode())
        new.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


@pytest.fixture
def redeploy(function, aws, cloudformation, properties, build_dir, rebuild) -> dict[str, Any]:
    """GIVEN a deployed stack (first build) and a new build whose definition and training code changed
    (SAM publishes a new function version, so CloudFormation sends an Update)."""
    invoke(function, cloudformation.event("Create", properties))
    assert cloudformation.answers[-1]["Status"] == "SUCCESS", cloudformation.answers[-1]["Reason"]
    document = json.loads((build_dir / "pipeline_definition.json").read_text())
    document["Steps"][0]["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] = NEW_MAX_RUNTIME
    new_build = load_function(rebuild({
        "pipeline_definition.json": json.dumps(document),
        "training_code.tar.gz": _tarball_with(build_dir, "training_code/NOTES.txt", "a changed build"),
    }))
    new_properties = properties | {"CodeVersion": properties["CodeVersion"][:-1] + "2"}
    return {"old": deployed(aws), "new_build": new_build,
            "update": cloudformation.event("Update", new_properties, PhysicalResourceId=PIPELINE,
                                           OldResourceProperties=properties),
            "rollback": cloudformation.event("Update", properties, PhysicalResourceId=PIPELINE,
                                             OldResourceProperties=new_properties)}


def assert_whole(pipeline: dict[str, Any] | None, old: dict[str, Any]) -> None:
    """The pipeline runs code that is in S3, and its definition is wholly old or wholly new."""
    assert pipeline is not None and pipeline["code_in_s3"]
    assert (pipeline["max_runtime"] == NEW_MAX_RUNTIME) == (pipeline["code"] != old["code"]), pipeline


@pytest.mark.parametrize("service,operation,fault", faults(UPDATE_CALLS))
def test_an_update_failing_past_retries_leaves_a_whole_pipeline(
        redeploy, function, aws, cloudformation, aws_wire, service, operation, fault) -> None:
    """GIVEN `operation` failing on every attempt WHEN CloudFormation updates the resource THEN it hears
    FAILED once, within seconds, naming the error, with the pipeline's own id; the pipeline runs code
    that is in S3 with the definition that goes with it; CloudFormation's rollback (the old function
    version, old properties) then answers SUCCESS and the old definition is back."""
    answered = aws_wire.fails(getattr(redeploy["new_build"], service), operation, *fault, times=99)

    elapsed = invoke(redeploy["new_build"], redeploy["update"])

    answer = the_one_answer(cloudformation, before=1)
    assert_failed_reason(answer, fault)
    assert answer["PhysicalResourceId"] == PIPELINE
    assert elapsed < PROMPT_SECONDS and len(answered) == ATTEMPTS
    assert_whole(deployed(aws), redeploy["old"])
    invoke(function, redeploy["rollback"])
    assert the_one_answer(cloudformation, before=2)["Status"] == "SUCCESS"
    assert deployed(aws) == redeploy["old"]


@pytest.mark.parametrize("service,operation", [("s3", "PutObject"), ("sagemaker", "UpdatePipeline"),
                                               ("sagemaker", "AddTags")])
def test_an_update_failing_once_is_deployed(redeploy, aws, cloudformation, aws_wire, service, operation) -> None:
    """GIVEN `operation` answering 5xx once, then healthy WHEN CloudFormation updates the resource THEN
    botocore's retry gets through: SUCCESS once, the new definition runs the new code, which is in S3."""
    aws_wire.fails(getattr(redeploy["new_build"], service), operation, *SERVER_ERROR[service], times=1)

    invoke(redeploy["new_build"], redeploy["update"])

    answer = the_one_answer(cloudformation, before=1)
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    pipeline = deployed(aws)
    assert_whole(pipeline, redeploy["old"])
    assert pipeline is not None and pipeline["max_runtime"] == NEW_MAX_RUNTIME
    assert pipeline["code"] == answer["Data"]["CodeS3Uri"]


# --------------------------------------------------------------------------- Delete
DELETE_CALLS = [("sagemaker", "DescribePipeline"), ("sagemaker", "DeletePipeline")]


@pytest.mark.parametrize("service,operation,fault", faults(DELETE_CALLS))
def test_a_delete_failing_past_retries_answers_failed_and_can_be_retried(
        function, aws, cloudformation, properties, build_dir, aws_wire, service, operation, fault) -> None:
    """GIVEN a deployed pipeline and `operation` failing on every attempt WHEN CloudFormation deletes the
    resource THEN it hears FAILED once, within seconds, naming the error; the pipeline is still there,
    whole; and the delete retried once AWS is healthy answers SUCCESS and removes it."""
    invoke(function, cloudformation.event("Create", properties))
    answered = aws_wire.fails(getattr(function, service), operation, *fault, times=99)
    delete = cloudformation.event("Delete", properties, PhysicalResourceId=PIPELINE)

    elapsed = invoke(function, delete)

    answer = the_one_answer(cloudformation, before=1)
    assert_failed_reason(answer, fault)
    assert answer["PhysicalResourceId"] == PIPELINE
    assert elapsed < PROMPT_SECONDS and len(answered) == ATTEMPTS
    pipeline = deployed(aws)
    assert pipeline is not None and pipeline["code_in_s3"]
    invoke(load_function(build_dir), delete | {"RequestId": "retried-delete"})
    assert the_one_answer(cloudformation, before=2)["Status"] == "SUCCESS"
    assert deployed(aws) is None


def test_a_delete_throttled_once_is_done(function, aws, cloudformation, properties, aws_wire) -> None:
    """GIVEN DeletePipeline throttled once WHEN CloudFormation deletes the resource THEN botocore's retry
    gets through: SUCCESS once and the pipeline is gone."""
    invoke(function, cloudformation.event("Create", properties))
    aws_wire.fails(function.sagemaker, "DeletePipeline", *THROTTLING["sagemaker"], times=1)

    invoke(function, cloudformation.event("Delete", properties, PhysicalResourceId=PIPELINE))

    assert the_one_answer(cloudformation, before=1)["Status"] == "SUCCESS"
    assert deployed(aws) is None
