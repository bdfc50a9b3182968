"""Turn COCO, Pascal VOC and ImageFolder datasets into YOLO detection datasets.

`convert(fmt, src, dst)` writes `dst/images/{train,val}/...`, `dst/labels/{train,val}/...txt`
(one `class x_center y_center width height` line per box, normalised to 0-1) and `dst/data.yaml`
(`path: .`, names in their original order), with a seeded train/val split. Images are
hard-linked when `dst` is on the same filesystem, copied otherwise. `yolopipe dataset convert`
calls it; the result passes `yolopipe dataset validate`.

Decisions, per format:

- **coco** (`src`: an instances JSON, or a folder holding one, at its top or in `annotations/`):
  class ids follow the order of the JSON's `categories` list (COCO's sparse ids 1, 2, 3, 5...
  become 0, 1, 2, 3...); `bbox` is [x, y, w, h] in pixels, clipped to the image; crowd
  annotations (`iscrowd: 1`) and boxes with no area are skipped (as Ultralytics' converter
  does); an image without annotations becomes a background image (empty label file). Images
  are looked up beside the JSON, in `images/` there, or one level up (or `images_dir=`).
- **voc** (`src`: a folder with `Annotations/*.xml` and `JPEGImages/`): class names in order of
  first appearance, reading the XML files in name order, unless `names=` gives the list (then
  other classes are skipped); `difficult` objects are skipped and boxes use VOC's 1-based pixel
  convention, as Ultralytics' own VOC conversion does.
- **imagefolder** (`src/<class>/<image>`, classification): one whole-image box per image;
  classes are the folder names sorted, torchvision's ImageFolder order. When `src` already has
  `train/` and `val/` (or `valid/`) folders of classes, that split is kept.

Whatever is skipped is counted in the result (`skipped`), never silently dropped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import xml.etree.ElementTree as ET  # noqa: S405 - expat does not fetch entities; bounded by file size
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from yolopipe_shared.data_yaml import DATA_YAML
from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.labels import is_image

FORMATS = ("coco", "voc", "imagefolder")


class ConversionError(YolopipeError):
    """The source dataset cannot be converted (wrong layout, unreadable annotations, nothing to convert)."""


@dataclass(frozen=True)
class ConvertResult:
    """What `convert` wrote: the dataset root, class names, images per split, what it skipped."""

    root: Path
    names: list[str]
    counts: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def data_yaml(self) -> Path:
        return self.root / DATA_YAML


@dataclass
class _Item:
    """One image to write: where it is, where it goes (relative, POSIX, under images/<split>/), its labels."""

    source: Path
    target: str
    lines: list[str]
    split: str | None = None  # set when the source dataset already says


def convert(
    fmt: str,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    names: Sequence[str] | None = None,
    images_dir: str | os.PathLike[str] | None = None,
) -> ConvertResult:
    """Convert the `fmt` dataset at `src` into a new YOLO dataset at `dst` (which must be empty or absent)."""
    if fmt not in FORMATS:
        raise ConversionError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not 0 < val_fraction < 1:
        raise ConversionError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction}")
    source, target = Path(src), Path(dst)
    if not source.exists():
        raise ConversionError(f"{source} does not exist")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConversionError(f"{target} is not empty; give a new folder for the converted dataset")
    skipped: Counter[str] = Counter()
    if fmt == "coco":
        class_names, items = _from_coco(source, Path(images_dir) if images_dir else None, skipped)
    elif fmt == "voc":
        class_names, items = _from_voc(source, names, skipped)
    else:
        class_names, items = _from_imagefolder(source, skipped)
    if not items:
        raise ConversionError(f"no images to convert in {source}; check the layout described in `--help`")
    if not class_names:
        raise ConversionError(f"no classes found in {source}")
    counts = _write(items, class_names, target, val_fraction, seed)
    return ConvertResult(root=target, names=class_names, counts=counts, skipped=dict(sorted(skipped.items())))


def _write(items: list[_Item], names: list[str], dst: Path, val_fraction: float, seed: int) -> dict[str, int]:
    """Split (seeded), then link or copy images, write labels and data.yaml."""
    unsplit = sorted((item for item in items if item.split is None), key=lambda item: item.target)
    if unsplit:
        if len(unsplit) < 2 and not any(item.split == "val" for item in items):
            raise ConversionError("only one image: a dataset needs at least one train and one val image")
        random.Random(seed).shuffle(unsplit)
        n_val = min(len(unsplit) - 1, max(1, round(len(unsplit) * val_fraction)))
        for index, item in enumerate(unsplit):
            item.split = "val" if index < n_val else "train"
    counts = {"train": 0, "val": 0}
    for item in items:
        split = item.split or "train"
        image = dst / "images" / split / item.target
        label = (dst / "labels" / split / item.target).with_suffix(".txt")
        image.parent.mkdir(parents=True, exist_ok=True)
        label.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(item.source, image)
        label.write_text("".join(line + "\n" for line in item.lines))
        counts[split] += 1
    if not counts["train"] or not counts["val"]:
        empty = "train" if not counts["train"] else "val"
        raise ConversionError(f"the {empty} split came out empty; add images or change the split")
    doc = {"path": ".", "train": "images/train", "val": "images/val", "nc": len(names), "names": dict(enumerate(names))}
    (dst / DATA_YAML).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return counts


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        raise ConversionError(f"two source images map to {target}; rename one of them")
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copyfile(source, target)


def _box_line(class_id: int, x0: float, y0: float, x1: float, y1: float, width: float, height: float) -> str | None:
    """A YOLO label line for pixel corners (clipped to the image), or None for a box with no area."""
    x0, x1 = max(0.0, min(x0, width)), max(0.0, min(x1, width))
    y0, y1 = max(0.0, min(y0, height)), max(0.0, min(y1, height))
    if x1 <= x0 or y1 <= y0:
        return None
    return (
        f"{class_id} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
        f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
    )


def _safe_relative(name: str) -> str | None:
    """`name` as a relative POSIX path inside the dataset, or None if it is absolute or climbs out."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path.as_posix()


# --- COCO ---------------------------------------------------------------------------------------


def _coco_json(src: Path) -> Path:
    if src.is_file():
        return src
    candidates = sorted(src.glob("*.json")) + sorted((src / "annotations").glob("*.json"))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise ConversionError(f"{src}: expected one COCO instances JSON (found {found}); pass the JSON file itself")
    return candidates[0]


def _from_coco(src: Path, images_dir: Path | None, skipped: Counter[str]) -> tuple[list[str], list[_Item]]:
    json_path = _coco_json(src)
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
        categories = list(doc["categories"])
        images = list(doc["images"])
        annotations = list(doc.get("annotations", []))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConversionError(f"{json_path}: not a COCO instances JSON ({exc})") from exc
    class_of: dict[Any, int] = {}
    names: list[str] = []
    try:
        for category in categories:
            class_of[category["id"]] = len(names)
            names.append(str(category["name"]))
        by_image: dict[Any, list[dict[str, Any]]] = {image["id"]: [] for image in images}
    except (KeyError, TypeError) as exc:
        raise ConversionError(f"{json_path}: a category or image lacks its id or name ({exc})") from exc
    for annotation in annotations:
        if annotation.get("image_id") not in by_image or annotation.get("category_id") not in class_of:
            skipped["annotations with an unknown image or category"] += 1
        elif annotation.get("iscrowd"):
            skipped["crowd annotations"] += 1
        else:
            by_image[annotation["image_id"]].append(annotation)
    base = json_path.parent
    search = [images_dir] if images_dir else [base, base / "images", base.parent, base.parent / "images"]
    items = []
    for image in images:
        name = _safe_relative(str(image.get("file_name", "")))
        found = next((d / name for d in search if name and (d / name).is_file()), None)
        if name is None or found is None or not is_image(name):
            skipped["images not found"] += 1
            continue
        try:
            width, height = float(image.get("width") or 0), float(image.get("height") or 0)
        except (TypeError, ValueError):
            width = height = 0.0
        if width <= 0 or height <= 0:
            skipped["images without width/height"] += 1
            continue
        lines = []
        for annotation in by_image[image["id"]]:
            try:
                x, y, w, h = (float(v) for v in annotation["bbox"])
            except (KeyError, TypeError, ValueError):
                skipped["annotations without a valid bbox"] += 1
                continue
            line = _box_line(class_of[annotation["category_id"]], x, y, x + w, y + h, width, height)
            if line is None:
                skipped["boxes with no area"] += 1
            else:
                lines.append(line)
        items.append(_Item(found, name, lines))
    return names, items


# --- Pascal VOC ---------------------------------------------------------------------------------


def _from_voc(src: Path, given: Sequence[str] | None, skipped: Counter[str]) -> tuple[list[str], list[_Item]]:
    annotations, images_dir = src / "Annotations", src / "JPEGImages"
    if not annotations.is_dir() or not images_dir.is_dir():
        raise ConversionError(f"{src}: a VOC dataset has Annotations/ (XML) and JPEGImages/ folders")
    names: list[str] = list(given) if given else []
    class_of = {name: index for index, name in enumerate(names)}
    items = []
    for xml_path in sorted(annotations.glob("*.xml")):
        try:
            root = ET.parse(xml_path).getroot()  # noqa: S314 - local files the user chose to convert
        except ET.ParseError as exc:
            raise ConversionError(f"{xml_path}: not valid XML ({exc})") from exc
        filename = _safe_relative((root.findtext("filename") or "").strip()) or f"{xml_path.stem}.jpg"
        image = images_dir / filename
        if not image.is_file():
            image = images_dir / f"{xml_path.stem}.jpg"
        if not image.is_file() or not is_image(image.name):
            skipped["images not found"] += 1
            continue
        width, height = _voc_size(root, image)
        if width <= 0 or height <= 0:
            skipped["images without a size"] += 1
            continue
        lines = []
        for obj in root.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if (obj.findtext("difficult") or "0").strip() == "1":
                skipped["difficult objects"] += 1
                continue
            if name not in class_of:
                if given:
                    skipped["objects of classes not in names"] += 1
                    continue
                class_of[name] = len(names)
                names.append(name)
            box = obj.find("bndbox")
            try:
                x0, x1, y0, y1 = (float(box.findtext(k) or "") for k in ("xmin", "xmax", "ymin", "ymax"))  # type: ignore[union-attr]
            except (AttributeError, ValueError):
                skipped["objects without a box"] += 1
                continue
            # VOC pixels are 1-based: Ultralytics' VOC conversion shifts the box by one pixel
            line = _box_line(class_of[name], x0 - 1, y0 - 1, x1 - 1, y1 - 1, width, height)
            if line is None:
                skipped["boxes with no area"] += 1
            else:
                lines.append(line)
        items.append(_Item(image, image.relative_to(images_dir).as_posix(), lines))
    return names, items


def _voc_size(root: ET.Element, image: Path) -> tuple[float, float]:
    try:
        return float(root.findtext("size/width") or 0), float(root.findtext("size/height") or 0)
    except ValueError:
        return 0.0, 0.0


# --- ImageFolder --------------------------------------------------------------------------------


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and is_image(path.name) and not any(part.startswith(".") for part in rel.parts):
            yield path


def _from_imagefolder(src: Path, skipped: Counter[str]) -> tuple[list[str], list[_Item]]:
    if not src.is_dir():
        raise ConversionError(f"{src}: an ImageFolder dataset is a folder of class folders")
    split_dirs: dict[str | None, Path] = {
        "train": src / "train",
        "val": src / "val" if (src / "val").is_dir() else src / "valid",
    }
    presplit = all(d.is_dir() for d in split_dirs.values()) and all(_class_dirs(d) for d in split_dirs.values())
    roots = split_dirs if presplit else {None: src}
    names = sorted({d.name for root in roots.values() for d in _class_dirs(root)})
    class_of = {name: index for index, name in enumerate(names)}
    items = []
    for split, root in roots.items():
        loose = [p for p in root.iterdir() if p.is_file() and is_image(p.name)]
        skipped["images outside class folders"] += len(loose)
        for class_dir in _class_dirs(root):
            for image in _images_under(class_dir):
                line = f"{class_of[class_dir.name]} 0.500000 0.500000 1.000000 1.000000"
                items.append(_Item(image, image.relative_to(root).as_posix(), [line], split))
    if not skipped["images outside class folders"]:
        del skipped["images outside class folders"]
    return names, items
