"""The evaluation.json contract: written by training_code/evaluate.py, read by the pipeline's
CheckQuality step (through a PropertyFile), the notifier and the CLI. One set of constants."""

from __future__ import annotations

from typing import Any

#: File name the processing job writes in its output folder.
EVALUATION_FILE = "evaluation.json"
#: Name of the PropertyFile / processing output in the pipeline definition.
EVALUATION_PROPERTY_FILE = "EvaluationReport"
EVALUATION_OUTPUT_NAME = "evaluation"

#: The four headline metrics, in display order, with their human labels.
METRICS: dict[str, str] = {
    "map50_95": "mAP50-95",
    "map50": "mAP50",
    "precision": "precision",
    "recall": "recall",
}

#: JSON path (JsonGet / JMESPath) of the metric the quality gate compares.
QUALITY_METRIC = "map50_95"
QUALITY_METRIC_JSON_PATH = f"metrics.{QUALITY_METRIC}"


def metric_json_path(metric: str) -> str:
    """JSON path of a headline metric inside evaluation.json (`metrics.<name>`)."""
    if metric not in METRICS:
        raise KeyError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    return f"metrics.{metric}"


def headline_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The headline metrics of an evaluation.json document, in display order (missing ones skipped)."""
    metrics = evaluation.get("metrics") or {}
    return {name: float(metrics[name]) for name in METRICS if name in metrics}


# --- champion / challenger: the candidate against the group's latest approved model -------------
#
# evaluation.json also carries (since MinImprovement; older documents have neither key):
#   "baseline":   {"model_package_arn", "version", "metrics": {...}} or null (no approved model,
#                 or it could not be read: then "comparison.baseline_error" says why)
#   "comparison": {"improvement": candidate map50_95 - baseline map50_95 (NO_BASELINE_IMPROVEMENT
#                  without a baseline, so that only the fixed gate decides),
#                  "verdict": one line for people ("0.612 vs approved v3 0.587: +0.025, registered"),
#                  "summary": the same in CreateModelPackage's metadata alphabet ("vs v3: +0.025")}

BASELINE_KEY = "baseline"
COMPARISON_KEY = "comparison"
#: The MLflow run the evaluation was logged to, when tracking was on (training_code/mlflow_tracking.py):
#: {"tracking_uri", "experiment_id", "run_id", "run_name", "url"}; `url` is null for a SageMaker MLflow
#: tracking server (its UI opens through SageMaker Studio). Null or absent: not tracked.
MLFLOW_KEY = "mlflow"
#: JSON paths the CheckQuality / Fail / Register steps read with JsonGet.
IMPROVEMENT_JSON_PATH = f"{COMPARISON_KEY}.improvement"
VERDICT_JSON_PATH = f"{COMPARISON_KEY}.verdict"
SUMMARY_JSON_PATH = f"{COMPARISON_KEY}.summary"
#: Every JSON path a pipeline step may read from evaluation.json (the rendered definition is checked
#: against it): the headline metrics and the comparison.
JSON_PATHS: frozenset[str] = frozenset(
    {f"metrics.{name}" for name in METRICS} | {IMPROVEMENT_JSON_PATH, VERDICT_JSON_PATH, SUMMARY_JSON_PATH}
)
#: The improvement written when there is no baseline to beat: the largest possible mAP gain, so
#: that `improvement >= MinImprovement` holds for every allowed MinImprovement (at most 1).
NO_BASELINE_IMPROVEMENT = 1.0
#: CustomerMetadataProperties values: `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, at most 256 characters
#: (botocore's model of CreateModelPackage).
METADATA_VALUE_MAX = 256
_METADATA_ALLOWED = set("_.:/=+-@")


def metadata_safe(text: str) -> str:
    """`text` in the metadata alphabet: letters, spaces, digits and `_.:/=+-@`; others become spaces."""
    import unicodedata

    def allowed(char: str) -> bool:
        return char in _METADATA_ALLOWED or unicodedata.category(char)[0] in "LNZ"

    cleaned = "".join(char if allowed(char) else " " for char in text)
    return " ".join(cleaned.split())[:METADATA_VALUE_MAX]


def _num(value: float) -> str:
    return f"{value:.3f}"


def compare_with_baseline(
    candidate: float,
    baseline: dict[str, Any] | None,
    *,
    baseline_error: str | None = None,
    min_map50_95: float | None = None,
    min_improvement: float | None = None,
) -> dict[str, Any]:
    """The `comparison` of evaluation.json: the candidate's map50_95 against the baseline's.

    `baseline` is the document's `baseline` (None: no approved model, or `baseline_error` says
    why it could not be read). With the thresholds given, the verdict ends with what the
    CheckQuality step will decide ("registered" / "not registered"); it compares the same rounded
    numbers the step does.
    """
    candidate = round(float(candidate), 6)
    gate_ok = min_map50_95 is None or candidate >= min_map50_95
    fixed_gate = "" if gate_ok else f"{_num(candidate)} < MinMap50_95 {min_map50_95}"
    if baseline is None:
        improvement = NO_BASELINE_IMPROVEMENT
        if baseline_error:
            head, summary = f"approved baseline unreadable ({baseline_error}): fixed gate only", "baseline unreadable"
        else:
            head, summary = "first model: no approved baseline", "first model"
        beats = True
    else:
        reference = round(float((baseline.get("metrics") or {}).get(QUALITY_METRIC, 0.0)), 6)
        improvement = round(candidate - reference, 6)
        version = baseline.get("version")
        beats = min_improvement is None or improvement >= min_improvement
        relation = "vs" if improvement >= 0 or beats else "<"
        head = f"{_num(candidate)} {relation} approved v{version} {_num(reference)}: {improvement:+.3f}"
        summary = f"vs v{version}: {improvement:+.3f}"
        if not beats and min_improvement is not None and min_improvement > 0 and improvement >= 0:
            head += f" < MinImprovement {min_improvement}"
    if min_map50_95 is None and min_improvement is None:
        verdict = head
    elif not gate_ok:
        verdict = f"{fixed_gate}: not registered" + ("" if baseline is None else f"; {head}")
    else:
        verdict = f"{head}, {'registered' if beats else 'not registered'}"
    comparison: dict[str, Any] = {"improvement": improvement, "verdict": verdict, "summary": metadata_safe(summary)}
    if baseline_error:
        comparison["baseline_error"] = baseline_error
    return comparison


#: Longest verdict a reader shows (the document comes from a job: bound what a message carries).
VERDICT_MAX = 300


def verdict(evaluation: dict[str, Any]) -> str | None:
    """The comparison's one-line verdict, or None for a document written before comparisons."""
    comparison = evaluation.get(COMPARISON_KEY)
    if isinstance(comparison, dict) and isinstance(comparison.get("verdict"), str):
        return str(comparison["verdict"])[:VERDICT_MAX]
    return None


def mlflow_line(evaluation: dict[str, Any]) -> str | None:
    """Where the execution's MLflow run is, in one line (None when it was not tracked):
    `MLflow run a1b2c3 (run id 9f...): http://host:5000/#/experiments/1/runs/9f...`."""
    run = evaluation.get(MLFLOW_KEY)
    if not isinstance(run, dict) or not run.get("run_id"):
        return None
    where = run.get("url") or f"{run.get('tracking_uri')} (open it from SageMaker Studio's MLflow)"
    return f"MLflow run {run.get('run_name')} (run id {run.get('run_id')}): {where}"[:MLFLOW_LINE_MAX]


#: The MLflow line's bound (evaluation.json is the job's output: never trusted to be small).
MLFLOW_LINE_MAX = 600
