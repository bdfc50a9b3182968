"""Benchmark 4: the functions' cold start — module import time in a fresh interpreter, and the
size of each built package (function + shared layer).

Rows: `import boto3` alone (the issue's baseline), a bare handler that imports boto3 and builds
the same clients (what a user would write instead), and each function's app.py (which builds its
clients at module scope, so the init phase pays for them once per container). Median of N fresh
interpreters each. Sizes come from `sam build`'s output (.aws-sam/build); run `make sam-build` first.

    .venv/bin/python bench/cold_start.py            # 15 interpreters per row
    .venv/bin/python bench/cold_start.py --quick    # 5 per row, < 1 minute
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / ".aws-sam" / "build"

CLIENTS = {"trigger": ("s3", "sagemaker", "sns", "dynamodb"),
           "notifier": ("sagemaker", "s3", "sns", "secretsmanager", "dynamodb")}
PACKAGES = {"trigger": "TriggerFunction", "notifier": "NotifierFunction"}
GOAL_IMPORT_RATIO = 1.5
GOAL_PACKAGE_MB = 10.0

_TIMER = """
import time
t = time.perf_counter()
{body}
print((time.perf_counter() - t) * 1000)
"""


def _env(function: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PIPELINE_NAME": "yolopipe-bench", "IDEMPOTENCY_TABLE": "yolopipe-bench",
        "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:yolopipe-bench",
        "SLACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:yolopipe-slack-AbCdEf",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    # What Lambda puts on sys.path: the function's folder, then the layer (/opt/python).
    paths = [str(REPO / "functions" / function)] if function else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO / "functions" / "shared")])
    return env


def sample_import(body: str, function: str | None) -> float:
    """Milliseconds `body` takes in one fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", _TIMER.format(body=body)], env=_env(function),
                         cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def time_imports(rows: dict[str, tuple[str, str | None]], runs: int) -> dict[str, float]:
    """Median milliseconds per row; rows are sampled round-robin so that load from anything
    else on the machine spreads over all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(runs):
        for name, (body, function) in rows.items():
            samples[name].append(sample_import(body, function))
    return {name: statistics.median(values) for name, values in samples.items()}


def package_size(folder: Path) -> tuple[float, float] | None:
    """(unzipped MB, zipped MB) of a built folder, or None when it was not built."""
    if not folder.is_dir():
        return None
    raw = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                raw += path.stat().st_size
                archive.write(path, path.relative_to(folder).as_posix())
    return raw / 1e6, buffer.tell() / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 interpreters per row (CI smoke, < 1 minute)")
    parser.add_argument("--runs", type=int, default=None, help="interpreters per row (default 15, quick 5)")
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 15)

    plan: dict[str, tuple[str, str | None]] = {"import boto3 (baseline)": ("import boto3", None)}
    for function, clients in CLIENTS.items():
        bare = "import boto3\n" + "\n".join(f"boto3.client({c!r})" for c in clients)
        plan[f"bare {function} handler: boto3 + {len(clients)} clients"] = (bare, None)
        plan[f"functions/{function}/app.py"] = ("import app", function)
    ms = time_imports(plan, runs)
    boto3_ms = ms["import boto3 (baseline)"]
    layer = package_size(BUILD / "SharedLayer")
    rows: list[tuple[str, float, float | None, tuple[float, float] | None]] = [
        ("import boto3 (baseline)", boto3_ms, None, None)]
    verdicts = []
    for function, clients in CLIENTS.items():
        bare_ms = ms[f"bare {function} handler: boto3 + {len(clients)} clients"]
        app_ms = ms[f"functions/{function}/app.py"]
        fn_size = package_size(BUILD / PACKAGES[function])
        total = (fn_size[0] + layer[0], fn_size[1] + layer[1]) if fn_size and layer else None
        rows.append((f"bare {function} handler: boto3 + {len(clients)} clients", bare_ms, None, None))
        rows.append((f"functions/{function}/app.py", app_ms, bare_ms, total))
        verdicts.append((function, app_ms / boto3_ms, app_ms / bare_ms, total))

    print(f"cold start: median of {runs} fresh interpreters; Python {platform.python_version()} "
          f"on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'what is imported':<44} {'ms':>7} {'x boto3':>8} {'x bare':>7} {'package MB (zip)':>17}")
    for name, row_ms, row_bare_ms, size in rows:
        ratio_bare = f"{row_ms / row_bare_ms:.2f}" if row_bare_ms else ""
        size_text = f"{size[0]:.1f} ({size[1]:.1f})" if size else ""
        print(f"{name:<44} {row_ms:7.0f} {row_ms / boto3_ms:8.2f} {ratio_bare:>7} {size_text:>17}")
    if layer is None:
        print("package sizes: run `make sam-build` (or `sam build`) first")
    for function, vs_boto3, vs_bare, size in verdicts:
        size_ok = "n/a" if size is None else ("yes" if size[0] <= GOAL_PACKAGE_MB else "NO")
        print(f"{function}: import {vs_boto3:.2f}x boto3 alone (goal <= {GOAL_IMPORT_RATIO}), "
              f"{vs_bare:.2f}x a bare handler with the same clients; package <= {GOAL_PACKAGE_MB:.0f} MB: {size_ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
