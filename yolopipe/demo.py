"""The README's main job, on this machine and without an AWS account: the whole event-driven run.

    python -m yolopipe.demo            # make demo

The local mode (yolopipe.local) on a generated sample dataset: an AWS emulator on 127.0.0.1, the
stack's resources from template.yaml, the pipeline deployed by functions/deploy, the dataset
uploaded (data.yaml last), the S3 event handed to functions/trigger, the started execution run
by the local executor (training_code/train.py and evaluate.py with SageMaker's environment and
paths) through Train -> Evaluate -> CheckQuality -> Register, and functions/notifier's Slack
messages and emails shown as they arrive. About a minute on 2 CPU cores after set-up.
Everything lands in runs/<execution>/ (model, evaluation.json, logs, notifications).

The demo lowers the quality gate (MinMap50_95) to 0 so that a few CPU epochs show the success
path; on AWS the stack's default is 0.5. `yolopipe local run ./my-dataset` does the same for a
dataset of yours, with the stack's defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from yolopipe.local import DEMO_DEFAULTS, LocalRunResult, run_local
from yolopipe.local.runner import SAMPLE_SIZE
from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.parameters import BY_NAME


def run_demo(argv: Sequence[str] | None = None, *, echo: Callable[[str], None] | None = print) -> LocalRunResult:
    """Parse the demo's options and run it; the result is what the summary shows."""
    parser = argparse.ArgumentParser(prog="python -m yolopipe.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=DEMO_DEFAULTS["Epochs"])
    parser.add_argument("--imgsz", type=int, default=DEMO_DEFAULTS["ImageSize"])
    parser.add_argument("--train-images", type=int, default=SAMPLE_SIZE[0])
    parser.add_argument("--min-map50-95", type=float, default=DEMO_DEFAULTS["MinMap50_95"],
                        help=f"the quality gate (demo default {DEMO_DEFAULTS['MinMap50_95']}, "
                             f"stack default {BY_NAME['MinMap50_95'].default})")
    parser.add_argument("--output", default="runs", help="where runs/<execution>/ goes (default: runs)")
    args = parser.parse_args(argv)
    say = echo or (lambda _: None)
    say(f"yolopipe demo: a generated dataset of shapes -> YOLO11n, {args.epochs} epochs at {args.imgsz} px, "
        f"on this machine (no AWS account). Quality gate MinMap50_95={args.min_map50_95} for the demo "
        f"(the stack's default is {BY_NAME['MinMap50_95'].default}).")
    return run_local(None, epochs=args.epochs, imgsz=args.imgsz, min_map50_95=args.min_map50_95,
                     sample_size=(args.train_images, SAMPLE_SIZE[1], SAMPLE_SIZE[2]), output_dir=args.output,
                     echo=echo)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        result = run_demo(argv, echo=lambda line: print(line, flush=True))
    except YolopipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
