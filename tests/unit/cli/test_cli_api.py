"""`yolopipe.client.Yolopipe`: the same commands from a notebook, no printing, results as data."""

from __future__ import annotations

from typing import Any

import pytest

from yolopipe.client import Yolopipe
from yolopipe_shared.errors import DatasetRejected, ParameterError

BUCKET = "yolopipe-unit-cli"  # as tests/unit/cli/conftest.py creates them


def test_notebook_validates_uploads_and_runs_on_the_stack(aws: dict[str, Any], sample_dataset: Any) -> None:
    # GIVEN a notebook talking to the deployed stack (found by name) and a dataset
    yp = Yolopipe()
    dataset = sample_dataset(train=8, val=4)
    # WHEN it validates and uploads the dataset, then starts a run with two parameters
    assert yp.validate(dataset.root).ok
    uploaded = yp.upload(dataset.root, "nb")
    arn = yp.run("nb", epochs=3, model_variant="s")
    # THEN the files are in S3 with the marker, and the execution got exactly those parameters,
    # pinned to the data.yaml version it found (as the trigger pins it)
    assert uploaded.marker_written and uploaded.s3_uri == f"s3://{BUCKET}/datasets/nb/"
    marker = aws["s3"].head_object(Bucket=BUCKET, Key="datasets/nb/data.yaml")
    version = marker.get("VersionId") or marker["ETag"].strip('"')
    sent = aws["sagemaker"].list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in sent} == {
        "DatasetS3Uri": f"s3://{BUCKET}/datasets/nb/", "Epochs": "3", "ModelVariant": "s", "DatasetVersion": version,
        "DatasetName": "nb"}
    assert [e["arn"] for e in yp.executions()] == [arn]


def test_notebook_errors_are_the_domain_errors(aws: dict[str, Any], sample_dataset: Any) -> None:
    yp = Yolopipe()
    with pytest.raises(ParameterError, match="Epochs must be at most 1000"):
        yp.run("nb", epochs=5000)
    dataset = sample_dataset(train=4, val=2)
    (dataset.root / "labels" / "val").rename(dataset.root / "labels" / "gone")
    (dataset.root / "labels" / "train").rename(dataset.root / "labels" / "gone2")
    with pytest.raises(DatasetRejected):
        yp.upload(dataset.root, "broken")


def test_notebook_watches_and_reads_the_report(local: dict[str, Any]) -> None:
    # GIVEN the local emulator and a pipeline whose model scores 0.7
    yp = Yolopipe(endpoint_url=local["endpoint"], bucket=BUCKET, pipeline="good")
    arn = yp.run(f"s3://{BUCKET}/datasets/d/", epochs=2)
    assert isinstance(arn, str)
    # WHEN the notebook watches it, collecting every status it sees
    seen: list[str] = []
    final = yp.watch(arn, on_update=lambda s: seen.append(s.status), interval=0.1)
    # THEN it ends Succeeded, and the report carries the metrics
    assert final.status == "Succeeded" and seen[-1] == "Succeeded"
    assert yp.report("latest")["metrics"]["map50_95"] == 0.7
    assert [r["status"] for r in yp.compare(arn, "latest")] == ["Succeeded", "Succeeded"]
