"""Make Ultralytics run offline and quiet: in a SageMaker job nothing outside can be reached.

Call `prepare_environment()` before the first `import ultralytics`: Ultralytics decides at import
time whether it is online and where its settings live. Then `configure_settings()` turns its
integrations off (MLflow, Comet, ClearML... switch on whenever their packages are installed),
and `OfflineDetectionTrainer` keeps the GPU AMP check from downloading yolo26n.pt.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Ultralytics settings keys of the integrations a user may switch on with `--integrations`.
INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
FONT_NAME = "Arial.ttf"
#: GPUs Ultralytics' own AMP check refuses (NaN losses); the check itself needs a download.
_AMP_BAD_GPUS = re.compile(r"(nvidia|geforce|quadro|tesla).*?(1660|1650|1630|t400|t550|t600|t1000|t1200|t2000|k40m)",
                           re.IGNORECASE)


def prepare_environment() -> Path:
    """Offline flags, a writable settings folder and a local font. Returns Ultralytics' config dir."""
    # Remember whether the job itself is offline (model_weights: `pretrained` needs a download)
    # before YOLO_OFFLINE is forced on for everything else.
    was_offline = os.environ.get("YOLO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    os.environ.setdefault("YOLOPIPE_OFFLINE", "1" if was_offline else "0")
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "True")
    # No pip auto-installs, no update checks, no telemetry: keep the process to what it was given.
    os.environ["YOLO_AUTOINSTALL"] = "false"
    base = os.environ.get("YOLO_CONFIG_DIR")
    if not base:
        base = str(Path(tempfile.gettempdir()) / "yolopipe-ultralytics")
        os.environ["YOLO_CONFIG_DIR"] = base
    config_dir = Path(base) / "Ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    font = config_dir / FONT_NAME
    if not font.exists():
        import matplotlib

        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        tmp = font.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(dejavu, tmp)
        os.replace(tmp, font)  # atomic: DDP ranks may race here
    return config_dir


def configure_settings(enabled: Iterable[str] = ()) -> None:
    """Integrations off except those asked for; no event sync."""
    from ultralytics import settings

    wanted = set(enabled)
    settings.update({"sync": False, **{name: name in wanted for name in INTEGRATIONS}})


def _check_amp_offline(model: Any) -> bool:
    """Ultralytics' AMP check without its download: AMP on CUDA except the GPUs it is known to break."""
    from ultralytics.utils import WEIGHTS_DIR, checks

    original = checks.check_amp
    if (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
        return bool(original(model))
    device = next(model.parameters()).device
    if device.type != "cuda":
        return bool(original(model))  # returns False before any download
    import torch

    return not _AMP_BAD_GPUS.search(torch.cuda.get_device_name(device))


def offline_trainer_class() -> type:
    """A DetectionTrainer whose AMP check never downloads; defined lazily (imports ultralytics).

    The class lives in this module, so Ultralytics' DDP workers (which unpickle the trainer class
    in a fresh process) import it from here and get the same behaviour.
    """
    global _TRAINER
    if _TRAINER is None:
        from ultralytics.engine import trainer as trainer_module
        from ultralytics.models.yolo.detect import DetectionTrainer

        class OfflineDetectionTrainer(DetectionTrainer):  # type: ignore[misc]
            def _setup_train(self) -> None:
                trainer_module.check_amp = _check_amp_offline  # type: ignore[assignment]
                super()._setup_train()

        OfflineDetectionTrainer.__module__ = __name__
        OfflineDetectionTrainer.__qualname__ = "OfflineDetectionTrainer"
        globals()["OfflineDetectionTrainer"] = OfflineDetectionTrainer
        _TRAINER = OfflineDetectionTrainer
    return _TRAINER


_TRAINER: type | None = None


def __getattr__(name: str) -> Any:
    # Lets pickle find `yolo_offline.OfflineDetectionTrainer` in a DDP worker process.
    if name == "OfflineDetectionTrainer":
        prepare_environment()
        return offline_trainer_class()
    raise AttributeError(name)
