"""The training settings a user gets when they set none: the fast ones for the machine it runs on.

Bare Ultralytics defaults (batch 16, 8 workers, no cache) leave an H100 waiting on tiny batches:
252 images/s for YOLO11n at 640 px, against 1048 images/s with batch 128, 16 workers and
cache=ram (bench/anchors/README.md: Ultralytics 8.4.190 on one H100). Batch size is the main
lever, then the RAM cache, then workers.

Pure functions of a `Machine` description, so the policy is unit-testable without a GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: Rough training memory per image at 640 px with AMP, in GiB, per YOLO11 variant. Measured for
#: n (AutoBatch chose 323 images in 60% of an 80 GB H100 = 0.15 GiB/image), scaled by the
#: variants' activation sizes for the others. Deliberately conservative: we use half the memory.
GIB_PER_IMAGE_AT_640 = {"n": 0.15, "s": 0.25, "m": 0.5, "l": 0.65, "x": 1.0}

#: Per-GPU batch bounds. Above 128 images/s still rises a little (1226 at 256 on an H100), but
#: each epoch takes half the optimizer steps and mAP per wall-clock second falls on small data.
MAX_BATCH_PER_GPU = 128
MIN_BATCH = 16
#: Keep at least this many optimizer steps per epoch on small datasets (time-to-accuracy).
MIN_STEPS_PER_EPOCH = 16
#: Share of GPU memory the batch may take, and of free RAM the image cache may take.
GPU_MEMORY_SHARE = 0.5
RAM_SHARE = 0.5
MAX_WORKERS_PER_GPU = 16
#: Bare Ultralytics default batch, which is also what we use on a CPU.
CPU_BATCH = 16


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float


@dataclass(frozen=True)
class Machine:
    """What the defaults depend on: CPUs, GPUs and free RAM."""

    cpus: int
    ram_available_gib: float
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)


def detect_machine() -> Machine:
    """Read the machine this process runs on (imports torch and psutil, which training needs anyway)."""
    import psutil
    import torch

    gpus: list[Gpu] = []
    if torch.cuda.is_available():
        visible = torch.cuda.device_count()
        wanted = os.environ.get("SM_NUM_GPUS")
        count = min(visible, int(wanted)) if wanted and wanted.isdigit() and int(wanted) > 0 else visible
        for index in range(count):
            props = torch.cuda.get_device_properties(index)
            gpus.append(Gpu(props.name, props.total_memory / 2**30))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Machine(cpus=cpus, ram_available_gib=psutil.virtual_memory().available / 2**30, gpus=tuple(gpus))


def _floor_power_of_two(n: float) -> int:
    power = 1
    while power * 2 <= n:
        power *= 2
    return power


def batch_per_gpu(gpu: Gpu, variant: str, imgsz: int, train_images: int | None = None) -> int:
    """Images per GPU per step: half the GPU memory, a power of two between 16 and 128, and small
    enough that a small dataset still gets MIN_STEPS_PER_EPOCH optimizer steps per epoch."""
    per_image = GIB_PER_IMAGE_AT_640.get(variant, GIB_PER_IMAGE_AT_640["x"]) * (imgsz / 640) ** 2
    fits = gpu.memory_gib * GPU_MEMORY_SHARE / max(per_image, 1e-6)
    batch = min(MAX_BATCH_PER_GPU, _floor_power_of_two(fits))
    if train_images:
        batch = min(batch, _floor_power_of_two(max(train_images / MIN_STEPS_PER_EPOCH, 1)))
    return max(MIN_BATCH, batch)


def fast_batch(machine: Machine, variant: str, imgsz: int, train_images: int | None = None) -> int:
    """Total batch: per-GPU batch times the GPU count (Ultralytics' DDP splits it evenly); 16 on CPU."""
    if not machine.gpus:
        return CPU_BATCH
    per_gpu = min(batch_per_gpu(gpu, variant, imgsz, train_images) for gpu in machine.gpus)
    return per_gpu * machine.gpu_count


def fast_workers(machine: Machine) -> int:
    """Data-loader workers per process: every CPU, shared among the GPUs' processes. On a CPU, 0:
    Ultralytics loads in the training process there anyway (the model, not loading, is the bottleneck)."""
    if not machine.gpus:
        return 0
    return max(2, min(MAX_WORKERS_PER_GPU, machine.cpus // machine.gpu_count))


def cache_fits(machine: Machine, images: int, imgsz: int) -> bool:
    """Would the decoded, resized images fit in half the free RAM (one copy per training process)?"""
    copies = max(1, machine.gpu_count)
    needed_gib = images * imgsz * imgsz * 3 * copies / 2**30
    return needed_gib <= machine.ram_available_gib * RAM_SHARE


def fit_batch_to_gpus(batch: int, gpu_count: int) -> int:
    """A batch Ultralytics' DDP can split evenly: rounded down to a multiple of the GPU count."""
    if gpu_count <= 1:
        return batch
    return max(gpu_count, batch - batch % gpu_count)
