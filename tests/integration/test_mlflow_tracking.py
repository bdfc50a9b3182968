"""MLflow tracking against a real tracking server: `mlflow server` on 127.0.0.1 with a sqlite store,
a separate process, and the local mode with the stack's MlflowTrackingUri pointing at it.

One story (real Ultralytics, 1 epoch at 32 px on a generated dataset); the run is read back through
MLflow's own client. The server's access log says which MLflow APIs the jobs called: each must be an
action the execution role is granted on a SageMaker tracking server (template.yaml).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

#: MLflow REST endpoints -> the sagemaker-mlflow IAM action that authorizes them (the Service
#: Authorization Reference names the actions after MLflow's API calls).
ACTIONS = {
    "experiments/get-by-name": "GetExperimentByName", "experiments/create": "CreateExperiment",
    "experiments/get": "GetExperiment", "runs/create": "CreateRun", "runs/update": "UpdateRun",
    "runs/get": "GetRun", "runs/log-batch": "LogBatch", "runs/log-metric": "LogMetric",
    "runs/log-parameter": "LogParam", "runs/set-tag": "SetTag", "runs/search": "SearchRuns",
    "experiments/search": "SearchExperiments", "logged-models/search": "SearchLoggedModels",
    "metrics/get-history": "GetMetricHistory", "artifacts/list": "ListArtifacts",
}


def granted_mlflow_actions() -> set[str]:
    """The sagemaker-mlflow actions template.yaml grants the execution role."""
    from yolopipe.local.stack import load_template

    policy = load_template()["Resources"]["SageMakerMlflowPolicy"]["Properties"]["PolicyDocument"]
    actions = [a for s in policy["Statement"] if isinstance(s, dict) and "Action" in s for a in s["Action"]]
    return {a.split(":", 1)[1] for a in actions if a.startswith("sagemaker-mlflow:")}


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`mlflow server` with a sqlite store and served artifacts; yields its URI and its access log."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "mlflow-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:  # noqa: S310 (our server)
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield uri, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn worker (their own group)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def test_a_tracked_run_has_parameters_epochs_evaluation_and_model_in_mlflow(
    run_locally: Any, sample_dataset: Any, tracking_server: tuple[str, Path]
) -> None:
    from mlflow import MlflowClient

    uri, access_log = tracking_server
    # GIVEN a stack whose MlflowTrackingUri is a running MLflow tracking server
    dataset = sample_dataset(train=8, val=4, test=4, imgsz=32)
    # WHEN a dataset is uploaded and the pipeline trains (1 epoch) and evaluates it
    result, lines = run_locally(dataset.root, epochs=1, imgsz=32, min_map50_95=0.0,
                                overrides={"MlflowTrackingUri": uri, "BatchSize": 4})
    assert result.status == "Succeeded", "\n".join(lines[-40:])
    jobs_calls = access_log.read_text()  # before this test's own reads
    execution_id = result.execution_arn.rsplit("/", 1)[-1]
    # THEN evaluation.json names the run, and the run is named after the execution
    evaluation = json.loads((result.output_dir / "evaluation.json").read_text())
    tracked = evaluation["mlflow"]
    assert tracked, "the jobs could not track; the server said:\n" + access_log.read_text()[-3000:]
    assert tracked["run_name"] == execution_id and tracked["url"].startswith(f"{uri}/#/experiments/")
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(tracked["run_id"])
    assert run.info.run_name == execution_id and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "yolopipe-local"
    # AND Ultralytics' callback logged the training parameters and each epoch's metrics
    assert run.data.params["epochs"] == "1" and run.data.params["imgsz"] == "32"
    history = client.get_metric_history(run.info.run_id, "metrics/mAP50-95B")
    assert [m.step for m in history] == [0] or len(history) >= 1
    assert "train/box_loss" in run.data.metrics
    # AND the evaluation metrics (headline and per class) are in the same run
    assert run.data.metrics["eval/map50_95"] == pytest.approx(evaluation["metrics"]["map50_95"])
    assert {f"eval/{c}/map50" for c in ("square", "disc", "bar")} <= set(run.data.metrics)
    # AND the model, the training plots and the evaluation are its artifacts
    weights = {a.path for a in client.list_artifacts(run.info.run_id, "weights")}
    assert "weights/best.pt" in weights
    evaluated = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/evaluation.json" in evaluated and any(p.endswith(".png") for p in evaluated)
    # AND the team's messages link to it
    assert any(tracked["url"] in json.dumps(message) for message in result.slack_messages)
    assert any(tracked["url"] in email.body for email in result.emails)
    # AND every MLflow API the jobs called is an action the execution role is granted on a
    # SageMaker MLflow tracking server (and nothing more is granted than was called or documented)
    called = set(re.findall(r'"(?:GET|POST|PATCH) /api/2\.0/mlflow/([a-z\-]+/[a-z\-]+)', jobs_calls))
    unknown = called - set(ACTIONS)
    assert not unknown, f"map these MLflow endpoints to sagemaker-mlflow actions: {unknown}"
    assert {ACTIONS[endpoint] for endpoint in called} <= granted_mlflow_actions(), called
