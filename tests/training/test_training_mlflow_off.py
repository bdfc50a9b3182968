"""MLflow tracking is off unless the pipeline's MlflowTrackingUri is set: then nothing imports mlflow
(installed here: the SageMaker SDK brings it), so nothing can call out. Tracking on is tested against a
real tracking server in tests/integration/test_mlflow_tracking.py."""

from __future__ import annotations

import json
import subprocess
import sys

from training_harness import EVALUATE, Job


def _imported(stderr: str) -> set[str]:
    """Module names from `python -X importtime`'s report."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_without_a_tracking_uri_neither_job_imports_mlflow(make_dataset, tmp_path):
    """GIVEN mlflow installed, and MLflow's own MLFLOW_TRACKING_URI pointing at a port nothing listens on
    WHEN train.py and evaluate.py run as the pipeline starts them with MlflowTrackingUri empty
    THEN both succeed without importing mlflow, and evaluation.json says the run was not tracked."""
    sample = make_dataset("mlflow-off", train=4, val=4, imgsz=32)
    job = Job(tmp_path / "job", sample.root)
    job.root.mkdir(parents=True)
    env = job.env(MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    train = subprocess.run(
        [sys.executable, "-X", "importtime", *job.argv("--epochs", "1", "--imgsz", "32", "--batch", "4",
                                                       "--plots", "false", "--mlflow_tracking_uri", "")[1:]],
        env=env, cwd=job.root, capture_output=True, text=True, timeout=600, check=False)
    assert train.returncode == 0, train.stderr[-3000:]
    evaluate = subprocess.run(
        [sys.executable, "-X", "importtime", str(EVALUATE), "--model", str(job.model_dir), "--data",
         str(sample.root), "--output", str(tmp_path / "evaluation"), "--mlflow-tracking-uri", "",
         "--mlflow-run-name", "execution-1"],
        env=env, cwd=job.root, capture_output=True, text=True, timeout=600, check=False)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    for done in (train, evaluate):
        modules = _imported(done.stderr)
        assert "ultralytics" in modules  # the report is complete
        assert not {m for m in modules if m.split(".")[0] in ("mlflow", "sagemaker_mlflow")}
    assert not (job.model_dir / "mlflow_run.json").exists()
    assert json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())["mlflow"] is None
