"""Training progress, job logs and cache hits as the CLI shows them, against the local mode's
emulator (CloudWatch Logs is moto's; the executor writes each job's output there as SageMaker
does) running the fake pipeline (tests/fake_pipeline.py: the real epoch line, no Ultralytics)."""

from __future__ import annotations

import json
import re
from typing import Any

import fake_pipeline
from conftest import BUCKET, ROLE_NAME

DATASET = f"s3://{BUCKET}/datasets/d/"


def _start(cli: Any, local: dict[str, Any], pipeline: str, *extra: str) -> str:
    result = cli("run", *local["args"], "--pipeline", pipeline, "--dataset", DATASET, "--json", *extra)
    assert result.code == 0, result.err
    return str(result.json()["execution_arn"])


def test_watch_off_a_terminal_prints_each_change_once_with_epoch_progress(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a 3-epoch run, watched with stdout in a file (not a terminal), polled many times
    arn = _start(cli, local, "good", "--epochs", "3")
    result = cli("watch", *local["args"], "--pipeline", "good", arn, "--interval", "0.05")
    # THEN each line says something new: no line twice, however many polls
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == len(set(lines)), result.out
    # and the Train job's epoch progress came from its CloudWatch Logs: epoch/total, mAP50-95, losses, images/s
    epochs = [line for line in lines if "Train: epoch" in line]
    assert epochs, result.out
    assert re.fullmatch(r"  Train: epoch 3/3  mAP50-95 0\.300  box 0\.67  cls 1\.50  dfl 1\.20  10 images/s",
                        epochs[-1]), epochs
    assert any(re.fullmatch(r"  Train: Succeeded after 0m\d\ds", line) for line in lines), result.out
    # and --json stays one plain JSON object per poll, the progress under "training"
    polled = cli("watch", *local["args"], "--pipeline", "good", arn, "--json")
    data = [json.loads(line) for line in polled.out.splitlines()]
    assert data[-1]["training"]["epoch"] == 3 and data[-1]["training"]["best_epoch"] == 3


def test_logs_print_the_jobs_own_output_and_report_links_each_job(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a run just started (its Train step may not have a job yet)
    arn = _start(cli, local, "good", "--epochs", "2")
    # WHEN the user follows the Train job's logs
    followed = cli("logs", *local["args"], "--pipeline", "good", arn, "--follow", "--interval", "0.1")
    # THEN it prints the job's lines, as the job wrote them, and returns once the step has ended
    assert followed.code == 0, followed.err
    assert followed.out.splitlines()[-2:] == [
        "epoch 1/2 train_seconds=0.1 images_per_second=10.0 box_loss=2.000 cls_loss=1.5 dfl_loss=1.2 map50=0.5 "
        "map50_95=0.10 best_epoch=1",
        "epoch 2/2 train_seconds=0.1 images_per_second=10.0 box_loss=1.000 cls_loss=1.5 dfl_loss=1.2 map50=0.5 "
        "map50_95=0.20 best_epoch=2"]
    # and the Evaluate job has its own (processing job group); a step without a job is a one-line error
    cli("watch", *local["args"], "--pipeline", "good", arn, "--interval", "0.05")
    assert cli("logs", *local["args"], "--pipeline", "good", arn, "--step", "Evaluate").code == 0
    refused = cli("logs", *local["args"], "--pipeline", "good", arn, "--step", "CheckQuality")
    assert refused.code == 1
    assert "has no job (steps with a job: Train, Evaluate)" in refused.err and len(refused.err.splitlines()) == 1

    # WHEN the user asks for the finished run's report
    report = cli("report", *local["args"], "--pipeline", "good", arn)
    data = cli("report", *local["args"], "--pipeline", "good", arn, "--json").json()
    # THEN each step's job is named, with its SageMaker console page and its CloudWatch Logs streams
    assert report.code == 0, report.err
    train, evaluate = data["jobs"]
    assert train["console_url"] == ("https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
                                    f"#/jobs/{train['job_name']}")
    assert train["logs_url"].endswith("#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs"
                                      f"$3FlogStreamNameFilter$3D{train['job_name']}")
    assert "#/processing-jobs/" in evaluate["console_url"] and "ProcessingJobs" in evaluate["logs_url"]
    assert f"Train job: {train['job_name']}" in report.out and "--step Evaluate" in report.out
    # and the training in numbers, from DescribeTrainingJob's FinalMetricDataList (the MetricDefinitions)
    assert re.search(r"^training: best epoch 2 of 2, 0m\d\ds training, 10 images/s$", report.out, re.M), report.out


def test_a_cached_train_step_says_which_execution_it_reused(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a pipeline whose Train step is cached, run twice with the same arguments
    definition = fake_pipeline.definition(BUCKET, f"arn:aws:iam::123456789012:role/{ROLE_NAME}")
    definition["Steps"][0]["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P30D"}
    local["sagemaker"].create_pipeline(PipelineName="cached", PipelineDefinition=json.dumps(definition),
                                       RoleArn=f"arn:aws:iam::123456789012:role/{ROLE_NAME}")
    first = _start(cli, local, "cached")
    assert cli("watch", *local["args"], "--pipeline", "cached", first, "--interval", "0.05").code == 0
    second = _start(cli, local, "cached")
    # WHEN the user watches and reports the second
    watched = cli("watch", *local["args"], "--pipeline", "cached", second, "--interval", "0.05")
    report = cli("report", *local["args"], "--pipeline", "cached", second)
    data = cli("report", *local["args"], "--pipeline", "cached", second, "--json").json()
    # THEN both say where Train came from, not an unexplained 0m00s
    first_id = first.rsplit("/", 1)[-1]
    assert f"  Train: Succeeded (reused from execution {first_id})" in watched.out.splitlines(), watched.out
    assert "Train: epoch" not in watched.out
    assert re.search(rf"^Train\s+Training\s+Succeeded\s+reused from execution {first_id}", report.out, re.M), report.out
    assert data["steps"][0]["reused_from"] == first_id and data["jobs"][0]["reused_from"] == first_id
    assert data["training"] == {}
