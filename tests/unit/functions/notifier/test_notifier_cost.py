"""The final notice says what the run cost: a line per job (instance, times, spot saving, USD)
and the total, by email and in Slack; pricing is best effort and never stops the notice.

moto holds the execution and the Evaluate job; what moto lacks is answered on the handler's own
clients: ListPipelineExecutionSteps and the jobs' timing fields (DescribeTrainingJob /
DescribeProcessingJob, checked against botocore's output model as the Stubber checks them) by
`before-call` hooks, the Price List API by botocore's Stubber with real-shaped products."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ParamValidationError
from botocore.stub import Stubber
from botocore.validate import validate_parameters
from function_harness import ACCOUNT, REGION, Aws, LambdaContext, load_handler
from notifier_harness import all_text, answer_steps, evaluation_job, start_execution, status_event, use_slack

from yolopipe_shared import cost

TRAINING_JOB = "pipelines-abc-Train-xyz"
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def products(instance_type: str, usd: str, kind: str) -> dict[str, Any]:
    """A GetProducts answer with the one SageMaker product of the type (PriceList items are JSON strings)."""
    import json

    sku = "9QH3PUGXCYKNCYPB"
    item = {"product": {"productFamily": "ML Instance", "sku": sku, "attributes": {
                "instanceName": instance_type, "regionCode": REGION, "location": "US East (N. Virginia)",
                "locationType": "AWS Region", "platoinstancetype": cost.PLATO_INSTANCE_TYPES[kind],
                "usagetype": f"USE1-{cost.USAGE_COMPONENTS[kind]}:{instance_type}", "operation": "RunInstance",
                "servicecode": "AmazonSageMaker", "servicename": "Amazon SageMaker"}},
            "serviceCode": "AmazonSageMaker",
            "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {"sku": sku, "offerTermCode": "JRTCKXETXF",
                "effectiveDate": "2026-09-01T00:00:00Z", "termAttributes": {},
                "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                    "unit": "Hrs", "beginRange": "0", "endRange": "Inf", "appliesTo": [],
                    "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "description": f"${usd} per hour",
                    "pricePerUnit": {"USD": usd}}}}}},
            "version": "20260924235959", "publicationDate": "2026-09-24T23:59:59Z"}
    return {"FormatVersion": "aws_v1", "PriceList": [json.dumps(item)]}


def answer(handler: Any, operation: str, response: dict[str, Any]) -> None:
    """Answer one SageMaker operation on the handler's client, with a response valid for its output shape."""
    model = handler.sagemaker.meta.service_model.operation_model(operation)
    validate_parameters(response, model.output_shape)  # raises ParamValidationError when not real-shaped

    def reply(model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        return AWSResponse(None, 200, {}, None), response

    handler.sagemaker.meta.events.register_first(f"before-call.sagemaker.{operation}", reply)


def finished_run(aws: Aws, handler: Any) -> str:
    """An execution whose spot Train ran 1h02m (22m billable) and whose Evaluate ran 2 minutes."""
    evaluate_arn = evaluation_job(aws)
    train_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{TRAINING_JOB}"
    answer_steps(handler, [
        {"StepName": "Train", "StepStatus": "Succeeded", "StartTime": T0,
         "Metadata": {"TrainingJob": {"Arn": train_arn}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded", "StartTime": T0,
         "Metadata": {"ProcessingJob": {"Arn": evaluate_arn}}},
    ])
    answer(handler, "DescribeTrainingJob", {
        "TrainingJobName": TRAINING_JOB, "TrainingJobArn": train_arn, "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": "s3://b/artifacts/model.tar.gz"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800}, "CreationTime": T0,
        "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "EnableManagedSpotTraining": True, "TrainingTimeInSeconds": 3720, "BillableTimeInSeconds": 1320,
        "TrainingStartTime": T0, "TrainingEndTime": T0 + timedelta(seconds=3720)})
    described = aws.sagemaker.describe_processing_job(ProcessingJobName=evaluate_arn.rsplit("/", 1)[-1])
    described.pop("ResponseMetadata", None)
    # moto's answer lacks what SageMaker always returns: the resources the job was created with
    # (notifier_harness.evaluation_job) and its timing.
    answer(handler, "DescribeProcessingJob", {**described, "ProcessingJobStatus": "Completed",
                                              "ProcessingResources": {"ClusterConfig": {
                                                  "InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 30}},
                                              "ProcessingStartTime": T0,
                                              "ProcessingEndTime": T0 + timedelta(seconds=120)})
    return start_execution(aws)


def test_the_final_notice_carries_a_cost_line_per_job_and_the_total(aws: Aws, slack_server: Any) -> None:
    """GIVEN a finished run: spot training on ml.g4dn.xlarge (1h02m, 22m billable), a 2-minute evaluation
    WHEN its Succeeded event arrives
    THEN the email and Slack (blocks and text fallback) carry each job's cost line and the total."""
    use_slack(aws, slack_server, 200)
    handler = load_handler("notifier")
    arn = finished_run(aws, handler)
    with Stubber(handler.prices.pricing) as pricing:
        pricing.add_response("get_products", products("ml.g4dn.xlarge", "0.7360000000", cost.TRAINING))
        pricing.add_response("get_products", products("ml.m5.large", "0.1150000000", cost.PROCESSING))
        result = handler.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())
        pricing.assert_no_pending_responses()

    assert result["sent"] is True
    train = "Train: ml.g4dn.xlarge × 1, 1h02m training, 22m billable (spot saved 65%), ≈ $0.27"
    evaluate = "Evaluate: ml.m5.large × 1, 2m, < $0.01"
    [mail] = aws.inbox()
    for line in (train, evaluate, "Total: ≈ $0.27", "Cost (estimate: SageMaker jobs only):"):
        assert line in mail["message"], line
    [message] = slack_server.received
    assert train in all_text(message) and evaluate in all_text(message)
    assert train in message["text"] and "Total: ≈ $0.27" in message["text"]


def test_pricing_unreachable_still_notifies_with_the_list_price_table(aws: Aws, slack_server: Any) -> None:
    """GIVEN the same run and a Price List API that cannot be reached
    WHEN its Succeeded event arrives
    THEN the notice goes out and its cost lines say they come from the dated list-price table."""
    use_slack(aws, slack_server, 200)
    handler = load_handler("notifier")
    arn = finished_run(aws, handler)

    def unreachable(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")

    handler.prices.pricing.meta.events.register("before-send.pricing.GetProducts", unreachable)
    result = handler.lambda_handler(status_event("pipeline_succeeded", arn), LambdaContext())

    assert result["sent"] is True
    [mail] = aws.inbox()
    table = f"(list price table of {cost.LIST_PRICES_DATE})"
    assert f"spot saved 65%), ≈ $0.27 {table}" in mail["message"]
    assert f"Evaluate: ml.m5.large × 1, 2m, < $0.01 {table}" in mail["message"]
    assert len(slack_server.received) == 1


def test_a_response_that_is_not_real_shaped_is_refused_by_the_harness() -> None:
    """The hooks above serve only what SageMaker could answer: a DescribeTrainingJob without its
    required members is refused before any test can use it."""
    import boto3

    model = boto3.client("sagemaker", region_name=REGION).meta.service_model.operation_model("DescribeTrainingJob")
    with pytest.raises(ParamValidationError):
        validate_parameters({"TrainingJobName": TRAINING_JOB}, model.output_shape)
