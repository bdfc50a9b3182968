"""Local mode end to end: each run starts its own emulator, so runs go one after another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def run_locally(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[Any, list[str]]]:
    """`run_locally(dataset_path, **kwargs)` -> (LocalRunResult, the lines a person saw)."""
    from yolopipe.local import run_local

    def run(dataset_path: Path | None = None, **kwargs: Any) -> tuple[Any, list[str]]:
        lines: list[str] = []
        kwargs.setdefault("output_dir", tmp_path_factory.mktemp("runs"))
        kwargs.setdefault("timeout_s", 600)
        result = run_local(dataset_path, echo=lines.append, **kwargs)
        return result, lines

    return run
