"""The deploy custom resource against moto, built by its Makefile and invoked as Lambda invokes it:
Create / Update / Delete, redeploys, rollbacks, and failures that answer CloudFormation FAILED with
the reason instead of leaving the stack waiting."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest
from botocore.exceptions import ClientError
from deploy_harness import BUCKET, PIPELINE, ROLE_ARN, Context, load_function

from yolopipe_shared.pipeline_template import find_placeholders


def _definition(aws, name=PIPELINE):
    return json.loads(aws.sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])


def test_create_uploads_code_once_and_creates_a_filled_pipeline(deploy, aws, cloudformation, properties, build_dir):
    """GIVEN a new stack WHEN CloudFormation creates the resource THEN the code tarball is in the bucket
    under its content address, the pipeline exists with every placeholder filled and the stack's
    defaults applied, and CloudFormation hears SUCCESS with the pipeline ARN."""
    event = cloudformation.event("Create", properties)
    deploy(event)

    [answer] = cloudformation.answers
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert answer["RequestId"] == event["RequestId"] and answer["LogicalResourceId"] == "Pipeline"
    assert answer["Data"]["PipelineArn"].endswith(f":pipeline/{PIPELINE}")
    code_uri = answer["Data"]["CodeS3Uri"]
    key = code_uri.removeprefix(f"s3://{BUCKET}/")
    assert key.startswith("code/training-")
    uploaded = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert uploaded == (build_dir / "training_code.tar.gz").read_bytes()

    text = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"]
    assert find_placeholders(text) == set()
    definition = json.loads(text)
    train = definition["Steps"][0]["Arguments"]
    assert train["RoleArn"] == ROLE_ARN
    assert train["HyperParameters"]["sagemaker_submit_directory"] == code_uri
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["TrainingInstanceType"] == "ml.g5.xlarge"
    assert defaults["MinMap50_95"] == 0.6
    assert defaults["ModelPackageGroupName"] == f"{PIPELINE}-models"
    tags = {t["Key"]: t["Value"] for t in aws.sagemaker.list_tags(ResourceArn=answer["Data"]["PipelineArn"])["Tags"]}
    assert tags["yolopipe:environment"] == "dev"
    assert tags["yolopipe:definition-sha256"] == answer["Data"]["DefinitionSha256"]


def test_a_stack_without_spot_gets_on_demand_training_sagemaker_accepts(
        deploy, aws, cloudformation, properties):
    """GIVEN a stack deployed with UseSpotInstances=false WHEN the pipeline is created THEN its
    training job asks for on-demand capacity and carries no MaxWaitTimeInSeconds (SageMaker refuses
    that field without managed spot), while the default stack trains on spot with both bounds."""
    deploy(cloudformation.event("Create", {**properties, "UseSpotInstances": "false"}))
    assert cloudformation.answers[-1]["Status"] == "SUCCESS", cloudformation.answers[-1]["Reason"]
    train = _definition(aws)["Steps"][0]["Arguments"]
    assert train["EnableManagedSpotTraining"] is False
    assert set(train["StoppingCondition"]) == {"MaxRuntimeInSeconds"}

    deploy(cloudformation.event("Update", properties))
    assert cloudformation.answers[-1]["Status"] == "SUCCESS", cloudformation.answers[-1]["Reason"]
    train = _definition(aws)["Steps"][0]["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    assert set(train["StoppingCondition"]) == {"MaxRuntimeInSeconds", "MaxWaitTimeInSeconds"}


def test_a_bad_spot_setting_answers_failed(deploy, cloudformation, properties):
    deploy(cloudformation.event("Create", {**properties, "UseSpotInstances": "sometimes"}))
    answer = cloudformation.answers[-1]
    assert answer["Status"] == "FAILED"
    assert "UseSpotInstances must be true or false" in answer["Reason"]


def test_update_reuses_the_code_object_and_updates_the_pipeline(deploy, aws, cloudformation, properties):
    """GIVEN a deployed stack WHEN it is updated with a new default instance type THEN the same code
    object is reused (not uploaded again) and the pipeline's default changes."""
    deploy(cloudformation.event("Create", properties))
    key = cloudformation.answers[0]["Data"]["CodeS3Uri"].removeprefix(f"s3://{BUCKET}/")
    first_upload = aws.s3.head_object(Bucket=BUCKET, Key=key)["LastModified"]

    update = cloudformation.event(
        "Update", properties | {"DefaultTrainingInstanceType": "ml.g4dn.2xlarge"}, PhysicalResourceId=PIPELINE
    )
    body = deploy(update)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert cloudformation.answers[1]["Data"]["CodeS3Uri"].endswith(key)
    assert aws.s3.head_object(Bucket=BUCKET, Key=key)["LastModified"] == first_upload
    defaults = {p["Name"]: p["DefaultValue"] for p in _definition(aws)["Parameters"]}
    assert defaults["TrainingInstanceType"] == "ml.g4dn.2xlarge"
    assert len(aws.sagemaker.list_pipelines()["PipelineSummaries"]) == 1


def test_delete_removes_the_pipeline_unless_kept(deploy, aws, cloudformation, properties):
    """GIVEN a deployed pipeline WHEN the stack is deleted THEN the pipeline is gone; WHEN KeepOnDelete is
    set THEN it stays; WHEN it is already gone THEN the delete still succeeds."""
    run = lambda event: deploy(event)  # noqa: E731
    run(cloudformation.event("Create", properties | {"PipelineName": "kept"}))
    run(cloudformation.event("Create", properties))

    kept = run(cloudformation.event("Delete", properties | {"PipelineName": "kept", "KeepOnDelete": "true"},
                                    PhysicalResourceId="kept"))
    deleted = run(cloudformation.event("Delete", properties, PhysicalResourceId=PIPELINE))
    again = run(cloudformation.event("Delete", properties, PhysicalResourceId=PIPELINE))

    assert [kept["Status"], deleted["Status"], again["Status"]] == ["SUCCESS"] * 3
    names = [p["PipelineName"] for p in aws.sagemaker.list_pipelines()["PipelineSummaries"]]
    assert names == ["kept"]


def test_bad_definition_answers_failed_with_the_reason(aws, cloudformation, properties, build_dir, rebuild):
    """GIVEN a build whose definition references an undefined parameter WHEN the stack is created THEN
    CloudFormation hears FAILED, promptly, with the reason, and no pipeline is created."""
    text = (build_dir / "pipeline_definition.json").read_text()
    broken = load_function(rebuild({"pipeline_definition.json": text.replace("Parameters.ModelVariant",
                                                                             "Parameters.Variant")}))

    started = time.monotonic()
    broken.lambda_handler(cloudformation.event("Create", properties), Context())

    [answer] = cloudformation.answers
    assert time.monotonic() - started < 10
    assert answer["Status"] == "FAILED"
    assert "Parameters.Variant is not a declared parameter" in answer["Reason"]
    assert aws.sagemaker.list_pipelines()["PipelineSummaries"] == []
    # The rollback deletes what the failed Create answered: an id that names no pipeline.
    assert answer["PhysicalResourceId"] != PIPELINE


def test_rollback_of_a_failed_create_deletes_nothing(deploy, aws, cloudformation, properties):
    """GIVEN a pipeline with the stack's name already exists and the Create fails WHEN CloudFormation
    rolls back (Delete with the id the failure answered) THEN that pipeline is still there."""
    aws.sagemaker.create_pipeline(PipelineName=PIPELINE, RoleArn=ROLE_ARN, PipelineDefinition='{"Steps": []}')
    failed = deploy(cloudformation.event("Create", {k: v for k, v in properties.items() if k != "Bucket"}))
    rollback = deploy(cloudformation.event("Delete", properties, PhysicalResourceId=failed["PhysicalResourceId"]))
    assert failed["Status"] == "FAILED" and rollback["Status"] == "SUCCESS"
    assert aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineName"] == PIPELINE


def test_rollback_after_a_failed_create_succeeds_without_calling_aws(
        deploy, function, cloudformation, properties, monkeypatch):
    """GIVEN a Create that failed WHEN CloudFormation rolls back with the id the failure answered, and IAM
    denies the function every SageMaker call on a pipeline of that name THEN the Delete answers SUCCESS
    (the stack ends ROLLBACK_COMPLETE, not ROLLBACK_FAILED) and no AWS call was made."""
    failed = deploy(cloudformation.event("Create", properties | {"RoleArn": "not-a-role"}))
    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"].startswith("Pipeline-not-created-")

    calls = []

    def access_denied(model, **kwargs):
        calls.append(model.name)
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, model.name)

    function.sagemaker.meta.events.register("before-call.sagemaker.*", access_denied)
    rollback = cloudformation.event("Delete", properties, PhysicalResourceId=failed["PhysicalResourceId"])
    deploy(rollback)

    answer = cloudformation.answers[-1]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == failed["PhysicalResourceId"]
    assert answer["RequestId"] == rollback["RequestId"]
    assert calls == []
    # The same denial on a real pipeline's Delete does reach AWS, and is reported, not swallowed.
    deploy(cloudformation.event("Delete", properties, PhysicalResourceId=PIPELINE))
    assert cloudformation.answers[-1]["Status"] == "FAILED" and calls == ["DescribePipeline"]


def test_missing_properties_and_bugs_answer_failed(deploy, function, cloudformation, properties, monkeypatch):
    """GIVEN a template without RoleArn, or an unexpected error inside the function WHEN CloudFormation
    calls it THEN it still answers FAILED with a reason that says what went wrong."""
    no_role = {k: v for k, v in properties.items() if k != "RoleArn"}
    deploy(cloudformation.event("Create", no_role))

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError(f"simulated bug in {name}")

    monkeypatch.setattr(function, "sagemaker", Broken())
    deploy(cloudformation.event("Create", properties))

    first, second = cloudformation.answers
    assert first["Status"] == "FAILED" and "missing custom resource properties: RoleArn" in first["Reason"]
    assert second["Status"] == "FAILED" and "RuntimeError: simulated bug" in second["Reason"]


def test_large_definition_goes_through_s3(aws, cloudformation, properties, build_dir, rebuild):
    """GIVEN a definition of 100 KB or more WHEN it is deployed THEN it is uploaded to S3 and passed as
    PipelineDefinitionS3Location (CreatePipeline refuses larger inline definitions)."""
    document = json.loads((build_dir / "pipeline_definition.json").read_text())
    document["Metadata"] = {"Notes": "x" * 110_000}
    big = load_function(rebuild({"pipeline_definition.json": json.dumps(document)}))

    body = big.lambda_handler(cloudformation.event("Create", properties), Context())

    assert body["Status"] == "SUCCESS", body["Reason"]
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"pipelines/{PIPELINE}/")["Contents"]
    [stored] = [item["Key"] for item in listed]
    text = aws.s3.get_object(Bucket=BUCKET, Key=stored)["Body"].read().decode()
    assert len(text.encode()) >= 100 * 1024
    assert find_placeholders(text) == set()
    assert json.loads(text)["Steps"][0]["Arguments"]["RoleArn"] == ROLE_ARN
    assert aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineArn"] == body["Data"]["PipelineArn"]


def test_direct_invocation_returns_the_answer(deploy, aws, properties):
    """GIVEN no CloudFormation (an operator invokes the function) WHEN asked to Create THEN the answer is
    returned rather than sent, and the pipeline exists."""
    event = {"RequestType": "Create", "ResourceProperties": properties}
    body = deploy(event)
    assert body["Status"] == "SUCCESS"
    assert body["Data"]["PipelineName"] == PIPELINE
    assert aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineName"] == PIPELINE


def _tarball_with(build_dir, name, text):
    """The build's training-code tarball with one more file (a changed training_code/)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO((build_dir / "training_code.tar.gz").read_bytes()), mode="r:gz") as old, \
            tarfile.open(fileobj=out, mode="w:gz") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isfile() else None)
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        new.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_update_with_a_changed_build_updates_definition_and_code(
        deploy, aws, cloudformation, properties, build_dir, rebuild):
    """GIVEN a deployed stack WHEN it is redeployed from a build whose training code and definition changed
    (SAM publishes a new function version, so CodeVersion changes and CloudFormation sends an Update)
    THEN the new tarball is uploaded under its own address, the pipeline runs it, and the pipeline's
    definition is the new one."""
    deploy(cloudformation.event("Create", properties))
    first = cloudformation.answers[-1]
    assert first["Status"] == "SUCCESS", first["Reason"]

    document = json.loads((build_dir / "pipeline_definition.json").read_text())
    train = document["Steps"][0]["Arguments"]
    train["StoppingCondition"]["MaxRuntimeInSeconds"] = 7200
    new_build = load_function(rebuild({
        "pipeline_definition.json": json.dumps(document),
        "training_code.tar.gz": _tarball_with(build_dir, "training_code/NOTES.txt", "a changed build"),
    }))
    update = cloudformation.event(
        "Update", properties | {"CodeVersion": properties["CodeVersion"][:-1] + "2"}, PhysicalResourceId=PIPELINE,
        OldResourceProperties=properties,
    )
    new_build.lambda_handler(update, Context())

    second = cloudformation.answers[-1]
    assert second["Status"] == "SUCCESS", second["Reason"]
    assert second["PhysicalResourceId"] == PIPELINE
    assert second["Data"]["CodeS3Uri"] != first["Data"]["CodeS3Uri"]
    assert second["Data"]["DefinitionSha256"] != first["Data"]["DefinitionSha256"]
    new_code = aws.s3.get_object(Bucket=BUCKET, Key=second["Data"]["CodeS3Uri"].removeprefix(f"s3://{BUCKET}/"))
    with tarfile.open(fileobj=io.BytesIO(new_code["Body"].read()), mode="r:gz") as tarball:
        assert tarball.extractfile("training_code/NOTES.txt").read() == b"a changed build"
    deployed = _definition(aws)["Steps"][0]["Arguments"]
    assert deployed["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert deployed["HyperParameters"]["sagemaker_submit_directory"] == second["Data"]["CodeS3Uri"]
    assert len(aws.sagemaker.list_pipelines()["PipelineSummaries"]) == 1


@pytest.mark.parametrize("missing", ["pipeline_definition.json", "image_accounts.json"])
def test_a_build_without_its_artifacts_answers_failed(aws, cloudformation, properties, rebuild, missing):
    """GIVEN a function package without one of its build artifacts WHEN the stack is created THEN
    CloudFormation hears FAILED naming the file and how to build it."""
    folder = rebuild({})
    (folder / missing).unlink()
    load_function(folder).lambda_handler(cloudformation.event("Create", properties), Context())
    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED"
    assert f"build artifact missing ({missing})" in answer["Reason"] and "sam build" in answer["Reason"]
