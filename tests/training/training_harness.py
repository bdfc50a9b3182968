"""Helpers for tests/training: run train.py / evaluate.py as SageMaker starts them.

train.py and evaluate.py run as subprocesses with SageMaker's environment (SM_CHANNEL_DATASET,
SM_MODEL_DIR, ...), the way the training job and the local executor start them. One trained
model is shared by the module's tests (the `trained` fixture) to keep the folder fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training_code" / "train.py"
EVALUATE = REPO / "training_code" / "evaluate.py"
SHARED = REPO / "functions" / "shared"
if str(REPO / "training_code") not in sys.path:
    sys.path.insert(0, str(REPO / "training_code"))

#: Settings that make a from-scratch YOLO11n learn the generated shapes in seconds on a CPU.
FAST = ["--imgsz", "96", "--batch", "8", "--mosaic", "0", "--warmup_epochs", "1", "--plots", "false"]


@dataclass
class Job:
    """Where one training job's channels and outputs lie, as SageMaker lays them out."""

    root: Path
    dataset: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(SHARED),
            "PYTHONUNBUFFERED": "1",
            "SM_CHANNEL_DATASET": str(self.dataset),
            "SM_MODEL_DIR": str(self.model_dir),
            "SM_OUTPUT_DATA_DIR": str(self.output_dir),
        }
        env.update(extra)
        return env

    def argv(self, *args: str, scratch: bool = True) -> list[str]:
        # Offline here: from scratch unless a test names its weights (the pipeline's default is pretrained).
        weights = ["--weights", "scratch"] if scratch and not any(a.startswith("--weights") for a in args) else []
        return [sys.executable, str(TRAIN), "--checkpoint-dir", str(self.checkpoint_dir), *weights, *args]

    def train(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = self.argv(*args, scratch="SM_CHANNEL_WEIGHTS" not in extra_env)
        return subprocess.run(argv, env=self.env(**extra_env), cwd=self.root, capture_output=True,
                              text=True, timeout=600, check=False)

    def metrics(self) -> dict:
        return json.loads((self.model_dir / "metrics.json").read_text())


def progress_epochs(stdout: str) -> list[tuple[int, int]]:
    """The (epoch, total) of each `epoch N/M ...` progress line."""
    found = []
    for line in stdout.splitlines():
        if line.startswith("epoch "):
            done, total = line.split()[1].split("/")
            found.append((int(done), int(total)))
    return found


def evaluate(model: Path, data: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EVALUATE), "--model", str(model), "--data", str(data), "--output", str(output), *extra],
        env={**os.environ, "PYTHONPATH": str(SHARED)}, capture_output=True, text=True, timeout=300, check=False,
    )


