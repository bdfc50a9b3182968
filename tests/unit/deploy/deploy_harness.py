"""Names the deploy tests share (a module of its own: every test folder has a `conftest`, so
importing from `conftest` picks whichever folder's was imported first)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "yolopipe-dev-123456789012-abcd1234"
PIPELINE = "yolopipe-dev-abcd1234"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/yolopipe-sagemaker"


@dataclass
class Context:
    remaining_ms: int = 300_000
    function_name: str = "yolopipe-deploy"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:yolopipe-deploy"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
