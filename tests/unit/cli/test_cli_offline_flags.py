"""Commands that never call AWS do not offer AWS flags: their `--help` is about what they do."""

from __future__ import annotations

import re
from typing import Any

import pytest

AWS_FLAGS = ("--profile", "--region", "--endpoint-url", "--local", "--stack", "--bucket", "--pipeline")


@pytest.mark.parametrize("command", [("dataset", "validate"), ("dataset", "convert"), ("dataset",), ("local",)])
def test_a_local_only_command_shows_no_aws_flags(cli: Any, command: tuple[str, ...]) -> None:
    # WHEN the user asks a local-only command for help
    result = cli(*command, "--help")
    # THEN it exits 0 and offers none of the AWS and stack flags (in its usage line or options)
    assert result.code == 0
    offered = re.findall(r"(?:^\s+|\[)(--[a-z-]+)", result.out, re.M)
    assert not set(offered) & set(AWS_FLAGS), result.out


def test_an_aws_command_still_shows_them(cli: Any) -> None:
    result = cli("upload", "--help")
    offered = re.findall(r"(?:^\s+|\[)(--[a-z-]+)", result.out, re.M)
    assert result.code == 0 and set(AWS_FLAGS) <= set(offered)
