"""Spot safety: an interrupted job resumes where it stopped; a finished one is never resumed."""

from __future__ import annotations

import csv
import json
import signal
import subprocess

from training_harness import FAST, Job, progress_epochs


def _epochs_in_results(job: Job) -> list[int]:
    with (job.checkpoint_dir / "train" / "results.csv").open() as fh:
        return [int(float(row["epoch"])) for row in csv.DictReader(fh)]


def _losses(job: Job) -> list[tuple[str, str, str]]:
    with (job.checkpoint_dir / "train" / "results.csv").open() as fh:
        return [(r["train/box_loss"], r["train/cls_loss"], r["train/dfl_loss"]) for r in csv.DictReader(fh)]


def test_interrupted_run_resumes_at_the_next_epoch(make_dataset, tmp_path):
    """GIVEN a 3-epoch job killed (as a spot interruption does) right after epoch 1's checkpoint
    WHEN the job starts again with the same settings and checkpoint dir
    THEN it continues at epoch 2 instead of starting over, and finishes with 3 epochs recorded once each."""
    sample = make_dataset("resume", train=16, val=8)
    job = Job(tmp_path, sample.root)
    job.root.mkdir(parents=True, exist_ok=True)
    args = ["--epochs", "3", *FAST]
    proc = subprocess.Popen(job.argv(*args), env=job.env(), cwd=job.root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    first_lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        first_lines.append(line)
        if line.startswith("epoch 1/3"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert progress_epochs("".join(first_lines)) == [(1, 3)]
    assert _epochs_in_results(job) == [1]
    assert not (job.model_dir / "metrics.json").exists()

    again = job.train(*args)

    assert again.returncode == 0, again.stderr[-2000:]
    assert progress_epochs(again.stdout) == [(2, 3), (3, 3)], "resumed at epoch 2, not from scratch"
    assert _epochs_in_results(job) == [1, 2, 3]
    metrics = job.metrics()
    assert metrics["resumed_from_epoch"] == 1
    assert metrics["epochs_completed"] == 3
    log = [json.loads(x)["epoch"] for x in (job.checkpoint_dir / "train" / "epochs.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3]


def test_finished_run_is_not_resumed(make_dataset, tmp_path):
    """GIVEN a checkpoint dir holding a finished 2-epoch run
    WHEN a job starts with that checkpoint dir again
    THEN it trains a new run from epoch 1 (Ultralytics' resume would start over on coco8), and,
    every RNG being seeded, the new run repeats the first one's losses exactly."""
    sample = make_dataset("finished", train=8, val=4)
    job = Job(tmp_path, sample.root)
    first = job.train("--epochs", "2", *FAST)
    assert first.returncode == 0, first.stderr[-2000:]
    first_losses = _losses(job)

    again = job.train("--epochs", "2", *FAST)

    assert again.returncode == 0, again.stderr[-2000:]
    assert "the run there is finished" in again.stdout
    assert progress_epochs(again.stdout) == [(1, 2), (2, 2)]
    assert _epochs_in_results(job) == [1, 2]
    assert job.metrics()["resumed_from_epoch"] is None
    assert _losses(job) == first_losses, "same seed, same data, same settings: the same training"


def test_checkpoint_of_other_settings_is_not_resumed(make_dataset, tmp_path):
    """GIVEN an unfinished checkpoint left by a run with other settings (lr0 0.02)
    WHEN a job with different settings (lr0 0.03) starts on that checkpoint dir
    THEN it starts a new run rather than continuing someone else's training."""
    sample = make_dataset("other", train=8, val=4)
    job = Job(tmp_path, sample.root)
    job.root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(job.argv("--epochs", "3", "--lr0", "0.02", *FAST), env=job.env(), cwd=job.root,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch 1/3"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)

    again = job.train("--epochs", "1", "--lr0", "0.03", *FAST)

    assert again.returncode == 0, again.stderr[-2000:]
    assert "another dataset or other settings" in again.stdout
    assert progress_epochs(again.stdout) == [(1, 1)]
