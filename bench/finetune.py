"""Fine-tuning from weights vs training from scratch, our defaults vs bare `yolo train` defaults.

    .venv/bin/python bench/finetune.py --quick      # CPU, a few minutes
    .venv/bin/python bench/finetune.py              # CPU, longer: more images and epochs

Four runs on the same target dataset, each in a fresh process, for the same epoch budget:

  ours, weights    training_code/train.py --weights <checkpoint>   (the pipeline's default path)
  ours, scratch    training_code/train.py --weights scratch        (the pipeline before Weights existed)
  bare, weights    YOLO(<checkpoint>).train(data, epochs, imgsz)   (`yolo train model=yolo11n.pt`)
  bare, scratch    YOLO("yolo11n.yaml").train(data, epochs, imgsz)

It prints val mAP50-95 after the epoch budget, the wall time, and the time (training time, from
results.csv) to reach a fixed mAP50-95, with ratios against `ours, scratch`. Offline, the official
yolo11n.pt cannot be downloaded: a checkpoint is first trained from scratch on ANOTHER generated
dataset (other seed, other images, the same three shapes) and stands in for it; the output says so.
Because it saw the same kinds of shapes, it is a closer starting point than COCO weights would be.
With `--weights yolo11n.pt` (a file you have) the official weights are used instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "training_code" / "train.py"
for _path in (REPO, REPO / "functions" / "shared"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

_BARE = """
import json, sys
sys.path.insert(0, {training_code!r})
from yolo_offline import configure_settings, prepare_environment
prepare_environment(); configure_settings()
from ultralytics import YOLO
YOLO({model!r}).train(data={data!r}, epochs={epochs}, imgsz={imgsz}, project={project!r}, name="run", exist_ok=True,
                      plots=False, seed=0, deterministic=True)
"""


def _env(work: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "functions" / "shared"), "YOLO_OFFLINE": "1",
            "YOLO_CONFIG_DIR": str(work / "ultralytics"), "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}


def _curve(results_csv: Path) -> list[tuple[float, float]]:
    """(cumulative training seconds, val mAP50-95) per epoch, from Ultralytics' results.csv."""
    rows = list(csv.DictReader(results_csv.read_text().splitlines()))
    out = []
    for row in rows:
        row = {k.strip(): v for k, v in row.items()}
        out.append((float(row.get("time") or 0.0), float(row["metrics/mAP50-95(B)"])))
    return out


def run_ours(name: str, data: Path, weights: str, epochs: int, imgsz: int, work: Path) -> dict[str, Any]:
    job = work / name
    env = {**_env(work), "SM_CHANNEL_DATASET": str(data), "SM_MODEL_DIR": str(job / "model"),
           "SM_OUTPUT_DATA_DIR": str(job / "output")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(TRAIN), "--checkpoint-dir", str(job / "checkpoints"),
                           "--weights", weights, "--epochs", str(epochs), "--imgsz", str(imgsz), "--plots", "false"],
                          env=env, cwd=work, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return {"name": name, "wall_s": seconds, "curve": _curve(job / "model" / "results.csv"),
            "best": job / "model" / "best.pt"}


def run_bare(name: str, data: Path, model: str, epochs: int, imgsz: int, work: Path) -> dict[str, Any]:
    import yaml

    project = work / name
    # What a user writes for bare Ultralytics: the data.yaml with `path:` naming the dataset folder.
    doc = yaml.safe_load((data / "data.yaml").read_text())
    data_yaml = work / f"{data.name}-{len(name)}-bare.yaml"
    data_yaml.write_text(yaml.safe_dump({**doc, "path": str(data)}))
    code = _BARE.format(training_code=str(REPO / "training_code"), model=model, data=str(data_yaml),
                        epochs=epochs, imgsz=imgsz, project=str(project))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=_env(work), cwd=work, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return {"name": name, "wall_s": seconds, "curve": _curve(project / "run" / "results.csv")}


def time_to(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((seconds for seconds, value in curve if value >= target), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small: a few minutes on 2 CPU cores")
    parser.add_argument("--weights", help="a yolo11n.pt to fine-tune from (default: pretrain a stand-in offline)")
    parser.add_argument("--target", type=float, default=None,
                        help="mAP50-95 to reach (default: half the best final value of all runs)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    from yolopipe.datasets.sample import generate_dataset

    size, epochs, pre_epochs, imgsz = ((96, 16), 12, 12, 96) if args.quick else ((256, 32), 20, 30, 128)
    work = Path(tempfile.mkdtemp(prefix="yolopipe-bench-finetune-"))
    target_data = generate_dataset(work / "target", train=size[0], val=size[1], imgsz=imgsz, seed=7).root
    started = time.perf_counter()
    if args.weights:
        checkpoint, source = str(Path(args.weights).resolve()), f"official weights {args.weights}"
    else:
        other = generate_dataset(work / "pretrain", train=2 * size[0], val=size[1], imgsz=imgsz, seed=1).root
        pre = run_ours("pretrain", other, "scratch", pre_epochs, imgsz, work)
        checkpoint = str(pre["best"])
        source = (f"STAND-IN for yolo11n.pt (offline): YOLO11n trained {pre_epochs} epochs from scratch on another "
                  f"generated dataset ({2 * size[0]} images, seed 1; target: {size[0]} images, seed 7) in "
                  f"{pre['wall_s']:.0f}s")
    runs = [run_ours("ours, weights", target_data, checkpoint, epochs, imgsz, work),
            run_ours("ours, scratch", target_data, "scratch", epochs, imgsz, work),
            run_bare("bare, weights", target_data, checkpoint, epochs, imgsz, work),
            run_bare("bare, scratch", target_data, "yolo11n.yaml", epochs, imgsz, work)]
    target = args.target if args.target is not None else round(0.5 * max(r["curve"][-1][1] for r in runs), 3)
    base = runs[1]
    print(f"\nfine-tune vs scratch, ours vs bare: {epochs} epochs, {imgsz} px, {size[0]} train / {size[1]} val images")
    print(f"starting point: {source}")
    print(f"target mAP50-95 {target} (time = training seconds until the first epoch's val mAP50-95 reaches it)\n")
    header = f"{'run':<15} {'mAP50-95':>9} {'x scratch':>9} {'wall s':>7} {'to target s':>12} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    base_to = time_to(base["curve"], target)
    base_final, base_spent = base["curve"][-1][1], base["curve"][-1][0]
    rows = []
    for run in runs:
        final = run["curve"][-1][1]
        reach = time_to(run["curve"], target)
        ratio = f"{final / base_final:.2f}x" if base_final > 0 else ("-" if final == 0 else "scratch 0")
        if reach is None:
            speed = "-"
        elif base_to is None:  # scratch never got there: at least its whole training time
            speed = f">{base_spent / max(reach, 1e-9):.1f}x"
        else:
            speed = f"{base_to / max(reach, 1e-9):.2f}x"
        shown = f"{reach:.0f}" if reach is not None else f"not in {epochs} ep"
        print(f"{run['name']:<15} {final:>9.3f} {ratio:>9} {run['wall_s']:>7.0f} {shown:>12} {speed:>9}")
        rows.append({"run": run["name"], "map50_95": final, "wall_s": round(run["wall_s"], 1), "to_target_s": reach,
                     "curve": run["curve"]})
    print(f"\ntotal {time.perf_counter() - started:.0f}s; ratios against `ours, scratch`; work folder {work}")
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "target": target, "epochs": epochs, "imgsz": imgsz,
                                               "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
