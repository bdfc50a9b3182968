"""The deploy custom resource against moto: Create / Update / Delete, and failures that answer
CloudFormation FAILED with the reason instead of leaving the stack waiting."""

from __future__ import annotations

import json
import shutil
import threading
import time

from deploy_harness import BUCKET, PIPELINE, ROLE_ARN, Context

from yolopipe_shared.pipeline_template import find_placeholders


def _definition(aws, name=PIPELINE):
    return json.loads(aws.sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])


def test_create_uploads_code_once_and_creates_a_filled_pipeline(deploy, aws, cloudformation, properties, assets_dir):
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
    assert uploaded == (assets_dir / "training_code.tar.gz").read_bytes()

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
        deploy, aws, cloudformation, properties, assets_dir):
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


def test_a_bad_spot_setting_answers_failed(deploy, cloudformation, properties, assets_dir):
    deploy(cloudformation.event("Create", {**properties, "UseSpotInstances": "sometimes"}))
    answer = cloudformation.answers[-1]
    assert answer["Status"] == "FAILED"
    assert "UseSpotInstances must be true or false" in answer["Reason"]


def test_update_reuses_the_code_object_and_updates_the_pipeline(deploy, aws, cloudformation, properties, assets_dir):
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


def test_delete_removes_the_pipeline_unless_kept(deploy, aws, cloudformation, properties, assets_dir):
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


def test_bad_definition_answers_failed_with_the_reason(deploy, aws, cloudformation, properties, assets_dir, tmp_path):
    """GIVEN a build whose definition references an undefined parameter WHEN the stack is created THEN
    CloudFormation hears FAILED, promptly, with the reason, and no pipeline is created."""
    broken = tmp_path / "assets"
    shutil.copytree(assets_dir, broken)
    text = (broken / "pipeline_definition.json").read_text()
    (broken / "pipeline_definition.json").write_text(text.replace("Parameters.ModelVariant", "Parameters.Variant"))

    started = time.monotonic()
    deploy(cloudformation.event("Create", properties), assets=broken)

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


def test_missing_properties_and_bugs_answer_failed(deploy, aws, cloudformation, properties, assets_dir):
    """GIVEN a template without RoleArn, or an unexpected error inside the function WHEN CloudFormation
    calls it THEN it still answers FAILED with a reason that says what went wrong."""
    no_role = {k: v for k, v in properties.items() if k != "RoleArn"}
    deploy(cloudformation.event("Create", no_role))

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError(f"simulated bug in {name}")

    deploy(cloudformation.event("Create", properties), sagemaker=Broken())

    first, second = cloudformation.answers
    assert first["Status"] == "FAILED" and "missing custom resource properties: RoleArn" in first["Reason"]
    assert second["Status"] == "FAILED" and "RuntimeError: simulated bug" in second["Reason"]


def test_answers_failed_before_the_lambda_times_out(deploy, cloudformation, properties):
    """GIVEN SageMaker hangs WHEN the Lambda nears its deadline THEN CloudFormation already has a FAILED
    answer saying the function ran out of time (not an hour-long wait)."""

    class Hanging:
        def describe_pipeline(self, **kwargs):
            time.sleep(3)
            raise AssertionError("unreachable in a real Lambda: it is frozen at the deadline")

    # 15.5 s left and a 15 s safety margin: the answer must come after about 0.5 s.
    worker = threading.Thread(
        target=deploy,
        args=(cloudformation.event("Create", properties),),
        kwargs={"context": Context(remaining_ms=15_500), "sagemaker": Hanging()},
        daemon=True,
    )
    worker.start()
    assert cloudformation.arrived.wait(timeout=2.5)
    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED" and "ran out of time" in answer["Reason"]
    worker.join(timeout=10)
    assert len(cloudformation.answers) == 1  # the late failure does not answer twice


def test_large_definition_goes_through_s3(deploy, aws, cloudformation, properties, assets_dir, tmp_path):
    """GIVEN a definition of 100 KB or more WHEN it is deployed THEN it is uploaded to S3 and passed as
    PipelineDefinitionS3Location (CreatePipeline refuses larger inline definitions)."""
    big = tmp_path / "assets"
    shutil.copytree(assets_dir, big)
    document = json.loads((big / "pipeline_definition.json").read_text())
    document["Metadata"] = {"Notes": "x" * 110_000}
    (big / "pipeline_definition.json").write_text(json.dumps(document))

    body = deploy(cloudformation.event("Create", properties), assets=big)

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
