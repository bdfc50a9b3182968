"""A refused dataset is recorded where the CLI reads it (refusals/<name>/<version>.json, outside
datasets/) and announced with a "Dataset Refused" event that template.yaml's rule routes to the
notifier, bounded however many problems the dataset has."""

from __future__ import annotations

import json

import boto3
from function_harness import BUCKET, REGION, Aws, LambdaContext, marker_event, template

from yolopipe_shared.refusal import MAX_PROBLEM_CHARS, MAX_PROBLEMS


def _route_refusals_to_a_queue(aws: Aws) -> str:
    """The notifier's DatasetRefused rule from template.yaml, its target a queue we can read."""
    pattern = template()["Resources"]["NotifierFunction"]["Properties"]["Events"]["DatasetRefused"]["Properties"][
        "Pattern"]
    pattern["detail"]["bucket"] = [BUCKET]  # `!Ref DatasetsBucket`
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="refusals", EventPattern=json.dumps(pattern))
    queue_url = aws.sqs.create_queue(QueueName="refusal-events")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule="refusals", Targets=[{"Id": "notifier", "Arn": arn}])
    return str(queue_url)


def test_refusal_is_recorded_for_the_cli_and_routed_to_the_notifier(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a dataset with more broken label files than a refusal lists, each with a long message
    WHEN its marker arrives
    THEN refusals/shapes/<version>.json holds the dataset, version and the first MAX_PROBLEMS problems
    (each at most MAX_PROBLEM_CHARS) with the full count, and one "Dataset Refused" event with the
    same record reaches the notifier's rule."""
    queue_url = _route_refusals_to_a_queue(aws)
    ds = sample_dataset("shapes", train=MAX_PROBLEMS + 10, val=2)
    long_class = "9" * (MAX_PROBLEM_CHARS + 100)
    for label in sorted((ds.root / "labels" / "train").glob("*.txt")):
        label.write_text(f"{long_class} 0.5 0.5 0.1 0.1\n")
    version = aws.upload_dataset(ds.root, "shapes")

    result = trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())

    outcome = result["outcomes"][0]
    assert outcome["outcome"] == "refused"
    key = f"refusals/shapes/{version}.json"
    assert outcome["refusal_uri"] == f"s3://{BUCKET}/{key}"
    record = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert record["dataset"] == "shapes" and record["version"] == version
    assert record["problem_count"] == outcome["problem_count"] > MAX_PROBLEMS
    assert len(record["problems"]) == MAX_PROBLEMS
    assert all(len(p) <= MAX_PROBLEM_CHARS for p in record["problems"])
    assert record["problems"][0].startswith("labels/train/")
    [message] = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == ("yolopipe.trigger", "Dataset Refused")
    assert event["detail"] == record


def test_a_started_dataset_records_no_refusal(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a valid dataset WHEN its marker arrives THEN nothing is written under refusals/."""
    ds = sample_dataset("shapes", train=4, val=2)
    version = aws.upload_dataset(ds.root, "shapes")
    trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())
    assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="refusals/")["KeyCount"] == 0
