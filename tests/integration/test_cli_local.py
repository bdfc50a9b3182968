"""The CLI against `yolopipe local serve`: the real stack, trigger, pipeline definition and training
code on this machine, reached with `--local` as a user would (no credentials, no flags but --local).

One end-to-end story (real Ultralytics training of 1 epoch on a 16-image generated dataset), so
it is marked `integration`; it takes about a minute on 2 cores.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_upload_triggers_then_watch_and_report_on_the_local_stack(
    cli: Any, served: Any, sample_dataset: Any
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


def test_local_run_help_is_the_local_modes_own(cli: Any) -> None:
    result = cli("local", "run", "--help")
    assert result.code == 0
    assert "yolopipe local run" in result.out
