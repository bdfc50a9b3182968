"""`yolopipe --help`, `dataset validate`, `dataset convert`, `doctor`, `python -m yolopipe`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3


def test_help_documents_the_exit_codes_and_starts_without_heavy_imports() -> None:
    # GIVEN a fresh interpreter
    # WHEN `python -m yolopipe --help` runs (the same as `yolopipe --help`)
    code = ("import sys, runpy; sys.argv = ['yolopipe', '--help']\n"
            "try:\n    runpy.run_module('yolopipe', run_name='__main__')\nexcept SystemExit as e:\n"
            "    heavy = [m for m in ('boto3', 'botocore', 'torch', 'ultralytics', 'sagemaker') if m in sys.modules]\n"
            "    print('HEAVY', heavy, 'EXIT', e.code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # THEN it lists the commands and exit codes, exits 0 and imported none of the heavy packages
    assert "exit codes:" in result.stdout and "upload" in result.stdout and "watch" in result.stdout
    assert "HEAVY [] EXIT 0" in result.stdout


def test_usage_error_is_one_line_exit_2(cli: Any) -> None:
    result = cli("upload")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--help" in result.err


def test_validate_accepts_a_good_dataset(cli: Any, sample_dataset: Any) -> None:
    dataset = sample_dataset(train=8, val=4)
    result = cli("dataset", "validate", dataset.root)
    assert result.code == 0, result.out + result.err
    assert "OK" in result.out and "train 8 images" in result.out


def test_validate_lists_each_problem_with_file_and_line_and_exits_1(cli: Any, sample_dataset: Any) -> None:
    # GIVEN a dataset with class ids out of range in two label files
    dataset = sample_dataset(train=8, val=4)
    labels = sorted((dataset.root / "labels" / "train").glob("*.txt"))[:2]
    for label in labels:
        label.write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    # WHEN the user validates it (every label is read locally)
    result = cli("dataset", "validate", dataset.root)
    # THEN exit 1, and each problem names its file and line
    assert result.code == 1
    for label in labels:
        assert f"labels/train/{label.name}:2:" in result.out
    data = cli("dataset", "validate", dataset.root, "--json").json()
    assert data["ok"] is False and len(data["problems"]) == 2


def test_validate_refuses_a_download_key_with_its_line(cli: Any, sample_dataset: Any) -> None:
    # GIVEN a data.yaml that asks Ultralytics to run a download command
    dataset = sample_dataset(train=8, val=4)
    lines = dataset.data_yaml.read_text().count("\n")
    with dataset.data_yaml.open("a") as handle:
        handle.write("download: bash evil.sh\n")
    # WHEN validated THEN exit 1 with data.yaml:<that line>: and the reason
    result = cli("dataset", "validate", dataset.root)
    assert result.code == 1
    assert f"data.yaml:{lines + 1}:" in result.out and "download" in result.out


def test_validate_of_a_missing_folder_is_one_line(cli: Any, tmp_path: Path) -> None:
    result = cli("dataset", "validate", tmp_path / "nope")
    assert result.code == 2  # the README: 2 is bad usage (the PATH names no folder)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_convert_imagefolder_gives_a_dataset_that_validates(cli: Any, tmp_path: Path) -> None:
    from PIL import Image

    # GIVEN an ImageFolder classification dataset with two classes
    source = tmp_path / "folder"
    for cls in ("cat", "dog"):
        (source / cls).mkdir(parents=True)
        for index in range(5):
            Image.new("RGB", (32, 24), (index * 40, 10, 10)).save(source / cls / f"{cls}{index}.jpg")
    # WHEN the user converts it
    result = cli("dataset", "convert", "--from", "imagefolder", source, tmp_path / "yolo", "--json")
    # THEN a YOLO dataset with the classes in folder order is written, and it passes validation
    assert result.code == 0, result.err
    data = result.json()
    assert data["names"] == ["cat", "dog"] and sum(data["counts"].values()) == 10
    assert cli("dataset", "validate", tmp_path / "yolo").code == 0


def test_convert_voc_with_the_class_order_the_user_gives(cli: Any, tmp_path: Path) -> None:
    from PIL import Image

    # GIVEN a Pascal VOC dataset whose first object is a dog
    source = tmp_path / "VOC"
    (source / "JPEGImages").mkdir(parents=True)
    (source / "Annotations").mkdir()
    for stem in ("a", "b"):
        Image.new("RGB", (100, 50)).save(source / "JPEGImages" / f"{stem}.jpg")
        (source / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>100</width><height>50</height></size>"
            "<object><name>dog</name><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>31</xmax><ymax>16</ymax>"
            "</bndbox></object><object><name>cat</name><bndbox><xmin>51</xmin><ymin>26</ymin><xmax>61</xmax>"
            "<ymax>36</ymax></bndbox></object></annotation>")
    # WHEN the user names the classes in the order their other datasets use
    result = cli("dataset", "convert", "--from", "voc", source, tmp_path / "yolo", "--names", "cat, dog", "--json")
    # THEN the ids follow that order, not the order of appearance
    assert result.code == 0, result.err
    assert result.json()["names"] == ["cat", "dog"]
    [label] = [p for p in (tmp_path / "yolo" / "labels").rglob("a.txt")]
    assert [line.split()[0] for line in label.read_text().splitlines()] == ["1", "0"]


def test_convert_into_a_non_empty_folder_is_refused(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "x").write_text("x")
    result = cli("dataset", "convert", "--from", "voc", tmp_path / "src", tmp_path / "dst")
    assert result.code == 1 and result.err.count("\n") == 1


def test_doctor_passes_on_a_deployed_stack(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN the deployed stack (moto: no Service Quotas data for SageMaker)
    # WHEN the user runs doctor
    result = cli("doctor")
    # THEN credentials, region, bucket, pipeline and role are ok; the quota is a warning, not a failure
    assert result.code == 0, result.out
    statuses = {c["name"]: c["status"] for c in cli("doctor", "--json").json()["checks"]}
    assert statuses == {"region": "ok", "credentials": "ok", "bucket": "ok", "pipeline": "ok",
                        "execution role": "ok", "training quota": "warn", "processing quota": "warn"}
    assert "ready to train" in result.out


def test_doctor_says_what_is_missing_and_how_to_fix_it(cli: Any, aws: dict[str, Any]) -> None:
    # GIVEN a role SageMaker cannot assume and a stack name that does not exist
    iam = boto3.client("iam")
    iam.update_assume_role_policy(RoleName="yolopipe-unit-sagemaker", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}))
    # WHEN doctor runs against that stack name, naming the pipeline
    result = cli("doctor", "--stack", "not-deployed", "--pipeline", "yolopipe-unit-cli")
    # THEN it exits 1, and each FAIL line comes with a fix
    assert result.code == 1
    assert "[FAIL] bucket" in result.out and "sam deploy" in result.out
    assert "[FAIL] execution role" in result.out and "sagemaker.amazonaws.com" in result.out
    assert "not ready" in result.out


def test_render_and_local_delegate_their_arguments(cli: Any) -> None:
    # GIVEN the renderer's own options WHEN asked for its help THEN the renderer answers, not yolopipe
    result = cli("render", "--help")
    assert result.code == 0
    assert "usage" in result.out.lower() and "exit codes:" not in result.out


def test_validate_reads_every_label_locally_not_a_sample(cli: Any, sample_dataset: Any) -> None:
    # GIVEN a dataset with more label files than the trigger samples, faults in three of them
    from yolopipe_shared.validate import DEFAULT_LABEL_SAMPLE

    dataset = sample_dataset(train=DEFAULT_LABEL_SAMPLE + 40, val=4, imgsz=32)
    broken = sorted((dataset.root / "labels" / "train").glob("*.txt"))[-3:]
    for label in broken:
        label.write_text("0 0.5 0.5 1.7 0.2\n")
    # WHEN the user validates it
    result = cli("dataset", "validate", dataset.root, "--json")
    # THEN all three are reported, whichever the trigger's sample would have drawn
    assert result.code == 1
    problems = result.json()["problems"]
    assert sorted(p.split(":")[0] for p in problems) == sorted(f"labels/train/{b.name}" for b in broken)


def test_local_without_a_running_local_stack_says_to_start_it(cli: Any, monkeypatch: Any) -> None:
    # GIVEN nothing listening where --local points
    monkeypatch.setenv("YOLOPIPE_LOCAL_ENDPOINT", "http://127.0.0.1:9")
    # WHEN the user runs a command with --local THEN one line says to start `yolopipe local serve`, exit 3
    result = cli("executions", "list", "--local")
    assert result.code == 3
    assert result.err.count("\n") == 1 and "yolopipe local serve" in result.err
