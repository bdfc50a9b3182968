"""The main job, locally and without an AWS account: sample dataset -> train -> evaluate -> metrics.

    python -m pipeline.demo            # make demo

Generates a small YOLO dataset, runs training_code/train.py and training_code/evaluate.py as the
SageMaker training and processing jobs would run them (subprocesses with SageMaker's environment
variables and paths), then prints the evaluation metrics. About a minute on 2 CPU cores.
Everything lands in runs/demo/ (dataset, model, evaluation.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.sample_dataset import generate_dataset
from yolopipe_shared.evaluation import EVALUATION_FILE, METRICS

REPO = Path(__file__).resolve().parents[1]
TRAINING_CODE = REPO / "training_code"
#: Settings that make a from-scratch YOLO11n learn the generated shapes in well under a minute on a CPU.
TRAIN_SETTINGS = ["--variant", "n", "--batch", "8", "--mosaic", "0", "--warmup_epochs", "1", "--plots", "false"]


def _run(argv: list[str], env: dict[str, str], log: Path) -> None:
    """Run a job; show its one-line-per-epoch progress and keep the full log in `log`."""
    with log.open("w") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if line.startswith(("epoch ", "done ", "evaluation ", "yolopipe:", "error:")):
                print("  " + line.rstrip(), flush=True)
        if proc.wait() != 0:
            raise SystemExit(f"{Path(argv[1]).name} failed (exit {proc.returncode}); see {log}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--imgsz", type=int, default=96)
    parser.add_argument("--train-images", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = parser.parse_args(argv)

    started = time.perf_counter()
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    dataset = generate_dataset(out / "dataset", train=args.train_images, val=16, test=16, imgsz=args.imgsz,
                               objects_per_image=(1, 2))
    print(f"1/3 dataset: {sum(dataset.counts.values())} images of {', '.join(dataset.names)} in {dataset.root}")

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / "shared"), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
        "SM_CHANNEL_DATASET": str(dataset.root),
        "SM_MODEL_DIR": str(out / "model"),
        "SM_OUTPUT_DATA_DIR": str(out / "output"),
        "YOLO_CONFIG_DIR": os.environ.get("YOLO_CONFIG_DIR", str(out / "ultralytics-config")),
    }
    print(f"2/3 training YOLO11n for {args.epochs} epochs at {args.imgsz} px (training_code/train.py)")
    _run([sys.executable, str(TRAINING_CODE / "train.py"), "--epochs", str(args.epochs), "--imgsz", str(args.imgsz),
          "--checkpoint-dir", str(out / "checkpoints"), *TRAIN_SETTINGS], env, out / "train.log")
    print("3/3 evaluating on the test split (training_code/evaluate.py)")
    _run([sys.executable, str(TRAINING_CODE / "evaluate.py"), "--model", str(out / "model"), "--data",
          str(dataset.root), "--output", str(out / "evaluation")], env, out / "evaluate.log")

    report = json.loads((out / "evaluation" / EVALUATION_FILE).read_text())
    print(f"\nMetrics on the {report['split']} split ({report['images']} images, {report['instances']} objects):")
    for key, label in METRICS.items():
        print(f"  {label:<10} {report['metrics'][key]:.3f}")
    print("  per class: " + ", ".join(f"{c['name']} {c['map50_95']:.3f}" for c in report["per_class"]))
    print(f"\nmodel: {out / 'model' / 'best.pt'}\nevaluation: {out / 'evaluation' / EVALUATION_FILE}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
