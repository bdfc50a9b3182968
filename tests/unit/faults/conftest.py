"""The fault suite: one file per promise, each test one misbehaviour of the world that must not
break it. The world is the functions' harness (tests/unit/functions/function_harness.py): moto for
AWS, a Slack stand-in on 127.0.0.1, handlers loaded as Lambda loads them (their folder on sys.path)."""

import sys
from pathlib import Path

_UNIT = Path(__file__).resolve().parents[1]
for _folder in (_UNIT / "functions", _UNIT.parents[1] / "functions" / "notifier"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from function_harness import aws, slack_server  # noqa: E402, F401 (pytest fixtures)
