"""Image and label files as Ultralytics reads them: which files are images, where an image's label
file lies, and what makes a label file unusable (the same tolerance as Ultralytics'
verify_image_label). Pure Python: it ships in the layer and in the training tarball.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

from .data_yaml import as_int, short

# What Ultralytics 8.4 reads as images (ultralytics.data.utils.IMG_FORMATS), compared lower-case.
IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)

MAX_LABEL_BYTES = 2 << 20  # ~40,000 boxes; Ultralytics has no limit, a Lambda has little memory
#: Most rows (objects) a label file may have. Crowded datasets stay far below (SKU-110K: ~150 per
#: image, at most ~700); 2 MiB of `0 0 0 0 0` rows would otherwise be 200,000 rows parsed at once.
MAX_LABEL_ROWS = 10_000
#: Joined label text checked in one pass (batch_ok); larger batches are checked file by file.
_MAX_BATCH_CHARS = 1 << 20
# Ultralytics' tolerance (ultralytics.data.utils.verify_image_label): coordinates up to 1.01 and
# down to -0.01 pass, so the same files pass here.
_COORD_MAX = 1.01
_COORD_MIN = -0.01


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
    if data.count(b"\n") >= MAX_LABEL_ROWS and len(data.splitlines()) > MAX_LABEL_ROWS:
        return None, f"has more than {MAX_LABEL_ROWS:,} rows; a label file holds one row per object"
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
            return number, f"{short(bad)} is not a number"
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


def batch_ok(contents: list[bytes | None], nc: int) -> bool:
    """True when every label file of the batch passes: the rows of box files are independent, so
    the joined text passing the fast check means each file does. False: check them one by one."""
    if sum(len(data) for data in contents if data is not None) > _MAX_BATCH_CHARS:
        return False
    if any(data is not None and data.count(b"\n") >= MAX_LABEL_ROWS for data in contents):
        return False
    try:
        texts = [data.decode("utf-8-sig") for data in contents if data is not None]
    except UnicodeDecodeError:
        return False
    return len(texts) == len(contents) and _plain_boxes_ok("\n".join(texts), nc)


def kpt_shape(value: Any) -> tuple[int, int]:
    if isinstance(value, list) and len(value) == 2 and all(as_int(v) for v in value):
        return int(value[0]), int(value[1])
    return 0, 0
