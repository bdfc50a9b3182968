"""Training under torchrun (what SageMaker's toolkit starts on every instance): a spot-interrupted run
resumed by another number of processes, and the pure rules of training_code/distributed.py."""

from __future__ import annotations

import signal
import subprocess
import sys

import distributed
import pytest
from training_harness import TRAIN, Job, progress_epochs

from yolopipe_shared.errors import ParameterError

TINY = ["--imgsz", "32", "--batch", "8", "--mosaic", "0", "--warmup_epochs", "0", "--plots", "false"]


def test_a_checkpoint_resumed_by_another_number_of_processes_says_so_and_keeps_the_global_batch(
        make_dataset, tmp_path):
    """GIVEN a 2-epoch run of one process killed after epoch 1's checkpoint (a spot interruption)
    WHEN the job starts again as 2 torchrun processes (say, on 2 instances) with the same checkpoint dir
    THEN the log says the process count changed and that the global batch stays, split in two; the run
    resumes at epoch 2 and rank 0 writes the model."""
    sample = make_dataset("world-change", train=8, val=4, imgsz=64)
    job = Job(tmp_path, sample.root)
    job.root.mkdir(parents=True, exist_ok=True)
    args = ["--epochs", "2", *TINY]
    first = subprocess.Popen(job.argv(*args), env=job.env(), cwd=job.root, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("epoch 1/2"):
            first.send_signal(signal.SIGKILL)
            break
    first.wait(timeout=60)

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    again = subprocess.run([*torchrun, str(TRAIN), *job.argv(*args)[2:]], env=job.env(), cwd=job.root,
                           capture_output=True, text=True, timeout=600, check=False)

    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert ("the checkpoint was trained by 1 process(es), this job has 2: resuming with global batch 8 "
            "(4 per process)") in again.stdout
    assert progress_epochs(again.stdout) == [(2, 2)]
    assert job.metrics()["resumed_from_epoch"] == 1


def test_torchrun_environment_is_read_and_checked():
    assert distributed.detect({}) == distributed.World()
    world = distributed.detect({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"})
    assert (world.nodes, world.is_main, world.distributed) == (2, False, True)
    with pytest.raises(ParameterError, match="inconsistent torchrun environment"):
        distributed.detect({"RANK": "4", "LOCAL_RANK": "0", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "1"})


def test_the_per_gpu_batch_stays_while_the_global_batch_grows_with_the_instances():
    one_instance = distributed.World()
    four_instances_of_8_gpus = distributed.World(rank=9, local_rank=1, size=32, local_size=8)
    # 128 per GPU on an 8-GPU instance: 1024 on one instance, 4096 on four
    assert distributed.global_batch(1024, 8, one_instance) == 1024
    assert distributed.global_batch(1024, 8, four_instances_of_8_gpus) == 4096
    # CPU instances: the CPU batch (16) per process, one process per instance
    assert distributed.global_batch(16, 0, distributed.World(rank=1, size=2)) == 32


def test_a_different_ultralytics_is_refused_with_the_pin_to_use():
    with pytest.raises(ParameterError, match=r"ultralytics==8\.4\.190, found 8\.5\.0"):
        distributed.check_ultralytics("8.5.0")
