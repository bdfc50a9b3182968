"""The training job's outputs: what SageMaker packs into model.tar.gz and what the pipeline reads."""

from __future__ import annotations

import csv

import pytest
import yaml
from training_harness import progress_epochs

#: With `make training`'s two workers, the tests of the one shared trained model (conftest `trained`)
#: run on one worker, so it is trained once.
pytestmark = pytest.mark.xdist_group("trained")


def test_training_writes_the_model_dir_a_user_gets(trained):
    """GIVEN a generated dataset in the `dataset` channel
    WHEN the training job runs 12 epochs on a CPU
    THEN the model dir holds best.pt, last.pt, args.yaml, results.csv and metrics.json, and plots
    land in the output data dir."""
    job, done, _ = trained
    for name in ("best.pt", "last.pt", "args.yaml", "results.csv", "metrics.json"):
        assert (job.model_dir / name).is_file(), name
    assert list(job.output_dir.glob("*.png")), "plots belong in SM_OUTPUT_DATA_DIR"
    assert not list(job.model_dir.glob("*.png")), "plots stay out of the model artifact"
    # AND the serving code the PyTorch inference image runs rides along in model.tar.gz
    assert sorted(p.name for p in (job.model_dir / "code").iterdir()) == ["inference.py", "requirements.txt"]


def test_each_epoch_prints_one_progress_line(trained):
    """GIVEN a 12-epoch run
    WHEN it trains
    THEN stdout has exactly one `epoch N/12` line per epoch, in order (the local mode shows them)."""
    _, done, _ = trained
    assert progress_epochs(done.stdout) == [(n, 12) for n in range(1, 13)]
    assert "images_per_second=" in done.stdout


def test_metrics_json_reports_final_validation_in_range(trained):
    """GIVEN the trained model
    WHEN metrics.json is read
    THEN it holds the final validation metrics in [0, 1], the epochs done and the training speed,
    and the model learned something from the generated shapes."""
    job, _, _ = trained
    metrics = job.metrics()
    for key in ("map50", "map50_95", "precision", "recall"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["epochs_completed"] == 12
    assert metrics["resumed_from_epoch"] is None
    assert metrics["train_images_per_second"] > 0
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 13))
    assert metrics["map50"] > 0.0, "12 epochs on the generated shapes should find some of them"


def test_results_csv_and_resolved_args_sit_beside_the_model(trained):
    """GIVEN the trained model
    WHEN results.csv and args.yaml are read
    THEN results.csv has one row per epoch and args.yaml records the settings given and the ones
    chosen for this machine (CPU: batch as given, cache in RAM)."""
    job, _, _ = trained
    with (job.model_dir / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["epoch"])) for r in rows] == list(range(1, 13))
    args = yaml.safe_load((job.model_dir / "args.yaml").read_text())
    assert args["epochs"] == 12 and args["imgsz"] == 96 and args["batch"] == 8
    assert args["yolopipe"]["variant"] == "n"
    assert args["yolopipe"]["machine_defaults"]["cache"] == "ram"
    assert args["yolopipe"]["machine_defaults"]["device"] == "cpu"
    assert args["seed"] == 0 and args["deterministic"] is True


def test_fine_tunes_from_the_weights_channel(trained, tmp_path):
    """GIVEN a .pt in the optional `weights` channel (here the model trained above)
    WHEN the training job runs one epoch
    THEN it starts from those weights instead of the yolo11n.yaml architecture."""
    from training_harness import FAST, Job

    job, _, sample = trained
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "best.pt").write_bytes((job.model_dir / "best.pt").read_bytes())
    tuned = Job(tmp_path / "finetune", sample.root)

    done = tuned.train("--epochs", "1", *FAST, SM_CHANNEL_WEIGHTS=str(weights))

    assert done.returncode == 0, done.stderr[-2000:]
    args = yaml.safe_load((tuned.model_dir / "args.yaml").read_text())
    assert args["model"] == str(weights / "best.pt")
    assert args["yolopipe"]["weights"] == str(weights / "best.pt")
    assert "yolopipe: weights: channel weights" in done.stdout, "the log says what training started from"
    assert tuned.metrics()["map50"] > 0.0, "a trained starting point finds shapes after one epoch"


def test_metric_definitions_read_every_epoch_line(trained):
    """GIVEN the 12-epoch run's real stdout
    WHEN SageMaker's MetricDefinitions (the Train step's) are applied to it, as SageMaker does
    THEN each metric has a value per epoch, and the last ones name the epoch, a mAP50-95 in [0, 1],
    images/s and the best epoch: what the console, CloudWatch and DescribeTrainingJob show."""
    import re

    from yolopipe_shared.training_progress import METRIC_DEFINITIONS

    _, done, _ = trained
    lines = done.stdout.splitlines()
    last = {}
    for definition in METRIC_DEFINITIONS:
        values = [float(m.group(1)) for m in (re.search(definition["Regex"], line) for line in lines) if m]
        assert len(values) == 12, definition
        last[definition["Name"]] = values[-1]
    assert last["epoch"] == 12 and 0.0 <= last["val:map50_95"] <= 1.0
    assert last["train:images_per_second"] > 0 and 1 <= last["val:best_epoch"] <= 12
