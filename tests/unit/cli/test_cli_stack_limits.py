"""A dataset's yolopipe.yaml gets the same verdict from `dataset validate`, `upload` and the trigger:
each applies the stack's bounds (MaxEpochs, AllowedTrainingInstanceTypes, MaxTrainingRuntimeSeconds,
MaxTrainingInstanceCount)."""

from __future__ import annotations

from typing import Any

from yolopipe_shared.overrides import TEMPLATE_DEFAULT_LIMITS, StackLimits


def test_the_offline_limits_are_the_templates_defaults() -> None:
    """GIVEN template.yaml WHEN its parameter defaults are read THEN they are TEMPLATE_DEFAULT_LIMITS."""
    from yolopipe.local.stack import load_template

    defaults = {name: str(spec.get("Default")) for name, spec in load_template()["Parameters"].items()}
    assert StackLimits.from_stack_parameters(defaults) == TEMPLATE_DEFAULT_LIMITS


def test_validate_refuses_what_the_default_stack_refuses(cli: Any, sample_dataset: Any) -> None:
    """GIVEN a dataset whose yolopipe.yaml asks for more epochs than the default stack allows
    WHEN `dataset validate` runs (no AWS) THEN it refuses it as the trigger would, naming MaxEpochs."""
    ds = sample_dataset("shapes", train=4, val=2)
    (ds.root / "yolopipe.yaml").write_text("epochs: 500\n")
    result = cli("dataset", "validate", ds.root)
    assert result.code == 1
    assert "yolopipe.yaml:1: Epochs must be at most 300 on this stack (MaxEpochs)" in result.out, result.out


def test_upload_applies_the_deployed_stacks_limits(cli: Any, aws: dict[str, Any], sample_dataset: Any) -> None:
    """GIVEN a deployed stack with MaxEpochs 20 and a dataset asking for 50 epochs
    WHEN uploaded THEN it is refused before anything is sent, as that stack's trigger would."""
    import json

    import boto3

    template = {"Parameters": {"MaxEpochs": {"Type": "Number", "Default": 300}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"DatasetsBucketName": {"Value": "yolopipe-unit-cli"}, "PipelineName": {"Value": "p"}}}
    boto3.client("cloudformation").create_stack(StackName="tight", TemplateBody=json.dumps(template),
                                                Parameters=[{"ParameterKey": "MaxEpochs", "ParameterValue": "20"}])
    ds = sample_dataset("shapes", train=4, val=2)
    (ds.root / "yolopipe.yaml").write_text("epochs: 50\n")
    result = cli("upload", ds.root, "--name", "shapes", "--stack", "tight")
    assert result.code == 1
    assert "Epochs must be at most 20 on this stack (MaxEpochs)" in result.err, result.err
    assert aws["s3"].list_objects_v2(Bucket="yolopipe-unit-cli", Prefix="datasets/").get("KeyCount") == 0


def test_a_dataset_trains_on_as_many_instances_as_the_stack_allows() -> None:
    """GIVEN the default stack (MaxTrainingInstanceCount 1) and one deployed with 2
    WHEN a dataset's yolopipe.yaml asks for 2 instances, then 3
    THEN the default stack refuses 2 (each instance is billed), the wider one accepts 2 and refuses 3."""
    from yolopipe_shared.overrides import parse_overrides

    _, problems = parse_overrides("training_instance_count: 2\n", TEMPLATE_DEFAULT_LIMITS)
    assert [p.message for p in problems] == [
        "TrainingInstanceCount must be at most 1 on this stack (MaxTrainingInstanceCount: each instance is billed), "
        "got 2"]
    wider = StackLimits.from_stack_parameters({"MaxTrainingInstanceCount": "2"})
    accepted, problems = parse_overrides("training_instance_count: 2\n", wider)
    assert problems == [] and accepted["TrainingInstanceCount"] == 2
    _, problems = parse_overrides("training_instance_count: 3\n", wider)
    assert "at most 2 on this stack" in problems[0].message
