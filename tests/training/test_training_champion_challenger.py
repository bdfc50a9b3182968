"""evaluate.py against the approved model: the real trained model registered and approved in a
(moto) model package group, scored again beside the candidate on the same test images."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
from training_harness import REPO  # noqa: F401  (puts training_code on sys.path)

#: With `make training`'s two workers, the tests of the one shared trained model (conftest `trained`)
#: run on one worker, so it is trained once.
pytestmark = pytest.mark.xdist_group("trained")

GROUP = "yolopipe-models"


@pytest.fixture
def job_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """evaluate.py in this process, offline, as its job would run (environment restored afterwards)."""
    for name, value in (("YOLO_OFFLINE", "1"), ("YOLO_AUTOINSTALL", "false"), ("YOLO_VERBOSE", "False"),
                        ("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))):
        monkeypatch.setenv(name, value)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    from yolo_offline import prepare_environment

    prepare_environment()


def _tarball(model_dir: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return target


def _approved_group(sm: Any, s3: Any, tarball: Path, *, approve: bool = True) -> str:
    """A group holding the trained model as v1 (Approved unless told otherwise); its package ARN."""
    s3.create_bucket(Bucket="yolopipe-test")
    s3.upload_file(str(tarball), "yolopipe-test", "artifacts/models/job-1/output/model.tar.gz")
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = sm.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved" if approve else "PendingManualApproval",
        InferenceSpecification={"Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                                                "ModelDataUrl": "s3://yolopipe-test/artifacts/models/job-1/output/model.tar.gz"}],
                                "SupportedContentTypes": ["image/jpeg"],
                                "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]
    return str(arn)


def test_the_candidate_is_scored_beside_the_approved_model(trained, job_env, tmp_path):
    """GIVEN the trained model approved as v1 of the group WHEN the same model is evaluated as a
    candidate with --model-package-group THEN the baseline is v1, scored on the same test split
    with the same result, and the verdict says it is as good (improvement 0) and registered."""
    import boto3
    import evaluate as evaluate_job
    from moto import mock_aws

    job, _, sample = trained
    tarball = _tarball(job.model_dir, tmp_path / "model.tar.gz")
    with mock_aws():
        sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
        arn = _approved_group(sm, s3, tarball)
        report = evaluate_job.evaluate(tarball, sample.root, tmp_path / "out", batch=8, device="cpu", plots=False,
                                       model_package_group=GROUP, min_map50_95=0.0, min_improvement=0.0,
                                       clients=(sm, s3))
    assert report["baseline"] == {"model_package_arn": arn, "version": 1, "metrics": report["metrics"]}
    assert report["comparison"]["improvement"] == 0.0
    assert report["comparison"]["verdict"].endswith("approved v1 "
                                                    f"{report['metrics']['map50_95']:.3f}: +0.000, registered")


def test_no_approved_model_and_an_unreadable_one_leave_the_fixed_gate_alone(trained, job_env, tmp_path):
    """GIVEN a group whose only package awaits approval, then an approved one whose artifact is gone,
    then no group at all WHEN the candidate is evaluated THEN there is no baseline, the verdict says
    why, the improvement lets the fixed gate decide, and the job still writes its evaluation."""
    import boto3
    import evaluate as evaluate_job
    from moto import mock_aws

    job, _, sample = trained
    tarball = _tarball(job.model_dir, tmp_path / "model.tar.gz")
    with mock_aws():
        sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
        _approved_group(sm, s3, tarball, approve=False)
        pending = evaluate_job.evaluate(tarball, sample.root, tmp_path / "a", batch=8, device="cpu", plots=False,
                                        model_package_group=GROUP, clients=(sm, s3))
        sm.update_model_package(ModelPackageArn=sm.list_model_packages(ModelPackageGroupName=GROUP)[
            "ModelPackageSummaryList"][0]["ModelPackageArn"], ModelApprovalStatus="Approved")
        s3.delete_object(Bucket="yolopipe-test", Key="artifacts/models/job-1/output/model.tar.gz")
        gone = evaluate_job.evaluate(tarball, sample.root, tmp_path / "b", batch=8, device="cpu", plots=False,
                                     model_package_group=GROUP, min_map50_95=1.0, clients=(sm, s3))
    alone = evaluate_job.evaluate(tarball, sample.root, tmp_path / "c", batch=8, device="cpu", plots=False)
    assert pending["baseline"] is None and pending["comparison"]["verdict"] == "first model: no approved baseline"
    assert gone["baseline"] is None and gone["comparison"]["improvement"] == 1.0
    assert gone["comparison"]["baseline_error"] == "404"
    assert gone["comparison"]["verdict"].endswith("< MinMap50_95 1.0: not registered")
    assert alone["baseline"] is None and alone["comparison"]["verdict"] == "first model: no approved baseline"
    assert (tmp_path / "b" / "evaluation.json").is_file()
