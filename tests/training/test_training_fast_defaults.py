"""The default training settings per machine: the fast ones, never slower than bare Ultralytics."""

from __future__ import annotations

from fast_defaults import Gpu, Machine, cache_fits, fast_batch, fast_workers, fit_batch_to_gpus

H100 = Gpu("NVIDIA H100 80GB HBM3", 79.2)
T4 = Gpu("Tesla T4", 14.6)
A10G = Gpu("NVIDIA A10G", 22.0)


def test_h100_gets_the_hand_tuned_batch_for_yolo11n_at_640():
    """GIVEN one H100, YOLO11n, 640 px, 4,000 training images (the anchors' setting)
    WHEN the default batch is chosen
    THEN it is 128 (1048 images/s measured vs 252 for the bare batch 16), with 16 workers."""
    machine = Machine(cpus=16, ram_available_gib=120, gpus=(H100,))
    assert fast_batch(machine, "n", 640, 4000) == 128
    assert fast_workers(machine) == 16


def test_smaller_gpus_and_bigger_models_get_smaller_batches():
    """GIVEN a 16 GB T4 or a larger variant
    WHEN the default batch is chosen
    THEN it shrinks to fit half the GPU memory, never below the bare default of 16."""
    assert fast_batch(Machine(4, 15, (T4,)), "n", 640, 4000) == 32
    assert fast_batch(Machine(4, 15, (T4,)), "x", 640, 4000) == 16
    assert fast_batch(Machine(16, 120, (H100,)), "x", 640, 4000) == 32
    assert fast_batch(Machine(16, 120, (H100,)), "n", 320, 40000) == 128


def test_multi_gpu_batch_is_per_gpu_times_gpus_and_divisible():
    """GIVEN four A10Gs
    WHEN the default batch is chosen, or a user's batch is fitted
    THEN each GPU gets its share and the total divides evenly."""
    four = Machine(48, 180, (A10G,) * 4)
    assert fast_batch(four, "n", 640, 10000) == 256
    assert fast_workers(four) == 12
    assert fit_batch_to_gpus(30, 4) == 28 and fit_batch_to_gpus(3, 4) == 4 and fit_batch_to_gpus(30, 1) == 30


def test_cpu_keeps_batch_16_and_uses_every_core():
    """GIVEN no GPU
    WHEN defaults are chosen
    THEN batch stays at Ultralytics' 16 (no slower than bare) and loading stays in the training
    process, as Ultralytics does on a CPU whatever it is given."""
    cpu = Machine(cpus=2, ram_available_gib=20)
    assert fast_batch(cpu, "n", 640, 1000) == 16
    assert fast_workers(cpu) == 0


def test_ram_cache_only_when_the_dataset_fits():
    """GIVEN 20 GB of free RAM
    WHEN asked whether 4,000 or 40,000 640 px images fit (half the RAM, one copy per GPU process)
    THEN the first fits and the second does not."""
    machine = Machine(cpus=8, ram_available_gib=20)
    assert cache_fits(machine, 4000, 640)
    assert not cache_fits(machine, 40000, 640)
