"""Champion / challenger on the local stack: a new model is registered only if it beats the approved one.

One story on `yolopipe local serve` (real Ultralytics, 2 epochs on a 16-image generated dataset at
64 px): the first execution has nothing to beat and is registered; the user approves it with
`yolopipe approve`; the next executions train the same dataset version (SageMaker's step cache
serves Train, so the candidate is the approved model itself and the improvement is exactly 0) and
are judged against approved v1: with MinImprovement 0.001 the gate refuses it and says so, with
MinImprovement 0 it is registered as v2 with the comparison in its metadata.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from yolopipe_shared.evaluation import EVALUATION_FILE

pytestmark = pytest.mark.integration

TRAINING = {"epochs": 2, "image_size": 64, "batch_size": 8}


def _evaluation(yp: Any, report: dict[str, Any]) -> dict[str, Any]:
    uri = report["artifacts"][EVALUATION_FILE]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return dict(json.loads(yp.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_a_model_is_registered_only_if_it_beats_the_approved_one(
    served: tuple[Any, list[str]], sample_dataset: Any, cli: Any
) -> None:
    from datetime import UTC, datetime

    from yolopipe.client import Yolopipe

    server, lines = served
    yp = Yolopipe(local=True)
    # GIVEN a dataset uploaded to the local stack: the trigger starts the first execution
    dataset = sample_dataset(train=16, val=8, test=8, imgsz=64)
    (dataset.root / "yolopipe.yaml").write_text("".join(f"{k}: {v}\n" for k, v in TRAINING.items()))
    since = datetime.now(UTC)
    yp.upload(dataset.root, "shapes")
    first = yp.wait_for_trigger(f"s3://{yp.aws.bucket()}/datasets/shapes/", since=since, timeout=60)
    assert first, "\n".join(lines)
    # WHEN it ends
    assert yp.watch(first, interval=0.3, timeout=240).status == "Succeeded", "\n".join(lines)
    # THEN there was nothing to beat: registered as v1, the verdict says it is the first model
    report = yp.report(first)
    doc = _evaluation(yp, report)
    assert doc["baseline"] is None
    assert doc["comparison"]["verdict"] == "first model: no approved baseline, registered"
    assert report["verdict"] == doc["comparison"]["verdict"]  # what `yolopipe report` prints as "gate:"
    assert report["model_package"]["version"] == 1
    assert report["model_package"]["approval_status"] == "PendingManualApproval"

    # WHEN the user approves that execution's model package with the CLI
    approved = cli("approve", first.rsplit("/", 1)[-1], "--local", "--json")
    # THEN v1 is the approved model
    assert approved.code == 0, approved.err
    assert approved.json()["version"] == 1
    assert approved.json()["previous_status"] == "PendingManualApproval"
    assert approved.json()["approval_status"] == "Approved"

    # WHEN the same dataset version is trained again with a gate that asks for a gain of 0.001
    second = yp.run("shapes", min_improvement=0.001, **TRAINING)
    assert isinstance(second, str)
    status = yp.watch(second, interval=0.3, timeout=240)
    # THEN the candidate (the same weights: Train came from the step cache) was scored beside approved
    # v1 on the same images, gained nothing, and was not registered; the failure says why
    assert status.status == "Failed", "\n".join(lines)
    doc = _evaluation(yp, yp.report(second))
    assert doc["baseline"]["version"] == 1
    assert doc["baseline"]["metrics"]["map50_95"] == doc["metrics"]["map50_95"]
    assert doc["comparison"]["improvement"] == 0.0
    failed_step, reason = status.failed_step()
    assert "approved v1" in reason and "not registered" in reason, (failed_step, reason, status.steps)
    assert "MinImprovement 0.001" in reason
    rejected = cli("approve", second.rsplit("/", 1)[-1], "--local")
    assert rejected.code == 1 and "registered no model package" in rejected.err

    # WHEN it runs again with MinImprovement 0 (as good as the approved model is enough)
    third = yp.run("shapes", min_improvement=0.0, **TRAINING)
    assert isinstance(third, str)
    # THEN it is registered as v2, its metadata carrying the comparison with v1
    assert yp.watch(third, interval=0.3, timeout=240).status == "Succeeded", "\n".join(lines)
    package = yp.report(third)["model_package"]
    assert package["version"] == 2
    described = yp.aws.client("sagemaker").describe_model_package(ModelPackageName=package["arn"])
    assert described["CustomerMetadataProperties"]["ComparedWithApproved"] == "vs v1: +0.000"
    assert _evaluation(yp, yp.report(third))["comparison"]["verdict"].endswith("+0.000, registered")
