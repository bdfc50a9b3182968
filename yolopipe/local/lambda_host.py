"""Run one Lambda handler once, in this fresh process: `python -m yolopipe.local.lambda_host
MODULE_PATH HANDLER RESULT_FILE < event.json`.

What the Lambda runtime does for a Python function: the code folder on sys.path, the module
imported (module-scope clients built from the environment, which points at the emulator), the
handler called with the event and a context object. The result (or the error) goes to
RESULT_FILE as JSON; the function's own log lines go to stdout/stderr as in CloudWatch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class LambdaContext:
    """The attributes of the runtime's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    module_path, handler_name, result_file = Path(argv[0]), argv[1], Path(argv[2])
    timeout = float(argv[3]) if len(argv) > 3 else 60.0
    event = json.load(sys.stdin)
    sys.path.insert(0, str(module_path.parent))
    context = LambdaContext(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_path.parent.name), timeout)
    from .strict import install

    install()  # before the module builds its clients: they refuse what AWS refuses
    try:
        spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_path.stem] = module
        spec.loader.exec_module(module)
        result: Any = getattr(module, handler_name)(event, context)
        result_file.write_text(json.dumps({"result": result}, default=str))
        return 0
    except Exception as exc:  # what the runtime reports as the invocation's error
        result_file.write_text(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc),
                                           "stackTrace": traceback.format_exc().splitlines()}))
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
