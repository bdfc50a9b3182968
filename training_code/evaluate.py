"""Entry point of the SageMaker processing job: score a trained model, write evaluation.json.

    python evaluate.py --model /opt/ml/processing/model --data /opt/ml/processing/dataset \
        --output /opt/ml/processing/evaluation

`--model` is a model.tar.gz as the training job writes it, a folder (best.pt preferred, then
last.pt) or a .pt. `--data` is the dataset folder (data.yaml at its root, checked like the
training job's). The test split is scored, the val split when there is none (recorded in
`split`). The evaluation.json shape is the shared contract of yolopipe_shared.evaluation:

    {"metrics": {"map50", "map50_95", "precision", "recall"},
     "per_class": [{"name", "map50", "map50_95", "precision", "recall", "instances"}],
     "split": "test"|"val", "images": N, "instances": N, "model": {...}}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, and yolopipe_shared in the tarball

from dataset_yaml import count_images, write_clean_data_yaml  # noqa: E402
from yolo_offline import configure_settings, prepare_environment  # noqa: E402

from yolopipe_shared.errors import YolopipeError  # noqa: E402
from yolopipe_shared.evaluation import EVALUATION_FILE, METRICS  # noqa: E402

PROCESSING = Path("/opt/ml/processing")
DEFAULT_MODEL = PROCESSING / "model"
DEFAULT_DATA = PROCESSING / "dataset"
DEFAULT_OUTPUT = PROCESSING / "evaluation"
EXIT_REFUSED = 2


class ModelNotFound(YolopipeError):
    """No model file where --model points."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score a trained YOLO model on a dataset's test (or val) split.")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz, a folder or a .pt")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder with data.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for evaluation.json")
    parser.add_argument("--imgsz", type=int, default=None, help="image size (default: the training's)")
    parser.add_argument("--batch", type=int, default=16, help="images per batch")
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: first GPU, else CPU)")
    return parser.parse_args(list(argv))


def find_model(path: Path, scratch: Path) -> Path:
    """The .pt to score: a .pt as is; the best.pt (else last.pt, else any .pt) of a folder or tarball."""
    if path.is_file() and path.suffix == ".pt":
        return path
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tar:
            tar.extractall(scratch, filter="data")  # refuses links and paths leaving `scratch`
        return find_model(scratch, scratch)
    if path.is_dir():
        tarballs = sorted(path.glob("*.tar.gz"))
        for name in ("best.pt", "last.pt"):
            found = sorted(path.rglob(name))
            if found:
                return found[0]
        if tarballs:
            return find_model(tarballs[0], scratch / "model")
        others = sorted(path.rglob("*.pt"))
        if others:
            return others[0]
    raise ModelNotFound(f"no model at {path}: pass a model.tar.gz, a folder with best.pt, or a .pt file")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def evaluate(model_path: Path, dataset_dir: Path, output_dir: Path, *, imgsz: int | None = None, batch: int = 16,
             device: str | None = None) -> dict[str, Any]:
    """Validate `model_path` on the dataset's test split (else val); write and return evaluation.json."""
    configure_settings()
    from ultralytics import YOLO, __version__

    with tempfile.TemporaryDirectory(prefix="yolopipe-eval-") as tmp:
        scratch = Path(tmp)
        weights = find_model(model_path, scratch / "model")
        data_yaml, parsed, split = write_clean_data_yaml(dataset_dir, scratch / "data", evaluation=True)
        model = YOLO(str(weights))
        train_args = (model.ckpt or {}).get("train_args") or {}
        size = imgsz or int(train_args.get("imgsz") or 640)
        result = model.val(data=str(data_yaml), split="val", imgsz=size, batch=batch, device=device, plots=False,
                           save_json=False, project=str(scratch / "runs"), name="val", exist_ok=True, verbose=False)
        box = result.box
        names = parsed.names
        instances = [int(x) for x in (result.nt_per_class if result.nt_per_class is not None else [0] * len(names))]
        by_class = {int(c): i for i, c in enumerate(box.ap_class_index)}
        per_class = []
        for index, name in enumerate(names):
            if index in by_class:
                p, r, ap50, ap = (float(x) for x in box.class_result(by_class[index]))
            else:
                p = r = ap50 = ap = 0.0
            per_class.append({"name": name, "map50": round(ap50, 6), "map50_95": round(ap, 6),
                              "precision": round(p, 6), "recall": round(r, 6),
                              "instances": instances[index] if index < len(instances) else 0})
        headline = {"map50_95": float(box.map), "map50": float(box.map50), "precision": float(box.mp),
                    "recall": float(box.mr)}
        metrics = {name: round(headline[name], 6) for name in METRICS}
        report: dict[str, Any] = {
            "metrics": metrics,
            "per_class": per_class,
            "split": split,
            "images": count_images(dataset_dir, parsed.splits.get(split, [])),
            "instances": int(sum(instances)),
            "model": {
                "file": weights.name,
                "sha256": _sha256(weights),
                "imgsz": size,
                "epochs": train_args.get("epochs"),
                "names": names,
                "ultralytics": __version__,
            },
        }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=1))
    summary = " ".join(f"{k}={v}" for k, v in metrics.items())
    print(f"evaluation split={split} images={report['images']} {summary} -> {output_dir / EVALUATION_FILE}", flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Score the model; 0 on success, 2 when the input is refused (one line on stderr)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        prepare_environment()
        evaluate(args.model, args.data, args.output, imgsz=args.imgsz, batch=args.batch, device=args.device)
    except YolopipeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        failure_dir = os.environ.get("SM_OUTPUT_DIR")
        if failure_dir and Path(failure_dir).is_dir():
            (Path(failure_dir) / "failure").write_text(str(exc)[:1000] + "\n")
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
