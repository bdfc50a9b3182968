"""The CLI against `yolopipe local serve`: the real stack, trigger, pipeline definition and training
code on this machine, reached with `--local` as a user would (no credentials, no flags but --local).

One end-to-end story (real Ultralytics training of 1 epoch on a 16-image generated dataset), so
it is marked `integration`; it takes about a minute on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_upload_triggers_then_watch_and_report_on_the_local_stack(
    cli: Any, served: Any, sample_dataset: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the local stack running and a small dataset whose yolopipe.yaml asks for a short training
    dataset = sample_dataset(train=16, val=8, imgsz=64)
    (dataset.root / "yolopipe.yaml").write_text("epochs: 1\nimage_size: 64\nbatch_size: 8\n")
    # WHEN the user uploads it without the marker, nothing starts, and a run on it is refused
    assert cli("upload", dataset.root, "--name", "shapes", "--no-trigger", "--local").code == 0
    refused = cli("run", "--local", "--dataset", "shapes", "--epochs", "1")
    assert refused.code == 3 and "no data.yaml" in refused.err
    assert cli("executions", "list", "--local", "--json").json() == []
    # WHEN the upload is re-run with --watch: only the marker is sent, the trigger starts the
    # pipeline, and the upload follows that execution to its end
    again = cli("upload", dataset.root, "--name", "shapes", "--local", "--watch", "--interval", "1",
                "--timeout", "300")
    # THEN it succeeds through training, evaluation, the gate and registration
    assert again.code == 0, again.out + again.err + cli("report", "latest", "--local", "--json").out
    assert "uploaded 1 files" in again.out and "Succeeded after" in again.out
    first = cli("executions", "list", "--local", "--json").json()[0]
    # AND the report has the dataset's overrides, real metrics from evaluation.json, the model package
    report = cli("report", first["id"], "--local", "--json").json()
    assert report["status"] == "Succeeded"
    assert report["parameters"]["Epochs"] == 1 and report["parameters"]["ImageSize"] == 64
    assert report["parameters"]["DatasetS3Uri"].endswith("/datasets/shapes/")
    assert set(report["metrics"]) == {"map50_95", "map50", "precision", "recall"}
    assert [c["name"] for c in report["per_class"]] == ["square", "disc", "bar"]
    assert report["model_package"]["approval_status"] == "PendingManualApproval"
    assert any(uri.endswith("model.tar.gz") for uri in report["artifacts"].values())
    # AND doctor finds the local stack ready (the quota cannot be checked locally)
    doctor = cli("doctor", "--local", "--json")
    assert doctor.code == 0, doctor.out
    checks = {c["name"]: c["status"] for c in doctor.json()["checks"]}
    assert checks["bucket"] == checks["pipeline"] == checks["credentials"] == "ok"
    assert checks["execution role"] == checks["training quota"] == "skip"
    _model_and_evidence_reach_the_user(cli, first["id"], report, dataset.root, tmp_path, monkeypatch)


def _model_and_evidence_reach_the_user(cli: Any, execution: str, report: dict[str, Any], dataset: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same execution, continued: download, report's list, predict, approve by package ARN, reject."""
    from PIL import Image

    from yolopipe.client import Yolopipe

    tmp_path = tmp_path / "user"  # runs/ is relative to where the user stands (not the server's runs/)
    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    # THEN report lists the training plots and the evaluation's plots besides the model
    assert report["artifacts"]["Train YOLO11.plots"].endswith("/output/output.tar.gz"), report["artifacts"]
    assert {"evaluation/BoxPR_curve.png", "evaluation/confusion_matrix.png"} <= set(report["artifacts"])
    # WHEN the user downloads it
    downloaded = cli("download", "latest", "--local")
    # THEN runs/<execution>/ holds the model, its settings and history, evaluation.json and every plot
    assert downloaded.code == 0, downloaded.err
    folder = tmp_path / "runs" / execution
    for name in ("model.tar.gz", "model/best.pt", "model/last.pt", "model/args.yaml", "model/results.csv",
                 "model/code/inference.py", "evaluation.json", "training/results.png", "training/labels.jpg",
                 "training/BoxPR_curve.png", "training/confusion_matrix.png", "evaluation/BoxPR_curve.png",
                 "evaluation/BoxP_curve.png", "evaluation/BoxR_curve.png", "evaluation/BoxF1_curve.png",
                 "evaluation/confusion_matrix.png"):
        assert (folder / name).is_file(), (name, downloaded.out)
    assert f"files in {folder.relative_to(tmp_path)}" in downloaded.out.splitlines()[-1]
    assert json.loads((folder / "evaluation.json").read_text())["metrics"] == report["metrics"]

    # WHEN the user runs that model on two of their images
    images = sorted((dataset / "images" / "val").glob("*.jpg"))[:2]
    predicted = cli("predict", execution, *images, "--out", tmp_path / "seen", "--local")
    # THEN one line per image says what it found, and an annotated copy of each is written
    assert predicted.code == 0, predicted.err
    lines = predicted.out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(image) for image in images]
    for image, line in zip(images, lines, strict=True):
        annotated = tmp_path / "seen" / image.name
        assert " detections" in line and line.endswith(f"-> {annotated}")
        assert Image.open(annotated).size == Image.open(image).size
    # AND --json gives the detections; the model package ARN and the local best.pt give the same ones
    package_arn = report["model_package"]["arn"]
    by_package = cli("predict", package_arn, images[0], "--conf", "0.001", "--json", "--local")
    assert by_package.code == 0, by_package.err
    [row] = by_package.json()
    assert row["detections"], "a one-epoch model finds some boxes at confidence 0.001"
    for detection in row["detections"]:
        assert set(detection) == {"class_id", "name", "confidence", "box_xyxy"}
        assert detection["name"] in ("square", "disc", "bar") and detection["confidence"] >= 0.001
    by_file = Yolopipe(local=True).predict(str(folder / "model" / "best.pt"), [images[0]], conf=0.001)
    assert by_file[0]["detections"] == row["detections"]
    assert Path(by_file[0]["annotated"]).is_file()

    # WHEN the user approves the package by its ARN, then rejects it
    approved = cli("approve", package_arn, "--local", "--json")
    rejected = cli("approve", package_arn, "--reject", "--local", "--json")
    # THEN its status follows, and `report` shows the last one
    assert approved.code == rejected.code == 0, approved.err + rejected.err
    assert (approved.json()["previous_status"], approved.json()["approval_status"]) == (
        "PendingManualApproval", "Approved")
    assert (rejected.json()["previous_status"], rejected.json()["approval_status"]) == ("Approved", "Rejected")
    assert cli("report", execution, "--local", "--json").json()["model_package"]["approval_status"] == "Rejected"
    # AND a bad image is one line, exit 2, before any model is loaded
    (tmp_path / "notes.jpg").write_text("not an image")
    refused = cli("predict", execution, tmp_path / "notes.jpg", "--local")
    assert refused.code == 2 and "is not an image" in refused.err and len(refused.err.splitlines()) == 1


def test_local_run_help_is_the_local_modes_own(cli: Any) -> None:
    result = cli("local", "run", "--help")
    assert result.code == 0
    assert "yolopipe local run" in result.out
