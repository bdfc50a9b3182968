"""Untrusted data.yaml: every refusal is one line naming the file and the field, and nothing trains."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from training_harness import Job

BAD = {
    "download": ("download: https://example.com/x.zip\n", "download"),
    "absolute path": ("train: /etc/images\n", "train"),
    "escaping path": ("val: ../../other/images\n", "val"),
    "absolute root": ("path: /content/datasets/x\n", "path"),
    "names and nc disagree": ("nc: 5\n", "nc"),
    "python tag": ("extra: !!python/object/apply:os.system ['true']\n", "tag"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_yaml_is_refused_before_training(case, make_dataset, tmp_path):
    """GIVEN a dataset whose data.yaml has a dangerous or inconsistent field
    WHEN the training job starts
    THEN it exits 2 with one line naming data.yaml and the field, and trains nothing."""
    sample = make_dataset(f"bad-{case.replace(' ', '-')}", train=2, val=2)
    extra, field = BAD[case]
    text = (sample.root / "data.yaml").read_text()
    if extra.split(":")[0] in ("train", "val", "path"):
        key = extra.split(":")[0]
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}:")) + "\n"
    (sample.root / "data.yaml").write_text(text + extra)
    job = Job(tmp_path, sample.root)

    done = job.train("--epochs", "1", "--imgsz", "64")

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "data.yaml" in lines[0] and field in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert not job.model_dir.exists() and not (job.checkpoint_dir / "train").exists()


def test_missing_data_yaml_and_missing_split_folder(make_dataset, tmp_path):
    """GIVEN a dataset without data.yaml, and one whose val folder was not uploaded
    WHEN the training job starts
    THEN each exits 2 with one line that says what to upload."""
    sample = make_dataset("nofile", train=2, val=2)
    (sample.root / "data.yaml").unlink()
    done = Job(tmp_path / "a", sample.root).train("--epochs", "1")
    assert done.returncode == 2 and "data.yaml" in done.stderr and "not found" in done.stderr

    sample = make_dataset("nofolder", train=2, val=2)
    for f in (sample.root / "images" / "val").iterdir():
        f.unlink()
    (sample.root / "images" / "val").rmdir()
    done = Job(tmp_path / "b", sample.root).train("--epochs", "1")
    assert done.returncode == 2 and "images/val" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@contextlib.contextmanager
def read_only(folder: Path, mount_point: Path) -> Iterator[Path]:
    """The folder as a read-only channel: a read-only bind mount as root (root ignores file
    modes, and SageMaker's channels are mounts), file modes otherwise."""
    if os.geteuid() == 0:
        mount_point.mkdir()
        if subprocess.run(["mount", "--bind", str(folder), str(mount_point)], capture_output=True).returncode:
            pytest.skip("cannot bind-mount here")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(mount_point)], check=True, capture_output=True)
            yield mount_point
        finally:
            subprocess.run(["umount", str(mount_point)], check=True)
        return
    paths = [folder, *folder.rglob("*")]
    for path in sorted(paths, reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield folder
    finally:
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_read_only_dataset_trains(make_dataset, tmp_path):
    """GIVEN a dataset folder nobody may write to (as a read-only channel mount)
    WHEN the training job runs
    THEN it trains: the cleaned data.yaml and caches go elsewhere."""
    sample = make_dataset("readonly", train=4, val=2)
    with read_only(sample.root, tmp_path / "channel") as channel:
        with pytest.raises(OSError):  # the premise: nothing can be written there
            (channel / "probe").write_text("x")
        done = Job(tmp_path / "job", channel).train("--epochs", "1", "--imgsz", "64", "--plots", "false")
        assert done.returncode == 0, done.stderr[-2000:]
        assert not list(channel.rglob("*.cache")), "a labels cache was written into the dataset"
