"""Official YOLO11 weights on the user's machine, staged in the bucket for jobs that cannot download.

`yolopipe weights stage n` fetches yolo11n.pt with Ultralytics' own downloader (or takes it from
Ultralytics' weights folder), uploads it to s3://<bucket>/weights/yolo11n.pt and returns that URI:
the `Weights` value to run with. Offline (YOLO_OFFLINE) only the weights folder is looked in.
The local mode stages the same way, or trains from scratch and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.weights import official_name, staged_key


class WeightsUnavailable(YolopipeError):
    """The official weights are neither at hand nor downloadable from here."""


@dataclass(frozen=True)
class StagedWeights:
    uri: str
    local_path: str
    size: int
    uploaded: bool

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "weights": f"Weights={self.uri}", "local_path": self.local_path, "bytes": self.size,
                "uploaded": self.uploaded}


def offline() -> bool:
    return os.environ.get("YOLO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def official_weights(variant: str) -> Path:
    """yolo11{variant}.pt from Ultralytics' weights folder, else downloaded there by Ultralytics."""
    try:
        from ultralytics.utils import SETTINGS
        from ultralytics.utils.downloads import attempt_download_asset
    except ImportError:  # the CLI alone does not need torch: fetching the official weights does
        raise WeightsUnavailable("weights stage downloads with Ultralytics, which is not installed here: "
                                 "pip install 'yolopipe[train]'") from None

    name = official_name(variant)
    target = Path(SETTINGS["weights_dir"]) / name
    if target.is_file():
        return target
    if offline():
        raise WeightsUnavailable(f"offline (YOLO_OFFLINE): {name} is not in {target.parent}; copy it there or "
                                 "run `yolopipe weights stage` where the internet is reachable")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = Path(attempt_download_asset(target))
    except (ConnectionError, OSError) as exc:
        raise WeightsUnavailable(f"{name} could not be downloaded ({' '.join(str(exc).split())[:160]}); "
                                 f"copy it to {target.parent} and try again") from None
    if not path.is_file():
        raise WeightsUnavailable(f"{name} could not be downloaded; copy it to {target.parent} and try again")
    return path


def stage(s3: Any, bucket: str, variant: str) -> StagedWeights:
    """Upload the official weights of `variant` to s3://<bucket>/weights/ (once: same size, not sent again)."""
    from botocore.exceptions import ClientError

    path = official_weights(variant)
    key, size = staged_key(variant), path.stat().st_size
    try:
        same = int(s3.head_object(Bucket=bucket, Key=key).get("ContentLength", -1)) == size
    except ClientError:
        same = False
    if not same:
        s3.upload_file(str(path), bucket, key)
    return StagedWeights(uri=f"s3://{bucket}/{key}", local_path=str(path), size=size, uploaded=not same)
