"""The training and serving images come from the Deep Learning Containers registry of the region the
stack is deployed in: 763104351884 in most regions, another account in each opt-in region. The oracle
is the SageMaker SDK's own table (sagemaker.core.image_uri_config/pytorch.json)."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from deploy_harness import PIPELINE

from pipeline.definition import PYTORCH_INFERENCE_VERSION, PYTORCH_VERSION


def _sdk_registries(scope: str, version: str) -> dict[str, str]:
    table = json.loads(resources.files("sagemaker.core.image_uri_config").joinpath("pytorch.json").read_text())
    return table[scope]["versions"][version]["registries"]


TRAINING = _sdk_registries("training", PYTORCH_VERSION)
INFERENCE = _sdk_registries("inference", PYTORCH_INFERENCE_VERSION)
SUPPORTED = sorted(region for region in TRAINING if not region.startswith("cn-"))


def _images(aws, name):
    definition = json.loads(aws.sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    steps = {step["Name"]: step for step in definition["Steps"]}
    register = steps["CheckQuality"]["Arguments"]["IfSteps"][0]["Arguments"]
    return {
        "train": steps["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"],
        "evaluate": steps["Evaluate"]["Arguments"]["AppSpecification"]["ImageUri"],
        "serve": register["InferenceSpecification"]["Containers"][0]["Image"],
    }


def test_every_region_of_the_sdk_table_gets_its_own_registry(deploy, aws, cloudformation, properties):
    """GIVEN the stack deployed in each region the SageMaker SDK lists (opt-in regions included) WHEN the
    pipeline is created THEN its training, evaluation and serving images come from that region's
    registry account, and the resource reports the account it used."""
    assert {"af-south-1", "ap-east-1", "il-central-1", "me-central-1", "ap-southeast-5"} <= set(SUPPORTED)
    for index, region in enumerate(SUPPORTED):
        name = f"{PIPELINE}-{index}"
        deploy(cloudformation.event("Create", properties | {"Region": region, "PipelineName": name}))
        answer = cloudformation.answers[-1]
        assert answer["Status"] == "SUCCESS", (region, answer["Reason"])
        assert answer["Data"]["ImageAccountId"] == TRAINING[region] == INFERENCE[region]
        images = _images(aws, name)
        registry = f"{TRAINING[region]}.dkr.ecr.{region}.amazonaws.com/"
        assert images["train"] == f"{registry}pytorch-training:{PYTORCH_VERSION}-gpu-py312", region
        assert images["evaluate"] == images["train"]
        assert images["serve"] == f"{registry}pytorch-inference:{PYTORCH_INFERENCE_VERSION}-gpu-py312", region


@pytest.mark.parametrize("region", ["cn-north-1", "cn-northwest-1"])
def test_the_china_partition_fails_at_deploy_not_at_job_start(deploy, aws, cloudformation, properties, region):
    """GIVEN a stack in China (registries under amazonaws.com.cn, out of scope) WHEN it is created THEN
    the deploy answers FAILED with one line naming the region and its partition, even with an
    explicit account, and no pipeline exists to fail later."""
    for explicit in ("", "727897471807"):
        deploy(cloudformation.event("Create", properties | {"Region": region, "ContainerImageAccountId": explicit}))
        answer = cloudformation.answers[-1]
        assert answer["Status"] == "FAILED"
        assert f"region {region} is in the aws-cn partition" in answer["Reason"]
        assert "\n" not in answer["Reason"]
    assert aws.sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_an_unknown_region_fails_clearly_and_an_explicit_account_deploys_it(deploy, aws, cloudformation, properties):
    """GIVEN a region the build's table does not list WHEN the stack is created THEN the deploy answers
    FAILED naming the region and the stack parameter to set; WHEN ContainerImageAccountId is set THEN
    the images come from that account."""
    deploy(cloudformation.event("Create", properties | {"Region": "xx-future-1"}))
    answer = cloudformation.answers[-1]
    assert answer["Status"] == "FAILED"
    assert "region xx-future-1" in answer["Reason"] and "ContainerImageAccountId" in answer["Reason"]
    assert aws.sagemaker.list_pipelines()["PipelineSummaries"] == []

    deploy(cloudformation.event("Create", properties | {"Region": "xx-future-1",
                                                       "ContainerImageAccountId": "111122223333"}))
    answer = cloudformation.answers[-1]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert _images(aws, PIPELINE)["train"].startswith("111122223333.dkr.ecr.xx-future-1.amazonaws.com/")


def test_an_explicit_account_overrides_the_table_and_a_malformed_one_is_refused(
        deploy, aws, cloudformation, properties):
    """GIVEN ContainerImageAccountId set (a mirror of the images) WHEN the stack is created in af-south-1
    THEN that account is used instead of the table's; GIVEN a value that is no account id THEN FAILED."""
    deploy(cloudformation.event("Create", properties | {"Region": "af-south-1", "ContainerImageAccountId": "12345"}))
    assert cloudformation.answers[-1]["Status"] == "FAILED"
    assert "ContainerImageAccountId must be a 12-digit AWS account id" in cloudformation.answers[-1]["Reason"]

    deploy(cloudformation.event("Create", properties | {"Region": "af-south-1",
                                                       "ContainerImageAccountId": "111122223333"}))
    answer = cloudformation.answers[-1]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["ImageAccountId"] == "111122223333"
    assert _images(aws, PIPELINE)["serve"].startswith("111122223333.dkr.ecr.af-south-1.amazonaws.com/")


def test_the_build_writes_the_sdk_table_beside_the_definition(build_dir):
    """GIVEN `make build-DeployFunction` WHEN it has run THEN the package holds the region -> account table
    of both images, equal to the SDK's for every region that has both."""
    table = json.loads((build_dir / "image_accounts.json").read_text())
    assert table["accounts"] == {region: TRAINING[region] for region in TRAINING if region in INFERENCE}
    assert "sagemaker" in table["source"]
