"""The processing job: evaluation.json, the document the quality gate and the notifier read."""

from __future__ import annotations

import json
import tarfile

import pytest
from training_harness import evaluate

from yolopipe_shared.evaluation import EVALUATION_FILE, METRICS, headline_metrics

#: With `make training`'s two workers, the tests of the one shared trained model (conftest `trained`)
#: run on one worker, so it is trained once.
pytestmark = pytest.mark.xdist_group("trained")


def _labels(root, split):
    return sum(len(p.read_text().split("\n")) - 1 for p in (root / "labels" / split).glob("*.txt"))


def test_evaluates_a_sagemaker_model_tarball_on_the_test_split(trained, tmp_path):
    """GIVEN the model dir packed as SageMaker packs it (model.tar.gz) and a dataset with a test split
    WHEN evaluate.py runs
    THEN evaluation.json has the contract's shape, scores the test split, and counts its images
    and instances per class."""
    job, _, sample = trained
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for f in sorted(job.model_dir.iterdir()):
            tar.add(f, arcname=f.name)
    done = evaluate(tarball, sample.root, tmp_path / "out")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / EVALUATION_FILE).read_text())
    assert set(report["metrics"]) == set(METRICS)
    assert all(0.0 <= v <= 1.0 for v in headline_metrics(report).values())
    assert report["split"] == "test"
    assert report["images"] == 16
    assert report["instances"] == _labels(sample.root, "test")
    assert [c["name"] for c in report["per_class"]] == list(sample.names)
    assert sum(c["instances"] for c in report["per_class"]) == report["instances"]
    for entry in report["per_class"]:
        assert set(entry) == {"name", "map50", "map50_95", "precision", "recall", "instances"}
    assert report["model"]["file"] == "best.pt" and report["model"]["imgsz"] == 96
    # AND the plots a user judges the model by lie beside it, listed in it
    plots = {"BoxPR_curve.png", "BoxP_curve.png", "BoxR_curve.png", "BoxF1_curve.png", "confusion_matrix.png"}
    assert plots <= set(report["plots"]) and all((tmp_path / "out" / name).is_file() for name in report["plots"])


def test_falls_back_to_val_and_agrees_with_training(trained, tmp_path, make_dataset):
    """GIVEN a dataset without a test split (the training dataset minus its test images)
    WHEN evaluate.py scores the model folder
    THEN it records split "val" and its mAP is the training job's own final validation mAP."""
    job, _, sample = trained
    import shutil

    data = tmp_path / "no-test"
    shutil.copytree(sample.root, data, ignore=shutil.ignore_patterns("test", "*.cache"))
    (data / "data.yaml").write_text((sample.root / "data.yaml").read_text().replace("test: images/test\n", ""))
    done = evaluate(job.model_dir, data, tmp_path / "out", "--no-plots")  # plots: the first test
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / EVALUATION_FILE).read_text())
    assert report["split"] == "val"
    assert report["images"] == 16
    trained_map = job.metrics()["map50_95"]
    assert abs(report["metrics"]["map50_95"] - trained_map) < 0.05, (report["metrics"], trained_map)


def test_missing_model_is_one_line_error(tmp_path, make_dataset):
    """GIVEN a model folder with no .pt in it
    WHEN evaluate.py runs
    THEN it exits 2 with one line saying what to pass, and writes no evaluation.json."""
    sample = make_dataset("eval-empty", train=2, val=2)
    (tmp_path / "model").mkdir()
    done = evaluate(tmp_path / "model", sample.root, tmp_path / "out", "--no-plots")  # plots: the first test
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no model at" in done.stderr
    assert not (tmp_path / "out" / EVALUATION_FILE).exists()
