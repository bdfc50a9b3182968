"""Optional MLflow tracking of a training job and its evaluation, through Ultralytics' own MLflow callback.

Off unless the job is given a tracking URI (the pipeline's MlflowTrackingUri): then nothing imports
mlflow and nothing calls out. On:

  train.py     `start_training_run`: creates the run (named after the training job, which SageMaker
               Pipelines names `pipelines-<execution id>-Train-...`) and points Ultralytics' callback at
               it through MLflow's own variables (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME,
               MLFLOW_RUN_ID resumes it in whichever process trains, DDP's rank 0 included). The
               callback logs the parameters, every epoch's metrics, the weights and the plots, and
               ends the run. `RUN_FILE` in the model dir (hence in model.tar.gz) names the run.
  evaluate.py  `log_evaluation`: resumes that run by id, names it after the pipeline execution, logs
               the evaluation metrics (`eval/...`), evaluation.json and the evaluation plots. A Train
               step reused from the step cache has its run claimed by the execution that trained it:
               the evaluation then goes to a new run named after this execution, tagged with the
               training run's id. Its answer is evaluation.json's `mlflow` entry (the link the
               notifier and `yolopipe report` show).

A SageMaker MLflow tracking server ARN needs the `sagemaker-mlflow` plugin (SigV4 auth and the ARN's
URL). The DLC image has neither package: when tracking is on and they are missing, REQUIREMENTS_FILE
is pip-installed first (tracking off costs nothing). Tracking never fails a job: a server that cannot
be reached or refuses is one warning line, as with Ultralytics' callback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Beside best.pt in the model dir: which run trained the model.
RUN_FILE = "mlflow_run.json"
#: Installed only when tracking is on and the image lacks the client.
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "requirements-mlflow.txt"
#: The experiment when the pipeline names none.
DEFAULT_EXPERIMENT = "yolopipe"
#: Run tags: the pipeline execution that owns the run, and the run that trained a reused model.
EXECUTION_TAG = "yolopipe.pipeline_execution"
TRAINED_IN_TAG = "yolopipe.trained_in_run"
_RUN_NAME_TAG = "mlflow.runName"
_METRIC_KEY_REFUSED = re.compile(r"[^\w\-. /]+")


@dataclass(frozen=True)
class TrackedRun:
    """An MLflow run and where it lives; `url` opens it in the MLflow UI (None for a SageMaker
    tracking server, whose UI opens through a presigned URL from SageMaker Studio or the console)."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    run_name: str

    @property
    def url(self) -> str | None:
        if is_sagemaker_server(self.tracking_uri):
            return None
        return f"{self.tracking_uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "url": self.url}


def is_sagemaker_server(uri: str) -> bool:
    return uri.startswith("arn:")


def warn(message: str) -> None:
    print(f"mlflow: {message}; the job goes on without tracking", file=sys.stderr, flush=True)


def ensure_client(uri: str) -> None:
    """Install the MLflow client (and the SageMaker plugin) when this environment lacks them."""
    import importlib.util

    needed = ["mlflow", *(["sagemaker_mlflow"] if is_sagemaker_server(uri) else [])]
    if all(importlib.util.find_spec(name) is not None for name in needed):
        return
    print(f"mlflow: installing {REQUIREMENTS_FILE.name} (tracking is on)", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS_FILE)], check=True)
    importlib.invalidate_caches()


def _client(uri: str) -> Any:
    ensure_client(uri)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return str(found.experiment_id) if found is not None else str(client.create_experiment(name))


def start_training_run(uri: str, *, experiment: str | None, run_name: str, tags: Mapping[str, str],
                       model_dir: Path) -> TrackedRun | None:
    """Create the run and hand it to Ultralytics' MLflow callback (its settings switch included)."""
    try:
        client = _client(uri)
        experiment = experiment or DEFAULT_EXPERIMENT
        experiment_id = _experiment_id(client, experiment)
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    except Exception as exc:  # noqa: BLE001 (tracking never fails training)
        warn(f"cannot start a run at {uri} ({type(exc).__name__}: {exc})")
        return None
    tracked = TrackedRun(uri, experiment_id, run.info.run_id, run.info.run_name or run_name)
    os.environ.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": experiment,
                       "MLFLOW_RUN_ID": tracked.run_id, "MLFLOW_RUN": tracked.run_name})
    # Ultralytics' callback skips logging when it believes it runs under pytest or GitHub Actions
    # (PYTEST_CURRENT_TEST inherited by a job started from a test, for one); a job asked to track tracks.
    from ultralytics.utils.callbacks import mlflow as ultralytics_mlflow

    ultralytics_mlflow.TESTS_RUNNING = False
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / RUN_FILE).write_text(json.dumps(asdict(tracked), indent=1))
    print(f"mlflow: run {tracked.run_name} ({tracked.run_id}) in experiment {experiment} at {uri}", flush=True)
    return tracked


def read_run_file(folder: Path) -> TrackedRun | None:
    """The run that trained the model in `folder` (its RUN_FILE, anywhere below), or None."""
    for path in sorted(folder.rglob(RUN_FILE)) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            return TrackedRun(str(doc["tracking_uri"]), str(doc["experiment_id"]), str(doc["run_id"]),
                              str(doc["run_name"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def _metric_key(*parts: str) -> str:
    return "/".join(_METRIC_KEY_REFUSED.sub("_", part).strip() or "_" for part in parts)[:250]


def evaluation_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """evaluation.json's numbers as MLflow metrics: `eval/map50_95`, `eval/<class>/map50_95`, ..."""
    metrics = {_metric_key("eval", name): float(value) for name, value in (report.get("metrics") or {}).items()}
    for row in report.get("per_class") or []:
        for name in ("map50_95", "map50", "precision", "recall"):
            if name in row:
                metrics[_metric_key("eval", str(row.get("name")), name)] = float(row[name])
    improvement = (report.get("comparison") or {}).get("improvement")
    if (report.get("baseline") or None) is not None and improvement is not None:
        metrics["eval/improvement_over_approved"] = float(improvement)
    return metrics


def log_evaluation(uri: str, *, model_dir: Path, experiment: str | None, execution: str | None,
                   report: Mapping[str, Any], plots: Iterable[Path]) -> dict[str, Any] | None:
    """Log the evaluation to the run that trained the model (or this execution's own run); returns
    evaluation.json's `mlflow` entry, or None when tracking failed (one warning line)."""
    try:
        client = _client(uri)
        tracked = _evaluation_run(client, uri, read_run_file(model_dir), experiment, execution)
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, 0) for key, value in sorted(evaluation_metrics(report).items())]
        for start in range(0, len(metrics), 1000):  # LogBatch takes at most 1000 metrics
            client.log_batch(tracked.run_id, metrics=metrics[start:start + 1000])
        client.log_dict(tracked.run_id, dict(report), "evaluation/evaluation.json")
        for plot in plots:
            client.log_artifact(tracked.run_id, str(plot), "evaluation")
    except Exception as exc:  # noqa: BLE001 (tracking never fails the evaluation)
        warn(f"cannot log the evaluation to {uri} ({type(exc).__name__}: {exc})")
        return None
    print(f"mlflow: evaluation logged to run {tracked.run_name} ({tracked.run_id})", flush=True)
    return tracked.as_dict()


def _evaluation_run(client: Any, uri: str, trained: TrackedRun | None, experiment: str | None,
                    execution: str | None) -> TrackedRun:
    """The training run, claimed for `execution`; a new run when it is another execution's already."""
    if trained is not None and trained.tracking_uri == uri:
        run = client.get_run(trained.run_id)
        owner = run.data.tags.get(EXECUTION_TAG)
        if not execution or owner in (None, execution):
            if execution:
                client.set_tag(trained.run_id, EXECUTION_TAG, execution)
                client.set_tag(trained.run_id, _RUN_NAME_TAG, execution)
            return TrackedRun(uri, trained.experiment_id, trained.run_id, execution or trained.run_name)
        experiment_id = trained.experiment_id
        tags = {TRAINED_IN_TAG: trained.run_id}
    else:
        experiment_id = _experiment_id(client, experiment or DEFAULT_EXPERIMENT)
        tags = {}
    name = execution or "evaluation"
    run = client.create_run(experiment_id, run_name=name, tags={**tags, **({EXECUTION_TAG: execution}
                                                                           if execution else {})})
    client.set_terminated(run.info.run_id)
    return TrackedRun(uri, experiment_id, run.info.run_id, name)
