"""Fixtures for the functions' tests; the harness itself is in function_harness.py.

Each function's folder is on sys.path, as its CodeUri root is on Lambda's: tests import the
trigger's and the notifier's modules by the names the handlers use (`s3_events`, `slack`, ...).
"""

import sys

from function_harness import REPO, aws, notifier, slack_server, trigger  # noqa: F401 (pytest fixtures)

for _function in ("trigger", "notifier"):
    if str(REPO / "functions" / _function) not in sys.path:
        sys.path.insert(0, str(REPO / "functions" / _function))
