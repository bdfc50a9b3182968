"""What a run cost: per job instance type x count, training and billable time, the managed-spot
saving and an estimate in USD, priced by the AWS Price List API (botocore's Stubber with
real-shaped GetProducts answers: PriceList items are JSON strings) or, when it cannot answer, by the
dated list-price table. SageMaker's side is botocore's Stubber with real-shaped responses too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from yolopipe_shared import cost
from yolopipe_shared.execution_report import list_steps

REGION = "us-east-1"
ACCOUNT = "123456789012"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/yolopipe-dev-abcd/execution/run2"
EARLIER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/yolopipe-dev-abcd/execution/run1"
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
USAGE_PREFIX = {"us-east-1": "USE1", "eu-west-1": "EU"}
LOCATIONS = {"us-east-1": "US East (N. Virginia)", "eu-west-1": "EU (Ireland)"}


def product(instance_type: str, usd: str, *, kind: str = cost.TRAINING, region: str = REGION) -> str:
    """One SageMaker product as GetProducts returns it (a JSON string per PriceList item)."""
    sku = "JMCWJEAPVJNFJ5P4"
    component = cost.USAGE_COMPONENTS[kind]
    return json.dumps({
        "product": {
            "productFamily": "ML Instance",
            "attributes": {
                "instanceName": instance_type, "regionCode": region, "location": LOCATIONS[region],
                "locationType": "AWS Region", "platoinstancetype": cost.PLATO_INSTANCE_TYPES[kind],
                "component": cost.PLATO_INSTANCE_TYPES[kind], "operation": "RunInstance",
                "usagetype": f"{USAGE_PREFIX[region]}-{component}:{instance_type}", "servicecode": "AmazonSageMaker",
                "servicename": "Amazon SageMaker", "vCpu": "4", "memory": "16 GiB",
            },
            "sku": sku,
        },
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [],
                "description": f"${usd} per hour for {instance_type} in {LOCATIONS[region]}",
                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "pricePerUnit": {"USD": usd}}},
            "sku": sku, "effectiveDate": "2026-09-01T00:00:00Z", "offerTermCode": "JRTCKXETXF",
            "termAttributes": {}}}},
        "version": "20260924235959", "publicationDate": "2026-09-24T23:59:59Z",
    })


def expect_products(stubber: Stubber, instance_type: str, items: list[str], *, kind: str = cost.TRAINING,
                    region: str = REGION) -> None:
    stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": items}, {
        "ServiceCode": "AmazonSageMaker", "FormatVersion": "aws_v1", "MaxResults": 20,
        "Filters": cost.product_filters(instance_type, region, kind)})


def training_job(name: str, instance_type: str, *, training: int, billable: int, spot: bool,
                 count: int = 1) -> dict[str, Any]:
    """A DescribeTrainingJob response, as SageMaker answers it for a finished job."""
    return {
        "TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/artifacts/{name}/output/model.tar.gz"},
        "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                                                    "pytorch-training:2.8.0-gpu-py312", "TrainingInputMode": "File"},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm", "OutputDataConfig": {"S3OutputPath": "s3://b/artifacts/"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400, **({"MaxWaitTimeInSeconds": 172800} if spot else {})},
        "CreationTime": T0, "TrainingStartTime": T0, "TrainingEndTime": T0 + timedelta(seconds=training),
        "EnableManagedSpotTraining": spot, "TrainingTimeInSeconds": training, "BillableTimeInSeconds": billable,
    }


def processing_job(name: str, instance_type: str, seconds: int) -> dict[str, Any]:
    """A DescribeProcessingJob response for a finished job."""
    return {
        "ProcessingJobName": name, "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type,
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {
            "ImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312"},
        "ProcessingJobStatus": "Completed", "CreationTime": T0,
        "ProcessingStartTime": T0, "ProcessingEndTime": T0 + timedelta(seconds=seconds),
    }


def step(name: str, key: str, job: str, *, cache_source: str = "") -> dict[str, Any]:
    kind = "training-job" if key == "TrainingJob" else "processing-job"
    item: dict[str, Any] = {"StepName": name, "StepStatus": "Succeeded", "StartTime": T0, "EndTime": T0,
                            "Metadata": {key: {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{job}"}}}
    if cache_source:
        item["CacheHitResult"] = {"SourcePipelineExecutionArn": cache_source}
    return item


@pytest.fixture
def sagemaker() -> Any:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


@pytest.fixture
def pricing() -> Any:
    client = boto3.client("pricing", region_name=cost.PRICING_REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client


def run_cost(sagemaker: Any, pricing: Any | None, steps: list[dict[str, Any]],
             *jobs: dict[str, Any]) -> cost.ExecutionCost:
    """ListPipelineExecutionSteps answers `steps`, then Describe*Job answers `jobs` in order."""
    sagemaker.stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps},
                                   {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"})
    for job in jobs:
        if "TrainingJobName" in job:
            sagemaker.stubber.add_response("describe_training_job", job, {"TrainingJobName": job["TrainingJobName"]})
        else:
            sagemaker.stubber.add_response("describe_processing_job", job,
                                           {"ProcessingJobName": job["ProcessingJobName"]})
    return cost.execution_cost(sagemaker, list_steps(sagemaker, EXECUTION), cost.PriceList(pricing), REGION)


def test_a_spot_run_says_what_spot_saved_and_what_it_cost(sagemaker: Any, pricing: Any) -> None:
    # GIVEN a spot training of 1h02m of which SageMaker billed 22m, and a 2-minute evaluation
    train_job = training_job("pipelines-run2-Train", "ml.g4dn.xlarge", training=3720, billable=1320, spot=True)
    evaluate_job = processing_job("pipelines-run2-Evaluate", "ml.m5.large", 120)
    expect_products(pricing.stubber, "ml.g4dn.xlarge", [product("ml.g4dn.xlarge", "0.7360000000")])
    expect_products(pricing.stubber, "ml.m5.large", [product("ml.m5.large", "0.1150000000", kind=cost.PROCESSING)],
                    kind=cost.PROCESSING)
    # WHEN its cost is read
    spent = run_cost(sagemaker, pricing, [step("Train", "TrainingJob", "pipelines-run2-Train"),
                                          step("Evaluate", "ProcessingJob", "pipelines-run2-Evaluate")],
                     train_job, evaluate_job)
    # THEN the Train line says instance x count, both times, SageMaker's saving (1 - 1320/3720) and
    # billable hours x price; Evaluate its 2 minutes; the total adds them
    train, evaluate = spent.jobs
    assert train.spot_saving == pytest.approx(1 - 1320 / 3720)
    assert train.usd == pytest.approx(1320 / 3600 * 0.736)
    assert spent.lines() == [
        "Train: ml.g4dn.xlarge × 1, 1h02m training, 22m billable (spot saved 65%), ≈ $0.27",
        "Evaluate: ml.m5.large × 1, 2m, < $0.01",
        "Total: ≈ $0.27",
    ]
    assert evaluate.usd == pytest.approx(120 / 3600 * 0.115)
    assert spent.to_dict()["total_usd"] == pytest.approx(round(1320 / 3600 * 0.736 + 120 / 3600 * 0.115, 4))


def test_an_on_demand_run_bills_every_second_on_every_instance(sagemaker: Any, pricing: Any) -> None:
    # GIVEN an on-demand training of 30 minutes on two ml.g5.xlarge priced at $1.408/h
    train_job = training_job("pipelines-run2-Train", "ml.g5.xlarge", training=1800, billable=1800, spot=False, count=2)
    expect_products(pricing.stubber, "ml.g5.xlarge", [product("ml.g5.xlarge", "1.4080000000")])
    # WHEN its cost is read
    spent = run_cost(sagemaker, pricing, [step("Train", "TrainingJob", "pipelines-run2-Train")], train_job)
    # THEN no spot saving is claimed and the estimate is 0.5 h x 2 x $1.408
    [train] = spent.jobs
    assert train.spot_saving is None
    assert spent.lines() == ["Train: ml.g5.xlarge × 2, 30m training, ≈ $1.41", "Total: ≈ $1.41"]


def test_a_reused_train_step_costs_nothing_and_names_its_source(sagemaker: Any, pricing: Any) -> None:
    # GIVEN a Train step served by the step cache from an earlier execution (no job of its own)
    # WHEN its cost is read
    spent = run_cost(sagemaker, pricing, [step("Train", "TrainingJob", "pipelines-run1-Train", cache_source=EARLIER)])
    # THEN it costs $0 and says which execution it came from; nothing was described or priced
    [train] = spent.jobs
    assert train.usd == 0 and train.reused_from == EARLIER
    assert spent.lines() == ["Train: reused from execution run1 (step cache), $0.00", "Total: ≈ $0.00"]


def test_pricing_unreachable_falls_back_to_the_dated_list_price_table(sagemaker: Any) -> None:
    # GIVEN the Price List API cannot be reached
    pricing = boto3.client("pricing", region_name=cost.PRICING_REGION)

    def unreachable(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")

    pricing.meta.events.register("before-send.pricing.GetProducts", unreachable)
    train_job = training_job("pipelines-run2-Train", "ml.g4dn.xlarge", training=3600, billable=3600, spot=False)
    # WHEN the cost is read
    spent = run_cost(sagemaker, pricing, [step("Train", "TrainingJob", "pipelines-run2-Train")], train_job)
    # THEN the table's price is used and the line says whose price it is
    [train] = spent.jobs
    assert train.usd_per_hour == cost.LIST_PRICES["ml.g4dn.xlarge"]
    assert spent.lines()[0] == (f"Train: ml.g4dn.xlarge × 1, 1h00m training, ≈ $0.74 "
                                f"(list price table of {cost.LIST_PRICES_DATE})")


def test_an_unknown_instance_type_has_no_price_and_no_exception(sagemaker: Any, pricing: Any) -> None:
    # GIVEN an instance type the Price List API answers nothing for and the table does not hold
    train_job = training_job("pipelines-run2-Train", "ml.p5.48xlarge", training=600, billable=600, spot=False)
    evaluate_job = processing_job("pipelines-run2-Evaluate", "ml.m5.large", 60)
    expect_products(pricing.stubber, "ml.p5.48xlarge", [])
    expect_products(pricing.stubber, "ml.m5.large", [product("ml.m5.large", "0.1150000000", kind=cost.PROCESSING)],
                    kind=cost.PROCESSING)
    # WHEN the cost is read
    spent = run_cost(sagemaker, pricing, [step("Train", "TrainingJob", "pipelines-run2-Train"),
                                          step("Evaluate", "ProcessingJob", "pipelines-run2-Evaluate")],
                     train_job, evaluate_job)
    # THEN Train says "price unknown" and the total says what it leaves out
    assert spent.lines()[0] == "Train: ml.p5.48xlarge × 1, 10m training, price unknown"
    assert spent.lines()[-1] == "Total: < $0.01 (without Train: price unknown)"
    assert spent.to_dict()["unpriced"] == ["Train"]


def test_prices_are_asked_once_per_instance_type_region_and_kind(pricing: Any) -> None:
    # GIVEN a price list that answers once for ml.g6.xlarge training in eu-west-1
    expect_products(pricing.stubber, "ml.g6.xlarge", [product("ml.g6.xlarge", "1.3530000000", region="eu-west-1")],
                    region="eu-west-1")
    prices = cost.PriceList(pricing)
    # WHEN it is asked three times
    answers = [prices.price("ml.g6.xlarge", "eu-west-1", cost.TRAINING) for _ in range(3)]
    # THEN the API was called once (the Stubber holds no second answer) and all say $1.353 from the API
    assert {a.usd_per_hour for a in answers if a} == {1.353}
    assert answers[0] == cost.Price(1.353, cost.API_SOURCE)
    pricing.stubber.assert_no_pending_responses()


def test_a_product_of_another_usage_is_not_taken_for_the_training_price(pricing: Any) -> None:
    # GIVEN an answer holding only the processing product of the type (a filter the API ignored)
    expect_products(pricing.stubber, "ml.m5.xlarge", [product("ml.m5.xlarge", "9.9900000000", kind=cost.PROCESSING)])
    # WHEN the training price is asked
    price = cost.PriceList(pricing).price("ml.m5.xlarge", REGION, cost.TRAINING)
    # THEN the table's figure is used, not the other usage's
    assert price == cost.Price(cost.LIST_PRICES["ml.m5.xlarge"], f"list price table of {cost.LIST_PRICES_DATE}")
