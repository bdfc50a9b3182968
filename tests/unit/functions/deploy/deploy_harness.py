"""Names the deploy tests share (a module of its own: every test folder has a `conftest`, so
importing from `conftest` picks whichever folder's was imported first)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "yolopipe-dev-123456789012-abcd1234"
PIPELINE = "yolopipe-dev-abcd1234"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/yolopipe-sagemaker"
#: The function's own modules (imported by plain name from its package, as in Lambda).
FUNCTION_MODULES = ("app", "cfn_response", "container_images", "deploy_config", "deploy_pipeline")
_loads = itertools.count()


@dataclass
class Context:
    """Lambda's context object, with the time left the test chooses."""

    remaining_ms: int = 300_000
    function_name: str = "yolopipe-deploy"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:yolopipe-deploy"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/yolopipe-deploy"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_function(folder: Path) -> ModuleType:
    """Import `folder`/app.py with its siblings importable by plain name (a fresh copy each time:
    module-level clients are created now, so inside mock_aws)."""
    for name in FUNCTION_MODULES:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"yolopipe_deploy_app_{next(_loads)}", folder / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        for name in FUNCTION_MODULES:
            sys.modules.pop(name, None)
    return module
