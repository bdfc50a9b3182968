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
