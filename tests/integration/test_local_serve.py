"""`yolopipe local serve` + the CLI's `--local`: what a user does day to day, without an account.

GIVEN the local stack served on 127.0.0.1, WHEN a user uploads a dataset with `yolopipe upload
--local` and follows it with `yolopipe watch latest --local`, THEN the upload alone starts the
training (data.yaml written last), watch ends with the execution Succeeded, and `report`
shows the metrics and the registered model package.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_upload_with_the_cli_trains_and_watch_follows_it(served: Any, sample_dataset: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from yolopipe.cli import main as yolopipe

    server, lines = served
    # GIVEN a small dataset asking for one quick epoch in its yolopipe.yaml
    dataset = sample_dataset("shapes", train=8, val=4)
    (dataset.root / "yolopipe.yaml").write_text("epochs: 1\nimage_size: 64\nbatch_size: 8\n")
    # WHEN the user uploads it and watches the latest execution
    assert yolopipe(["upload", str(dataset.root), "--name", "shapes", "--local"]) == 0
    for _ in range(300):  # S3 -> trigger -> StartPipelineExecution takes a moment, as on AWS
        if any("trigger: started" in line for line in lines):
            break
        threading.Event().wait(0.2)
    watched = yolopipe(["watch", "latest", "--local"])
    # THEN the execution the upload started ends Succeeded
    output = capsys.readouterr()
    assert watched == 0, output.out + output.err + "\n".join(lines)
    assert yolopipe(["report", "latest", "--local"]) == 0
    report = capsys.readouterr().out
    assert "mAP50-95" in report or "map50_95" in report, report
    assert "model-package/yolopipe-local-models/1" in report, report
    # and the server showed the notifications and kept the artifacts
    for _ in range(50):
        if server.finished:
            break
        threading.Event().wait(0.2)
    assert [r.status for r in server.finished] == ["Succeeded"]
    assert (server.finished[0].output_dir / "model" / "best.pt").is_file()
    shown = "\n".join(lines)
    assert "─ Slack" in shown and "Training succeeded: shapes" in shown
    _progress_logs_and_cache_hits_are_visible(yolopipe, server, lines, output.out, capsys)


def _progress_logs_and_cache_hits_are_visible(yolopipe: Any, server: Any, lines: list[str], watched: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13, items 1, 2 and 7 on the execution the test above ran (no second training)."""
    import re

    from yolopipe import Yolopipe

    first = Yolopipe(local=True).status("latest")
    first_id = first.arn.rsplit("/", 1)[-1]
    # THEN watch (not a terminal) showed the Train job's epoch line, once, read from CloudWatch Logs
    assert len(re.findall(r"Train YOLO11: epoch 1/1  mAP50-95 \d\.\d{3}  box \d+\.\d\d  cls", watched)) == 1, watched
    assert re.search(r"Train YOLO11: Succeeded after \dm\d\ds", watched), watched
    # and the notice carried the best epoch, the training time, images/s and the job's links
    shown = "\n".join(lines)
    assert re.search(r"best epoch 1 of 1, \dm\d\ds training, [0-9.]+ images/s", shown), shown[-3000:]
    assert "#/jobs/pipelines-" in shown, shown[-3000:]
    assert "logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs" in shown

    # WHEN the user asks for the Train and Evaluate jobs' output (--follow on a finished job ends)
    assert yolopipe(["logs", "latest", "--local"]) == 0
    train_log = capsys.readouterr().out
    assert yolopipe(["logs", first_id, "--step", "Evaluate", "--follow", "--local"]) == 0
    evaluate_log = capsys.readouterr().out
    # THEN they are the jobs' own lines, from the emulator's CloudWatch Logs
    assert re.search(r"^epoch 1/1 .*map50_95=", train_log, re.M) and "\ndone map50_95=" in train_log, train_log
    assert "evaluation split=" in evaluate_log, evaluate_log
    # and report names each job with its console page and its logs
    assert yolopipe(["report", first_id, "--local"]) == 0
    report = capsys.readouterr().out
    assert re.search(r"^Train YOLO11 job: pipelines-\S+$", report, re.M) and "  logs:    https://" in report, report
    assert re.search(r"^training: best epoch 1 of 1, \dm\d\ds training", report, re.M), report

    # GIVEN the same execution started again (same parameters: SageMaker's step cache serves Train),
    # stopped once Train is served
    yp = Yolopipe(local=True)
    sm = yp.aws.client("sagemaker")
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=first.arn)["PipelineParameters"]
    again = sm.start_pipeline_execution(PipelineName=yp.aws.pipeline_name(), PipelineParameters=params,
                                        ClientRequestToken=f"retry-{first_id}".ljust(32, "0"))["PipelineExecutionArn"]
    for _ in range(300):
        train = yp.status(again).step("Train")
        if train is not None and train.status == "Succeeded":
            break
        threading.Event().wait(0.1)
    assert yolopipe(["stop", again, "--local"]) == 0  # Evaluate is never cached: no need to wait for it
    capsys.readouterr()
    # WHEN the user watches and reports it
    assert yolopipe(["watch", again, "--local", "--interval", "0.5"]) == 1  # Stopped
    watched_again = capsys.readouterr().out
    assert yolopipe(["report", again, "--local"]) == 0
    report_again = capsys.readouterr().out
    # THEN both say where Train came from instead of an unexplained 0m00s, and so does the notice
    assert f"Train YOLO11: Succeeded (reused from execution {first_id})" in watched_again, watched_again
    assert "Train YOLO11 job: " in report_again and f"reused from execution {first_id}" in report_again, report_again
    for _ in range(50):
        if len(server.finished) >= 2:
            break
        threading.Event().wait(0.2)
    assert f"reused from execution {first_id} (step cache" in "\n".join(lines)[len(shown):]
