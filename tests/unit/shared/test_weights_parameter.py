"""The Weights parameter: its forms, and how the job fetches an earlier model from S3 or the registry."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from yolopipe_shared.errors import ParameterError
from yolopipe_shared.weights import check_weights

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "training_code"))


@pytest.mark.parametrize("value", ["pretrained", "SCRATCH", "s3://my-bucket/weights/yolo11n.pt",
                                   "s3://my-bucket/artifacts/models/job/output/model.tar.gz",
                                   "arn:aws:sagemaker:eu-west-1:123456789012:model-package/yolopipe-models/3"])
def test_accepted_forms(value: str) -> None:
    assert check_weights(value) == (value.lower() if "://" not in value and ":" not in value else value)


@pytest.mark.parametrize(("value", "said"), [
    ("yolo11n.pt", "use pretrained, scratch, s3://"),
    ("s3://my-bucket/weights/", "must name a .pt file or a model.tar.gz"),
    ("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/yolopipe/execution/abc", "name the model package"),
    ("s3://my-bucket/" + "k" * 1100 + ".pt", "at most 1024"),
])
def test_refused_forms_say_what_is_accepted(value: str, said: str) -> None:
    with pytest.raises(ParameterError, match=said):
        check_weights(value)


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_job_fetches_a_pt_a_model_tar_gz_and_a_model_package(tmp_path: Path) -> None:
    """GIVEN an earlier model's best.pt in the bucket, a model.tar.gz (with a path that tries to escape)
    and a model package pointing at that model.tar.gz
    WHEN the job fetches each (training_code/model_weights.py, boto3 as in the container)
    THEN it gets best.pt's bytes every time, and nothing lands outside its folder."""
    from model_weights import WeightsUnavailable, fetch_from_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sm = boto3.client("sagemaker", region_name="us-east-1")
        s3.create_bucket(Bucket="stack-bucket")
        s3.put_object(Bucket="stack-bucket", Key="weights/best.pt", Body=b"PT-BYTES")
        s3.put_object(Bucket="stack-bucket", Key="artifacts/m/model.tar.gz",
                      Body=_archive({"../escape.pt": b"NO", "best.pt": b"PT-BYTES", "last.pt": b"LAST"}))
        s3.put_object(Bucket="stack-bucket", Key="artifacts/empty/model.tar.gz", Body=_archive({"args.yaml": b""}))
        sm.create_model_package_group(ModelPackageGroupName="yolopipe-models")
        package = sm.create_model_package(
            ModelPackageGroupName="yolopipe-models", ModelApprovalStatus="Approved",
            InferenceSpecification={"Containers": [{"Image": "image", "ModelDataUrl":
                                                    "s3://stack-bucket/artifacts/m/model.tar.gz"}],
                                    "SupportedContentTypes": ["image/jpeg"],
                                    "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"]
        for i, value in enumerate(["s3://stack-bucket/weights/best.pt", "s3://stack-bucket/artifacts/m/model.tar.gz",
                                   package]):
            work = tmp_path / str(i)
            work.mkdir()
            got = fetch_from_aws(value, work, s3=s3, sagemaker=sm)
            assert got.read_bytes() == b"PT-BYTES" and got.parent == work, value
        assert not (tmp_path / "escape.pt").exists()
        with pytest.raises(WeightsUnavailable, match="holds no best.pt or last.pt"):
            fetch_from_aws("s3://stack-bucket/artifacts/empty/model.tar.gz", tmp_path / "0", s3=s3, sagemaker=sm)
        with pytest.raises(WeightsUnavailable, match="the training role reads the stack's bucket"):
            fetch_from_aws("s3://stack-bucket/nothing.pt", tmp_path / "0", s3=s3, sagemaker=sm)
