"""Converters: COCO, Pascal VOC and ImageFolder datasets become YOLO datasets that validate.

GIVEN a small dataset in each source format (generated here), WHEN converted, THEN each label
file holds exactly the expected normalised boxes, names keep their original order, the split is
seeded, and the result passes our own validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yolopipe.datasets.convert import ConversionError, ConvertResult, convert
from yolopipe_shared.dataset_sources import LocalDatasetSource
from yolopipe_shared.validate import validate_dataset


def make_image(path: Path, size: tuple[int, int] = (32, 16)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def labels_by_image(result: ConvertResult) -> dict[str, str]:
    """{image path under images/<split>/: label text}, whichever split each image landed in."""
    found = {}
    for split in ("train", "val"):
        for label in sorted((result.root / "labels" / split).rglob("*.txt")):
            found[label.relative_to(result.root / "labels" / split).with_suffix("").as_posix()] = label.read_text()
    return found


def split_of(result: ConvertResult) -> dict[str, str]:
    return {
        p.relative_to(result.root / "images" / split).as_posix(): split
        for split in ("train", "val")
        for p in (result.root / "images" / split).rglob("*.*")
    }


def assert_valid(result: ConvertResult) -> None:
    report = validate_dataset(LocalDatasetSource(result.root), label_sample=None)
    assert report.ok, report.summary()
    assert report.names == result.names


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    src = tmp_path / "coco"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        make_image(src / "images" / name)
    doc = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
            {"id": 2, "file_name": "b.jpg", "width": 200, "height": 100},
            {"id": 3, "file_name": "c.jpg", "width": 64, "height": 64},
            {"id": 4, "file_name": "missing.jpg", "width": 64, "height": 64},
        ],
        # sparse ids in an order that is neither id nor alphabetical order
        "categories": [{"id": 7, "name": "zebra"}, {"id": 2, "name": "ant"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 5, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [90, 40, 20, 20], "iscrowd": 0},  # overhangs
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 200, 100], "iscrowd": 0},
            {"id": 4, "image_id": 2, "category_id": 7, "bbox": [0, 0, 50, 50], "iscrowd": 1},
            {"id": 5, "image_id": 2, "category_id": 7, "bbox": [5, 5, 0, 10], "iscrowd": 0},
            {"id": 6, "image_id": 2, "category_id": 99, "bbox": [5, 5, 10, 10], "iscrowd": 0},
            {"id": 7, "image_id": 3, "category_id": 2, "bbox": "10 10 5 5", "iscrowd": 0},
        ],
    }
    (src / "annotations").mkdir()
    (src / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    return src


def test_coco_boxes_become_exact_yolo_lines(coco: Path, tmp_path: Path) -> None:
    result = convert("coco", coco, tmp_path / "out")
    # names follow the categories list: zebra (id 7) is class 0, ant (id 2) class 1
    assert result.names == ["zebra", "ant"]
    assert labels_by_image(result) == {
        "a": "0 0.200000 0.200000 0.200000 0.200000\n1 0.950000 0.900000 0.100000 0.200000\n",
        "b": "1 0.500000 0.500000 1.000000 1.000000\n",
        "c": "",  # no annotations: a background image
    }
    assert result.counts == {"train": 2, "val": 1}
    assert result.skipped == {
        "annotations with an unknown image or category": 1,
        "annotations without a valid bbox": 1,
        "boxes with no area": 1,
        "crowd annotations": 1,
        "images not found": 1,
    }
    assert (result.root / "data.yaml").read_text() == (
        "path: .\ntrain: images/train\nval: images/val\nnc: 2\nnames:\n  0: zebra\n  1: ant\n"
    )
    assert_valid(result)


def test_the_split_is_seeded(coco: Path, tmp_path: Path) -> None:
    first = convert("coco", coco, tmp_path / "one", seed=1)
    again = convert("coco", coco, tmp_path / "two", seed=1)
    assert split_of(first) == split_of(again)
    seeds = [split_of(convert("coco", coco, tmp_path / f"s{seed}", seed=seed)) for seed in range(6)]
    assert len({tuple(sorted(s.items())) for s in seeds}) > 1


def write_voc(src: Path, stem: str, size: tuple[int, int], objects: list[tuple[str, int, tuple[int, ...]]]) -> None:
    make_image(src / "JPEGImages" / f"{stem}.jpg")
    xml_objects = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, difficult, b in objects
    )
    (src / "Annotations").mkdir(parents=True, exist_ok=True)
    (src / "Annotations" / f"{stem}.xml").write_text(
        f"<annotation><filename>{stem}.jpg</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size>{xml_objects}</annotation>"
    )


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    src = tmp_path / "VOC"
    write_voc(src, "a", (100, 50), [("dog", 0, (11, 6, 31, 16)), ("cat", 1, (1, 1, 10, 10))])
    write_voc(src, "b", (200, 100), [("cat", 0, (1, 1, 201, 101)), ("dog", 0, (51, 26, 151, 76))])
    write_voc(src, "c", (64, 64), [("bird", 0, (33, 33, 65, 65))])
    return src


def test_voc_boxes_become_exact_yolo_lines_in_order_of_appearance(voc: Path, tmp_path: Path) -> None:
    result = convert("voc", voc, tmp_path / "out")
    # a.xml's cat is difficult (skipped), so dog, then cat (b.xml), then bird (c.xml)
    assert result.names == ["dog", "cat", "bird"]
    assert labels_by_image(result) == {
        "a": "0 0.200000 0.200000 0.200000 0.200000\n",
        "b": "1 0.500000 0.500000 1.000000 1.000000\n0 0.500000 0.500000 0.500000 0.500000\n",
        "c": "2 0.750000 0.750000 0.500000 0.500000\n",
    }
    assert result.skipped == {"difficult objects": 1}
    assert_valid(result)


def test_voc_with_given_names_uses_their_ids_and_skips_other_classes(voc: Path, tmp_path: Path) -> None:
    result = convert("voc", voc, tmp_path / "out", names=["cat", "dog"])
    assert result.names == ["cat", "dog"]
    assert labels_by_image(result) == {
        "a": "1 0.200000 0.200000 0.200000 0.200000\n",
        "b": "0 0.500000 0.500000 1.000000 1.000000\n1 0.500000 0.500000 0.500000 0.500000\n",
        "c": "",
    }
    assert result.skipped == {"difficult objects": 1, "objects of classes not in names": 1}
    assert_valid(result)


def test_imagefolder_gives_one_whole_image_box_per_image(tmp_path: Path) -> None:
    src = tmp_path / "flowers"
    make_image(src / "tulip" / "x.jpg")
    make_image(src / "tulip" / "y.png")
    make_image(src / "daisy" / "x.jpg")  # same file name in another class: kept apart
    make_image(src / "daisy" / "nested" / "z.jpg")
    (src / ".ipynb_checkpoints").mkdir()
    (src / "daisy" / "notes.txt").write_text("not an image")
    result = convert("imagefolder", src, tmp_path / "out", val_fraction=0.25)
    assert result.names == ["daisy", "tulip"]  # sorted folder names, as torchvision's ImageFolder
    assert labels_by_image(result) == {
        "daisy/x": "0 0.500000 0.500000 1.000000 1.000000\n",
        "daisy/nested/z": "0 0.500000 0.500000 1.000000 1.000000\n",
        "tulip/x": "1 0.500000 0.500000 1.000000 1.000000\n",
        "tulip/y": "1 0.500000 0.500000 1.000000 1.000000\n",
    }
    assert result.counts == {"train": 3, "val": 1}
    assert_valid(result)


def test_imagefolder_keeps_an_existing_train_val_split(tmp_path: Path) -> None:
    src = tmp_path / "pets"
    for split, count in (("train", 3), ("valid", 1)):
        for cls in ("cat", "dog"):
            for i in range(count):
                make_image(src / split / cls / f"{i}.jpg")
    result = convert("imagefolder", src, tmp_path / "out")
    assert result.names == ["cat", "dog"]
    assert result.counts == {"train": 6, "val": 2}
    assert sorted(k for k, v in split_of(result).items() if v == "val") == ["cat/0.jpg", "dog/0.jpg"]
    assert_valid(result)


def test_images_are_hard_linked_not_duplicated(coco: Path, tmp_path: Path) -> None:
    result = convert("coco", coco, tmp_path / "out")
    converted = next((result.root / "images").rglob("a.jpg"))
    assert converted.stat().st_ino == (coco / "images" / "a.jpg").stat().st_ino


@pytest.mark.parametrize(
    ("fmt", "kwargs", "words"),
    [
        ("yolo", {}, "unknown format 'yolo'"),
        ("coco", {"val_fraction": 0}, "val_fraction"),
        ("voc", {}, "Annotations/"),  # a COCO folder is not a VOC one
    ],
)
def test_bad_requests_are_one_line_errors(coco: Path, tmp_path: Path, fmt, kwargs, words) -> None:
    with pytest.raises(ConversionError, match=words) as caught:
        convert(fmt, coco, tmp_path / "out", **kwargs)
    assert "\n" not in str(caught.value)


def test_a_non_empty_destination_is_refused(coco: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match="not empty"):
        convert("coco", coco, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_coco_json_that_is_not_coco(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ConversionError, match="not a COCO instances JSON"):
        convert("coco", tmp_path / "src", tmp_path / "out")
