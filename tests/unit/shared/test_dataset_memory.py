"""The trigger validates a large dataset within its memory (template.yaml: MemorySize 512), and
refuses a larger one with a message rather than crashing.

The dataset lies behind S3DatasetSource, the trigger's own source, on an in-memory S3 client that
answers ListObjectsV2 pages as S3 does (1,000 keys each, in key order) and GetObject with small
bodies: what is measured is our listing and validation, not moto's storage.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from typing import Any

from yolopipe_shared.dataset_sources import S3DatasetSource
from yolopipe_shared.validate import validate_dataset

DATA_YAML = b"path: .\ntrain: images/train\nval: images/val\nnames: [person, car]\n"
LABEL = b"0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"
#: The trigger's memory (512 MB) less what its runtime, boto3 and Powertools hold (~100 MB), the sampled
#: label files (at most 16 MiB at once) and room for S3's XML pages; a plain dict listing (path -> size)
#: took ~180 MiB here.
VALIDATION_BUDGET_MIB = 160


class InMemoryS3:
    """ListObjectsV2 / GetObject for `images` labelled images (train 90%, val 10%) under one prefix."""

    def __init__(self, images: int) -> None:
        self.images = images

    def _objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        val = self.images // 10
        yield prefix + "data.yaml", len(DATA_YAML)
        for kind, suffix, size in (("images", "jpg", 48_213), ("labels", "txt", len(LABEL))):
            for split, count in (("train", self.images - val), ("val", val)):
                for i in range(count):
                    yield f"{prefix}{kind}/{split}/{i:012d}.{suffix}", size

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, *, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:  # noqa: N803 - boto3's names
        page: list[dict[str, Any]] = []
        for key, size in self._objects(Prefix):
            page.append({"Key": key, "Size": size, "ETag": f'"{size:032x}"', "StorageClass": "STANDARD"})
            if len(page) == 1000:
                yield {"Contents": page, "KeyCount": len(page), "IsTruncated": True}
                page = []
        yield {"Contents": page, "KeyCount": len(page), "IsTruncated": False}

    def get_object(self, *, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:  # noqa: N803
        return {"Body": io.BytesIO(DATA_YAML if Key.endswith("data.yaml") else LABEL)}


def test_half_a_million_images_validate_within_the_functions_memory() -> None:
    """GIVEN a dataset of 500,000 labelled images (1,000,001 objects) under one S3 prefix
    WHEN the trigger's validation lists and checks it
    THEN it passes, and the peak of Python memory stays within the function's budget."""
    source = S3DatasetSource(InMemoryS3(500_000), "bucket", "datasets/big/")
    tracemalloc.start()
    try:
        report = validate_dataset(source, label_sample=200, max_files=1_000_001)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()

    assert report.ok, report.summary()
    assert report.images_per_split == {"train": 450_000, "val": 50_000}
    print(f"peak {peak_mib:.0f} MiB for 1,000,001 objects")  # noqa: T201 - the figure the README quotes
    assert peak_mib < VALIDATION_BUDGET_MIB


def test_a_dataset_over_the_file_limit_is_refused_in_one_line() -> None:
    """GIVEN a dataset of more files than the caller can validate
    WHEN validated with that limit
    THEN it is refused with one problem saying so, and the listing stopped at the limit."""
    report = validate_dataset(S3DatasetSource(InMemoryS3(3_000), "bucket", "datasets/big/"), max_files=5_000)
    [problem] = report.problems
    assert "more than 5,000 files" in str(problem) and "\n" not in str(problem)
