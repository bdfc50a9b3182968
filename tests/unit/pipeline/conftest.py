"""The rendered definition, built once for the module's tests (the SDK takes seconds to import)."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture(scope="session")
def rendered_text() -> str:
    from pipeline.render import render_definition

    return render_definition()


@pytest.fixture
def definition(rendered_text: str) -> dict[str, Any]:
    """A fresh copy of the parsed template definition (tests may mutate it)."""
    return json.loads(rendered_text)


@pytest.fixture
def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, condition branches included."""
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            if step["Type"] == "Condition":
                visit(step["Arguments"].get("IfSteps", []))
                visit(step["Arguments"].get("ElseSteps", []))

    visit(definition["Steps"])
    return found
