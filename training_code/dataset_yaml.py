"""Turn a dataset's untrusted data.yaml into one Ultralytics may read.

A data.yaml comes from whoever can write to the bucket. Ultralytics runs a `download:` value as
a URL, a shell command or Python, follows absolute paths anywhere, and writes beside the file.
So the file is checked by the shared dataset rules (safe-load, no `download`, no absolute or
escaping paths, consistent names/nc), its split paths must stay in the dataset folder once links
are followed (locally a split can be a symlink; SageMaker's channels are copies), and a clean copy
is written to a writable folder, with `path` set to the dataset folder: a read-only dataset folder
works.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from yolopipe_shared.data_yaml import DATA_YAML, MAX_DATA_YAML_BYTES, DataYaml, parse_data_yaml
from yolopipe_shared.errors import DatasetRejected
from yolopipe_shared.labels import is_image


def read_data_yaml(dataset_dir: Path) -> DataYaml:
    """The checked data.yaml of a dataset folder.

    Raises DatasetRejected with one line per problem, each naming the file, line and field.
    """
    path = dataset_dir / DATA_YAML
    if not dataset_dir.is_dir():
        raise DatasetRejected([f"{dataset_dir}: dataset folder not found"])
    if not path.is_file():
        raise DatasetRejected([f"{path}: not found; a dataset needs a data.yaml at its root"])
    real_root = dataset_dir.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise DatasetRejected([f"{DATA_YAML}: is a link to a file outside the dataset folder; "
                               "copy it into the dataset"])
    if path.stat().st_size > MAX_DATA_YAML_BYTES:
        raise DatasetRejected([f"{DATA_YAML}: larger than {MAX_DATA_YAML_BYTES} bytes; is it really a data.yaml?"])
    text = path.read_text(encoding="utf-8", errors="replace")
    parsed, problems = parse_data_yaml(text, file=DATA_YAML)
    if problems or parsed is None:
        raise DatasetRejected(list(problems) or [f"{DATA_YAML}: could not be read"])
    escaping: list[object] = [
        f"{DATA_YAML}: `{split}: {entry}` is a link to a folder outside the dataset folder; "
        "copy its files into the dataset"
        for split, entries in parsed.splits.items() for entry in entries
        if not (dataset_dir / entry).resolve().is_relative_to(real_root)
    ]
    if escaping:
        raise DatasetRejected(escaping)
    return parsed


def write_clean_data_yaml(
    dataset_dir: Path,
    out_dir: Path,
    *,
    evaluation: bool = False,
) -> tuple[Path, DataYaml, str]:
    """Write a sanitized data.yaml into `out_dir`; return its path, the checked data.yaml and the
    split that Ultralytics' `val` points at.

    With `evaluation=True` the split to score (test, else val) is written as `val`.
    """
    parsed = read_data_yaml(dataset_dir)
    doc = parsed.for_ultralytics(str(dataset_dir.resolve()))
    split = "val"
    if evaluation:
        split = "test" if "test" in parsed.splits else "val" if "val" in parsed.splits else ""
        if not split:
            raise DatasetRejected([f"{DATA_YAML}: neither `test` nor `val` is set; add a test split to evaluate on"])
        doc["val"] = doc[split]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / DATA_YAML
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out, parsed, split


def count_images(dataset_dir: Path, entries: list[str]) -> int:
    """Image count of a split (folders are listed, list files counted by line); cheap, no decoding."""
    total = 0
    root = dataset_dir.resolve()
    for entry in entries:
        target = (root / entry).resolve()
        if not target.is_relative_to(root):
            continue
        if target.is_dir():
            total += sum(1 for p in target.rglob("*") if p.is_file() and is_image(p.name))
        elif target.is_file():
            total += sum(1 for line in target.read_text(errors="replace").splitlines() if line.strip())
    return total
