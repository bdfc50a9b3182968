"""A split folder that is a link out of the dataset (possible locally; SageMaker's channels are
copies) is refused before training: Ultralytics would read, and cache labels beside, whatever the
link points at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dataset_yaml import read_data_yaml, write_clean_data_yaml
from training_harness import Job

from yolopipe_shared.errors import DatasetRejected


def _move_out(folder: Path, elsewhere: Path) -> None:
    """Move `folder` to `elsewhere` and leave a link to it where it was."""
    elsewhere.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)


def test_split_linked_out_of_the_dataset_is_refused_before_training(make_dataset, tmp_path):
    """GIVEN a dataset whose images/val is a link to a folder outside it
    WHEN the training job starts
    THEN it exits 2 with one line naming data.yaml, the split and 'outside', and trains nothing."""
    sample = make_dataset("linked-val", train=2, val=2)
    _move_out(sample.root / "images" / "val", tmp_path / "elsewhere" / "val")
    job = Job(tmp_path / "job", sample.root)

    done = job.train("--epochs", "1", "--imgsz", "64")

    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "data.yaml" in lines[0] and "val" in lines[0] and "outside the dataset" in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert not job.model_dir.exists() and not (job.checkpoint_dir / "train").exists()


def test_parent_folder_linked_out_is_refused_and_evaluation_too(make_dataset, tmp_path):
    """GIVEN a dataset whose whole images/ folder is a link to a folder outside it
    WHEN training or evaluation reads its data.yaml
    THEN both refuse it (one problem per split), before anything is written."""
    sample = make_dataset("linked-images", train=2, val=2)
    _move_out(sample.root / "images", tmp_path / "elsewhere" / "images")

    with pytest.raises(DatasetRejected) as refused:
        read_data_yaml(sample.root)
    assert [p.split("`")[1].split(":")[0] for p in map(str, refused.value.problems)] == ["train", "val"]
    with pytest.raises(DatasetRejected):
        write_clean_data_yaml(sample.root, tmp_path / "clean", evaluation=True)
    assert not (tmp_path / "clean").exists()


def test_links_that_stay_inside_the_dataset_are_fine(make_dataset, tmp_path):
    """GIVEN a dataset whose images/val is a link to another folder of the same dataset
    WHEN its data.yaml is read THEN it is accepted (only links out are refused)."""
    sample = make_dataset("linked-inside", train=2, val=2)
    _move_out(sample.root / "images" / "val", sample.root / "shared" / "val")

    assert read_data_yaml(sample.root).splits["val"] == ["images/val"]


def test_data_yaml_linked_out_of_the_dataset_is_refused(make_dataset, tmp_path):
    """GIVEN a dataset whose data.yaml is a link to a file outside it
    WHEN the training job starts THEN it exits 2 with one line, before training."""
    sample = make_dataset("linked-marker", train=2, val=2)
    outside = tmp_path / "data.yaml"
    shutil.move(sample.root / "data.yaml", outside)
    (sample.root / "data.yaml").symlink_to(outside)

    done = Job(tmp_path / "job", sample.root).train("--epochs", "1")

    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "data.yaml" in done.stderr and "outside the dataset" in done.stderr
