"""Entry point of the SageMaker training job: train YOLO11 on the `dataset` channel.

    python train.py --variant n --epochs 50 --batch -1 --imgsz 640 ...

Inputs   channel `dataset` (SM_CHANNEL_DATASET): a YOLO detection dataset, data.yaml at its root.
Weights  `--weights` (the Weights parameter, model_weights.py): pretrained (default: yolo11{variant}.pt by
         Ultralytics' downloader), scratch (the yolo11{variant}.yaml architecture), s3://... .pt or
         model.tar.gz, a model package ARN, or a local .pt; without it, the `weights` channel if any.
Settings `--name value` arguments (how SageMaker passes hyperparameters) and SM_HPS (JSON); the
         arguments win. Our keys: variant, integrations, checkpoint-dir, model-dir, dataset,
         weights, output-data-dir, mlflow-tracking-uri, mlflow-experiment; and any Ultralytics train
         argument (epochs, batch, imgsz, lr0, patience, seed, workers, cache, ...), alone or in `settings`
         (one JSON object, the UltralyticsSettings parameter). Unknown keys are refused with a close match.
         Unset batch/workers/cache/device get the fast values for this machine (fast_defaults).
Outputs  SM_MODEL_DIR: best.pt, last.pt, args.yaml, results.csv, metrics.json, code/ (serving) (and
         mlflow_run.json when tracking to MLflow: mlflow_tracking.py);
         SM_OUTPUT_DATA_DIR: plots. One line per epoch on stdout: `epoch 3/10 images_per_second=...
         map50_95=... best_epoch=...` (the format yolopipe_shared/training_progress.py's MetricDefinitions parse).
Resume   A checkpoint every epoch in the checkpoint dir (`--checkpoint-dir`, else SM_CHECKPOINT_DIR, else
         /opt/ml/checkpoints in a SageMaker container, else ./runs/yolopipe/checkpoints).
         An unfinished run of the same configuration found there is resumed (spot interruptions
         lose at most one epoch); a finished or different one is cleared and training starts anew.
Scale    Under torchrun (several instances or GPUs: SageMaker's toolkit starts it) every process trains
         its share of the global batch; global rank 0 writes the outputs (distributed.py).

Expected failures (bad settings, a rejected data.yaml) print one line and exit 2, before training.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, and yolopipe_shared in the tarball

import contextlib

import distributed  # noqa: E402
import yaml  # noqa: E402
from dataset_yaml import count_images, read_data_yaml, write_clean_data_yaml  # noqa: E402
from fast_defaults import (  # noqa: E402
    Machine,
    cache_fits,
    detect_machine,
    fast_batch,
    fast_workers,
    fit_batch_to_gpus,
)
from model_weights import resolve_weights  # noqa: E402
from yolo_offline import INTEGRATIONS, configure_settings, offline_trainer_class, prepare_environment  # noqa: E402

from yolopipe_shared.errors import DatasetRejected, ParameterError, YolopipeError  # noqa: E402
from yolopipe_shared.parameters import BY_NAME, PARAMETERS  # noqa: E402

VARIANTS = BY_NAME["ModelVariant"].choices or ()
#: Our own settings (not Ultralytics'), with their defaults where they have one.
OWN_KEYS = ("variant", "integrations", "checkpoint_dir", "model_dir", "output_data_dir", "dataset", "weights",
            "mlflow_tracking_uri", "mlflow_experiment")
#: The pipeline's one JSON hyperparameter of Ultralytics settings (UltralyticsSettings); the
#: individual `--name value` arguments win over it.
SETTINGS_KEY = "settings"
#: Pipeline-parameter spellings accepted for the Ultralytics names.
ALIASES = {**{spec.snake: spec.hyperparameter for spec in PARAMETERS
              if spec.hyperparameter and spec.snake != spec.hyperparameter}, "data_dir": "dataset"}
#: Ultralytics keys this entry point sets itself; a user setting them is told why not.
RESERVED = {
    "data": "the dataset comes from the `dataset` channel (SM_CHANNEL_DATASET or --dataset DIR)",
    "model": "choose the architecture with --variant and what it starts from with --weights",
    "project": "outputs go to SM_MODEL_DIR and the checkpoint dir",
    "name": "outputs go to SM_MODEL_DIR and the checkpoint dir",
    "exist_ok": "outputs go to SM_MODEL_DIR and the checkpoint dir",
    "save_dir": "outputs go to SM_MODEL_DIR and the checkpoint dir",
    "resume": "an unfinished run in the checkpoint dir is resumed automatically",
    "mode": "this entry point trains",
    "task": "yolopipe trains detection models",
    "cfg": "pass the settings themselves as --name value",
    "pretrained": "choose what training starts from with --weights (Weights: pretrained, scratch, s3://...)",
}
#: Settings that may differ when a run is resumed (the machine's, not the training's).
RESUME_MAY_CHANGE = frozenset({"workers", "cache", "device", "batch", "plots", "patience", "val"})
RUN_NAME = "train"
RUN_MARKER = "yolopipe-run.json"
EPOCH_LOG = "epochs.jsonl"
MODEL_FILES = ("best.pt", "last.pt", "results.csv")
#: The serving code that model.tar.gz carries under code/ (training_code/serving/).
SERVING_CODE_DIR = "code"
SERVING_FILES = ("inference.py", "requirements.txt")
EXIT_REFUSED = 2


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on, resolved from arguments, SM_HPS, environment and machine."""

    variant: str
    dataset_dir: Path
    weights: Path | None
    model_dir: Path
    output_dir: Path
    checkpoint_dir: Path
    integrations: tuple[str, ...]
    #: What goes to Ultralytics' train(): the user's settings plus the machine defaults below.
    train_args: dict[str, Any]
    #: Which of train_args we chose for the machine (shown in the log and args.yaml).
    machine_defaults: dict[str, Any] = field(default_factory=dict)
    #: What the weights came from: pretrained (yolo11n.pt), scratch, an s3:// URI, a package ARN, a path.
    weights_source: str = "scratch"
    #: MLflow tracking (mlflow_tracking.py): the tracking URI (None: off) and the experiment.
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


# --------------------------------------------------------------------------- settings


def parse_argv(argv: Sequence[str]) -> dict[str, str]:
    """`--name value` / `--name=value` pairs (a bare `--flag` means true)."""
    values: dict[str, str] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        if not arg.startswith("--") or arg == "--":
            raise ParameterError(f"unexpected argument {arg!r}; pass settings as --name value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if index + 1 < len(argv) and not argv[index + 1].startswith("--"):
                value = argv[index + 1]
                index += 1
            else:
                value = "true"
        values[key] = value
        index += 1
    return values


def read_sm_hps(environ: Mapping[str, str]) -> dict[str, Any]:
    """SageMaker's hyperparameters as JSON, or nothing."""
    text = environ.get("SM_HPS", "").strip()
    if not text:
        return {}
    try:
        hps = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"SM_HPS is not valid JSON ({exc.msg}); it should be a JSON object") from None
    if not isinstance(hps, dict):
        raise ParameterError("SM_HPS should be a JSON object of hyperparameters")
    return hps


def parse_value(raw: Any) -> Any:
    """One spelling for every source, typed as Ultralytics types CLI values (`smart_value`): '10' and
    10, 'True' and true, 'None' and null come out equal; an empty value is None."""
    from ultralytics.cfg import smart_value

    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text.lower() in ("", "null"):
        return None
    value = smart_value(text)
    return value if isinstance(value, str | int | float | bool | list | type(None)) else text


def _normalise_key(key: str) -> str:
    name = key.strip().lstrip("-").replace("-", "_")
    return ALIASES.get(name, name)


def merge_hyperparameters(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """SM_HPS, then the arguments on top; keys normalised, values typed, unknown keys refused."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    sm_hps, args = read_sm_hps(environ), parse_argv(argv)
    merged: dict[str, Any] = {_normalise_key(k): parse_value(v)
                              for k, v in _settings_object(sm_hps.pop(SETTINGS_KEY, None),
                                                           args.pop(SETTINGS_KEY, None)).items()}
    for key in merged:
        if key in OWN_KEYS:
            raise ParameterError(f"{key!r} is not an Ultralytics setting; pass it as its own hyperparameter")
    for source in (sm_hps, args):
        for key, raw in source.items():
            if key.startswith("sagemaker_"):  # the toolkit's own (program, submit dir, region...)
                continue
            merged[_normalise_key(key)] = parse_value(raw)
    for key in merged:
        if key in RESERVED:
            raise ParameterError(f"hyperparameter {key!r} cannot be set: {RESERVED[key]}")
    _check_known_keys({k: v for k, v in merged.items() if k not in OWN_KEYS}, DEFAULT_CFG_DICT)
    return merged


def _settings_object(from_sm_hps: Any, from_argv: Any) -> dict[str, Any]:
    """The `settings` JSON object. SM_HPS holds it decoded; on the command line the toolkit writes a
    dict as `k=v,k=v` (lossy), so a dict in SM_HPS wins, else the argument's JSON text."""
    for raw in (from_sm_hps, from_argv):
        if isinstance(raw, dict):
            return raw
    text = next((r for r in (from_argv, from_sm_hps) if isinstance(r, str) and r.strip()), "")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ParameterError(f"hyperparameter {SETTINGS_KEY!r} must be a JSON object of Ultralytics settings, "
                             f"e.g. {{\"patience\": 20}}") from None
    if not isinstance(value, dict):
        raise ParameterError(f"hyperparameter {SETTINGS_KEY!r} must be a JSON object, got {type(value).__name__}")
    return value


def _check_known_keys(custom: dict[str, Any], base: dict[str, Any]) -> None:
    """Ultralytics' own key check (`check_dict_alignment`: its keys, its deprecations), as one line
    naming the first unknown key and its closest valid spelling."""
    import logging

    from ultralytics.cfg import check_dict_alignment
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # it logs the whole CLI help before raising
    try:
        check_dict_alignment(base, custom)
    except SyntaxError:
        unknown = sorted(k for k in custom if k not in base)
        key = unknown[0] if unknown else next(iter(custom))
        close = difflib.get_close_matches(key, [*OWN_KEYS, *base], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see `yolo cfg` for Ultralytics' train arguments"
        raise ParameterError(f"unknown hyperparameter {key!r}{hint}") from None
    finally:
        LOGGER.setLevel(level)


def _check_ultralytics_types(args: dict[str, Any]) -> dict[str, Any]:
    """Ultralytics' own type and range checks, as one line."""
    from ultralytics.cfg import check_cfg

    checked = dict(args)
    try:
        check_cfg(checked)
    except (TypeError, ValueError) as exc:
        raise ParameterError(" ".join(str(exc).split())) from None
    return checked


def _default_checkpoint_dir() -> Path:
    return Path("/opt/ml/checkpoints") if Path("/opt/ml").is_dir() else Path("runs/yolopipe/checkpoints")


def resolve_config(
    argv: Sequence[str],
    environ: Mapping[str, str],
    machine: Machine | None = None,
) -> TrainConfig:
    """The full configuration of a run; raises ParameterError / DatasetRejected with a one-line fix."""
    hps = merge_hyperparameters(argv, environ)
    variant = str(hps.pop("variant", None) or "n").lower()
    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    integrations_raw = hps.pop("integrations", None) or ""
    if isinstance(integrations_raw, list):
        integrations_raw = ",".join(str(x) for x in integrations_raw)
    integrations = tuple(sorted({x.strip().lower() for x in str(integrations_raw).split(",") if x.strip()}))
    for name in integrations:
        if name not in INTEGRATIONS:
            raise ParameterError(f"unknown integration {name!r}; choose from {', '.join(INTEGRATIONS)}")

    dataset = hps.pop("dataset", None) or environ.get("SM_CHANNEL_DATASET")
    if not dataset:
        raise ParameterError("no dataset: set SM_CHANNEL_DATASET (the `dataset` channel) or pass --dataset DIR")
    dataset_dir = Path(str(dataset))
    weights_value = str(hps.pop("weights", None) or "")
    model_dir = Path(str(hps.pop("model_dir", None) or environ.get("SM_MODEL_DIR") or "runs/yolopipe/model"))
    output_dir = Path(str(hps.pop("output_data_dir", None) or environ.get("SM_OUTPUT_DATA_DIR")
                          or "runs/yolopipe/output"))
    checkpoint_dir = Path(str(hps.pop("checkpoint_dir", None) or environ.get("SM_CHECKPOINT_DIR")
                              or _default_checkpoint_dir()))

    mlflow_tracking_uri = str(hps.pop("mlflow_tracking_uri", None) or "") or None
    mlflow_experiment = str(hps.pop("mlflow_experiment", None) or "") or None
    train_args = _check_ultralytics_types(hps)
    data = read_data_yaml(dataset_dir)  # refuses a bad data.yaml before anything else happens
    for split, entries in data.splits.items():
        for entry in entries:
            if not (dataset_dir / entry).exists():
                raise DatasetRejected([f"data.yaml: `{split}: {entry}` is not in the dataset; upload it or fix it"])
    weights = resolve_weights(weights_value, variant, Path(tempfile.gettempdir()) / "yolopipe-weights", environ)
    weights_source = weights_value or ("channel weights" if environ.get("SM_CHANNEL_WEIGHTS") else "pretrained")

    from ultralytics.cfg import DEFAULT_CFG_DICT

    machine = machine or detect_machine()
    world = distributed.detect(environ)
    imgsz = train_args.get("imgsz") or 640
    imgsz = max(imgsz) if isinstance(imgsz, list) else int(imgsz)
    train_images = count_images(dataset_dir, data.splits.get("train", []))
    chosen: dict[str, Any] = {}
    batch = train_args.get("batch")
    ranks = world.size if world.distributed else machine.gpu_count  # processes the global batch is split over
    if batch is None or batch == -1 or (ranks > 1 and isinstance(batch, float) and batch < 1):
        chosen["batch"] = distributed.global_batch(fast_batch(machine, variant, imgsz, train_images),
                                                   machine.gpu_count, world)
    elif isinstance(batch, int) and batch >= 1 and fit_batch_to_gpus(batch, ranks) != batch:
        chosen["batch"] = fit_batch_to_gpus(batch, ranks)
    if train_args.get("workers") is None:
        chosen["workers"] = fast_workers(machine)
    if "cache" not in train_args:
        all_images = train_images + sum(count_images(dataset_dir, data.splits.get(s, [])) for s in ("val",))
        chosen["cache"] = "ram" if cache_fits(machine, all_images, imgsz) else False
    if train_args.get("device") is None:
        chosen["device"] = ",".join(str(i) for i in range(machine.gpu_count)) if machine.gpus else "cpu"
    lr_given = "lr0" in train_args and train_args["lr0"] != DEFAULT_CFG_DICT["lr0"]
    if lr_given and str(train_args.get("optimizer", "")).lower() == "auto":
        raise ParameterError("optimizer=auto ignores lr0 (it chooses its own rate); choose an optimizer such as "
                             "SGD or AdamW, or leave lr0 at its default")
    if lr_given and "optimizer" not in train_args:
        # optimizer=auto ignores lr0 (it picks AdamW and its own rate for short runs): a learning
        # rate the user asked for takes effect with SGD, auto's choice for long runs.
        chosen["optimizer"] = "SGD"
    train_args.update(chosen)
    return TrainConfig(
        variant=variant,
        dataset_dir=dataset_dir,
        weights=weights,
        model_dir=model_dir,
        output_dir=output_dir,
        checkpoint_dir=checkpoint_dir,
        integrations=integrations,
        train_args=train_args,
        machine_defaults=chosen,
        weights_source=weights_source,
        mlflow_tracking_uri=mlflow_tracking_uri,
        mlflow_experiment=mlflow_experiment,
    )


# --------------------------------------------------------------------------- resume


def run_fingerprint(config: TrainConfig) -> str:
    """What must match for a checkpoint to be resumed: the data, the model and the training settings."""
    data_yaml = (config.dataset_dir / "data.yaml").read_bytes()
    doc = {
        "variant": config.variant,
        "weights": [config.weights_source, config.weights.name, config.weights.stat().st_size]
        if config.weights else None,
        "data_yaml": hashlib.sha256(data_yaml).hexdigest(),
        "args": {k: v for k, v in sorted(config.train_args.items()) if k not in RESUME_MAY_CHANGE},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def find_resumable(checkpoint_dir: Path, fingerprint: str) -> tuple[Path | None, str]:
    """The last.pt of an unfinished run of this configuration, or None and why not."""
    run_dir = checkpoint_dir / RUN_NAME
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        return None, "no checkpoint"
    marker = checkpoint_dir / RUN_MARKER
    try:
        recorded = json.loads(marker.read_text()).get("fingerprint")
    except (OSError, ValueError):
        recorded = None
    if recorded != fingerprint:
        return None, "the checkpoint is from another dataset or other settings"
    from ultralytics.utils.patches import torch_load

    try:
        ckpt = torch_load(last, map_location="cpu")
    except Exception as exc:  # a checkpoint cut off mid-write by the interruption
        return None, f"the checkpoint cannot be read ({type(exc).__name__})"
    epoch = ckpt.get("epoch", -1) if isinstance(ckpt, dict) else -1
    planned = int((ckpt.get("train_args") or {}).get("epochs", 0)) if isinstance(ckpt, dict) else 0
    if epoch < 0 or ckpt.get("optimizer") is None or epoch + 1 >= planned:
        return None, "the run there is finished"
    return last, f"resuming after epoch {epoch + 1} of {planned}"


# --------------------------------------------------------------------------- progress


class EpochReporter:
    """Times each epoch's training pass and prints one parseable line per epoch (rank 0 only).

    Picklable: Ultralytics' DDP workers receive the callbacks by pickling.
    """

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.started = 0.0
        self.train_seconds = 0.0
        self.pending = False  # a training pass was timed and not yet reported

    @staticmethod
    def _is_main() -> bool:
        return int(os.environ.get("RANK", "-1")) in (-1, 0)

    def on_train_epoch_start(self, trainer: Any) -> None:
        _sync_cuda(trainer)
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any) -> None:
        _sync_cuda(trainer)
        self.train_seconds = time.perf_counter() - self.started
        self.pending = True

    def on_fit_epoch_end(self, trainer: Any) -> None:
        # Ultralytics fires this once more after the final validation: report each epoch once.
        if not self._is_main() or not self.pending:
            return
        self.pending = False
        images = len(trainer.train_loader.dataset)
        losses = trainer.label_loss_items(trainer.tloss, prefix="train")
        metrics = trainer.metrics or {}
        record = {
            "epoch": trainer.epoch + 1,
            "epochs": trainer.epochs,
            "train_seconds": round(self.train_seconds, 3),
            "images_per_second": round(images / self.train_seconds, 1) if self.train_seconds else None,
            **{k.split("/")[-1]: round(float(v), 5) for k, v in losses.items()},
            "map50": round(float(metrics.get("metrics/mAP50(B)", 0.0)), 5),
            "map50_95": round(float(metrics.get("metrics/mAP50-95(B)", 0.0)), 5),
            # The epoch best.pt holds (Ultralytics' early stopper tracks it, 1-based, across a resume too).
            "best_epoch": int(getattr(getattr(trainer, "stopper", None), "best_epoch", trainer.epoch + 1)),
            "time": time.time(),
        }
        with self.log_file.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        shown = " ".join(f"{k}={v}" for k, v in record.items() if k not in ("epoch", "epochs", "time"))
        print(f"epoch {record['epoch']}/{record['epochs']} {shown}", flush=True)


def _sync_cuda(trainer: Any) -> None:
    device = getattr(trainer, "device", None)
    if device is not None and getattr(device, "type", "") == "cuda":
        import torch

        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- training


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def _final_metrics(metrics: Any) -> dict[str, float]:
    values = getattr(metrics, "results_dict", metrics) or {}
    keys = {"precision": "metrics/precision(B)", "recall": "metrics/recall(B)",
            "map50": "metrics/mAP50(B)", "map50_95": "metrics/mAP50-95(B)", "fitness": "fitness"}
    return {name: round(float(values[key]), 6) for name, key in keys.items() if key in values}


def train(config: TrainConfig) -> dict[str, Any]:
    """Train (or resume), then write the model dir and the plots. Returns metrics.json's content."""
    seed_everything(int(config.train_args.get("seed") or 0))
    configure_settings((*config.integrations, "mlflow") if config.mlflow_tracking_uri else config.integrations)
    if config.mlflow_tracking_uri:
        _start_mlflow_run(config)
    import ultralytics
    from ultralytics import YOLO

    world = distributed.detect(os.environ)
    if world.distributed:
        distributed.check_ultralytics(ultralytics.__version__)
        distributed.start(world)
        print(f"yolopipe: rank {world.rank} of {world.describe()} processes; rank 0 writes the model "
              "and the checkpoints", flush=True)
    for key, value in config.machine_defaults.items():
        why = "lr0 was set and optimizer=auto ignores it" if key == "optimizer" else "fast default for this machine"
        print(f"yolopipe: {key}={value} ({why})", flush=True)
    start = (f"{config.weights_source} ({config.weights})" if config.weights
             else f"scratch (yolo11{config.variant}.yaml)")
    print(f"yolopipe: weights: {start}", flush=True)
    config.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run_dir = (config.checkpoint_dir / RUN_NAME).resolve()
    fingerprint = run_fingerprint(config)
    # Rank 0 decides from its checkpoint dir; every instance has its own copy of it (SageMaker syncs each).
    last, why = find_resumable(config.checkpoint_dir, fingerprint) if world.is_main else (None, "")
    if world.is_main and last is None and run_dir.exists():
        print(f"yolopipe: starting a new run ({why}); clearing {run_dir}", flush=True)
        shutil.rmtree(run_dir)
    elif last is not None:
        print(f"yolopipe: {why}", flush=True)
    processes = distributed.processes(world, config.train_args.get("device"))
    resumed_batch = _resume_batch(config.checkpoint_dir, processes) if last is not None else None
    if world.is_main:
        (config.checkpoint_dir / RUN_MARKER).write_text(json.dumps(
            {"fingerprint": fingerprint, "processes": processes, "config": config.as_dict()}, default=str, indent=1))
    # One consistent checkpoint: every rank resumes from rank 0's bytes, whatever its own copy holds.
    last = distributed.share_file(world, last, Path(tempfile.gettempdir()) / f"yolopipe-resume-{os.getpid()}")
    resumed_batch = distributed.broadcast(world, resumed_batch)
    resumed_from = None
    if last is not None:
        resumed_from = _completed_epochs(run_dir)

    with tempfile.TemporaryDirectory(prefix="yolopipe-data-") as data_tmp:
        data_yaml, _, _ = write_clean_data_yaml(config.dataset_dir, Path(data_tmp))
        run_dir.mkdir(parents=True, exist_ok=True)
        reporter = EpochReporter(run_dir / EPOCH_LOG)
        if last is not None:
            model = YOLO(str(last))
            run_args: dict[str, Any] = {
                "resume": True,
                "data": str(data_yaml),
                "save_dir": str(run_dir),
                **{k: v for k, v in config.train_args.items() if k in RESUME_MAY_CHANGE},
            }
            if resumed_batch is not None:
                run_args["batch"] = resumed_batch
        else:
            model = YOLO(str(config.weights) if config.weights else f"yolo11{config.variant}.yaml")
            run_args = {
                **config.train_args,
                "data": str(data_yaml),
                "project": str(run_dir.parent),
                "name": run_dir.name,
                "exist_ok": True,
            }
        for event in ("on_train_epoch_start", "on_train_epoch_end", "on_fit_epoch_end"):
            model.add_callback(event, getattr(reporter, event))
        model.train(trainer=distributed.distributed_trainer(offline_trainer_class(), world), **run_args)
        final = _final_metrics(model.metrics)

    if not world.is_main:
        distributed.stop(world)
        print(f"done rank {world.rank}: rank 0 writes the model dir", flush=True)
        return {}
    metrics = _write_outputs(config, run_dir, final, resumed_from)
    distributed.stop(world)
    return metrics


def _resume_batch(checkpoint_dir: Path, processes: int) -> int | None:
    """The batch to resume with when the checkpoint was trained by another number of processes (said in
    the log: the global batch stays, re-split), else None (the run's own batch)."""
    try:
        recorded = json.loads((checkpoint_dir / RUN_MARKER).read_text())
        recorded_batch = int(recorded["config"]["train_args"]["batch"])
        recorded_processes = int(recorded.get("processes") or distributed.processes(
            distributed.World(), recorded["config"]["train_args"].get("device")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    batch, change = distributed.resume_batch(recorded_processes, recorded_batch, processes)
    if change is None:
        return None
    print(f"yolopipe: {change}", flush=True)
    return batch


def _start_mlflow_run(config: TrainConfig) -> None:
    """The run Ultralytics' MLflow callback logs to, named after the training job (mlflow_tracking.py)."""
    from mlflow_tracking import start_training_run

    job = os.environ.get("TRAINING_JOB_NAME") or "yolopipe-train"
    tags = {"yolopipe.training_job": job, "yolopipe.dataset_version": os.environ.get("YOLOPIPE_DATASET_VERSION", "")}
    start_training_run(str(config.mlflow_tracking_uri), experiment=config.mlflow_experiment, run_name=job,
                       tags={k: v for k, v in tags.items() if v}, model_dir=config.model_dir)


def _completed_epochs(run_dir: Path) -> int:
    results = run_dir / "results.csv"
    if not results.is_file():
        return 0
    return max(0, len(results.read_text().strip().splitlines()) - 1)


def _write_outputs(config: TrainConfig, run_dir: Path, final: dict[str, float], resumed_from: int | None
                   ) -> dict[str, Any]:
    config.model_dir.mkdir(parents=True, exist_ok=True)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        source = run_dir / "weights" / name if name.endswith(".pt") else run_dir / name
        if source.is_file():
            shutil.copy2(source, config.model_dir / name)
    for plot in sorted(run_dir.glob("*.png")) + sorted(run_dir.glob("*.jpg")):
        shutil.copy2(plot, config.output_dir / plot.name)
    add_serving_code(config.model_dir)
    ultralytics_args = yaml.safe_load((run_dir / "args.yaml").read_text()) if (run_dir / "args.yaml").is_file() else {}
    args_doc = {"yolopipe": config.as_dict(), **(ultralytics_args or {})}
    (config.model_dir / "args.yaml").write_text(yaml.safe_dump(args_doc, sort_keys=False))

    epochs = []
    log = run_dir / EPOCH_LOG
    if log.is_file():
        epochs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    speeds = [e["images_per_second"] for e in epochs[1:] if e.get("images_per_second")] or [
        e["images_per_second"] for e in epochs if e.get("images_per_second")]
    metrics = {
        **final,
        "epochs_completed": _completed_epochs(run_dir),
        "resumed_from_epoch": resumed_from,
        "train_images_per_second": round(statistics.median(speeds), 1) if speeds else None,
        "variant": config.variant,
        "settings": {k: config.train_args.get(k) for k in ("batch", "workers", "cache", "device", "imgsz")},
        "epochs": epochs,
    }
    (config.model_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print("done " + " ".join(f"{k}={final[k]}" for k in ("map50_95", "map50", "precision", "recall") if k in final)
          + f" model_dir={config.model_dir}", flush=True)
    return metrics


def add_serving_code(model_dir: Path) -> None:
    """serving/ (inference.py, requirements.txt) into model_dir/code: model.tar.gz then serves as it is
    in SageMaker's PyTorch inference container, which runs code/inference.py."""
    target = model_dir / SERVING_CODE_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in SERVING_FILES:
        shutil.copy2(Path(__file__).resolve().parent / "serving" / name, target / name)


def _report_failure(message: str) -> None:
    """One line on stderr, and in SageMaker's failure file (shown as the job's FailureReason)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    output_dir = os.environ.get("SM_OUTPUT_DIR") or ("/opt/ml/output" if Path("/opt/ml/output").is_dir() else "")
    if output_dir:
        with contextlib.suppress(OSError):
            (Path(output_dir) / "failure").write_text(message[:1000] + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Resolve the settings, train, write the outputs. 0 on success, 2 when the input is refused."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        prepare_environment()
        config = resolve_config(args, os.environ)
        train(config)
    except YolopipeError as exc:
        _report_failure(str(exc))
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
