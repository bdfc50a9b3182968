"""What only a local copy of a dataset lets `yolopipe dataset validate` check, beyond the rules the
trigger applies (yolopipe_shared.validate): every image decodes, and every label file belongs to an
image.

- Images are checked as Ultralytics' check_image does before training (PIL `verify`, at least 10
  pixels a side, a format it reads), without its side effect (it rewrites a truncated JPEG in
  place). An image over PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS, ~89 megapixels) is
  a problem, checked from its header before any pixel is decoded.
- An orphan label (a `.txt` in a `labels/` folder whose image, by Ultralytics' images/ -> labels/
  rule, is not in the dataset) is a problem: its image was renamed, moved or lost. Images without a
  label file are not: Ultralytics trains them as background (the shared rules count them).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from yolopipe_shared.data_yaml import Problem
from yolopipe_shared.labels import IMG_FORMATS, is_image, label_path_for

#: Problems listed per kind; the rest are counted in one more line.
MAX_LISTED = 20
MIN_SIDE = 10  # Ultralytics' check_image: "image size <10 pixels"


def dataset_files(root: Path) -> list[str]:
    """Every file under `root` as a relative POSIX path, hidden files and folders left out (as
    Ultralytics' glob leaves them), links to folders not followed twice."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*")
                  if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts))


def image_problem(path: Path) -> str | None:
    """Why Ultralytics would drop this image as corrupt (or a bomb), None when it reads it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                fmt = (image.format or "").lower()
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return (f"has more than {Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb, or far too large "
                "to train on); resize it")
    except UnidentifiedImageError:
        return "is not an image PIL can read; re-export it (jpg or png)"
    except (OSError, SyntaxError, ValueError) as error:  # PIL's verify raises these for broken data
        return f"does not decode ({str(error)[:80] or type(error).__name__}); re-export it"
    if min(width, height) < MIN_SIDE:
        return f"is {width}x{height} pixels; Ultralytics drops images under {MIN_SIDE} pixels a side"
    if fmt not in IMG_FORMATS | {"jpeg2000"}:
        return f"is a {fmt or 'unknown'} file with an image suffix; Ultralytics refuses that format"
    return None


def _bounded(problems: list[Problem], what: str) -> list[Problem]:
    if len(problems) <= MAX_LISTED:
        return problems
    return [*problems[:MAX_LISTED], Problem("dataset", None, f"... and {len(problems) - MAX_LISTED:,} more {what}")]


def check_images(root: Path, files: list[str]) -> tuple[list[Problem], int]:
    """(problems, images decoded) for every image file PIL has a decoder for (HEIC and AVIF need
    plugins Ultralytics brings itself: those are left to it)."""
    from PIL import Image

    decodable = {suffix.lstrip(".").lower() for suffix in Image.registered_extensions()}
    problems: list[Problem] = []
    decoded = 0
    for name in files:
        if not is_image(name) or name.rpartition(".")[2].lower() not in decodable:
            continue
        decoded += 1
        why = image_problem(root / name)
        if why:
            problems.append(Problem(name, None, why))
    return _bounded(problems, "images that do not decode"), decoded


def orphan_labels(files: list[str]) -> list[Problem]:
    """Label files (`.txt` under a `labels/` folder) whose image is not in the dataset."""
    expected = {label_path_for(name) for name in files if is_image(name)}
    orphans = [Problem(name, None, "has no image (expected one beside it under images/ with the same name); "
                                   "add the image or delete the label")
               for name in files
               if name.endswith(".txt") and "labels/" in f"/{name}" and name.rsplit("/", 1)[-1] != "classes.txt"
               and name not in expected]
    return _bounded(orphans, "orphan label files")
