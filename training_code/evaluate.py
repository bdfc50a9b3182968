"""Entry point of the SageMaker processing job: score a trained model, write evaluation.json.

    python evaluate.py --model /opt/ml/processing/model --data /opt/ml/processing/dataset \
        --output /opt/ml/processing/evaluation

`--model` is a model.tar.gz as the training job writes it, a folder (best.pt preferred, then
last.pt) or a .pt. `--data` is the dataset folder (data.yaml at its root, checked like the
training job's). The test split is scored, the val split when there is none (recorded in
`split`). The evaluation.json shape is the shared contract of yolopipe_shared.evaluation:

    {"metrics": {"map50", "map50_95", "precision", "recall"},
     "per_class": [{"name", "map50", "map50_95", "precision", "recall", "instances"}],
     "split": "test"|"val", "images": N, "instances": N, "model": {...},
     "plots": ["BoxPR_curve.png", "confusion_matrix.png", ...],  (beside it in --output)
     "baseline": {"model_package_arn", "version", "metrics": {...}} | null,
     "comparison": {"improvement", "verdict", "summary"},
     "mlflow": {"tracking_uri", "experiment_id", "run_id", "run_name", "url"} | null}

Champion / challenger: with `--model-package-group NAME` the group's latest Approved model
package is downloaded (its ModelDataUrl) and scored on the same split with the same settings;
`comparison.improvement` is the candidate's map50_95 minus the baseline's, which the pipeline's
CheckQuality step holds against MinImprovement. No approved package, or one that cannot be read
(no permission, artifact gone, other classes): `baseline` is null, the verdict says why and the
improvement is NO_BASELINE_IMPROVEMENT, so only the fixed gate (MinMap50_95) decides. The job
never fails for the baseline. Without `--model-package-group` no AWS call is made.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, and yolopipe_shared in the tarball

from dataset_yaml import count_images, write_clean_data_yaml  # noqa: E402
from yolo_offline import configure_settings, prepare_environment  # noqa: E402

from yolopipe_shared.errors import YolopipeError  # noqa: E402
from yolopipe_shared.evaluation import (  # noqa: E402
    BASELINE_KEY,
    COMPARISON_KEY,
    EVALUATION_FILE,
    METRICS,
    MLFLOW_KEY,
    QUALITY_METRIC,
    compare_with_baseline,
)

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
    parser.add_argument("--model-package-group", default=None,
                        help="compare with this group's latest Approved model package (default: no baseline)")
    parser.add_argument("--min-map50-95", type=float, default=None,
                        help="the pipeline's MinMap50_95, for the verdict's wording only")
    parser.add_argument("--min-improvement", type=float, default=None,
                        help="the pipeline's MinImprovement, for the verdict's wording only")
    parser.add_argument("--mlflow-tracking-uri", default="",
                        help="log the evaluation to the MLflow run that trained the model (default: off)")
    parser.add_argument("--mlflow-experiment", default=None, help="MLflow experiment (default: the training's)")
    parser.add_argument("--mlflow-run-name", default=None, help="name the run after this (the pipeline execution)")
    parser.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                        help="write the curves and confusion matrices beside evaluation.json (default: yes)")
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


class BaselineUnavailable(YolopipeError):
    """The approved model package exists but cannot be used as a baseline; the message says why."""


@dataclass(frozen=True)
class Baseline:
    """The model package group's latest approved model."""

    model_package_arn: str
    version: int | None
    model_data_url: str


def find_approved_baseline(sagemaker: Any, group: str) -> Baseline | None:
    """The group's latest Approved model package (highest version), or None when none is approved."""
    answer = sagemaker.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                           SortBy="CreationTime", SortOrder="Descending", MaxResults=100)
    summaries = answer.get("ModelPackageSummaryList") or []
    if not summaries:
        return None
    latest = max(summaries, key=lambda item: (item.get("ModelPackageVersion") or 0, str(item.get("CreationTime"))))
    arn = str(latest["ModelPackageArn"])
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    url = str(containers[0].get("ModelDataUrl") or "") if containers else ""
    if not url.startswith("s3://"):
        raise BaselineUnavailable(f"approved v{latest.get('ModelPackageVersion')} has no S3 ModelDataUrl")
    return Baseline(arn, latest.get("ModelPackageVersion"), url)


def download_baseline(s3: Any, baseline: Baseline, target: Path) -> Path:
    """Download the baseline's model.tar.gz into `target`; its path."""
    bucket, _, key = baseline.model_data_url.removeprefix("s3://").partition("/")
    target.mkdir(parents=True, exist_ok=True)
    path = target / (key.rsplit("/", 1)[-1] or "model.tar.gz")
    s3.download_file(bucket, key, str(path))
    return path


def _aws_clients() -> tuple[Any, Any]:
    import boto3

    session = boto3.Session()
    return session.client("sagemaker"), session.client("s3")


def _why(exc: Exception) -> str:
    """A short reason for the verdict: the AWS error code, or the domain error's message."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and (response.get("Error") or {}).get("Code"):
        return str(response["Error"]["Code"])
    if isinstance(exc, YolopipeError):
        return str(exc)
    return type(exc).__name__


def _score(weights: Path, data_yaml: Path, names: list[str], *, size: int, batch: int, device: str | None,
           runs: Path, plots: bool = False) -> tuple[dict[str, float], list[dict[str, Any]], list[int]]:
    """Validate one model: headline metrics, per-class metrics and instances per class (with `plots`,
    Ultralytics' curves, confusion matrices and batch images in `runs/val`)."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    result = model.val(data=str(data_yaml), split="val", imgsz=size, batch=batch, device=device, plots=plots,
                       save_json=False, project=str(runs), name="val", exist_ok=True, verbose=False)
    box = result.box
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
    return {name: round(headline[name], 6) for name in METRICS}, per_class, instances


def _keep_plots(val_dir: Path, output_dir: Path) -> list[str]:
    """The candidate's plots (PR/P/R/F1 curves, confusion matrices, labelled and predicted batches) beside
    evaluation.json, so the evaluation output holds them; their names."""
    import shutil

    kept = []
    for plot in sorted([*val_dir.glob("*.png"), *val_dir.glob("*.jpg")]):
        shutil.copy2(plot, output_dir / plot.name)
        kept.append(plot.name)
    return kept


def _model_names(weights: Path) -> list[str]:
    from ultralytics import YOLO

    names = YOLO(str(weights)).names
    return [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def evaluate_baseline(baseline: Baseline, s3: Any, data_yaml: Path, names: list[str], *, size: int, batch: int,
                      device: str | None, scratch: Path) -> dict[str, Any]:
    """Score the approved model like the candidate; its `baseline` entry of evaluation.json."""
    archive = download_baseline(s3, baseline, scratch / "download")
    weights = find_model(archive, scratch / "model")
    if _model_names(weights) != list(names):
        raise BaselineUnavailable(f"approved v{baseline.version} was trained on other classes")
    metrics, _, _ = _score(weights, data_yaml, names, size=size, batch=batch, device=device, runs=scratch / "runs")
    return {"model_package_arn": baseline.model_package_arn, "version": baseline.version, "metrics": metrics}


def evaluate(model_path: Path, dataset_dir: Path, output_dir: Path, *, imgsz: int | None = None, batch: int = 16,
             device: str | None = None, model_package_group: str | None = None,
             min_map50_95: float | None = None, min_improvement: float | None = None,
             clients: tuple[Any, Any] | None = None, mlflow_tracking_uri: str | None = None,
             mlflow_experiment: str | None = None, mlflow_run_name: str | None = None,
             plots: bool = True) -> dict[str, Any]:
    """Validate `model_path` on the dataset's test split (else val) and, with `model_package_group`,
    the group's latest approved model too; write and return evaluation.json.

    `clients` is (sagemaker, s3) for the baseline lookup; default: boto3's from the environment.
    With `mlflow_tracking_uri`, the metrics and plots also go to the model's MLflow run, named
    `mlflow_run_name` (mlflow_tracking.py); evaluation.json's `mlflow` entry links to it.
    """
    configure_settings()
    from ultralytics import YOLO, __version__

    with tempfile.TemporaryDirectory(prefix="yolopipe-eval-") as tmp:
        scratch = Path(tmp)
        weights = find_model(model_path, scratch / "model")
        data_yaml, parsed, split = write_clean_data_yaml(dataset_dir, scratch / "data", evaluation=True)
        train_args = (YOLO(str(weights)).ckpt or {}).get("train_args") or {}
        size = imgsz or int(train_args.get("imgsz") or 640)
        names = parsed.names
        metrics, per_class, instances = _score(weights, data_yaml, names, size=size, batch=batch, device=device,
                                               runs=scratch / "runs", plots=plots)
        output_dir.mkdir(parents=True, exist_ok=True)
        kept = _keep_plots(scratch / "runs" / "val", output_dir) if plots else []
        baseline_doc: dict[str, Any] | None = None
        baseline_error: str | None = None
        if model_package_group:
            try:
                sagemaker, s3 = clients or _aws_clients()
                found = find_approved_baseline(sagemaker, model_package_group)
                if found is not None:
                    baseline_doc = evaluate_baseline(found, s3, data_yaml, names, size=size, batch=batch,
                                                     device=device, scratch=scratch / "baseline")
            except Exception as exc:  # noqa: BLE001 (any failure to read the baseline: fixed gate only)
                baseline_error = _why(exc)
                print(f"evaluation: no baseline ({type(exc).__name__}: {exc}); the fixed gate decides alone",
                      file=sys.stderr, flush=True)
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
            "plots": kept,
            BASELINE_KEY: baseline_doc,
            COMPARISON_KEY: compare_with_baseline(metrics[QUALITY_METRIC], baseline_doc,
                                                  baseline_error=baseline_error, min_map50_95=min_map50_95,
                                                  min_improvement=min_improvement),
            MLFLOW_KEY: None,
        }
        if mlflow_tracking_uri:
            from mlflow_tracking import log_evaluation

            report[MLFLOW_KEY] = log_evaluation(
                mlflow_tracking_uri, model_dir=weights.parent, experiment=mlflow_experiment,
                execution=mlflow_run_name, report=report, plots=sorted((scratch / "runs" / "val").glob("*.png")))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=1))
    summary = " ".join(f"{k}={v}" for k, v in metrics.items())
    print(f"evaluation split={split} images={report['images']} {summary} -> {output_dir / EVALUATION_FILE}", flush=True)
    print(f"evaluation verdict: {report[COMPARISON_KEY]['verdict']}", flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Score the model; 0 on success, 2 when the input is refused (one line on stderr)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        prepare_environment()
        evaluate(args.model, args.data, args.output, imgsz=args.imgsz, batch=args.batch, device=args.device,
                 model_package_group=args.model_package_group, min_map50_95=args.min_map50_95,
                 min_improvement=args.min_improvement, mlflow_tracking_uri=args.mlflow_tracking_uri or None,
                 mlflow_experiment=args.mlflow_experiment, mlflow_run_name=args.mlflow_run_name, plots=args.plots)
    except YolopipeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        failure_dir = os.environ.get("SM_OUTPUT_DIR")
        if failure_dir and Path(failure_dir).is_dir():
            (Path(failure_dir) / "failure").write_text(str(exc)[:1000] + "\n")
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
