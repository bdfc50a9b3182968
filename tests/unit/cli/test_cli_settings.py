"""`yolopipe run` with Ultralytics' own setting names, the Weights parameter and the quality gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, PIPELINE


def _sent(aws: dict[str, Any]) -> dict[str, str]:
    executions = aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert len(executions) == 1
    items = aws["sagemaker"].list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[0]["PipelineExecutionArn"])["PipelineParameters"]
    return {p["Name"]: p["Value"] for p in items}


def test_any_ultralytics_setting_by_its_own_name_reaches_one_json_parameter(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN an uploaded dataset
    aws["s3"].put_object(Bucket=BUCKET, Key="datasets/cats/data.yaml", Body=b"names: [cat]\n")
    # WHEN the user sets Ultralytics settings by their own names, and a parameter by its Ultralytics name
    result = cli("run", "--dataset", "cats", "--set", "patience=20", "--set", "optimizer=AdamW",
                 "--set", "mosaic=0.5", "--imgsz", "320", "--weights", "scratch")
    # THEN the execution gets ImageSize, Weights and one compact JSON object of the settings, typed
    assert result.code == 0, result.err
    sent = _sent(aws)
    assert sent["ImageSize"] == "320" and sent["Weights"] == "scratch"
    assert json.loads(sent["UltralyticsSettings"]) == {"mosaic": 0.5, "optimizer": "AdamW", "patience": 20}


def test_a_wrong_setting_is_refused_before_any_aws_call_with_a_close_match(cli: Any) -> None:
    # GIVEN no AWS at all WHEN settings are misspelt, mistyped, reserved or out of range
    cases = {
        ("--set", "patiense=20"): "did you mean 'patience'?",
        ("--set", "mosaic=2"): "mosaic must be between 0.0 and 1.0",
        ("--set", "amp=maybe", "--set", "cos_lr=sometimes"): "cos_lr must be true or false",
        ("--set", "device=0"): "'device' cannot be set: the training instance decides",
        ("--set", "epochs=5000"): "Epochs must be at most 1000",
        ("--set", "optimizer=auto", "--lr0", "0.05"): "optimizer=auto ignores lr0",
        ("--set", "patience"): "write KEY=VALUE",
        ("--weights", "s3://bucket/model.zip"): "must name a .pt file or a model.tar.gz",
    }
    for args, message in cases.items():
        result = cli("run", "--dataset", "s3://b/datasets/x/", *args)
        # THEN each is one line, exit 2, saying what to do
        assert result.code == 2, (args, result.err)
        assert message in result.err and len(result.err.strip().splitlines()) == 1, (args, result.err)


def test_the_gate_is_lowered_only_on_purpose_and_then_flagged(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN the stack's pipeline with its quality gate (MinMap50_95 default 0.5) and a dataset
    aws["s3"].put_object(Bucket=BUCKET, Key="datasets/cats/data.yaml", Body=b"names: [cat]\n")
    # WHEN a run asks for a lower gate without saying so
    refused = cli("run", "--dataset", "cats", "--min-map50-95", "0.3")
    # THEN nothing starts, and the one line says how to lower it on purpose
    assert refused.code == 2 and "--lower-gate" in refused.err
    assert not aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    # AND a higher gate needs no flag
    assert cli("run", "--dataset", "cats", "--min-map50-95", "0.6", "--dry-run").code == 0
    # WHEN it says so
    started = cli("run", "--dataset", "cats", "--min-map50-95", "0.3", "--lower-gate")
    # THEN it starts, with a warning
    assert started.code == 0, started.err
    assert "quality gate lowered to 0.3 for this run (the stack's MinMap50_95 is 0.5)" in started.err
    assert _sent(aws)["MinMap50_95"] == "0.3"


def test_report_flags_a_lowered_gate_and_the_next_run_can_start_from_that_model(cli: Any,
                                                                               local: dict[str, Any]) -> None:
    # GIVEN an execution run with --lower-gate on a pipeline whose gate is 0.5; it registers a model
    started = cli("run", *local["args"], "--pipeline", "good", "--dataset", f"s3://{BUCKET}/datasets/d/",
                  "--min-map50-95", "0.25", "--lower-gate", "--watch", "--interval", "0.2")
    assert started.code == 0, started.err
    # WHEN the user reads its report
    report = cli("report", *local["args"], "--pipeline", "good", "latest")
    # THEN it warns that the gate was lowered, and by how much
    assert "warning: quality gate lowered to 0.25 for this run (the stack's MinMap50_95 is 0.5)" in report.out
    # WHEN the next run names that execution (`latest`) as its starting point ("retrain on new data")
    planned = cli("run", *local["args"], "--pipeline", "good", "--dataset", f"s3://{BUCKET}/datasets/d/",
                  "--weights", "latest", "--dry-run", "--json").json()
    # THEN it starts from that execution's registered model package
    assert ":model-package/" in planned["parameters"]["Weights"], planned["parameters"]


def test_weights_stage_offline_fails_in_one_line(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN no internet (YOLO_OFFLINE, as every test runs) and no yolo11s.pt in Ultralytics' weights folder
    from ultralytics.utils import SETTINGS

    if (Path(SETTINGS["weights_dir"]) / "yolo11s.pt").is_file():
        pytest.skip("yolo11s.pt is at hand here: it would be staged")
    # WHEN the user stages the official weights
    result = cli("weights", "stage", "s")
    # THEN one line says why not and what to do, and nothing is uploaded
    assert result.code == 1, result.err
    assert "offline (YOLO_OFFLINE): yolo11s.pt is not in" in result.err and len(result.err.strip().splitlines()) == 1
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="weights/")
