"""`yolopipe local run|serve ...` and `python -m yolopipe.local ...`: which of the two."""

from __future__ import annotations

import sys

from yolopipe_shared import parameters
from yolopipe_shared.errors import ParameterError, YolopipeError

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
    parser.add_argument("--imgsz", "--image-size", type=int)
    parser.add_argument("--model-variant", choices=parameters.BY_NAME["ModelVariant"].choices)
    parser.add_argument("--min-map50-95", type=float)
    parser.add_argument("--weights", help="pretrained, scratch, s3://.../*.pt or a model package ARN (default: "
                                          "the official weights when at hand, else scratch, said in the output)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="any Ultralytics train setting or pipeline parameter by name, repeatable: "
                             "--set patience=20 --set optimizer=AdamW")
    parser.add_argument("--output", default="runs", help="where runs/<execution>/ goes (default: runs)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before the execution is stopped")
    parser.add_argument("--mlflow-uri", metavar="URI", help="track the run in MLflow at this http(s) tracking URI "
                        "(the stack's MlflowTrackingUri; default: off)")
    args = parser.parse_args(argv)
    overrides: dict[str, str] = {"Weights": args.weights} if args.weights else {}
    for item in args.settings:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            print(f"error: --set {item!r}: write KEY=VALUE, e.g. --set patience=20", file=sys.stderr)
            return 2
        overrides[key.strip()] = value
    if args.mlflow_uri:
        overrides["MlflowTrackingUri"] = args.mlflow_uri
    try:
        result = run_local(args.dataset, name=args.name, epochs=args.epochs, imgsz=args.imgsz,
                           model_variant=args.model_variant, min_map50_95=args.min_map50_95, overrides=overrides,
                           output_dir=args.output, timeout_s=args.timeout)
    except ParameterError as exc:  # a bad --epochs / --imgsz value: usage, as everywhere in the CLI
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except YolopipeError as exc:  # the run itself failed (dataset refused, timeout...): the README's exit 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if result.ok else 1


