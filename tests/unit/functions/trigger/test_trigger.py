"""The trigger: a data.yaml arriving under datasets/<name>/ starts exactly one training per
dataset version, after validation; broken datasets are refused with their problems by email."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from function_harness import BUCKET, Aws, LambdaContext, load_event, marker_event
from s3_events import DISPLAY_NAME_PATTERN, DatasetMarker, display_name_for

from yolopipe_shared.config import ConfigurationError


def upload(aws: Aws, sample_dataset, name: str = "shapes", **kwargs) -> str:
    ds = sample_dataset(name, **kwargs)
    return aws.upload_dataset(ds.root, name)


def test_marker_starts_one_execution_with_the_dataset_uri(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a valid dataset uploaded with data.yaml last
    WHEN S3 announces data.yaml
    THEN one pipeline execution starts, on s3://<bucket>/datasets/shapes/, named after the dataset."""
    version = upload(aws, sample_dataset)
    result = trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())

    assert result["outcomes"][0]["outcome"] == "started"
    [execution] = aws.executions()
    assert execution["PipelineExecutionDisplayName"] == "shapes"
    params = aws.execution_parameters(execution["PipelineExecutionArn"])
    # AND the execution is pinned to that data.yaml version (the training cache key)
    assert params == {"DatasetS3Uri": f"s3://{BUCKET}/datasets/shapes/", "DatasetVersion": version,
                      "DatasetName": "shapes"}
    assert aws.inbox() == []


def test_redelivered_marker_starts_nothing_new(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a marker already handled
    WHEN S3 delivers the same record again (at-least-once delivery), twice
    THEN there is still exactly one execution and each delivery reports the same outcome."""
    version = upload(aws, sample_dataset)
    first = trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())
    again = trigger.lambda_handler(marker_event("s3_marker_redelivered", version=version), LambdaContext())
    third = trigger.lambda_handler(marker_event("s3_marker_redelivered", version=version), LambdaContext())

    assert len(aws.executions()) == 1
    assert again["outcomes"] == first["outcomes"] == third["outcomes"]


def test_retry_by_a_fresh_lambda_instance_starts_nothing_new(aws: Aws, sample_dataset) -> None:
    """GIVEN a marker handled by one Lambda instance
    WHEN Lambda retries the same event on a new instance (fresh module, fresh clients)
    THEN the DynamoDB record stops it: one execution."""
    from function_harness import load_handler

    version = upload(aws, sample_dataset)
    load_handler("trigger").lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())
    load_handler("trigger").lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())
    assert len(aws.executions()) == 1


def test_new_version_of_the_dataset_starts_a_new_execution(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a dataset that was trained once
    WHEN its data.yaml is uploaded again (a new S3 version)
    THEN a second execution starts."""
    v1 = upload(aws, sample_dataset)
    trigger.lambda_handler(marker_event("s3_marker_put", version=v1), LambdaContext())
    v2 = aws.put("datasets/shapes/data.yaml", (sample_dataset("shapes2").data_yaml).read_bytes())
    assert v2 != v1
    trigger.lambda_handler(marker_event("s3_marker_new_version", version=v2), LambdaContext())

    # AND it carries the new version, so SageMaker's step cache cannot hand back the old model
    versions = sorted(aws.execution_parameters(e["PipelineExecutionArn"])["DatasetVersion"] for e in aws.executions())
    assert versions == sorted([v1, v2])


def test_concurrent_duplicate_deliveries_start_exactly_one_execution(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a valid dataset
    WHEN 8 deliveries of the same marker run at the same time (moto ignores ClientRequestToken, so
    only the idempotency layer can stop the duplicates)
    THEN exactly one execution starts and every invocation succeeds."""
    version = upload(aws, sample_dataset)
    event = marker_event("s3_marker_put", version=version)
    errors: list[BaseException] = []
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        try:
            result = trigger.lambda_handler(event, LambdaContext())
            outcomes.append(result["outcomes"][0]["outcome"])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(aws.executions()) == 1
    assert set(outcomes) <= {"started", "duplicate"} and "started" in outcomes


def test_image_put_is_ignored(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN an image object (not the marker)
    WHEN its event reaches the trigger
    THEN nothing starts, nothing is sent, and the invocation succeeds."""
    upload(aws, sample_dataset)
    result = trigger.lambda_handler(load_event("s3_image_put"), LambdaContext())
    assert result["outcomes"] == [{"outcome": "ignored", "key": "datasets/shapes/images/train/img_00001.jpg"}]
    assert aws.executions() == [] and aws.inbox() == []


@pytest.mark.parametrize("key", [
    "datasets/data.yaml",                      # no dataset folder
    "datasets/shapes/sub/data.yaml",           # not directly under datasets/<name>/
    "datasets/shapes/mydata.yaml",             # passes S3's suffix filter, is not the marker
    "other/shapes/data.yaml",                  # outside datasets/
])
def test_keys_that_are_not_markers_are_ignored(aws: Aws, trigger, key: str) -> None:
    """GIVEN keys the S3 filter could let through WHEN they arrive THEN nothing starts."""
    result = trigger.lambda_handler(marker_event("s3_marker_put", key=quote_plus(key, safe="/")), LambdaContext())
    assert result["outcomes"][0]["outcome"] == "ignored"
    assert aws.executions() == []


def test_key_with_spaces_and_non_ascii_is_decoded(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a dataset folder named "Zebras & Ünïcode v2" (S3 sends the key URL-encoded)
    WHEN its marker arrives
    THEN the execution reads the decoded folder and its display name is a valid SageMaker name."""
    ds = sample_dataset("zebras")
    version = aws.upload_dataset(ds.root, "Zebras & Ünïcode v2")
    event = load_event("s3_marker_unicode_key")
    event["Records"][0]["s3"]["object"]["versionId"] = version
    result = trigger.lambda_handler(event, LambdaContext())

    assert result["outcomes"][0]["outcome"] == "started", result
    [execution] = aws.executions()
    assert execution["PipelineExecutionDisplayName"] == "Zebras-Unicode-v2"
    params = aws.execution_parameters(execution["PipelineExecutionArn"])
    assert params["DatasetS3Uri"] == f"s3://{BUCKET}/datasets/Zebras & Ünïcode v2/"


def test_several_records_in_one_event_are_each_handled(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN one S3 event carrying an image record and two different datasets' markers
    WHEN it arrives THEN both datasets start and the image is ignored."""
    va = upload(aws, sample_dataset, "cats")
    vb = upload(aws, sample_dataset, "dogs")
    event = load_event("s3_marker_put")
    template = event["Records"][0]
    records = []
    for key, version in (("datasets/cats/images/train/x.jpg", "v0"), ("datasets/cats/data.yaml", va),
                         ("datasets/dogs/data.yaml", vb)):
        record = {**template, "s3": {**template["s3"], "object": {**template["s3"]["object"], "key": key,
                                                                    "versionId": version}}}
        records.append(record)
    result = trigger.lambda_handler({"Records": records}, LambdaContext())

    assert [o["outcome"] for o in result["outcomes"]] == ["ignored", "started", "started"]
    assert sorted(e["PipelineExecutionDisplayName"] for e in aws.executions()) == ["cats", "dogs"]


def test_overrides_file_sets_parameters(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN yolopipe.yaml beside data.yaml asking for 5 epochs of the `s` model
    WHEN the marker arrives THEN the execution runs with those parameters."""
    ds = sample_dataset("shapes")
    (ds.root / "yolopipe.yaml").write_text("# per-dataset settings\nepochs: 5\nmodel_variant: s\n")
    version = aws.upload_dataset(ds.root, "shapes")
    trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())

    [execution] = aws.executions()
    params = aws.execution_parameters(execution["PipelineExecutionArn"])
    assert params["Epochs"] == "5" and params["ModelVariant"] == "s"


# --------------------------------------------------------------------------- refusals
def _break(root: Path, case: str) -> None:
    data = root / "data.yaml"
    text = data.read_text()
    if case == "download":
        data.write_text(text + "download: https://example.com/evil.sh\n")
    elif case == "absolute-path":
        data.write_text(text.replace("path: .", "path: /content/datasets/shapes"))
    elif case == "escaping-path":
        data.write_text(re.sub(r"(?m)^train:.*$", "train: ../other/images/train", text))
    elif case == "missing-split":
        for f in (root / "images" / "val").iterdir():
            f.unlink()
        (root / "images" / "val").rmdir()
    elif case == "class-out-of-range":
        label = sorted((root / "labels" / "train").iterdir())[0]
        label.write_text("7 0.5 0.5 0.2 0.2\n")
    elif case == "malformed-label":
        label = sorted((root / "labels" / "val").iterdir())[0]
        label.write_text("0 0.5 0.5 0.2\n")
    elif case == "no-names":
        data.write_text(re.sub(r"(?ms)^names:.*?(?=^\S|\Z)", "", text))
    elif case == "empty-split":
        for f in (root / "images" / "val").iterdir():
            f.unlink()
        (root / "images" / "val" / "README.txt").write_text("no images here")
    elif case == "not-yaml":
        data.write_text("names: [a, b\ntrain: images/train\n")
    elif case == "epochs-over-cap":
        (root / "yolopipe.yaml").write_text("epochs: 5000\n")
    elif case == "gate-not-overridable":
        (root / "yolopipe.yaml").write_text("epochs: 3\nmin_map50_95: 0.01\n")
    elif case == "unknown-parameter":
        (root / "yolopipe.yaml").write_text("epocs: 3\n")
    elif case == "hundred-million-classes":  # 50 bytes that would build 10^8 names
        data.write_text("train: images/train\nval: images/val\nnc: 100000000\n")
    elif case == "alias-bomb-overrides":  # a few hundred bytes standing for 10^9 values
        (root / "yolopipe.yaml").write_text(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
            + "epochs: *i\n")
    elif case == "instance-not-allowed":
        (root / "yolopipe.yaml").write_text("training_instance_type: ml.p5.48xlarge\n")
    elif case == "runtime-over-cap":
        (root / "yolopipe.yaml").write_text("max_runtime_seconds: 2419200\n")
    elif case == "instances-over-cap":  # 8 instances: eight times the bill, from a file anyone with bucket access wrote
        (root / "yolopipe.yaml").write_text("training_instance_count: 8\n")
    elif case == "nan-learning-rate":
        (root / "yolopipe.yaml").write_text("learning_rate: .nan\n")
    elif case == "batch-zero":
        (root / "yolopipe.yaml").write_text("batch_size: 0\n")
    else:
        raise AssertionError(case)


REFUSALS = {
    "download": ("data.yaml", "download"),
    "absolute-path": ("data.yaml", "path"),
    "escaping-path": ("data.yaml", "train"),
    "missing-split": ("data.yaml", "val"),
    "class-out-of-range": ("labels/train/", "7"),
    "not-yaml": ("data.yaml", ""),
    "malformed-label": ("labels/val/", ""),
    "no-names": ("data.yaml", "names"),
    "empty-split": ("data.yaml", "val"),
    "epochs-over-cap": ("yolopipe.yaml:1", "Epochs must be at most"),
    "gate-not-overridable": ("yolopipe.yaml:2", "MinMap50_95 cannot be set by a dataset"),
    "unknown-parameter": ("yolopipe.yaml:1", "did you mean 'epochs'"),
    "hundred-million-classes": ("data.yaml:3", "over the 10,000 classes"),
    "alias-bomb-overrides": ("yolopipe.yaml", "YAML aliases"),
    "instance-not-allowed": ("yolopipe.yaml:1", "ml.p5.48xlarge is not allowed on this stack"),
    "runtime-over-cap": ("yolopipe.yaml:1", "MaxRuntimeSeconds must be at most 86400 on this stack"),
    "instances-over-cap": ("yolopipe.yaml:1", "TrainingInstanceCount must be at most 1 on this stack"),
    "nan-learning-rate": ("yolopipe.yaml:1", "LearningRate must be a finite number"),
    "batch-zero": ("yolopipe.yaml:1", "BatchSize cannot be 0"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_broken_dataset_is_refused_with_its_problems(aws: Aws, trigger, sample_dataset, monkeypatch,
                                                     case: str) -> None:
    """GIVEN a dataset with one fault
    WHEN its marker arrives
    THEN nothing starts, the invocation succeeds (no retry storm), and the topic receives the
    problem with the file (and line) to fix."""
    ds = sample_dataset("shapes", train=4, val=2)
    _break(ds.root, case)
    version = aws.upload_dataset(ds.root, "shapes")
    result = trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())

    assert result["outcomes"][0]["outcome"] == "refused"
    assert aws.executions() == []
    [mail] = aws.inbox()
    where, what = REFUSALS[case]
    assert "shapes" in mail["subject"] and "refused" in mail["subject"]
    problem_lines = [line.strip() for line in mail["message"].splitlines() if line.startswith("  ")]
    assert any(line.startswith(where) and what in line for line in problem_lines), mail["message"]
    assert re.search(r"^  \S+?(:\d+)?: ", mail["message"], re.M)


def test_missing_data_yaml_content_is_refused_once_even_when_redelivered(aws: Aws, trigger, sample_dataset) -> None:
    """GIVEN a refused dataset WHEN its marker is redelivered THEN the team gets one message, not two."""
    ds = sample_dataset("shapes", train=4, val=2)
    _break(ds.root, "download")
    version = aws.upload_dataset(ds.root, "shapes")
    for _ in range(2):
        trigger.lambda_handler(marker_event("s3_marker_put", version=version), LambdaContext())
    assert len(aws.inbox()) == 1


def test_missing_configuration_fails_at_start_with_one_line(aws: Aws, monkeypatch) -> None:
    """GIVEN a deployment without PIPELINE_NAME WHEN the function starts THEN it says which variable."""
    from function_harness import load_handler

    monkeypatch.delenv("PIPELINE_NAME")
    with pytest.raises(ConfigurationError, match="PIPELINE_NAME is not set"):
        load_handler("trigger")


# --------------------------------------------------------------------------- names and tokens
@pytest.mark.parametrize("name", ["shapes", "Zebras & Ünïcode v2", "---", "x" * 300, "a__b..c", "日本語データ",
                                  "-leading-and-trailing-"])
def test_display_name_is_always_valid_for_sagemaker(name: str) -> None:
    """GIVEN any folder name WHEN it becomes a display name THEN SageMaker's pattern accepts it."""
    display = display_name_for(name)
    assert DISPLAY_NAME_PATTERN.fullmatch(display) and len(display) <= 82


def test_client_request_token_is_deterministic_per_version() -> None:
    """GIVEN the same dataset version twice and a new version
    THEN the token repeats for the same version, changes for a new one, and fits 32-128 chars."""
    a = DatasetMarker("b", "datasets/x/data.yaml", "v1", "x", "datasets/x/")
    b = DatasetMarker("b", "datasets/x/data.yaml", "v1", "x", "datasets/x/")
    c = DatasetMarker("b", "datasets/x/data.yaml", "v2", "x", "datasets/x/")
    assert a.client_request_token == b.client_request_token != c.client_request_token
    assert 32 <= len(a.client_request_token) <= 128
