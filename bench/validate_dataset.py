"""Benchmark: our dataset validation vs the scan Ultralytics runs before training.

A user who wants to know whether a dataset is sound before paying for a GPU would otherwise let
Ultralytics build its dataset (YOLODataset: list the images, then verify_image_label on every
image/label pair in a thread pool, then a labels.cache). We check the same label rules without
decoding images. This script generates a 20,000-image dataset (one tiny JPEG copied, labels
drawn) with seeded faults, runs both, checks they condemn exactly the same images, and prints
one table with the speed ratio.

    .venv/bin/python bench/validate_dataset.py            # 20,000 images
    .venv/bin/python bench/validate_dataset.py --quick    # 2,000 images, < 1 minute

Exit status 1 when the verdicts differ.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")  # Ultralytics logs one line per dropped image otherwise

from yolopipe_shared.dataset_sources import LocalDatasetSource  # noqa: E402
from yolopipe_shared.labels import label_path_for  # noqa: E402
from yolopipe_shared.validate import ValidationReport, validate_dataset  # noqa: E402

NAMES = ("square", "disc", "bar")
# Faults Ultralytics' scan drops an image for, each seeded into this share of the images.
FAULTS = {
    "class out of range": "7 0.5 0.5 0.2 0.2\n",
    "pixel coordinates": "0 320 240 64 48\n",
    "4 values": "0 0.5 0.5 0.2\n",
    "not a number": "0 0.5 0.5 0.2 O.2\n",
    "box mixed with polygon": "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.9 0.1 0.9 0.9\n",
    "empty image file": None,
}
FAULT_SHARE = 0.002
MISSING_LABEL_SHARE = 0.01  # background images: both keep them


def tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (100, 130, 160)).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def build(root: Path, images: int, seed: int) -> tuple[set[str], int]:
    """Write the dataset; return (images that must be condemned, labels deliberately missing)."""
    rng = random.Random(seed)
    jpeg = tiny_jpeg()
    splits = {"train": images * 4 // 5, "val": images - images * 4 // 5}
    all_images = [f"images/{split}/{split}_{i:06d}.jpg" for split, n in splits.items() for i in range(n)]
    for split in splits:
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    per_fault = max(1, round(len(all_images) * FAULT_SHARE))
    chosen = rng.sample(all_images, per_fault * len(FAULTS) + max(1, round(len(all_images) * MISSING_LABEL_SHARE)))
    faults = {
        image: fault
        for i, image in enumerate(chosen[: per_fault * len(FAULTS)])
        for fault in [list(FAULTS)[i // per_fault]]
    }
    missing = set(chosen[per_fault * len(FAULTS) :])
    for image in all_images:
        fault = faults.get(image)
        (root / image).write_bytes(b"" if fault == "empty image file" else jpeg)
        if image in missing:
            continue
        if fault and FAULTS[fault] is not None:
            text = FAULTS[fault]
        else:
            text = "".join(
                f"{rng.randrange(3)} {rng.uniform(0.2, 0.8):.4f} {rng.uniform(0.2, 0.8):.4f} "
                f"{rng.uniform(0.05, 0.3):.4f} {rng.uniform(0.05, 0.3):.4f}\n"
                for _ in range(rng.randint(1, 4))
            )
        (root / label_path_for(image)).write_text(text)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    )
    return set(faults), len(missing)


def condemned_by_us(report: ValidationReport) -> set[str]:
    """Images our report condemns: through their label file, or the image file itself (all .jpg here)."""
    bad = set()
    for problem in report.problems:
        if problem.file.startswith("images/"):
            bad.add(problem.file)
        elif problem.file.startswith("labels/"):
            bad.add("images/" + problem.file[len("labels/") :].rsplit(".", 1)[0] + ".jpg")
    return bad


def run_ours(root: Path, label_sample: int | None) -> tuple[float, float, ValidationReport]:
    start, cpu = time.perf_counter(), time.process_time()
    report = validate_dataset(LocalDatasetSource(root), label_sample=label_sample)
    return time.perf_counter() - start, time.process_time() - cpu, report


def run_ultralytics(root: Path) -> tuple[float, float, set[str], int]:
    """Build Ultralytics' YOLODataset for each split from scratch (its cache removed first)."""
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import load_dataset_cache_file

    data = {"names": dict(enumerate(NAMES)), "nc": len(NAMES), "channels": 3}
    kept: set[str] = set()
    listed: set[str] = set()
    missing = 0
    elapsed = cpu = 0.0
    for split in ("train", "val"):
        cache = root / "labels" / f"{split}.cache"
        cache.unlink(missing_ok=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        dataset = YOLODataset(img_path=str(root / "images" / split), data=data, task="detect", augment=False, imgsz=64)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        kept.update(Path(lb["im_file"]).relative_to(root).as_posix() for lb in dataset.labels)
        listed.update(f"images/{split}/{p.name}" for p in (root / "images" / split).iterdir())
        missing += load_dataset_cache_file(cache)["results"][1]
    return elapsed, cpu, listed - kept, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 images instead of 20,000 (< 1 minute)")
    parser.add_argument("--images", type=int, help="dataset size (overrides --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each; the best counts")
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it")
    args = parser.parse_args(argv)
    images = args.images or (2_000 if args.quick else 20_000)

    workdir = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    root = args.keep or workdir / "dataset"
    try:
        start = time.perf_counter()
        expected_bad, expected_missing = build(root, images, args.seed)
        built = time.perf_counter() - start
        # one untimed pass of each so both read from a warm page cache
        run_ours(root, None)
        run_ultralytics(root)

        # interleaved, best of --repeat each: other work on the machine hits all three alike
        full_runs, sampled_runs, ultra_runs = [], [], []
        for _ in range(args.repeat):
            full_runs.append(run_ours(root, None))
            sampled_runs.append(run_ours(root, 200))
            ultra_runs.append(run_ultralytics(root))
        ours_full = min(full_runs, key=lambda r: r[0])
        ours_sampled = min(sampled_runs, key=lambda r: r[0])
        ultra = min(ultra_runs, key=lambda r: r[0])

        ours_bad = condemned_by_us(ours_full[2])
        ours_missing = sum(ours_full[2].missing_labels_per_split.values())
        same = ours_bad == ultra[2] == expected_bad and ours_missing == ultra[3] == expected_missing
        rows = [
            ("Ultralytics YOLODataset scan", ultra[0], ultra[1], len(ultra[2]), ultra[3], "every image"),
            ("ours, every label", *ours_full[:2], len(ours_bad), ours_missing, f"{ours_full[2].labels_checked:,}"),
            (
                "ours, default sample (200)",
                *ours_sampled[:2],
                len(condemned_by_us(ours_sampled[2])),
                sum(ours_sampled[2].missing_labels_per_split.values()),
                f"{ours_sampled[2].labels_checked:,}",
            ),
        ]
        print(
            f"Dataset validation, {images:,} images ({len(expected_bad)} seeded faults, {expected_missing} "
            f"labels missing), built in {built:.1f}s; {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'method':<30} {'wall s':>7} {'CPU s':>7} {'bad images':>10} {'no label':>9} {'labels read':>12} "
            f"{'speed-up':>9} {'CPU ratio':>9}"
        )
        for name, seconds, cpu, bad, missing, read in rows:
            print(
                f"{name:<30} {seconds:>7.3f} {cpu:>7.3f} {bad:>10} {missing:>9} {read:>12} "
                f"{ultra[0] / seconds:>8.1f}x {ultra[1] / cpu:>8.1f}x"
            )
        print(
            "same verdicts (condemned images and background images, ours vs Ultralytics vs seeded): "
            + ("yes" if same else "NO")
        )
        print(
            "default sample rejects the dataset: "
            + ("yes" if not ours_sampled[2].ok else "no (the sample missed every fault)")
        )
        return 0 if same else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
