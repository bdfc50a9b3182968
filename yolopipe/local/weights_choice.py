"""What the local mode trains from when the user did not say: the official weights, staged in the
emulator's bucket, when they are at hand (Ultralytics' weights folder, or downloadable); otherwise
from scratch, said in one line. Local jobs are offline (YOLO_OFFLINE), as a job without internet is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yolopipe_shared.weights import SCRATCH


def choose_weights(s3: Any, bucket: str, variant: str, say: Callable[[str], None]) -> str:
    """The Weights value for the local stack: the staged official file's s3:// URI, or `scratch`."""
    from yolopipe.weights import WeightsUnavailable, stage

    try:
        staged = stage(s3, bucket, variant)
    except WeightsUnavailable as exc:
        say(f"weights: training from scratch ({exc}); with yolo11{variant}.pt at hand, "
            f"`yolopipe weights stage {variant}` stages it for AWS")
        return SCRATCH
    say(f"weights: pretrained yolo11{variant}.pt from {staged.local_path}, staged at {staged.uri}")
    return staged.uri
