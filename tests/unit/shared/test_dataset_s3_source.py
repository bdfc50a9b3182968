"""Validation on an S3 prefix (what the trigger runs), against moto.

GIVEN a dataset uploaded under s3://bucket/datasets/<name>/, WHEN validated in place, THEN the
verdict is the one the local folder gets, with one paginated listing and only sampled reads.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from yolopipe_shared.dataset_sources import DatasetUnreadable, LocalDatasetSource, S3DatasetSource
from yolopipe_shared.validate import validate_dataset

BUCKET = "datasets-bucket"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(s3, root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=BUCKET, Key=prefix + path.relative_to(root).as_posix(), Body=path.read_bytes())


def count_calls(s3) -> Counter:
    calls: Counter = Counter()
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([model.name]))
    return calls


def test_s3_verdict_matches_the_local_one(s3, sample_dataset) -> None:
    # GIVEN the same faulty dataset locally and in S3
    ds = sample_dataset(train=10, val=4)
    (ds.root / "labels" / "train" / "train_00004.txt").write_text("0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.2 0.2\n")
    (ds.root / "labels" / "val" / "val_00001.txt").unlink()
    upload(s3, ds.root, "datasets/shapes/")
    # WHEN both are validated on every label
    remote = validate_dataset(S3DatasetSource(s3, BUCKET, "datasets/shapes"), label_sample=None)
    local = validate_dataset(LocalDatasetSource(ds.root), label_sample=None)
    # THEN they agree, problem for problem
    assert remote.location == f"s3://{BUCKET}/datasets/shapes/"
    assert remote.problems == local.problems
    assert [str(p) for p in remote.problems] == [
        "labels/train/train_00004.txt:2: class id 5 but data.yaml has 3 names (ids 0-2)"
    ]
    assert remote.warnings == local.warnings
    assert remote.images_per_split == local.images_per_split == {"train": 10, "val": 4}


def test_one_listing_and_only_sampled_labels_are_read(s3) -> None:
    # GIVEN 550 images with labels (more than one ListObjectsV2 page), tiny placeholder bytes
    prefix = "datasets/big/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "data.yaml", Body=b"train: images/train\nval: images/val\nnames: [a]\n")
    for split, count in (("train", 500), ("val", 50)):
        for i in range(count):
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}images/{split}/{i}.jpg", Body=b"\xff\xd8jpeg")
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}labels/{split}/{i}.txt", Body=b"0 0.5 0.5 0.1 0.1\n")
    calls = count_calls(s3)
    # WHEN validated with a sample of 30 labels
    report = validate_dataset(S3DatasetSource(s3, BUCKET, prefix), label_sample=30)
    # THEN it passes, listing the prefix page by page once and reading data.yaml plus the 30 labels
    assert report.ok, report.summary()
    assert report.images_per_split == {"train": 500, "val": 50}
    assert report.labels_checked == 30
    assert calls["ListObjectsV2"] == 2  # 1,101 objects, 1,000 per page
    assert calls["GetObject"] == 31


def test_a_broken_label_in_s3_is_reported_with_its_line(s3) -> None:
    prefix = "datasets/one/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "data.yaml", Body=b"train: images/train\nval: images/train\nnames: [a]\n")
    s3.put_object(Bucket=BUCKET, Key=prefix + "images/train/x.png", Body=b"png")
    s3.put_object(Bucket=BUCKET, Key=prefix + "labels/train/x.txt", Body=b"0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 4\n")
    report = validate_dataset(S3DatasetSource(s3, BUCKET, prefix))
    assert [str(p) for p in report.problems] == [
        "labels/train/x.txt:2: coordinates 0.5 0.5 0.1 4 are not normalised to 0-1 "
        "(divide pixels by the image width and height)"
    ]


def test_a_prefix_without_data_yaml_is_refused(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/half/images/train/x.jpg", Body=b"jpg")
    report = validate_dataset(S3DatasetSource(s3, BUCKET, "datasets/half/"))
    assert [p.message for p in report.problems] == ["not found: put data.yaml at the dataset root (upload it last)"]


def test_a_zero_byte_data_yaml_is_a_problem_not_a_crash(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/empty/data.yaml", Body=b"")
    report = validate_dataset(S3DatasetSource(s3, BUCKET, "datasets/empty/"))
    assert "must be a YAML mapping" in report.problems[0].message


def test_a_missing_bucket_is_unreadable(s3) -> None:
    with pytest.raises(DatasetUnreadable, match="NoSuchBucket"):
        S3DatasetSource(s3, "no-such-bucket", "datasets/x/").list_files()
