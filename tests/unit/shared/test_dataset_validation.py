"""Whole-dataset validation on a local folder: the checks `yolopipe dataset validate` and train.py run.

GIVEN a generated dataset with one seeded fault, WHEN validated, THEN the report refuses it with a
problem naming the file and line (or warns, for background images), and a clean one passes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yolopipe_shared.dataset_sources import DatasetUnreadable, LocalDatasetSource
from yolopipe_shared.errors import DatasetRejected
from yolopipe_shared.labels import check_label, label_path_for
from yolopipe_shared.validate import ValidationReport, validate_dataset


def validate(root: Path, **kwargs) -> ValidationReport:
    return validate_dataset(LocalDatasetSource(root), **kwargs)


def only_problem(report: ValidationReport):
    assert not report.ok
    assert len(report.problems) == 1, report.summary()
    return report.problems[0]


def test_a_clean_dataset_passes_with_counts(sample_dataset) -> None:
    ds = sample_dataset(train=12, val=4, test=3)
    report = validate(ds.root)
    assert report.ok, report.summary()
    assert report.names == ["square", "disc", "bar"]
    assert report.images_per_split == {"train": 12, "val": 4, "test": 3}
    assert report.labels_per_split == {"train": 12, "val": 4, "test": 3}
    assert report.labels_checked == 19
    assert report.warnings == []
    report.raise_if_rejected()  # nothing to raise
    assert "OK" in report.summary()


def test_missing_data_yaml_is_a_problem(sample_dataset) -> None:
    ds = sample_dataset(write_data_yaml=False)
    problem = only_problem(validate(ds.root))
    assert (problem.file, problem.line) == ("data.yaml", None)
    assert "not found" in problem.message


def test_data_yaml_problems_are_reported_and_validation_goes_on(sample_dataset) -> None:
    ds = sample_dataset()
    with ds.data_yaml.open("a") as handle:
        handle.write("download: bash get.sh\n")
    problem = only_problem(validate(ds.root))
    assert problem.line == 8  # the line it was appended on
    assert "`download`" in problem.message
    with pytest.raises(DatasetRejected, match="download"):
        validate(ds.root).raise_if_rejected()


def test_data_yaml_and_label_problems_are_reported_in_one_pass(sample_dataset) -> None:
    """GIVEN a data.yaml with a problem (`download:`) and a split that climbs out, and a label file
    with a class id out of range WHEN validated THEN all three are reported at once (the user fixes
    them in one round), and the usable splits are still counted."""
    ds = sample_dataset()
    with ds.data_yaml.open("a") as handle:
        handle.write("download: bash get.sh\ntest: ../../elsewhere\n")
    label = sorted((ds.root / "labels" / "train").glob("*.txt"))[0]
    label.write_text("9 0.5 0.5 0.2 0.2\n")
    report = validate(ds.root)
    found = [str(p) for p in report.problems]
    assert any("`download`" in p for p in found), found
    assert any("climbs out" in p for p in found), found
    assert any(p.startswith(f"labels/train/{label.name}:1: class id 9") for p in found), found
    assert report.images_per_split["train"] > 0 and report.data_yaml is None


def test_a_declared_split_that_does_not_exist(sample_dataset) -> None:
    ds = sample_dataset()
    shutil.rmtree(ds.root / "images" / "val")
    problem = only_problem(validate(ds.root))
    assert (problem.file, problem.line) == ("data.yaml", 3)
    assert "`val: images/val` not found" in problem.message


def test_a_split_without_images(sample_dataset) -> None:
    # GIVEN a val folder that holds only a README, no images
    ds = sample_dataset()
    shutil.rmtree(ds.root / "images" / "val")
    (ds.root / "images" / "val").mkdir()
    (ds.root / "images" / "val" / "README.md").write_text("nothing here")
    problem = only_problem(validate(ds.root))
    assert (problem.file, problem.line) == ("data.yaml", 3)
    assert "`val` holds no images" in problem.message


def test_hidden_files_are_not_images(sample_dataset) -> None:
    # macOS leaves ._name.jpg files; Ultralytics' glob skips them, so must we
    ds = sample_dataset(train=2, val=2)
    (ds.root / "images" / "train" / "._train_00000.jpg").write_bytes(b"\x00\x05")
    (ds.root / "images" / "train" / ".cache").mkdir()
    (ds.root / "images" / "train" / ".cache" / "x.jpg").write_bytes(b"x")
    report = validate(ds.root)
    assert report.ok, report.summary()
    assert report.images_per_split["train"] == 2


def test_no_label_files_at_all_is_a_problem(sample_dataset) -> None:
    ds = sample_dataset(train=5, val=2)
    shutil.rmtree(ds.root / "labels" / "train")
    problem = only_problem(validate(ds.root))
    assert "none of its 5 images has a label file" in problem.message
    assert "labels/train/train_00000.txt for images/train/train_00000.jpg" in problem.message


def test_some_missing_labels_are_background_images_with_a_warning(sample_dataset) -> None:
    ds = sample_dataset(train=5, val=2)
    (ds.root / "labels" / "train" / "train_00003.txt").unlink()
    report = validate(ds.root)
    assert report.ok, report.summary()
    assert report.missing_labels_per_split == {"train": 1, "val": 0}
    assert len(report.warnings) == 1
    assert "1 of 5 images have no label file" in report.warnings[0].message


def test_every_label_file_empty_is_a_problem(sample_dataset) -> None:
    ds = sample_dataset(train=3, val=2)
    for label in (ds.root / "labels" / "val").iterdir():
        label.write_text("")
    problem = only_problem(validate(ds.root))
    assert "`val`: every label file is empty" in problem.message


def test_an_empty_image_file_is_a_problem(sample_dataset) -> None:
    ds = sample_dataset(train=3, val=2)
    (ds.root / "images" / "train" / "train_00001.jpg").write_bytes(b"")
    problem = only_problem(validate(ds.root))
    assert problem.file == "images/train/train_00001.jpg"
    assert "empty file" in problem.message


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n", 2, "class id 3 but data.yaml has 3 names (ids 0-2)"),
        ("-1 0.5 0.5 0.2 0.2\n", 1, "not a whole number"),
        ("1.5 0.5 0.5 0.2 0.2\n", 1, "not a whole number"),
        ("0 320 240 50 40\n", 1, "not normalised to 0-1"),
        ("0 0.5 0.5 -0.2 0.2\n", 1, "not normalised"),
        ("0 0.5 0.5 0.2 nan\n", 1, "not normalised"),
        ("0 0.5 0.5 0.2\n", 1, "has 4 values"),
        ("0 0.5 0.5 0.2 0.2 0.9\n", 1, "has 6 values"),
        ("\n\n0 0.5 0.5 0.2 0.2\n0 a 0.5 0.2 0.2\n", 4, "'a' is not a number"),
        ("0 0.1 0.1 0.9 0.1 0.9 0.9\n0 0.5 0.5 0.2 0.2\n", 2, "mixes a box row with polygon rows"),
        ("0 0.1 0.1 0.9 0.1 0.9 0.9 0.5\n", 1, "pairs"),
        ("0 0.1 0.1 1.9 0.1 0.9 0.9\n", 1, "not normalised"),
    ],
)
def test_a_bad_label_line_is_a_problem_with_file_and_line(sample_dataset, content, line, words) -> None:
    ds = sample_dataset(train=4, val=2)
    (ds.root / "labels" / "train" / "train_00002.txt").write_text(content)
    problem = only_problem(validate(ds.root, label_sample=None))
    assert (problem.file, problem.line) == ("labels/train/train_00002.txt", line)
    assert words in problem.message


@pytest.mark.parametrize(
    "content",
    [
        "0 0.5 0.5 0.2 0.2\n",
        "\ufeff2 0.5 0.5 0.2 0.2\r\n",  # BOM and CRLF, as Windows tools write them
        "0 1.005 0.5 0.2 0.2\n",  # inside Ultralytics' 1% tolerance
        "0 -0.005 0.5 0.2 0.2\n",
        "1.0 0.5 0.5 0 0\n",  # a whole class id written as a float
        "0 0.1 0.1 0.9 0.1 0.9 0.9\n2 0.2 0.2 0.4 0.2 0.3 0.5 0.25 0.45\n",  # polygons
        "   \n\n",  # only blank lines: a background image
    ],
)
def test_labels_ultralytics_accepts_pass(content: str) -> None:
    assert check_label(content.encode(), 3) is None


def test_a_label_that_is_not_utf8_is_a_problem() -> None:
    assert check_label(b"\xff\xfe0 0.5", 3) == (None, "not UTF-8 text; a label file holds lines of numbers")


def test_pose_rows_in_a_box_dataset_keep_their_box() -> None:
    row = "0 0.5 0.5 0.2 0.2 " + " ".join(["0.5 0.5 2"] * 17) + "\n"
    assert check_label(row.encode(), 1, nkpt=17, ndim=3) is None


def test_label_path_follows_ultralytics_rule() -> None:
    assert label_path_for("images/train/a.b.JPG") == "labels/train/a.b.txt"
    assert label_path_for("data/images/x/images/c.png") == "data/images/x/labels/c.txt"
    assert label_path_for("pics/c.png") == "pics/c.txt"  # no images/ folder: label beside the image


def test_the_label_sample_is_seeded_and_spread_over_splits(sample_dataset) -> None:
    # GIVEN 40 train and 10 val labels, one of them broken
    ds = sample_dataset(train=40, val=10, objects_per_image=(1, 1))
    (ds.root / "labels" / "train" / "train_00007.txt").write_text("9 0.5 0.5 0.1 0.1\n")
    # WHEN validated with a sample of 10 THEN 10 labels are read, in proportion (8 train, 2 val)
    sampled = [validate(ds.root, label_sample=10, seed=seed) for seed in range(8)]
    assert {r.labels_checked for r in sampled} == {10}
    # the same seed finds the same problems; different seeds look at different files
    assert validate(ds.root, label_sample=10, seed=3).problems == sampled[3].problems
    assert len({len(r.problems) for r in sampled}) == 2
    # AND reading every label always finds it
    full = validate(ds.root, label_sample=None)
    assert full.labels_checked == 50
    assert [p.file for p in full.problems] == ["labels/train/train_00007.txt"]


def write_list(root: Path, name: str, lines: list[str]) -> None:
    (root / name).write_text("\n".join(lines) + "\n")


def test_txt_image_lists_relative_to_the_list(sample_dataset) -> None:
    ds = sample_dataset(train=3, val=2)
    write_list(ds.root, "train.txt", [f"./images/train/train_0000{i}.jpg" for i in range(3)])
    ds.data_yaml.write_text("train: train.txt\nval: images/val\nnames: [a, b, c]\n")
    report = validate(ds.root)
    assert report.ok, report.summary()
    assert report.images_per_split == {"train": 3, "val": 2}


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("images/train/train_00001.jpg", "not relative to the list"),
        ("/data/images/train/train_00001.jpg", "absolute path"),
        ("./../outside/x.jpg", "climbs out"),
        ("./images/train/nope.jpg", "not found in the dataset"),
    ],
)
def test_bad_txt_list_lines_are_problems(sample_dataset, entry: str, words: str) -> None:
    ds = sample_dataset(train=3, val=2)
    write_list(ds.root, "train.txt", ["./images/train/train_00000.jpg", entry])
    ds.data_yaml.write_text("train: train.txt\nval: images/val\nnames: [a, b, c]\n")
    problem = only_problem(validate(ds.root))
    assert (problem.file, problem.line) == ("train.txt", 2)
    assert words in problem.message


def test_a_split_naming_one_image_is_a_problem(sample_dataset) -> None:
    ds = sample_dataset(train=3, val=2)
    ds.data_yaml.write_text("train: images/train/train_00000.jpg\nval: images/val\nnames: [a, b, c]\n")
    assert "is one image" in only_problem(validate(ds.root)).message


def test_the_dataset_root_as_a_split_finds_every_image(sample_dataset) -> None:
    ds = sample_dataset(train=3, val=2)
    ds.data_yaml.write_text("train: .\nval: images/val\nnames: [a, b, c]\n")
    report = validate(ds.root)
    assert report.ok, report.summary()
    assert report.images_per_split == {"train": 5, "val": 2}


def test_a_missing_folder_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnreadable, match="not a folder"):
        validate(tmp_path / "nope")


def test_summary_lists_problems_then_counts_the_rest(sample_dataset) -> None:
    ds = sample_dataset(train=30, val=2, objects_per_image=(1, 1))
    for label in (ds.root / "labels" / "train").iterdir():
        label.write_text("7 0.5 0.5 0.1 0.1\n")
    report = validate(ds.root, label_sample=None)
    assert len(report.problems) == 30
    lines = report.summary(limit=5).splitlines()
    assert lines[0].startswith(f"{ds.root}: REJECTED, 30 problem(s)")
    assert lines[-1] == "... and 25 more problem(s)"


def test_polygon_label_files_among_box_files_pass(sample_dataset) -> None:
    # GIVEN a segmentation-style label in a box dataset (Ultralytics trains on its box)
    ds = sample_dataset(train=20, val=2)
    (ds.root / "labels" / "train" / "train_00005.txt").write_text("1 0.1 0.1 0.9 0.1 0.9 0.9 0.1 0.9\n")
    report = validate(ds.root, label_sample=None)
    assert report.ok, report.summary()


def test_a_label_file_that_is_not_utf8_is_a_problem(sample_dataset) -> None:
    ds = sample_dataset(train=20, val=2)
    (ds.root / "labels" / "train" / "train_00011.txt").write_bytes("0 0.5 0.5 0.2 0.2 \xe9\n".encode("latin-1"))
    problem = only_problem(validate(ds.root, label_sample=None))
    assert problem.file == "labels/train/train_00011.txt"
    assert "not UTF-8" in problem.message


def test_every_fault_in_a_large_dataset_is_found_with_all_labels(sample_dataset) -> None:
    # GIVEN 120 label files, every 7th broken (many per batch of files checked together)
    ds = sample_dataset(train=100, val=20, imgsz=16, objects_per_image=(1, 2))
    broken = sorted((ds.root / "labels" / "train").iterdir())[::7]
    for label in broken:
        label.write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n")
    report = validate(ds.root, label_sample=None)
    assert sorted(p.file for p in report.problems) == sorted(f"labels/train/{p.name}" for p in broken)
    assert {p.line for p in report.problems} == {2}


def test_a_long_txt_list_is_read_whole(sample_dataset) -> None:
    # GIVEN a list file of ~150 KB (read in several chunks) whose last line names a missing image
    ds = sample_dataset(train=3, val=2)
    lines = [f"./images/train/train_0000{i % 3}.jpg" for i in range(4000)] + ["./images/train/gone.jpg"]
    write_list(ds.root, "train.txt", lines)
    ds.data_yaml.write_text("train: train.txt\nval: images/val\nnames: [a, b, c]\n")
    problem = only_problem(validate(ds.root))
    assert (problem.file, problem.line) == ("train.txt", 4001)


def test_an_oversized_label_file_is_refused_unread(sample_dataset) -> None:
    ds = sample_dataset(train=3, val=2)
    (ds.root / "labels" / "train" / "train_00001.txt").write_text("0 0.5 0.5 0.2 0.2\n" * 120_000)
    problem = only_problem(validate(ds.root))
    assert problem.file == "labels/train/train_00001.txt"
    assert "over the 2 MiB" in problem.message


def test_symlinked_folders_are_followed_once(sample_dataset, tmp_path: Path) -> None:
    # GIVEN a dataset whose image and label folders are links to folders elsewhere, plus a link loop
    elsewhere = sample_dataset("elsewhere", train=4, val=2)
    ds = sample_dataset("linked", train=1, val=1)
    for kind in ("images", "labels"):
        shutil.rmtree(ds.root / kind)
        (ds.root / kind).symlink_to(elsewhere.root / kind, target_is_directory=True)
    (elsewhere.root / "images" / "train" / "loop").symlink_to(elsewhere.root / "images", target_is_directory=True)
    # WHEN validated THEN the linked images count (the loop is walked once) and the dataset passes
    report = validate(ds.root, label_sample=None)
    assert report.ok, report.summary()
    assert report.images_per_split == {"train": 4, "val": 2}


def test_a_label_file_of_too_many_rows_is_refused_in_one_line(sample_dataset) -> None:
    # GIVEN a 2 MiB-class label file of 10,001 rows (no image holds that many objects)
    ds = sample_dataset(train=3, val=2)
    label = sorted((ds.root / "labels" / "train").iterdir())[0]
    label.write_text("0 0.5 0.5 0.1 0.1\n" * 10_001)
    # WHEN validated THEN that file is the problem, named with the limit
    problem = only_problem(validate(ds.root, label_sample=None))
    assert problem.file == f"labels/train/{label.name}" and "more than 10,000 rows" in problem.message


def test_a_list_of_too_many_lines_is_refused_without_reading_them(sample_dataset) -> None:
    # GIVEN a train.txt of 1,000,001 lines
    ds = sample_dataset(train=3, val=2)
    write_list(ds.root, "train.txt", ["./images/train/train_00000.jpg"] * 1_000_001)
    ds.data_yaml.write_text("train: train.txt\nval: images/val\nnames: [a, b, c]\n")
    # WHEN validated THEN it is one problem naming the limit
    problems = validate(ds.root).problems
    assert any(p.file == "train.txt" and "more than 1,000,000 lines" in p.message for p in problems), problems


def test_many_bad_list_lines_are_reported_in_a_bounded_number_of_problems(sample_dataset) -> None:
    # GIVEN a train.txt where 5,000 lines name missing images
    ds = sample_dataset(train=3, val=2)
    write_list(ds.root, "train.txt", ["./images/train/train_00000.jpg"] + [f"./nope/{i}.jpg" for i in range(5_000)])
    ds.data_yaml.write_text("train: train.txt\nval: images/val\nnames: [a, b, c]\n")
    # WHEN validated THEN the first 20 are listed and the rest counted in one more line
    problems = [p for p in validate(ds.root).problems if p.file == "train.txt"]
    assert len(problems) == 21 and "4,980 more" in problems[-1].message
