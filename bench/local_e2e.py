"""Benchmark 6: the README's main command (local mode end to end), wall time split by phase.

GIVEN a machine after set-up (.venv installed; one warm-up run renders the pipeline definition
into the local cache, as the first `make demo` does)
WHEN the main command runs: emulator + stack, deploy (functions/deploy), sample dataset, upload
(data.yaml last), trigger, Train, Evaluate, notify (functions/notifier, Slack receiver, inbox)
THEN the table shows seconds per phase, the share of the run spent training and evaluating (the
work a user wants; the rest is the product's orchestration) and the ratio to the 3-minute goal.

    .venv/bin/python bench/local_e2e.py            # the main command's defaults (make demo)
    .venv/bin/python bench/local_e2e.py --quick    # 1 epoch on 8 images: a smoke run, under a minute
    .venv/bin/python bench/local_e2e.py --runs 3   # median of three
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 180.0
PHASES = ("emulator", "deploy", "dataset", "upload", "trigger", "train", "evaluate", "notify")


def _machine() -> str:
    cpus = os.cpu_count() or 0
    return f"{platform.machine()} {cpus} CPU(s), Python {platform.python_version()}, {platform.system()}"


def _one(quick: bool, output: Path) -> dict[str, float]:
    from yolopipe.local import run_local

    kwargs: dict[str, object] = {"output_dir": output, "echo": None}
    if quick:
        kwargs.update(sample_size=(8, 4, 0), epochs=1)
    started = time.perf_counter()
    result = run_local(**kwargs)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"the run ended {result.status}: {result.failed_step}: {result.failure_reason}")
    phases = {name: float(result.phases.get(name, 0.0)) for name in PHASES}
    # train / evaluate overlap the notifier's Executing message; "other" is what no phase covers.
    phases["other"] = max(0.0, wall - sum(phases.values()))
    phases["total"] = wall
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 epoch on 8 images (CI smoke, under a minute)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs (the median is shown)")
    parser.add_argument("--no-warmup", action="store_true", help="time the first run too (render not cached)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-local-e2e-") as tmp:
        out = Path(tmp)
        if not args.no_warmup:
            from yolopipe.local.deployment import build_deploy_function

            build_deploy_function(out / "warmup")  # fills the render cache: part of set-up
        runs = [_one(args.quick, out / f"run{i}") for i in range(max(1, args.runs))]
    figures = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    total = figures["total"]
    work = figures["train"] + figures["evaluate"]
    mode = "quick: 1 epoch, 8+4 images" if args.quick else "main command defaults: 12 epochs, 96+16+16 images, imgsz 96"
    print(f"Local end to end ({mode}); {_machine()}; median of {len(runs)} run(s)")
    print(f"{'phase':<10} {'seconds':>8} {'share':>7}")
    for key in (*PHASES, "other"):
        print(f"{key:<10} {figures[key]:>8.1f} {figures[key] / total:>7.1%}")
    print(f"{'total':<10} {total:>8.1f} {1:>7.0%}")
    print(f"training + evaluation: {work / total:.0%} of the wall time; orchestration overhead {total - work:.1f}s")
    verdict = "met" if total <= GOAL_SECONDS else "missed"
    print(f"ratio to the {GOAL_SECONDS:.0f}s goal: {GOAL_SECONDS / total:.2f}x ({verdict})")
    if args.json:
        args.json.write_text(json.dumps({"mode": mode, "machine": _machine(), "runs": runs, "median": figures},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
