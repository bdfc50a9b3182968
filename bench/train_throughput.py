"""Training throughput: our training step's defaults vs bare Ultralytics defaults vs hand-tuned.

    .venv/bin/python bench/train_throughput.py --quick          # CPU smoke, under a minute
    .venv/bin/python bench/train_throughput.py                  # CPU, a few minutes
    python bench/train_throughput.py --gpu-protocol             # GPU: 4,000 images at 640 px

All configurations train the same YOLO11 architecture from scratch on the same generated dataset
for the same wall-clock budget (Ultralytics' `time=` setting), each in a fresh process, so the
table shows both what images/s buys (training images per second of the training pass, after the
first epoch, which includes warm-up and RAM caching) and what it is worth: the val mAP50-95
reached in equal time. Ratios are against the bare defaults. The anchors in bench/anchors/
(H100, YOLO11n, 640 px): bare defaults 252 images/s, batch 128 + 16 workers + cache=ram 1048.

Configurations:
  bare   YOLO("yolo11n.yaml").train(data, imgsz, time): batch 16, 8 workers, no cache
  ours   training_code/train.py with nothing but the dataset, imgsz and time: the machine defaults
  tuned  batch 128 (CPU: 32), 16 workers, cache=ram: the anchor's hand-tuned settings
  big    batch 256, 16 workers, cache=ram (GPU only, --with-big): more images/s, fewer steps
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRAINING_CODE = REPO / "training_code"
for _path in (REPO, TRAINING_CODE, REPO / "functions" / "shared"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

CONFIGS_GPU = {
    "bare": {},
    "ours": None,  # resolved by training_code/train.py
    "tuned": {"batch": 128, "workers": 16, "cache": "ram"},
}
CONFIGS_CPU = {
    "bare": {},
    "ours": None,
    "tuned": {"batch": 32, "workers": 2, "cache": "ram"},
}
BIG = {"batch": 256, "workers": 16, "cache": "ram"}


# --------------------------------------------------------------------------- dataset


def _chunk(args: tuple[str, int, int, int, int]) -> None:
    from yolopipe.datasets.sample import generate_dataset

    root, index, train, val, imgsz = args
    generate_dataset(Path(root) / f"part{index}", train=train, val=val, imgsz=imgsz, seed=1000 + index,
                     write_data_yaml=False)


def make_dataset(root: Path, train: int, val: int, imgsz: int, processes: int) -> Path:
    """A generated dataset, drawn in parallel chunks (each chunk its own seed), merged into one."""
    import yaml

    if (root / "data.yaml").is_file():
        return root
    parts = max(1, min(processes, train // 50 or 1))
    jobs = [(str(root), i, train // parts + (i < train % parts), val // parts + (i < val % parts), imgsz)
            for i in range(parts)]
    if parts == 1:
        _chunk(jobs[0])
    else:
        with multiprocessing.get_context("fork").Pool(parts) as pool:
            pool.map(_chunk, jobs)
    for split in ("train", "val"):
        for kind in ("images", "labels"):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
        for i in range(parts):
            for kind in ("images", "labels"):
                source = root / f"part{i}" / kind / split
                if source.is_dir():
                    for f in source.iterdir():
                        f.rename(root / kind / split / f"p{i}_{f.name}")
    for i in range(parts):
        shutil.rmtree(root / f"part{i}", ignore_errors=True)
    doc = {"path": ".", "train": "images/train", "val": "images/val", "names": {0: "square", 1: "disc", 2: "bar"}}
    (root / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


# --------------------------------------------------------------------------- one configuration


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration in this process; return its figures."""
    from yolo_offline import prepare_environment

    prepare_environment()
    import train as train_step

    work = Path(spec["work"])
    common = {"imgsz": spec["imgsz"], "epochs": spec["epochs"], "close_mosaic": 0, "plots": False, "seed": 0}
    if spec["hours"]:
        common["time"] = spec["hours"]
    started = time.perf_counter()
    if spec["overrides"] is None:  # ours: the training step itself, with nothing set but the essentials
        argv = ["--dataset", spec["dataset"], "--variant", spec["variant"], "--model-dir", str(work / "model"),
                "--output-data-dir", str(work / "output"), "--checkpoint-dir", str(work / "checkpoints")]
        for key, value in common.items():
            argv += [f"--{key}", str(value)]
        config = train_step.resolve_config(argv, {})
        metrics = train_step.train(config)
        epochs = metrics["epochs"]
        final = {k: metrics.get(k) for k in ("map50_95", "map50")}
        settings = {k: config.train_args.get(k) for k in ("batch", "workers", "cache")}
    else:  # plain Ultralytics, as a user would call it (offline, same timing callbacks)
        from dataset_yaml import write_clean_data_yaml
        from ultralytics import YOLO
        from yolo_offline import configure_settings, offline_trainer_class

        configure_settings()
        data_yaml, _, _ = write_clean_data_yaml(Path(spec["dataset"]), work / "data")
        (work / "run").mkdir(parents=True, exist_ok=True)
        reporter = train_step.EpochReporter(work / "run" / "epochs.jsonl")
        model = YOLO(f"yolo11{spec['variant']}.yaml")
        for event in ("on_train_epoch_start", "on_train_epoch_end", "on_fit_epoch_end"):
            model.add_callback(event, getattr(reporter, event))
        model.train(trainer=offline_trainer_class(), data=str(data_yaml), project=str(work), name="run",
                    exist_ok=True, **common, **spec["overrides"])
        log = work / "run" / "epochs.jsonl"
        epochs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        final = {k: v for k, v in train_step._final_metrics(model.metrics).items() if k in ("map50_95", "map50")}
        args: Any = getattr(model.trainer, "args", None)
        settings = {"batch": args.batch, "workers": args.workers, "cache": args.cache}
    speeds = [e["images_per_second"] for e in epochs[1:] if e.get("images_per_second")]
    return {
        "config": spec["name"],
        **settings,
        "epochs": len(epochs),
        "images_per_second": round(statistics.median(speeds), 1) if speeds else None,
        "first_epoch_images_per_second": epochs[0].get("images_per_second") if epochs else None,
        **final,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "per_epoch": [{**{k: e.get(k) for k in ("epoch", "train_seconds", "images_per_second", "map50_95")},
                       "elapsed": round(e["time"] - epochs[0]["time"] + epochs[0]["train_seconds"], 1)}
                      for e in epochs],
    }


def run_isolated(spec: dict[str, Any], log_dir: Path) -> dict[str, Any]:
    """run_one in a fresh interpreter (clean GPU memory, caches and RNG state)."""
    result_file = Path(spec["work"]) / "result.json"
    Path(spec["work"]).mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec['name']}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / "shared"), str(REPO),
                                                         os.environ.get("PYTHONPATH", "")])}
    with log.open("w") as fh:
        code = subprocess.run([sys.executable, __file__, "--run-one", json.dumps(spec), "--result", str(result_file)],
                              stdout=fh, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if code != 0 or not result_file.is_file():
        tail = log.read_text(errors="replace").splitlines()[-5:]
        return {"config": spec["name"], "error": f"exit {code}: " + " | ".join(tail)}
    return json.loads(result_file.read_text())


# --------------------------------------------------------------------------- table


def table(results: list[dict[str, Any]], machine: str) -> str:
    base = next((r for r in results if r.get("config") == "bare" and r.get("images_per_second")), None)
    rows = [f"Training throughput, {machine}",
            f"{'config':<7} {'batch':>5} {'workers':>7} {'cache':>5} {'epochs':>6} {'img/s':>8} "
            f"{'x bare':>7} {'mAP50-95':>9} {'mAP50':>7} {'train s':>7}"]
    for r in results:
        if "error" in r:
            rows.append(f"{r['config']:<7} ERROR {r['error'][:200]}")
            continue
        speed = r.get("images_per_second") or 0.0
        ratio = f"{speed / base['images_per_second']:.2f}" if base and speed else "-"
        rows.append(f"{r['config']:<7} {r['batch']!s:>5} {r['workers']!s:>7} {r['cache']!s:>5} {r['epochs']:>6} "
                    f"{speed:>8.1f} {ratio:>7} {r.get('map50_95') or 0:>9.4f} {r.get('map50') or 0:>7.4f} "
                    f"{(r.get('per_epoch') or [{}])[-1].get('elapsed', 0):>7.1f}")
    speed = {r["config"]: r["images_per_second"] for r in results if r.get("images_per_second")}
    for other in ("bare", "tuned"):
        if "ours" in speed and other in speed:
            rows.append(f"ours / {other} images/s: {speed['ours'] / speed[other]:.2f}x")
    return "\n".join(rows)


def describe_machine() -> str:
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{gpu}, {cpus} CPUs, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU smoke: tiny dataset, a few seconds per config")
    parser.add_argument("--gpu-protocol", action="store_true", help="the anchors' dataset: 4,000 + 250 images, 640 px")
    parser.add_argument("--train-images", type=int)
    parser.add_argument("--val-images", type=int)
    parser.add_argument("--imgsz", type=int)
    parser.add_argument("--variant", default="n")
    parser.add_argument("--seconds", type=float, help="wall-clock training budget per configuration")
    parser.add_argument("--epochs", help="fixed epochs instead of a time budget, e.g. bare=4,ours=14")
    parser.add_argument("--configs", default="bare,ours,tuned")
    parser.add_argument("--with-big", action="store_true", help="also batch 256 (GPU)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--deadline", type=float, default=0, help="skip configs that would start after this many s")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_one:
        result = run_one(json.loads(args.run_one))
        Path(args.result).write_text(json.dumps(result))
        return 0

    import torch

    gpu = torch.cuda.is_available()
    if args.gpu_protocol:
        defaults = {"train_images": 4000, "val_images": 250, "imgsz": 640, "seconds": 90.0}
    elif args.quick:
        defaults = {"train_images": 32, "val_images": 8, "imgsz": 64, "seconds": 6.0}
    else:
        defaults = {"train_images": 256, "val_images": 32, "imgsz": 128, "seconds": 60.0}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    configs = CONFIGS_GPU if gpu else CONFIGS_CPU
    chosen = {name: configs[name] for name in args.configs.split(",") if name in configs}
    if args.with_big and gpu:
        chosen["big"] = BIG

    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="yolopipe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    dataset = make_dataset(work / "dataset", args.train_images, args.val_images, args.imgsz, cpus)
    print(f"dataset: {args.train_images} train + {args.val_images} val images at {args.imgsz} px "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    machine = describe_machine()
    results: list[dict[str, Any]] = []
    for name, overrides in chosen.items():
        elapsed = time.perf_counter() - started
        if args.deadline and not args.epochs and elapsed + args.seconds * 1.3 > args.deadline:
            print(f"skipping {name}: {elapsed:.0f} s spent, deadline {args.deadline:.0f} s", flush=True)
            continue
        fixed = dict(item.split("=") for item in args.epochs.split(",")) if args.epochs else {}
        spec = {"name": name, "overrides": overrides, "dataset": str(dataset), "imgsz": args.imgsz,
                "variant": args.variant, "hours": None if fixed else args.seconds / 3600,
                "epochs": int(fixed.get(name, 1000 if not fixed else 3)), "work": str(work / name)}
        result = run_isolated(spec, work)
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "per_epoch"}), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"machine": machine, "args": vars(args) | {"work": str(work),
                                             "json": str(args.json)}, "results": results}, indent=1, default=str))
    print()
    budget = f"epochs {args.epochs}" if args.epochs else f"{args.seconds:.0f} s per config"
    print(table(results, f"{machine}; YOLO11{args.variant}, {args.train_images} images at {args.imgsz} px, {budget}"))
    print(f"total {time.perf_counter() - started:.0f} s; command: python bench/train_throughput.py "
          + " ".join(sys.argv[1:]))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
