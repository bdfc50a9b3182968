"""Whole-dataset validation: data.yaml, then the files it names, then a sample of labels, in one
pass (a data.yaml problem does not hide the label problems behind it).

One implementation for the trigger (an S3 prefix), `yolopipe dataset validate` / `upload` (a local
folder) and train.py (the channel folder); sources are in dataset_sources.
"""

from __future__ import annotations

import posixpath
import random
from array import array
from dataclasses import dataclass, field

from .data_yaml import (
    DATA_YAML,
    MAX_DATA_YAML_BYTES,
    DataYaml,
    Problem,
    parse_data_yaml_partly,
    short,
    unsafe_path,
)
from .dataset_sources import (
    DatasetSource,
    DatasetUnreadable,
    Listing,
    LocalDatasetSource,
    S3DatasetSource,
    TooManyFiles,
)
from .labels import IMG_FORMATS, MAX_LABEL_BYTES, batch_ok, check_label, is_image, kpt_shape, label_path_for

__all__ = [
    "DatasetSource",
    "DatasetUnreadable",
    "LocalDatasetSource",
    "S3DatasetSource",
    "ValidationReport",
    "validate_dataset",
]

#: A .txt list of images: at most this many bytes and lines (1,000,000 lines of `./images/x.jpg`
#: is ~30 MB). Beyond, it is refused rather than read.
MAX_LIST_FILE_BYTES = 64 << 20
MAX_LIST_FILE_LINES = 1_000_000
#: Problems reported per list file; the rest are counted in one more line.
MAX_PROBLEMS_PER_LIST = 20
#: Label bytes held in memory at once while checking the sample.
_READ_BATCH_BYTES = 16 << 20
DEFAULT_LABEL_SAMPLE = 200


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
    #: Images decoded by `yolopipe dataset validate` (yolopipe/datasets/local_checks.py; 0 elsewhere).
    images_decoded: int = 0
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
            + (f" ({counts}; {self.labels_checked:,} label files checked"
               + (f", {self.images_decoded:,} images decoded" if self.images_decoded else "") + ")" if counts else "")
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


def validate_dataset(
    source: DatasetSource,
    *,
    label_sample: int | None = DEFAULT_LABEL_SAMPLE,
    seed: int = 0,
    max_files: int | None = None,
) -> ValidationReport:
    """Check a dataset where it lies: data.yaml, splits, images, label files, a sample of labels.

    One listing of the whole dataset, no image decoding, and only the sampled labels are read
    (`label_sample=None` reads them all). A dataset of more than `max_files` files is refused
    (the trigger's memory holds a bounded listing). Raises DatasetUnreadable when the storage
    itself cannot be listed or read; everything wrong with the dataset is a Problem in the report.
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
    # One pass: data.yaml's problems, then the files and labels of what in it is still usable.
    data_yaml, problems = parse_data_yaml_partly(text)
    report.problems.extend(problems)
    if data_yaml is None:
        return report
    report.data_yaml = None if problems else data_yaml
    report.names = list(data_yaml.names)
    report.warnings.extend(data_yaml.warnings)

    try:
        files = source.list_files(max_files=max_files)
    except TooManyFiles as exc:
        report.problems.append(Problem(
            "dataset", None, f"holds more than {exc.max_files:,} files, more than can be validated here; "
                             "split it into smaller datasets or validate it where there is more memory"))
        return report
    labels_by_split: dict[str, array[int]] = {}
    for split, entries in data_yaml.splits.items():
        line = data_yaml.lines.get(split) or data_yaml.lines.get("validation")
        images = _split_images(split, entries, files, source, line, report.problems)
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
        # Label files as indexes into the listing: 8 bytes each, not a new string per image
        labels: array[int] = array("q")
        missing, first_missing, empty = 0, "", 0
        for image in images:
            if files.get(image) == 0 and len(report.problems) < MAX_PROBLEMS:
                report.problems.append(Problem(image, None, "is an empty file (0 bytes); replace or remove it"))
            index = files.index(label_path_for(image))
            if index < 0:
                missing += 1
                first_missing = first_missing or image
            elif files.sizes[index] == 0:
                empty += 1
            else:
                labels.append(index)
        found = len(images) - missing
        report.labels_per_split[split] = found
        report.missing_labels_per_split[split] = missing
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
                    f"`{split}`: {missing:,} of {len(images):,} images have no label file and train as "
                    f"background (e.g. {label_path_for(first_missing)} for {first_missing})",
                )
            )
        del images
        labels_by_split[split] = array("q", sorted(set(labels)))

    report.labels_checked = _check_label_sample(
        source, files, labels_by_split, data_yaml, label_sample, seed, report.problems
    )
    return report


def _split_images(
    split: str,
    entries: list[str],
    files: Listing,
    source: DatasetSource,
    line: int | None,
    problems: list[Problem],
) -> list[str]:
    """The images a split names, as Ultralytics finds them (folders recursively, .txt lists).
    The strings are the listing's own (no copies)."""
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
        below_entry = files.under(entry)
        if not below_entry:
            problems.append(
                Problem(DATA_YAML, line, f"`{split}: {entry}` not found in the dataset; upload it or fix the path")
            )
            continue
        found = (
            # glob('**/*.*') skips hidden files and folders (macOS ._ files among them)
            key for key in below_entry
            if is_image(key) and "/." not in "/" + key[len(prefix):]
        )
        if len(entries) == 1:
            return list(found)  # already sorted and unique: no set of half a million entries
        images.update(found)
    return sorted(images)


def _listed_images(list_file: str, files: Listing, source: DatasetSource, problems: list[Problem]) -> set[str]:
    """Images named by a .txt list: one per line, `./`-relative to the list file's folder."""
    if files[list_file] > MAX_LIST_FILE_BYTES:
        problems.append(Problem(list_file, None, "is over 64 MiB; is it really a list of images?"))
        return set()
    raw = source.read_bytes(list_file, max_bytes=MAX_LIST_FILE_BYTES) or b""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.append(Problem(list_file, None, "is not UTF-8 text; a list holds one image path per line"))
        return set()
    del raw
    if text.count("\n") > MAX_LIST_FILE_LINES:
        problems.append(Problem(list_file, None, f"has more than {MAX_LIST_FILE_LINES:,} lines; "
                                                 "split the dataset or list fewer images"))
        return set()
    folder = posixpath.dirname(list_file)
    images: set[str] = set()
    found: list[Problem] = []
    bad = 0

    def refuse(number: int, message: str) -> None:
        nonlocal bad
        bad += 1
        if len(found) < MAX_PROBLEMS_PER_LIST:
            found.append(Problem(list_file, number, message))

    for number, entry in enumerate(text.splitlines(), 1):
        entry = entry.strip()
        if not entry or not is_image(entry):
            continue  # Ultralytics skips what is not an image path
        if not entry.startswith("./"):
            reason = unsafe_path(entry) or "is not relative to the list (Ultralytics would look in its working folder)"
            refuse(number, f"{short(entry, 100)} {reason}; write it as ./path/from/this/list")
            continue
        path = posixpath.normpath(posixpath.join(folder, entry[2:]))
        why = unsafe_path(entry[2:]) or ("climbs out of the dataset" if path.startswith("../") else None)
        index = -1 if why else files.index(path)
        if why:
            refuse(number, f"{short(entry, 100)} {why}; list images inside the dataset")
        elif index < 0:
            refuse(number, f"{short(entry, 100)} not found in the dataset")
        else:
            images.add(files.paths[index])  # the listing's string, not a copy per line
    problems.extend(found)
    if bad > len(found):
        problems.append(Problem(list_file, None, f"... and {bad - len(found):,} more lines like these"))
    return images


def _check_label_sample(
    source: DatasetSource,
    files: Listing,
    labels_by_split: dict[str, array[int]],
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
            picked: list[int] | array[int] = labels
        else:
            count = min(len(labels), max(1, round(label_sample * len(labels) / total)))
            picked = sorted(rng.sample(labels, count))
        chosen.update(dict.fromkeys(files.paths[index] for index in picked))
    too_large = [path for path in chosen if files[path] > MAX_LABEL_BYTES]
    for path in too_large:
        problems.append(
            Problem(
                path, None, f"is {files[path]:,} bytes, over the 2 MiB a label file may have; simplify its polygons"
            )
        )
        del chosen[path]
    nkpt, ndim = kpt_shape(data_yaml.raw.get("kpt_shape"))
    paths = list(chosen)
    contents: dict[str, bytes | None] = {}
    for start in range(0, len(paths), _LABEL_BATCH):
        batch = paths[start : start + _LABEL_BATCH]
        if any(path not in contents for path in batch):  # read a few batches at once, within _READ_BATCH_BYTES
            contents = source.read_many(_within_bytes(paths[start : start + _READ_BATCH], files),
                                        max_bytes=MAX_LABEL_BYTES)
            missing = [path for path in batch if path not in contents]
            if missing:  # large files: the rest of this batch now
                contents.update(source.read_many(missing, max_bytes=MAX_LABEL_BYTES))
        if not nkpt and batch_ok([contents.get(path) for path in batch], data_yaml.nc):
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
_READ_BATCH = 4 * _LABEL_BATCH  # label files read at once (fewer when they are large: _READ_BATCH_BYTES)
#: Problems kept per kind of check: a dataset of half a million empty images is one message, not
#: half a million (the report, the refusal and the idempotency record stay small).
MAX_PROBLEMS = 1_000


def _within_bytes(paths: list[str], files: Listing) -> list[str]:
    """The first of `paths` whose listed sizes add up to at most _READ_BATCH_BYTES (at least one)."""
    total = 0
    for count, path in enumerate(paths):
        total += files[path]
        if total > _READ_BATCH_BYTES and count:
            return paths[:count]
    return paths


