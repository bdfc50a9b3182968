"""Real Ultralytics training on tiny generated datasets, on CPU: the training step as SageMaker runs it.

train.py and evaluate.py run as subprocesses with SageMaker's environment (SM_CHANNEL_DATASET,
SM_MODEL_DIR, ...), the way the training job and the local executor start them. One trained
model is shared by the tests (the session `trained` fixture) to keep the folder fast.
"""

from __future__ import annotations

import pytest
from training_harness import FAST, Job


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory: pytest.TempPathFactory):
    from yolopipe.datasets.sample import generate_dataset

    def make(name: str, **kwargs):
        kwargs.setdefault("imgsz", 96)
        kwargs.setdefault("objects_per_image", (1, 2))
        return generate_dataset(tmp_path_factory.mktemp(name) / "dataset", **kwargs)

    return make


@pytest.fixture(scope="session")
def trained(make_dataset, tmp_path_factory: pytest.TempPathFactory):
    """A model trained once, 12 epochs, with plots: (Job, CompletedProcess, SampleDataset)."""
    sample = make_dataset("shared", train=96, val=16, test=16)
    job = Job(tmp_path_factory.mktemp("shared-job"), sample.root)
    fast = [a for a in FAST if a not in ("--plots", "false")]
    done = job.train("--epochs", "12", *fast)
    assert done.returncode == 0, done.stderr[-3000:]
    return job, done, sample
