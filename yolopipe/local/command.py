"""`yolopipe local run|serve ...` and `python -m yolopipe.local ...`: which of the two."""

from __future__ import annotations

import sys

from yolopipe_shared import parameters
from yolopipe_shared.errors import YolopipeError

from .runner import run_local


def main(argv: list[str] | None = None) -> int:
    """`python -m yolopipe.local [run] [DATASET] [--epochs N] [--imgsz N] [--output DIR]`
    (also `yolopipe local run [DATASET] ...`)."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from .serve import main as serve_main

        return serve_main(argv[1:])
    if argv[:1] == ["run"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="yolopipe local run",
                                     description="Run yolopipe end to end on this machine (no AWS account).")
    parser.add_argument("dataset", nargs="?", help="YOLO dataset folder (data.yaml at its root); default: a sample")
    parser.add_argument("--name", help="dataset name (default: the folder's name)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--imgsz", type=int)
    parser.add_argument("--model-variant", choices=parameters.BY_NAME["ModelVariant"].choices)
    parser.add_argument("--min-map50-95", type=float)
    parser.add_argument("--output", default="runs", help="where runs/<execution>/ goes (default: runs)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before the execution is stopped")
    parser.add_argument("--mlflow-uri", metavar="URI", help="track the run in MLflow at this http(s) tracking URI "
                        "(the stack's MlflowTrackingUri; default: off)")
    args = parser.parse_args(argv)
    try:
        result = run_local(args.dataset, name=args.name, epochs=args.epochs, imgsz=args.imgsz,
                           model_variant=args.model_variant, min_map50_95=args.min_map50_95,
                           overrides={"MlflowTrackingUri": args.mlflow_uri} if args.mlflow_uri else None,
                           output_dir=args.output, timeout_s=args.timeout)
    except YolopipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


