"""What a training starts from (the Weights parameter), checked in the job before training starts."""

from __future__ import annotations

import pytest
from training_harness import FAST, Job

#: With `make training`'s two workers, the tests of the one shared trained model (conftest `trained`)
#: run on one worker, so it is trained once.
pytestmark = pytest.mark.xdist_group("trained")


def test_pretrained_offline_fails_in_one_line_saying_how_to_stage(make_dataset, tmp_path):
    """GIVEN a job without internet access (YOLO_OFFLINE) and Weights=pretrained, no yolo11n.pt at hand
    WHEN train.py starts
    THEN it exits 2 before training, with one line that says how to stage the weights in the bucket."""
    sample = make_dataset("offline", train=4, val=2)
    job = Job(tmp_path / "job", sample.root)

    done = job.train("--weights", "pretrained", "--epochs", "1", *FAST, YOLO_CONFIG_DIR=str(tmp_path / "cfg"))

    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "offline" in errors[0] and "yolopipe weights stage n" in errors[0] and "weights/yolo11n.pt" in errors[0]
    assert not job.model_dir.exists() or not any(job.model_dir.iterdir())


def test_weights_of_another_variant_are_refused_before_training(trained, tmp_path):
    """GIVEN best.pt of an earlier YOLO11n training (the shared fixture's), given as Weights
    WHEN a new training asks for ModelVariant s
    THEN it is refused in one line before training, naming the variant the weights have.
    (Fine-tuning from such a .pt: test_training_train.py::test_fine_tunes_from_the_weights_channel.)"""
    job, _, sample = trained

    wrong = Job(tmp_path / "wrong", sample.root).train("--weights", str(job.model_dir / "best.pt"), "--variant", "s",
                                                        "--epochs", "1", *FAST)

    assert wrong.returncode == 2
    assert "are YOLO11n but ModelVariant is s" in wrong.stderr.strip().splitlines()[-1]
