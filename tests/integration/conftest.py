"""Local mode end to end: each run starts its own emulator, so runs go one after another."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[str]]]:
    """`yolopipe local serve` in a thread (the quality gate at 0), reached as a user reaches it with
    `--local`: no credentials, no AWS configuration. Yields the server and the lines it printed."""
    from yolopipe.local.serve import LocalServer

    lines: list[str] = []
    server = LocalServer(port=0, stack_name="yolopipe", output_dir=tmp_path / "runs", min_map50_95=0.0,
                         echo=lines.append, poll_s=0.2)
    thread = threading.Thread(target=server.serve_forever, name="local-serve", daemon=True)
    thread.start()
    assert server.ready.wait(120), "\n".join(lines)
    monkeypatch.setenv("YOLOPIPE_LOCAL_ENDPOINT", server.endpoint_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    try:
        yield server, lines
    finally:
        server.stop()
        thread.join(30)
