"""Roboflow's exports write `train: ../train/images` beside a `train/` folder. Ultralytics reads
them (check_det_dataset looks for `train/images` when `../train/images` is not there), so the shared
rules accept them, resolved to the same folder, and still refuse paths that really leave the dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolopipe_shared.data_yaml import parse_data_yaml
from yolopipe_shared.dataset_sources import LocalDatasetSource
from yolopipe_shared.validate import validate_dataset

ROBOFLOW = "train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 1\nnames: ['zebra']\n"


def _roboflow_export(root: Path) -> Path:
    for split in ("train", "valid", "test"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        (root / split / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff")
        (root / split / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(ROBOFLOW)
    return root


def test_roboflow_export_resolves_where_ultralytics_looks(tmp_path: Path) -> None:
    """GIVEN a Roboflow export (data.yaml beside train/, valid/, test/, splits written `../x/images`)
    WHEN our rules and Ultralytics' check_det_dataset resolve it
    THEN both name the same folders inside the dataset, and validation passes."""
    from ultralytics.data.utils import check_det_dataset

    root = _roboflow_export(tmp_path / "zebras")
    parsed, problems = parse_data_yaml(ROBOFLOW)
    assert problems == [] and parsed is not None
    theirs = check_det_dataset(str(root / "data.yaml"))
    for split in ("train", "val", "test"):
        [ours] = parsed.splits[split]
        assert (root / ours).resolve() == Path(theirs[split]).resolve()
    report = validate_dataset(LocalDatasetSource(root), label_sample=None)
    assert report.ok, report.summary()
    assert report.images_per_split == {"train": 1, "val": 1, "test": 1}


@pytest.mark.parametrize(("text", "why"), [
    ("train: ../../train/images\nval: ../valid/images\nnames: [a]\n", "climbs out"),  # still outside
    ("train: [../train/images]\nval: ../valid/images\nnames: [a]\n", "climbs out"),  # Ultralytics: lists as given
    ("train: ../../etc\nval: ../valid/images\nnames: [a]\n", "climbs out"),
    ("train: ..\nval: ../valid/images\nnames: [a]\n", "climbs out"),
])
def test_paths_that_really_leave_the_dataset_are_still_refused(text: str, why: str) -> None:
    """GIVEN a split that leaves the dataset even without its first `../` (or a list, which Ultralytics
    does not retry) WHEN the rules apply THEN it is refused with a line that says so."""
    parsed, problems = parse_data_yaml(text)
    assert parsed is None and any(why in p.message and p.line == 1 for p in problems), problems


def test_train_py_hands_ultralytics_the_same_folders(tmp_path: Path) -> None:
    """GIVEN a Roboflow export WHEN train.py writes the data.yaml Ultralytics trains on THEN its splits
    are the export's folders inside the dataset (the trigger, the CLI and train.py agree)."""
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location(
        "dataset_yaml", Path(__file__).resolve().parents[3] / "training_code" / "dataset_yaml.py")
    assert spec is not None and spec.loader is not None
    dataset_yaml = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dataset_yaml)
    root = _roboflow_export(tmp_path / "zebras")
    written, _, _ = dataset_yaml.write_clean_data_yaml(root, tmp_path / "clean")
    doc = yaml.safe_load(written.read_text())
    assert {split: Path(doc["path"], doc[split]).resolve() for split in ("train", "val", "test")} == {
        "train": (root / "train" / "images").resolve(), "val": (root / "valid" / "images").resolve(),
        "test": (root / "test" / "images").resolve()}
