"""Fixtures for the functions' tests; the harness itself is in function_harness.py."""

from function_harness import aws, notifier, slack_server, trigger  # noqa: F401 (pytest fixtures)
