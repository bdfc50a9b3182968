"""`yolopipe upload`: validated first, everything in parallel, data.yaml last, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from yolopipe.upload import plan_upload, upload_dataset

BUCKET = "yolopipe-unit-cli"  # the stack's bucket in tests/unit/cli/conftest.py


def _keys(s3: Any, prefix: str = "datasets/") -> dict[str, str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents") or []}


def _local_keys(root: Path, name: str) -> set[str]:
    return {f"datasets/{name}/{p.relative_to(root).as_posix()}" for p in root.rglob("*") if p.is_file()}


def _recording_client(order: list[str]) -> Any:
    """An S3 client that notes the order in which objects are written, as the requests leave it (both the
    put_object calls and the direct PUTs pass its before-send handlers)."""
    s3 = boto3.client("s3")
    s3.meta.events.register_first("before-send.s3.PutObject",
                                  lambda request, **_: order.append(urlsplit(request.url).path))
    return s3


def test_upload_sends_every_file_and_data_yaml_last(cli: Any, aws: dict[str, Any], sample_dataset: Any) -> None:
    # GIVEN a valid dataset and the deployed stack
    dataset = sample_dataset(train=12, val=4)
    # WHEN the user uploads it under a name
    result = cli("upload", dataset.root, "--name", "shapes")
    # THEN every file is in s3://<bucket>/datasets/shapes/ and the output says what happens next
    assert result.code == 0, result.err
    assert set(_keys(aws["s3"])) == _local_keys(dataset.root, "shapes")
    assert f"s3://{BUCKET}/datasets/shapes/" in result.out
    assert "data.yaml written last" in result.out and "yolopipe watch latest" in result.out


def test_marker_is_written_after_every_other_object(aws: dict[str, Any], sample_dataset: Any) -> None:
    # GIVEN a dataset of many files and several upload threads
    dataset = sample_dataset(train=24, val=8)
    order: list[str] = []
    # WHEN it is uploaded with the plain function a notebook calls
    result = upload_dataset(_recording_client(order), dataset.root, BUCKET, "ordered", workers=8)
    # THEN data.yaml is the very last object written (the trigger sees a complete dataset)
    assert result.marker_written
    assert len(order) == len(_local_keys(dataset.root, "ordered"))
    assert order[-1].endswith("/datasets/ordered/data.yaml")
    assert sum(key.endswith("data.yaml") for key in order) == 1


def test_interrupted_upload_resumes_with_only_what_is_missing(aws: dict[str, Any], sample_dataset: Any) -> None:
    # GIVEN an upload that stopped part-way: no marker, some images missing
    dataset = sample_dataset(train=12, val=4)
    s3 = boto3.client("s3")
    first = upload_dataset(s3, dataset.root, BUCKET, "resume", trigger=False)
    assert not first.marker_written
    missing = sorted(k for k in _keys(s3) if "/images/train/" in k)[:5]
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in missing]})
    # WHEN the same upload runs again
    order: list[str] = []
    second = upload_dataset(_recording_client(order), dataset.root, BUCKET, "resume")
    # THEN only the 5 missing files and then the marker were sent
    assert second.uploaded == 6 and second.marker_written
    assert sorted(order[:-1]) == sorted(f"/{k}" for k in missing)
    assert order[-1].endswith("data.yaml")
    assert set(_keys(s3)) == _local_keys(dataset.root, "resume")


def test_rerun_of_a_finished_upload_sends_nothing_and_triggers_nothing(
    cli: Any, aws: dict[str, Any], sample_dataset: Any
) -> None:
    # GIVEN a dataset uploaded completely
    dataset = sample_dataset(train=8, val=4)
    assert cli("upload", dataset.root, "--name", "same").code == 0
    before = _keys(aws["s3"])
    # WHEN the user runs the same upload again
    result = cli("upload", dataset.root, "--name", "same", "--json")
    # THEN nothing is sent, the marker is not rewritten (no second training) and the objects are unchanged
    assert result.code == 0, result.err
    assert result.json()["uploaded"] == 0 and result.json()["marker_written"] is False
    assert _keys(aws["s3"]) == before


def test_a_changed_label_is_resent_and_the_marker_rewritten(aws: dict[str, Any], sample_dataset: Any) -> None:
    # GIVEN an uploaded dataset in which one label file then changes (same size, other content)
    dataset = sample_dataset(train=8, val=4)
    s3 = boto3.client("s3")
    upload_dataset(s3, dataset.root, BUCKET, "changed")
    label = sorted((dataset.root / "labels" / "train").glob("*.txt"))[0]
    text = label.read_text()
    label.write_text(("1" if text[0] != "1" else "2") + text[1:])
    # WHEN it is uploaded again
    result = upload_dataset(s3, dataset.root, BUCKET, "changed")
    # THEN that file and the marker are sent (a new dataset version triggers a new training)
    assert result.uploaded == 2 and result.marker_written
    key = f"datasets/changed/labels/train/{label.name}"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == label.read_bytes()


def test_no_trigger_uploads_everything_but_the_marker(cli: Any, aws: dict[str, Any], sample_dataset: Any) -> None:
    dataset = sample_dataset(train=8, val=4)
    result = cli("upload", dataset.root, "--name", "quiet", "--no-trigger")
    assert result.code == 0, result.err
    keys = set(_keys(aws["s3"]))
    assert keys == _local_keys(dataset.root, "quiet") - {"datasets/quiet/data.yaml"}
    assert "--no-trigger" in result.out and "nothing starts" in result.out


def test_invalid_dataset_is_refused_before_anything_is_sent(
    cli: Any, aws: dict[str, Any], sample_dataset: Any
) -> None:
    # GIVEN a dataset whose data.yaml asks Ultralytics to download something
    dataset = sample_dataset(train=8, val=4)
    with dataset.data_yaml.open("a") as handle:
        handle.write("download: https://example.com/x.zip\n")
    # WHEN the user uploads it
    result = cli("upload", dataset.root, "--name", "bad")
    # THEN exit 1, the problem with its file and line, and nothing in the bucket
    assert result.code == 1
    assert "data.yaml:" in result.err and "download" in result.err
    assert "Traceback" not in result.err
    assert _keys(aws["s3"]) == {}


def test_stale_objects_are_reported_and_deleted_on_request(
    cli: Any, aws: dict[str, Any], sample_dataset: Any
) -> None:
    # GIVEN an uploaded dataset from which one image was removed locally
    dataset = sample_dataset(train=8, val=4)
    assert cli("upload", dataset.root, "--name", "stale").code == 0
    image = sorted((dataset.root / "images" / "train").glob("*.jpg"))[0]
    image.unlink()
    # WHEN uploaded again: first without --delete, then with it
    plain = cli("upload", dataset.root, "--name", "stale")
    assert plain.code == 0 and "re-run with --delete" in plain.out
    assert f"datasets/stale/images/train/{image.name}" in _keys(aws["s3"])
    deleted = cli("upload", dataset.root, "--name", "stale", "--delete")
    # THEN the stale image is gone from S3 only with --delete
    assert deleted.code == 0
    assert f"datasets/stale/images/train/{image.name}" not in _keys(aws["s3"])


def test_multipart_files_are_recognised_as_already_uploaded(aws: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN a dataset with one file larger than the multipart threshold, uploaded once
    root = tmp_path / "big"
    (root / "images" / "train").mkdir(parents=True)
    (root / "images" / "train" / "huge.jpg").write_bytes(bytes(range(256)) * (9 * 4096 + 7))
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a]\n")
    s3 = boto3.client("s3")
    upload_dataset(s3, root, BUCKET, "big")
    assert "-" in _keys(s3)["datasets/big/images/train/huge.jpg"]  # a multipart ETag
    # WHEN planning the same upload again
    plan = plan_upload(s3, root, BUCKET, "big")
    # THEN nothing needs sending
    assert plan.to_send == [] and plan.marker_up_to_date


def test_missing_bucket_is_one_line_exit_3(cli: Any, aws: dict[str, Any], sample_dataset: Any) -> None:
    dataset = sample_dataset(train=4, val=2)
    result = cli("upload", dataset.root, "--name", "x", "--bucket", "no-such-bucket-here")
    assert result.code == 3
    assert result.err.count("\n") == 1 and "no-such-bucket-here" in result.err


def test_no_credentials_is_one_line_exit_3(
    cli: Any, sample_dataset: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a machine with no AWS credentials anywhere
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    dataset = sample_dataset(train=4, val=2)
    # WHEN the user uploads
    result = cli("upload", dataset.root, "--name", "x", "--bucket", BUCKET)
    # THEN one line says how to get credentials (or use the local mode), exit 3
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert "aws configure" in result.err and "--local" in result.err


def test_bad_dataset_name_is_refused(cli: Any, aws: dict[str, Any], sample_dataset: Any) -> None:
    dataset = sample_dataset(train=4, val=2)
    result = cli("upload", dataset.root, "--name", "../escape")
    assert result.code == 1 and "dataset name '../escape' is not valid" in result.err
    assert _keys(aws["s3"]) == {}


def test_ctrl_c_mid_upload_leaves_no_marker_and_a_rerun_finishes(aws: dict[str, Any], sample_dataset: Any) -> None:
    from yolopipe.upload import UploadInterrupted

    # GIVEN an upload the user interrupts (Ctrl-C) after a few files
    dataset = sample_dataset(train=24, val=8)
    s3 = boto3.client("s3")
    done: list[int] = []

    def interrupt_after_five(files: int, size: int) -> None:
        done.append(files)
        if len(done) == 5:
            raise KeyboardInterrupt

    # WHEN it is interrupted
    with pytest.raises(UploadInterrupted, match="run the same command again"):
        upload_dataset(s3, dataset.root, BUCKET, "ctrl-c", workers=2, progress=interrupt_after_five)
    # THEN data.yaml is not there (nothing was triggered), and part of the files are
    partial = _keys(s3)
    assert "datasets/ctrl-c/data.yaml" not in partial
    assert 5 <= len(partial) < len(_local_keys(dataset.root, "ctrl-c"))
    # AND the same upload again sends exactly the rest, then the marker
    result = upload_dataset(s3, dataset.root, BUCKET, "ctrl-c")
    assert result.uploaded == len(_local_keys(dataset.root, "ctrl-c")) - len(partial)
    assert result.marker_written and set(_keys(s3)) == _local_keys(dataset.root, "ctrl-c")


def test_waiting_for_the_triggered_execution_finds_only_this_datasets(aws: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    from yolopipe.executions import wait_for_execution

    # GIVEN an execution of the pipeline on another dataset, started after the marker
    since = datetime.now(UTC) - timedelta(seconds=2)
    sm = aws["sagemaker"]
    other = f"s3://{BUCKET}/datasets/other/"
    sm.start_pipeline_execution(PipelineName="yolopipe-unit-cli",
                                PipelineParameters=[{"Name": "DatasetS3Uri", "Value": other}])
    # WHEN the CLI waits for the execution of datasets/mine/ THEN it does not mistake the other one
    mine = f"s3://{BUCKET}/datasets/mine/"
    assert wait_for_execution(sm, "yolopipe-unit-cli", mine, since=since, timeout=0, sleep=lambda _: None) is None
    # AND once the trigger starts one for datasets/mine/, that is the one found
    started = sm.start_pipeline_execution(PipelineName="yolopipe-unit-cli",
                                          PipelineParameters=[{"Name": "DatasetS3Uri", "Value": mine}])
    arn = started["PipelineExecutionArn"]
    assert wait_for_execution(sm, "yolopipe-unit-cli", mine, since=since, timeout=0, sleep=lambda _: None) == arn
    # AND an execution of it older than the marker is not taken for the new one
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert wait_for_execution(sm, "yolopipe-unit-cli", mine, since=later, timeout=0, sleep=lambda _: None) is None
