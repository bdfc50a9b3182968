"""`yolopipe run / executions list / watch / report / compare / stop / pipelines list`.

Against the local mode's emulator (real execution status, steps, stop; the CLI talks to it
through --endpoint-url) and against moto (stack discovery, parameters sent).
"""

from __future__ import annotations

import re
import time
from typing import Any

BUCKET = "yolopipe-unit-cli"  # as tests/unit/cli/conftest.py creates them
PIPELINE = "yolopipe-unit-cli"
DATASET = f"s3://{BUCKET}/datasets/d/"


def _start(cli: Any, local: dict[str, Any], pipeline: str, *extra: str) -> str:
    result = cli("run", *local["args"], "--pipeline", pipeline, "--dataset", DATASET, "--json", *extra)
    assert result.code == 0, result.err
    return str(result.json()["execution_arn"])


def test_run_then_watch_succeeds_and_report_shows_metrics_per_class_and_model(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a deployed pipeline whose model scores 0.7 against the default 0.5 gate
    # WHEN a user starts it with --epochs 2 and watches it
    started = cli("run", *local["args"], "--pipeline", "good", "--dataset", DATASET, "--epochs", "2",
                  "--watch", "--interval", "0.2")
    # THEN watch ends with exit 0 on Succeeded, having shown the step table
    assert started.code == 0, started.err
    assert "Succeeded after" in started.out
    for step in ("Train", "Evaluate", "CheckQuality", "Register"):
        assert step in started.out
    # AND report shows the parameters used, the metrics, the per-class table, the model package
    report = cli("report", *local["args"], "--pipeline", "good", "latest")
    assert report.code == 0, report.err
    lines = report.out.splitlines()
    assert any(re.fullmatch(r"Epochs\s+2", line) for line in lines)
    # AND the run was pinned to the data.yaml version it found, as the trigger does
    assert any(re.fullmatch(r"DatasetVersion\s+\S+", line) for line in lines)
    assert "0.7000" in report.out and "square" in report.out and "disc" in report.out
    assert "PendingManualApproval" in report.out
    data = cli("report", *local["args"], "--pipeline", "good", "latest", "--json").json()
    assert data["status"] == "Succeeded"
    assert data["parameters"]["Epochs"] == 2
    assert data["parameters"]["DatasetS3Uri"] == DATASET
    assert data["metrics"] == {"map50_95": 0.7, "map50": 0.9, "precision": 0.8, "recall": 0.75}
    assert [c["name"] for c in data["per_class"]] == ["square", "disc"]
    assert data["model_package"]["approval_status"] == "PendingManualApproval"
    assert data["artifacts"]["Train.model"].endswith("/output/model.tar.gz")
    assert data["artifacts"]["evaluation.json"].startswith(f"s3://{BUCKET}/evaluations/")


def test_watch_exits_non_zero_with_the_quality_gate_reason(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN an execution whose model scores 0.25 against the 0.5 gate
    arn = _start(cli, local, "poor")
    # WHEN the user watches it by its short id
    result = cli("watch", *local["args"], "--pipeline", "poor", arn.rsplit("/", 1)[-1], "--interval", "0.2")
    # THEN watch exits 1 and the failed step's reason names the metric and the threshold
    assert result.code == 1
    assert "Failed after" in result.out
    assert "QualityGateFailed" in result.out and "0.25 < 0.5" in result.out


def test_stop_stops_a_running_execution_and_watch_says_so(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN an execution whose training takes a minute
    arn = _start(cli, local, "slow")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until its training step is running
        steps = local["sagemaker"].list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
        if steps:
            break
        time.sleep(0.1)
    # WHEN the user stops it
    stopped = cli("stop", *local["args"], "--pipeline", "slow", "latest")
    # THEN it is stopping, and watch ends with exit 1 on Stopped well before the minute is up
    assert stopped.code == 0, stopped.err
    assert "stopping" in stopped.out
    began = time.monotonic()
    watched = cli("watch", *local["args"], arn, "--interval", "0.2", "--timeout", "30")
    assert watched.code == 1, watched.err
    assert "Stopped after" in watched.out
    assert time.monotonic() - began < 30
    # AND stopping it again says it already ended
    again = cli("stop", *local["args"], arn)
    assert again.code == 0 and "already ended: Stopped" in again.out


def test_compare_puts_metrics_and_differing_parameters_side_by_side(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN two finished executions of the same pipeline with different epochs
    first = _start(cli, local, "good", "--epochs", "1")
    local["executor"].wait(first, 30)
    second = _start(cli, local, "good", "--epochs", "3")
    local["executor"].wait(second, 30)
    # WHEN the user compares them
    result = cli("compare", *local["args"], "--pipeline", "good", first.rsplit("/", 1)[-1], second)
    # THEN one table shows both ids, the metrics and the parameter that differs (Epochs), not the others
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert first.rsplit("/", 1)[-1] in header and second.rsplit("/", 1)[-1] in header
    epochs = next(r for r in rows if r.startswith("Epochs"))
    assert epochs.split()[1:] == ["1", "3"]
    assert any(r.startswith("mAP50-95") and r.split()[1:] == ["0.7000", "0.7000"] for r in rows)
    assert not any(r.startswith("ImageSize") for r in rows)


def test_executions_list_shows_newest_first(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN two executions, one failed and one succeeded
    first = _start(cli, local, "poor")
    local["executor"].wait(first, 30)
    second = _start(cli, local, "poor", "--min-map50-95", "0.1", "--lower-gate")
    local["executor"].wait(second, 30)
    # WHEN the user lists the pipeline's executions
    result = cli("executions", "list", *local["args"], "--pipeline", "poor", "--json")
    # THEN both appear, newest first, with their statuses
    rows = result.json()
    assert [r["arn"] for r in rows] == [second, first]
    assert [r["status"] for r in rows] == ["Succeeded", "Failed"]


def test_unknown_execution_is_one_line_exit_3(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a pipeline without such an execution
    # WHEN the user watches a made-up id
    result = cli("watch", *local["args"], "--pipeline", "good", "nosuchexec123")
    # THEN exit 3 and one line that points to `executions list`, no traceback
    assert result.code == 3
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "executions list" in result.err


def test_unknown_pipeline_is_one_line_exit_3(cli: Any, local: dict[str, Any]) -> None:
    result = cli("executions", "list", *local["args"], "--pipeline", "nope")
    assert result.code == 3
    assert result.err.count("\n") == 1 and "pipelines list" in result.err


def test_watch_in_a_pipe_prints_each_change_once(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a running execution (stdout is not a terminal here)
    arn = _start(cli, local, "good")
    # WHEN the user watches it with fast polls
    result = cli("watch", *local["args"], arn, "--interval", "0.05")
    # THEN every table printed differs from the one before (no repeated frames) and it ends Succeeded
    frames = [f for f in result.out.split("\n\n") if f.strip()]
    assert result.code == 0
    assert len(frames) == len(set(frames))
    assert result.out.rstrip().splitlines()[-2].startswith("Succeeded after")


# --- moto: the stack gives the bucket and pipeline ------------------------------------------------

def test_run_sends_only_the_given_parameters_to_the_stack_pipeline(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN the stack (found by name, no --bucket/--pipeline) and an uploaded dataset named by its short name
    put = aws["s3"].put_object(Bucket=BUCKET, Key="datasets/cats/data.yaml", Body=b"names: [cat]\n")
    version = put.get("VersionId") or put["ETag"].strip('"')
    # WHEN the user starts a run with two overrides
    result = cli("run", "--dataset", "cats", "--epochs", "5", "--variant", "s")
    # THEN an execution of the stack's pipeline starts with just those parameters, the dataset URI
    # and the data.yaml version it trains (the training cache key)
    assert result.code == 0, result.err
    executions = aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert len(executions) == 1
    sent = aws["sagemaker"].list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[0]["PipelineExecutionArn"])["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in sent} == {
        "DatasetS3Uri": f"s3://{BUCKET}/datasets/cats/", "ModelVariant": "s", "Epochs": "5",
        "DatasetVersion": version, "DatasetName": "cats"}


def test_run_dry_run_starts_nothing_and_shows_every_effective_value(cli: Any, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key="datasets/cats/data.yaml", Body=b"names: [cat]\n")
    result = cli("run", "--dataset", f"s3://{BUCKET}/datasets/cats", "--image-size", "320", "--dry-run")
    assert result.code == 0, result.err
    assert "would start pipeline" in result.out
    assert "ImageSize" in result.out and "320" in result.out and "(default)" in result.out
    assert aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []


def test_run_on_a_dataset_without_data_yaml_is_refused(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN a dataset prefix holding images but no data.yaml (an unfinished or --no-trigger upload)
    aws["s3"].put_object(Bucket=BUCKET, Key="datasets/half/images/train/a.jpg", Body=b"jpeg")
    # WHEN the user starts a run on it
    result = cli("run", "--dataset", "half")
    # THEN nothing starts, and one line says to upload the dataset first
    assert result.code == 3  # the README's "not found"
    assert result.err.count("\n") == 1 and "no data.yaml" in result.err and "yolopipe upload" in result.err
    assert aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []


def test_bad_parameter_is_refused_before_any_aws_call(cli: Any, monkeypatch: Any) -> None:
    # GIVEN no AWS at all (no credentials, an unreachable endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    # WHEN the user asks for an image size that is not a multiple of 32, or an unknown variant
    odd = cli("run", "--dataset", "s3://b-ucket/datasets/x/", "--image-size", "500")
    variant = cli("run", "--dataset", "s3://b-ucket/datasets/x/", "--variant", "q")
    # THEN exit 2 with one line naming the parameter and the rule
    assert odd.code == 2 and variant.code == 2
    assert odd.err.count("\n") == 1 and "ImageSize must be a multiple of 32" in odd.err
    assert "ModelVariant must be one of n, s, m, l, x" in variant.err


def test_pipelines_list_shows_the_deployed_pipeline(cli: Any, aws: dict[str, Any]) -> None:
    result = cli("pipelines", "list")
    assert result.code == 0, result.err
    assert PIPELINE in result.out
    assert [p["name"] for p in cli("pipelines", "list", "--json").json()] == [PIPELINE]


def test_global_options_work_after_the_command_too(cli: Any, aws: dict[str, Any]) -> None:
    before = cli("--json", "pipelines", "list")
    after = cli("pipelines", "list", "--json")
    assert before.code == after.code == 0
    assert before.json() == after.json()


def test_watch_timeout_gives_up_with_exit_1(cli: Any, local: dict[str, Any]) -> None:
    arn = _start(cli, local, "slow")
    result = cli("watch", *local["args"], arn, "--interval", "0.1", "--timeout", "0.5")
    assert result.code == 1
    assert "still Executing" in result.err
    assert cli("stop", *local["args"], arn).code == 0


def test_local_flag_needs_no_credentials(cli: Any, local: dict[str, Any], monkeypatch: Any, tmp_path: Any) -> None:
    # GIVEN no AWS credentials at all, and the local emulator's endpoint in YOLOPIPE_LOCAL_ENDPOINT
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("YOLOPIPE_LOCAL_ENDPOINT", local["endpoint"])
    # WHEN the user lists pipelines with --local
    result = cli("pipelines", "list", "--local", "--json")
    # THEN the emulator's pipelines are listed
    assert result.code == 0, result.err
    assert sorted(p["name"] for p in result.json()) == ["good", "poor", "slow"]


def test_watch_on_a_terminal_redraws_the_table_in_place(cli: Any, local: dict[str, Any], monkeypatch: Any) -> None:
    import sys

    # GIVEN a terminal (stdout is a TTY) and a running execution
    arn = _start(cli, local, "good")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    # WHEN the user watches it
    result = cli("watch", *local["args"], arn, "--interval", "0.1")
    # THEN rich's live display redraws each frame over the previous one (erase line, cursor up)
    # and the last frame is the final step table
    assert result.code == 0
    frames = re.split(r"(?:\r?\x1b\[2K\x1b\[1A)+\x1b\[2K", result.out)
    assert len(frames) >= 2
    assert "Register" in frames[-1] and "Succeeded" in frames[-1]
