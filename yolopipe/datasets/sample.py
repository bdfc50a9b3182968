"""Generate small YOLO detection datasets: the README demo, the tests and the benchmarks use them.

Nothing can be downloaded here, so the data is drawn: filled rectangles and ellipses of a few
classes on a noisy background, with exact YOLO labels. A model learns it in a few epochs, which
is what makes a seconds-long CPU training produce a non-zero mAP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_CLASSES = ("square", "disc", "bar")
_COLOURS = ((220, 40, 40), (40, 200, 60), (40, 80, 230), (230, 200, 30), (200, 40, 200))


@dataclass(frozen=True)
class SampleDataset:
    """Where a generated dataset lies and what it holds."""

    root: Path
    names: tuple[str, ...]
    counts: dict[str, int]

    @property
    def data_yaml(self) -> Path:
        return self.root / "data.yaml"


def generate_dataset(
    root: str | Path,
    *,
    train: int = 16,
    val: int = 8,
    test: int = 0,
    imgsz: int = 64,
    names: tuple[str, ...] = DEFAULT_CLASSES,
    seed: int = 0,
    objects_per_image: tuple[int, int] = (1, 3),
    image_format: str = "jpg",
    write_data_yaml: bool = True,
) -> SampleDataset:
    """Write `root/images/<split>/*.jpg`, `root/labels/<split>/*.txt` and `root/data.yaml`.

    Deterministic for a given seed. data.yaml uses relative paths and `path: .`, as a user's
    dataset would before upload.
    """
    from PIL import Image, ImageDraw  # Pillow comes with ultralytics; imported late to keep import cheap

    root = Path(root)
    rng = random.Random(seed)
    counts = {"train": train, "val": val, "test": test}
    for split, count in counts.items():
        if count <= 0:
            continue
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            background = tuple(rng.randint(90, 150) for _ in range(3))
            image = Image.new("RGB", (imgsz, imgsz), background)
            draw = ImageDraw.Draw(image)
            for _ in range(imgsz * imgsz // 40):  # sparse noise so the task is not trivial
                x, y = rng.randrange(imgsz), rng.randrange(imgsz)
                draw.point((x, y), fill=tuple(rng.randint(60, 180) for _ in range(3)))
            lines = []
            for _ in range(rng.randint(*objects_per_image)):
                cls = rng.randrange(len(names))
                w = rng.uniform(0.2, 0.45) * imgsz
                h = w if cls % 3 != 2 else rng.uniform(0.08, 0.15) * imgsz  # squares and discs, flat bars
                x0 = rng.uniform(0, imgsz - w)
                y0 = rng.uniform(0, imgsz - h)
                box = (x0, y0, x0 + w, y0 + h)
                colour = _COLOURS[cls % len(_COLOURS)]
                if cls % 3 == 1:
                    draw.ellipse(box, fill=colour)
                else:
                    draw.rectangle(box, fill=colour)
                lines.append(
                    f"{cls} {(x0 + w / 2) / imgsz:.6f} {(y0 + h / 2) / imgsz:.6f} {w / imgsz:.6f} {h / imgsz:.6f}"
                )
            stem = f"{split}_{index:05d}"
            image.save(root / "images" / split / f"{stem}.{image_format}", quality=90)
            (root / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    if write_data_yaml:
        doc: dict[str, object] = {"path": ".", "train": "images/train", "val": "images/val"}
        if test > 0:
            doc["test"] = "images/test"
        doc["names"] = dict(enumerate(names))
        (root / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return SampleDataset(root=root, names=tuple(names), counts={k: v for k, v in counts.items() if v > 0})
