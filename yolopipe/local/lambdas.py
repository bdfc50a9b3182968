"""Invoke the stack's functions as Lambda would: a fresh process per invocation, the template's
environment, the emulator behind AWS_ENDPOINT_URL. The functions have no local-only code path."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import YolopipeError

from .stack import REPO_ROOT, FunctionSpec


class InvocationFailed(YolopipeError):
    """The handler raised (Lambda would retry an async invocation, then send it to the DLQ)."""


@dataclass
class Invocation:
    function: str
    result: Any
    seconds: float
    log: str


def invoke(spec: FunctionSpec, event: dict[str, Any], env: dict[str, str], *, log_file: Path | None = None,
           python: str = sys.executable) -> Invocation:
    """Run the handler once with `event`; return its result or raise InvocationFailed with its error."""
    started = time.perf_counter()
    # The layer on the path, as Lambda puts a layer's python/ there: this checkout's contract, not
    # whichever checkout an editable install of the package points at.
    env = {**env, "PYTHONPATH": str(REPO_ROOT / "functions" / "shared")}
    with tempfile.TemporaryDirectory(prefix="yolopipe-lambda-") as tmp:
        result_file = Path(tmp) / "result.json"
        process = subprocess.run(
            [python, "-m", "yolopipe.local.lambda_host", str(spec.module_path), spec.function_name,
             str(result_file), str(spec.timeout)],
            input=json.dumps(event), env=env, capture_output=True, text=True, timeout=spec.timeout + 30,
            check=False,
        )
        log = process.stdout + process.stderr
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as handle:
                handle.write(log)
        outcome = json.loads(result_file.read_text()) if result_file.is_file() else {}
    seconds = time.perf_counter() - started
    if process.returncode != 0 or "errorType" in outcome:
        message = outcome.get("errorMessage") or (log.strip().splitlines() or ["no output"])[-1]
        raise InvocationFailed(f"{spec.logical_id} failed: {outcome.get('errorType', 'Error')}: {message}")
    return Invocation(spec.logical_id, outcome.get("result"), seconds, log)
