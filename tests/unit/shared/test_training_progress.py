"""What the epoch lines of a training job's log make of its progress (watch's epoch line, ETA, best
epoch), and the MetricDefinitions CreateTrainingJob accepts (botocore's model: at most 40, names
1-255 and regexes 1-500 characters)."""

from __future__ import annotations

import boto3

from yolopipe.local.strict import check_request
from yolopipe_shared.training_progress import METRIC_DEFINITIONS, progress_from_events


def line(epoch: int, total: int, map50_95: float, best: int) -> str:
    return (f"epoch {epoch}/{total} train_seconds=9.5 images_per_second={40 + epoch}.0 box_loss=1.2 cls_loss=0.8 "
            f"dfl_loss=1.1 map50=0.6 map50_95={map50_95} best_epoch={best}")


def test_progress_gives_the_latest_epoch_an_eta_and_the_best_epoch_from_the_log() -> None:
    # GIVEN a 10-epoch job's log: noise, epochs 1-3 a minute apart, epoch 3 repeated after a spot resume
    events = [{"timestamp": 0, "message": "Starting training for 10 epochs..."},
              {"timestamp": 60_000, "message": line(1, 10, 0.1, 1)},
              {"timestamp": 120_000, "message": line(2, 10, 0.3, 2)},
              {"timestamp": 150_000, "message": line(3, 10, 0.2, 2)},
              {"timestamp": 180_000, "message": "      3/10  1.2G  1.2  0.8  1.1  12  96: 100%"},
              {"timestamp": 240_000, "message": line(3, 10, 0.25, 2)}]
    # WHEN it is read
    progress = progress_from_events("job", events)
    # THEN the latest line of each epoch counts once, the ETA is the pace so far times the epochs left,
    # and the best epoch is the one Ultralytics kept (best.pt), not the latest
    assert [e.epoch for e in progress.epochs] == [1, 2, 3]
    assert progress.latest is not None and progress.latest.values["map50_95"] == 0.25
    assert progress.eta_s == 90.0 * 7
    assert progress.best is not None and progress.best.epoch == 2
    assert progress.images_per_second == 42.5  # the median after the warm-up epoch
    assert progress.to_dict()["epoch"] == 3 and progress.to_dict()["epochs"] == 10


def test_nothing_logged_yet_is_no_progress_not_an_error() -> None:
    progress = progress_from_events("job", [{"timestamp": 1, "message": "epoch 0/0 nothing"}])
    assert progress.latest is None and progress.eta_s is None and progress.best is None


def test_createtrainingjob_accepts_the_metric_definitions() -> None:
    # GIVEN the Train step's MetricDefinitions WHEN checked as CreateTrainingJob's, by AWS's model THEN accepted
    check_request("sagemaker", "CreateTrainingJob", {
        "TrainingJobName": "j", "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File",
                                   "MetricDefinitions": METRIC_DEFINITIONS},
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}},
        region="us-east-1")
    shape = boto3.client("sagemaker", region_name="us-east-1").meta.service_model.shape_for("MetricDefinitionList")
    assert len(METRIC_DEFINITIONS) <= shape.metadata["max"]
