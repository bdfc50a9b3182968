"""Local mode: the whole event-driven run on one machine, no AWS account, no Docker.

`run_local(PATH)` (or `python -m yolopipe.local PATH`, `yolopipe local run PATH`) starts an AWS
emulator on 127.0.0.1, creates the stack's resources from template.yaml, deploys the rendered
pipeline, uploads the dataset (data.yaml last), hands the S3 event to functions/trigger, runs the
started execution with a local executor of the same pipeline definition JSON, hands its status
changes to functions/notifier and shows the Slack messages and emails it sends.
"""

from __future__ import annotations

from .deployment import LocalRunError
from .results import LocalRunResult
from .runner import DEMO_DEFAULTS, run_local

__all__ = ["DEMO_DEFAULTS", "LocalRunError", "LocalRunResult", "run_local"]
