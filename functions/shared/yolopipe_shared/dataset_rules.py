"""The rules a YOLO detection dataset must pass before anyone spends money training on it.

One implementation, three users: the trigger function (on an S3 prefix), `yolopipe dataset
validate` / `yolopipe upload` (on a local folder) and `training_code/train.py` (on the channel
folder). Pure Python + PyYAML: it ships in the functions' layer and in the training-code tarball.

data.yaml is untrusted input (anyone who can write to the bucket wrote it):

- parsed with PyYAML's SafeLoader only (no `!!python/...` tags), at most 1 MiB;
- a `download` key is refused, whatever its value: Ultralytics runs it as a URL, a shell command
  or Python when the val images are missing;
- split paths (`train`, `val`, `test`; a string or a list; folders of images or .txt lists of
  images) are relative to the folder holding data.yaml: absolute paths, URLs, backslashes and
  paths that climb out of that folder (`../`) are refused;
- `path`: consumers rewrite it to wherever the dataset lies (the training channel, a temp dir),
  so it may only point *inside* the dataset: missing, empty or `.` (the usual), or a relative
  folder inside it (the split paths are then relative to that folder). An absolute or escaping
  `path` (`/content/datasets/x`, `../datasets/x`) is refused: set `path: .` or remove it;
- `names` is a list, or a mapping {id: name} with ids 0..n-1 without gaps; `nc`, when present,
  equals the number of names (`nc` alone gives names class_0..class_{nc-1}, with a warning);
- `train` and `val` are required (`validation` is read as `val`, as Ultralytics does).

Problems carry the data.yaml line they come from (PyYAML node marks).
"""

from __future__ import annotations

import bisect
import math
import posixpath
import random
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import yaml

from .dataset_sources import DatasetSource, DatasetUnreadable, LocalDatasetSource, S3DatasetSource

__all__ = [
    "DATA_YAML",
    "DataYaml",
    "DatasetSource",
    "DatasetUnreadable",
    "LocalDatasetSource",
    "Problem",
    "S3DatasetSource",
    "ValidationReport",
    "check_label",
    "is_image",
    "label_path_for",
    "parse_data_yaml",
    "validate_dataset",
]

DATA_YAML = "data.yaml"
MAX_DATA_YAML_BYTES = 1 << 20
SPLITS = ("train", "val", "test")
REQUIRED_SPLITS = ("train", "val")
# What Ultralytics 8.4 reads as images (ultralytics.data.utils.IMG_FORMATS), compared lower-case.
IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the file (relative to the dataset root), its line, what to do."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class DataYaml:
    """A data.yaml that passed the rules.

    `splits` maps split name -> image folders or .txt list files, as paths relative to the folder
    holding data.yaml (already joined with `path`, normalised, never escaping). `root` is the
    normalised `path` field ("." normally). `raw` is the document as loaded (untrusted: read it,
    never hand it to Ultralytics as is; use `for_ultralytics`).
    """

    names: list[str]
    splits: dict[str, list[str]]
    raw: dict[str, Any]
    root: str = "."
    warnings: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> its line in data.yaml

    @property
    def nc(self) -> int:
        return len(self.names)

    def for_ultralytics(self, dataset_dir: str) -> dict[str, Any]:
        """The data.yaml content to give Ultralytics for a dataset lying in `dataset_dir`.

        Only the keys we checked: `path` is `dataset_dir`, splits are relative to it, names are
        {id: name}. No `download`, whatever the original said.
        """
        doc: dict[str, Any] = {"path": str(dataset_dir)}
        for split, entries in self.splits.items():
            doc[split] = entries[0] if len(entries) == 1 else list(entries)
        doc["nc"] = self.nc
        doc["names"] = dict(enumerate(self.names))
        for key in ("kpt_shape", "flip_idx", "channels"):  # typed by parse_data_yaml when present
            if self.raw.get(key) is not None:
                doc[key] = self.raw[key]
        return doc


def parse_data_yaml(text: str, *, file: str = DATA_YAML) -> tuple[DataYaml | None, list[Problem]]:
    """Apply the data.yaml rules to `text`; return (DataYaml, []) or (None, problems)."""
    problems: list[Problem] = []

    def problem(line: int | None, message: str) -> None:
        problems.append(Problem(file, line, message))

    if len(text) > MAX_DATA_YAML_BYTES:
        problem(None, f"is {len(text):,} characters; a data.yaml is a few lines (at most 1 MiB)")
        return None, problems
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem(
            mark.line + 1 if mark else None,
            f"YAML tag not allowed ({exc.problem}); write plain YAML without !!python or other tags",
        )
        return None, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        problem(mark.line + 1 if mark else None, f"not valid YAML ({what}); fix the syntax")
        return None, problems
    except yaml.YAMLError as exc:  # e.g. a reader error on control characters
        problem(None, f"not valid YAML ({str(exc).splitlines()[0][:120]}); fix the syntax")
        return None, problems
    except RecursionError:
        problem(None, "nests too deeply to be a data.yaml; write a flat mapping")
        return None, problems
    finally:
        if loader is not None:
            loader.dispose()

    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        problem(
            None,
            "must be a YAML mapping with `train`, `val` and `names` "
            "(e.g. `train: images/train`, `val: images/val`, `names: [cat, dog]`)",
        )
        return None, problems

    lines: dict[str, int] = {}
    value_nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
        if key is None:
            continue
        line = key_node.start_mark.line + 1
        if key in lines and key != "<<":
            problem(line, f"`{key}` appears twice (lines {lines[key]} and {line}); keep one")
        lines.setdefault(key, line)
        value_nodes[key] = value_node

    # Merge keys (`<<: *anchor`) can bring keys in from elsewhere: check the constructed document too.
    if "download" in lines or "download" in data:
        problem(
            lines.get("download", lines.get("<<")),
            "`download` is not allowed: Ultralytics runs it as a URL, shell command or Python; "
            "remove it and upload the images with the dataset",
        )

    root = "."
    raw_root = data.get("path")
    if raw_root not in (None, "", "."):
        if not isinstance(raw_root, str):
            problem(lines.get("path"), "`path` must be a string; set `path: .` or remove it")
        else:
            why = _unsafe_path(raw_root)
            if why:
                problem(
                    lines.get("path"),
                    f"`path: {raw_root}` {why}; set `path: .` or remove it "
                    "(split paths are relative to the folder holding data.yaml)",
                )
            else:
                root = posixpath.normpath(raw_root)

    if "val" not in data and "validation" in data:
        data = {**data, "val": data["validation"]}
        lines.setdefault("val", lines.get("validation", 0))
        value_nodes.setdefault("val", value_nodes["validation"])
    splits: dict[str, list[str]] = {}
    for split in (*SPLITS, "minival"):  # Ultralytics resolves minival too: it must be safe as well
        value = data.get(split)
        line = lines.get(split)
        if value is None or value == "" or value == []:
            if split in REQUIRED_SPLITS:
                problem(
                    line,
                    f"`{split}` is missing: add `{split}: images/{split}` "
                    "(a folder of images or a .txt list, relative to data.yaml)",
                )
            continue
        entries = value if isinstance(value, list) else [value]
        item_nodes = value_nodes[split].value if isinstance(value_nodes.get(split), yaml.SequenceNode) else []
        resolved: list[str] = []
        for index, entry in enumerate(entries):
            entry_line = item_nodes[index].start_mark.line + 1 if index < len(item_nodes) else line
            if not isinstance(entry, str) or not entry.strip():
                problem(
                    entry_line,
                    f"`{split}` must be a path (or a list of paths) relative to data.yaml, not {_short(entry)}",
                )
                continue
            why = _unsafe_path(entry)
            if why:
                problem(entry_line, f"`{split}: {entry}` {why}; use a path relative to data.yaml")
                continue
            joined = posixpath.normpath(posixpath.join(root, entry))
            if joined == ".." or joined.startswith("../"):
                problem(entry_line, f"`{split}: {entry}` climbs out of the dataset; use a path inside it")
                continue
            resolved.append(joined)
        if resolved and split != "minival":
            splits[split] = resolved

    names = _parse_names(data, lines, value_nodes, problem)
    warnings: list[Problem] = []
    if names is not None and "names" not in data:
        warnings.append(
            Problem(file, lines.get("nc"), f"no `names`: classes will be called class_0..class_{len(names) - 1}")
        )
    if names:
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in seen:
                warnings.append(
                    Problem(
                        file, lines.get("names"), f"class name {_short(name)} is used by ids {seen[name]} and {index}"
                    )
                )
            seen.setdefault(name, index)

    for key, types in (("kpt_shape", list), ("flip_idx", list), ("channels", int)):
        if data.get(key) is not None and (not isinstance(data[key], types) or isinstance(data[key], bool)):
            problem(lines.get(key), f"`{key}` must be a {types.__name__}; fix or remove it")

    if problems or names is None:
        return None, problems
    return DataYaml(names=names, splits=splits, raw=data, root=root, warnings=warnings, lines=lines), []


def _short(value: Any, limit: int = 40) -> str:
    """A value for a message: scalars as repr (cut), containers by kind (their repr can be huge)."""
    if isinstance(value, dict | list | tuple | set):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unsafe_path(value: str) -> str | None:
    """Why a path from data.yaml may not be used, or None when it is a plain relative path."""
    if "://" in value:
        return "is a URL"
    if "\\" in value:
        return "contains a backslash (write paths with /)"
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":"):
        return "is an absolute path"
    if "\x00" in value:
        return "contains a NUL character"
    normal = posixpath.normpath(value)
    if normal == ".." or normal.startswith("../"):
        return "climbs out of the dataset (../)"
    return None


def _parse_names(
    data: dict[str, Any],
    lines: dict[str, int],
    value_nodes: dict[str, yaml.Node],
    problem: Any,
) -> list[str] | None:
    """Class names in id order, or None (after reporting) when `names`/`nc` are unusable."""
    raw_names = data.get("names")
    raw_nc = data.get("nc")
    names_line, nc_line = lines.get("names"), lines.get("nc")
    nc: int | None = None
    if raw_nc is not None:
        nc = _as_int(raw_nc)
        if nc is None or nc < 1:
            problem(nc_line, f"`nc: {_short(raw_nc)}` must be a whole number of classes (1 or more)")
            return None
    if raw_names is None:
        if nc is None:
            problem(names_line, "`names` is missing: add the class names, e.g. `names: [cat, dog]`")
            return None
        return [f"class_{i}" for i in range(nc)]

    names: list[str] = []
    if isinstance(raw_names, list):
        items = list(enumerate(raw_names))
        nodes = value_nodes["names"].value if isinstance(value_nodes.get("names"), yaml.SequenceNode) else []
        item_lines = [n.start_mark.line + 1 for n in nodes]
    elif isinstance(raw_names, dict):
        items = []
        for key, value in raw_names.items():
            class_id = _as_int(key)
            if class_id is None or class_id < 0:
                problem(names_line, f"`names` id {_short(key)} is not a class id (0, 1, 2...)")
                return None
            items.append((class_id, value))
        items.sort(key=lambda item: item[0])
        ids = [class_id for class_id, _ in items]
        if ids != list(range(len(ids))):
            problem(
                names_line,
                f"`names` ids must be 0..{len(ids) - 1} without gaps or repeats; got {', '.join(map(str, ids))}",
            )
            return None
        item_lines = []
    else:
        problem(names_line, "`names` must be a list or a mapping {id: name}, e.g. `names: [cat, dog]`")
        return None
    if not items:
        problem(names_line, "`names` is empty: list at least one class")
        return None
    for position, (class_id, value) in enumerate(items):
        line = item_lines[position] if position < len(item_lines) else names_line
        if isinstance(value, bool) or not isinstance(value, str | int | float) or str(value).strip() == "":
            problem(line, f"class {class_id} needs a name (a string), not {_short(value)}")
            return None
        names.append(str(value))
    if nc is not None and nc != len(names):
        problem(nc_line, f"`nc: {nc}` but `names` lists {len(names)} classes; make them agree (or drop `nc`)")
        return None
    return names


def _as_int(value: Any) -> int | None:
    """An integer-like value (3, 3.0, "3") as int, as Ultralytics accepts it; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


# ---------------------------------------------------------------------------------------------
# Whole-dataset validation: data.yaml, then the files it names, then a sample of labels.
# ---------------------------------------------------------------------------------------------

MAX_LIST_FILE_BYTES = 64 << 20
MAX_LABEL_BYTES = 2 << 20  # ~40,000 boxes; Ultralytics has no limit, a Lambda has little memory
DEFAULT_LABEL_SAMPLE = 200
# Ultralytics' tolerance (ultralytics.data.utils.verify_image_label): coordinates up to 1.01 and
# down to -0.01 pass, so the same files pass here.
_COORD_MAX = 1.01
_COORD_MIN = -0.01


@dataclass
class ValidationReport:
    """What validation found. `ok` is False when any problem would make training fail or mislead.

    Decisions: an image without a label file is a *warning* (Ultralytics trains it as a
    background image); a split where no image has a label file, or every label file is empty,
    is a *problem*. Labels are checked on a seeded sample (`labels_checked` says how many).
    """

    location: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    images_per_split: dict[str, int] = field(default_factory=dict)
    labels_per_split: dict[str, int] = field(default_factory=dict)
    missing_labels_per_split: dict[str, int] = field(default_factory=dict)
    labels_checked: int = 0
    data_yaml: DataYaml | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 20) -> str:
        """A few lines for a terminal, an SNS message or a log: counts, then the first problems."""
        counts = ", ".join(f"{split} {n:,} images" for split, n in self.images_per_split.items())
        head = (
            f"{self.location}: "
            + ("OK" if self.ok else f"REJECTED, {len(self.problems)} problem(s)")
            + (f" ({counts}; {self.labels_checked:,} label files checked)" if counts else "")
        )
        lines = [head, *(str(p) for p in self.problems[:limit])]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more problem(s)")
        lines += [f"warning: {w}" for w in self.warnings[:limit]]
        return "\n".join(lines)

    def raise_if_rejected(self) -> None:
        """Raise DatasetRejected(problems) when the dataset must not be trained on."""
        if self.problems:
            from .errors import DatasetRejected

            raise DatasetRejected(list(self.problems))


def label_path_for(image: str) -> str:
    """Ultralytics' rule (img2label_paths): the last `/images/` becomes `/labels/`, the suffix `.txt`.

    Applied to the path relative to the dataset root, as it is in the training container, where
    the root (/opt/ml/input/data/dataset) holds no `images` folder of its own.
    """
    full = "/" + image
    if "/images/" in full:
        full = "/labels/".join(full.rsplit("/images/", 1))
    return full[1:].rsplit(".", 1)[0] + ".txt"


def is_image(path: str) -> bool:
    """True for the files Ultralytics reads as images (by suffix, case-insensitive)."""
    name = path.rsplit("/", 1)[-1]
    return "." in name and name.rpartition(".")[2].lower() in IMG_FORMATS


def check_label(data: bytes, nc: int, *, nkpt: int = 0, ndim: int = 0) -> tuple[int | None, str] | None:
    """The first thing wrong with a label file's bytes as (line, message), or None when it is fine.

    Mirrors what Ultralytics' verify_image_label rejects for a detection dataset: rows of 5
    numbers (`class x_center y_center width height`) or polygon rows (`class x1 y1 x2 y2 ...`,
    not mixed in one file), whole class ids within `names`, coordinates normalised to 0-1 (with
    its 1% tolerance). Polygon points are also checked one by one (stricter than Ultralytics,
    which only checks the box around them).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "not UTF-8 text; a label file holds lines of numbers"
    if not nkpt and _plain_boxes_ok(text, nc):
        return None
    rows = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if nkpt:  # pose labels in a box dataset: Ultralytics keeps the box and drops the keypoints
        rows = [(n, row[:5] if len(row) == 5 + nkpt * ndim else row) for n, row in rows]
    polygons = any(len(row) > 6 for _, row in rows)
    for number, row in rows:
        if polygons:
            if len(row) == 5:
                return number, "mixes a box row with polygon rows; use one kind per file"
            if len(row) < 3 or len(row) % 2 == 0:
                return number, f"has {len(row)} values; a polygon row is `class x1 y1 x2 y2 ...` (pairs)"
        elif len(row) != 5:
            return number, f"has {len(row)} values; a box row is `class x_center y_center width height`"
        try:
            values = [float(value) for value in row]
        except ValueError:
            bad = next(value for value in row if not _is_float(value))
            return number, f"{_short(bad)} is not a number"
        class_id = values[0]
        if class_id % 1 != 0 or class_id < 0:
            return number, f"class id {row[0]} is not a whole number >= 0"
        if class_id >= nc:
            return number, f"class id {int(class_id)} but data.yaml has {nc} names (ids 0-{nc - 1})"
        if polygons:
            xs, ys = values[1::2], values[2::2]
            box = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)]
            coords = values[1:] + box
        else:
            coords = box = values[1:]
        if not all(_COORD_MIN <= value <= _COORD_MAX for value in coords) or box[2] < 0 or box[3] < 0:
            return number, (
                f"coordinates {' '.join(row[1:5])}{' ...' if len(row) > 5 else ''} are not normalised "
                "to 0-1 (divide pixels by the image width and height)"
            )
    return None


def _plain_boxes_ok(text: str, nc: int) -> bool:
    """Fast path for the usual file (box rows only, all fine): whole-file checks at C speed.

    False means "look line by line" (check_label then finds the line and says what is wrong).
    """
    rows = [row for row in map(str.split, text.splitlines()) if row]
    if not rows:
        return True
    if set(map(len, rows)) != {5}:
        return False
    try:
        flat = list(map(float, chain.from_iterable(rows)))
    except ValueError:
        return False
    if not math.isfinite(sum(flat)):  # nan or inf anywhere
        return False
    classes, xs, ys, ws, hs = (flat[i::5] for i in range(5))
    return (
        min(classes) >= 0
        and max(classes) < nc
        and all(map(float.is_integer, classes))
        and min(min(xs), min(ys)) >= _COORD_MIN
        and min(min(ws), min(hs)) >= 0
        and max(max(xs), max(ys), max(ws), max(hs)) <= _COORD_MAX
    )


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def validate_dataset(
    source: DatasetSource,
    *,
    label_sample: int | None = DEFAULT_LABEL_SAMPLE,
    seed: int = 0,
) -> ValidationReport:
    """Check a dataset where it lies: data.yaml, splits, images, label files, a sample of labels.

    One listing of the whole dataset, no image decoding, and only the sampled labels are read
    (`label_sample=None` reads them all). Raises DatasetUnreadable when the storage itself
    cannot be listed or read; everything wrong with the dataset is a Problem in the report.
    """
    report = ValidationReport(location=source.location)
    raw = source.read_bytes(DATA_YAML, max_bytes=MAX_DATA_YAML_BYTES)
    if raw is None:
        report.problems.append(
            Problem(DATA_YAML, None, "not found: put data.yaml at the dataset root (upload it last)")
        )
        return report
    if len(raw) > MAX_DATA_YAML_BYTES:
        report.problems.append(Problem(DATA_YAML, None, "is over 1 MiB; a data.yaml is a few lines"))
        return report
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.problems.append(Problem(DATA_YAML, None, "is not UTF-8 text; save it as UTF-8"))
        return report
    data_yaml, problems = parse_data_yaml(text)
    if data_yaml is None:
        report.problems.extend(problems)
        return report
    report.data_yaml = data_yaml
    report.names = list(data_yaml.names)
    report.warnings.extend(data_yaml.warnings)

    files = source.list_files()
    keys = sorted(files)
    labels_by_split: dict[str, list[str]] = {}
    for split, entries in data_yaml.splits.items():
        line = data_yaml.lines.get(split) or data_yaml.lines.get("validation")
        images = _split_images(split, entries, files, keys, source, line, report.problems)
        report.images_per_split[split] = len(images)
        if not images:
            if not any(p.file == DATA_YAML and p.line == line for p in report.problems):
                report.problems.append(
                    Problem(
                        DATA_YAML,
                        line,
                        f"`{split}` holds no images ({', '.join(entries)}); Ultralytics reads "
                        f"{', '.join(sorted(IMG_FORMATS))}",
                    )
                )
            continue
        labels, missing, empty = [], [], 0
        for image in images:
            size = files.get(image)
            if size == 0:
                report.problems.append(Problem(image, None, "is an empty file (0 bytes); replace or remove it"))
            label = label_path_for(image)
            label_size = files.get(label)
            if label_size is None:
                missing.append(image)
            elif label_size == 0:
                empty += 1
            else:
                labels.append(label)
        found = len(images) - len(missing)
        report.labels_per_split[split] = found
        report.missing_labels_per_split[split] = len(missing)
        example = f"{label_path_for(images[0])} for {images[0]}"
        if found == 0:
            report.problems.append(
                Problem(
                    DATA_YAML,
                    line,
                    f"`{split}`: none of its {len(images):,} images has a label file (expected e.g. {example})",
                )
            )
        elif not labels:
            report.problems.append(
                Problem(DATA_YAML, line, f"`{split}`: every label file is empty; label some objects")
            )
        elif missing:
            report.warnings.append(
                Problem(
                    DATA_YAML,
                    line,
                    f"`{split}`: {len(missing):,} of {len(images):,} images have no label file and train as "
                    f"background (e.g. {label_path_for(missing[0])} for {missing[0]})",
                )
            )
        labels_by_split[split] = sorted(set(labels))

    report.labels_checked = _check_label_sample(
        source, files, labels_by_split, data_yaml, label_sample, seed, report.problems
    )
    return report


def _split_images(
    split: str,
    entries: list[str],
    files: dict[str, int],
    keys: list[str],
    source: DatasetSource,
    line: int | None,
    problems: list[Problem],
) -> list[str]:
    """The images a split names, as Ultralytics finds them (folders recursively, .txt lists)."""
    images: set[str] = set()
    for entry in entries:
        if entry in files:
            if is_image(entry):
                problems.append(
                    Problem(DATA_YAML, line, f"`{split}: {entry}` is one image; name a folder or a .txt list")
                )
                continue
            images.update(_listed_images(entry, files, source, problems))
            continue
        prefix = "" if entry == "." else entry + "/"
        start = bisect.bisect_left(keys, prefix)
        # "0" sorts right after "/": [prefix, prefix[:-1] + "0") holds exactly the paths under the folder
        end = bisect.bisect_left(keys, prefix[:-1] + "0") if prefix else len(keys)
        if start == end:
            problems.append(
                Problem(DATA_YAML, line, f"`{split}: {entry}` not found in the dataset; upload it or fix the path")
            )
            continue
        for key in keys[start:end]:
            below = key[len(prefix) :]
            # glob('**/*.*') skips hidden files and folders (macOS ._ files among them)
            if is_image(key) and not any(part.startswith(".") for part in below.split("/")):
                images.add(key)
    return sorted(images)


def _listed_images(list_file: str, files: dict[str, int], source: DatasetSource, problems: list[Problem]) -> list[str]:
    """Images named by a .txt list: one per line, `./`-relative to the list file's folder."""
    if files[list_file] > MAX_LIST_FILE_BYTES:
        problems.append(Problem(list_file, None, "is over 64 MiB; is it really a list of images?"))
        return []
    raw = source.read_bytes(list_file, max_bytes=MAX_LIST_FILE_BYTES) or b""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.append(Problem(list_file, None, "is not UTF-8 text; a list holds one image path per line"))
        return []
    folder = posixpath.dirname(list_file)
    images: list[str] = []
    for number, entry in enumerate(text.splitlines(), 1):
        entry = entry.strip()
        if not entry or not is_image(entry):
            continue  # Ultralytics skips what is not an image path
        if not entry.startswith("./"):
            reason = _unsafe_path(entry) or "is not relative to the list (Ultralytics would look in its working folder)"
            problems.append(
                Problem(list_file, number, f"{_short(entry, 100)} {reason}; write it as ./path/from/this/list")
            )
            continue
        path = posixpath.normpath(posixpath.join(folder, entry[2:]))
        why = _unsafe_path(entry[2:]) or ("climbs out of the dataset" if path.startswith("../") else None)
        if why:
            problems.append(Problem(list_file, number, f"{_short(entry, 100)} {why}; list images inside the dataset"))
        elif path not in files:
            problems.append(Problem(list_file, number, f"{_short(entry, 100)} not found in the dataset"))
        else:
            images.append(path)
    return images


def _check_label_sample(
    source: DatasetSource,
    files: dict[str, int],
    labels_by_split: dict[str, list[str]],
    data_yaml: DataYaml,
    label_sample: int | None,
    seed: int,
    problems: list[Problem],
) -> int:
    """Read a seeded sample of non-empty label files, spread over the splits in proportion."""
    total = sum(len(labels) for labels in labels_by_split.values())
    rng = random.Random(seed)
    chosen: dict[str, None] = {}  # ordered set: a label listed by two splits is read once
    for labels in labels_by_split.values():
        if label_sample is None or label_sample >= total:
            picked = labels
        else:
            count = min(len(labels), max(1, round(label_sample * len(labels) / total)))
            picked = sorted(rng.sample(labels, count))
        chosen.update(dict.fromkeys(picked))
    too_large = [path for path in chosen if files[path] > MAX_LABEL_BYTES]
    for path in too_large:
        problems.append(
            Problem(
                path, None, f"is {files[path]:,} bytes, over the 2 MiB a label file may have; simplify its polygons"
            )
        )
        del chosen[path]
    nkpt, ndim = _kpt_shape(data_yaml.raw.get("kpt_shape"))
    paths = list(chosen)
    contents: dict[str, bytes | None] = {}
    for start in range(0, len(paths), _LABEL_BATCH):
        batch = paths[start : start + _LABEL_BATCH]
        if start % _READ_BATCH == 0:  # read a few batches at a time: memory stays bounded
            contents = source.read_many(paths[start : start + _READ_BATCH], max_bytes=MAX_LABEL_BYTES)
        if not nkpt and _batch_ok([contents.get(path) for path in batch], data_yaml.nc):
            continue  # the usual case: every file in the batch is fine, checked in one pass
        for path in batch:
            data = contents.get(path)
            if data is None:
                problems.append(Problem(path, None, "disappeared while validating; upload it again"))
                continue
            found = check_label(data, data_yaml.nc, nkpt=nkpt, ndim=ndim)
            if found:
                problems.append(Problem(path, found[0], found[1]))
    return len(chosen) + len(too_large)


_LABEL_BATCH = 16  # label files checked in one pass
_READ_BATCH = 4 * _LABEL_BATCH  # label files held in memory at once (each at most MAX_LABEL_BYTES)


def _batch_ok(contents: list[bytes | None], nc: int) -> bool:
    """True when every label file of the batch passes: the rows of box files are independent, so
    the joined text passing the fast check means each file does. False: check them one by one."""
    try:
        texts = [data.decode("utf-8-sig") for data in contents if data is not None]
    except UnicodeDecodeError:
        return False
    return len(texts) == len(contents) and _plain_boxes_ok("\n".join(texts), nc)


def _kpt_shape(value: Any) -> tuple[int, int]:
    if isinstance(value, list) and len(value) == 2 and all(_as_int(v) for v in value):
        return int(value[0]), int(value[1])
    return 0, 0
