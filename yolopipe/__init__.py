"""yolopipe: the user's tool for the yolopipe stack: the `yolopipe` CLI (yolopipe.cli), the Python
API (`from yolopipe import Yolopipe`), dataset tools (yolopipe.datasets) and the local mode
(yolopipe.local). Importing the package is cheap: the API loads on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["Yolopipe"]


def __getattr__(name: str) -> Any:
    if name == "Yolopipe":  # boto3 and friends only when the API is used (`yolopipe --help` stays instant)
        from .client import Yolopipe

        return Yolopipe
    raise AttributeError(f"module 'yolopipe' has no attribute {name!r}")
