"""A local dataset folder checked exactly as the trigger checks it in S3: the shared dataset rules
(data.yaml, the files it names, labels) and the dataset's yolopipe.yaml overrides, in one pass.

`yolopipe dataset validate`, `yolopipe upload` and the API's `validate` / `upload` all call this.
"""

from __future__ import annotations

from pathlib import Path

from yolopipe_shared.dataset_sources import LocalDatasetSource
from yolopipe_shared.overrides import (
    OVERRIDES_FILE,
    OVERRIDES_MAX_BYTES,
    TEMPLATE_DEFAULT_LIMITS,
    StackLimits,
    parse_overrides,
)
from yolopipe_shared.validate import ValidationReport, validate_dataset


def check_dataset_folder(path: str | Path, *, label_sample: int | None = None, images: bool = False,
                         limits: StackLimits = TEMPLATE_DEFAULT_LIMITS) -> ValidationReport:
    """Every problem the trigger would refuse the dataset for. Locally every label is read by
    default (20,000 in well under a second); `label_sample` reads a seeded sample as the trigger
    does. `limits`: the stack's bounds on yolopipe.yaml (MaxEpochs, allowed instance types, longest
    run); `upload` reads the deployed stack's, `dataset validate` (offline) applies the template's
    defaults. `images`: also what only a local copy shows (local_checks: every image decodes, no
    orphan label files); `dataset validate` asks for it, `upload` does not."""
    report = validate_dataset(LocalDatasetSource(path), label_sample=label_sample)
    overrides = Path(path) / OVERRIDES_FILE
    if overrides.is_file():
        with overrides.open("rb") as handle:  # bounded: parse_overrides refuses anything larger
            text = handle.read(OVERRIDES_MAX_BYTES + 1).decode("utf-8", errors="replace")
        report.problems.extend(parse_overrides(text, limits)[1])
    if images and Path(path).is_dir():
        from .local_checks import check_images, dataset_files, orphan_labels

        files = dataset_files(Path(path))
        problems, report.images_decoded = check_images(Path(path), files)
        report.problems.extend(problems + orphan_labels(files))
    return report
