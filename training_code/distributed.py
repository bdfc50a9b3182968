"""Training on several instances: Ultralytics' trainer under the launcher SageMaker already runs.

With `sagemaker_torch_distributed_enabled` the PyTorch image's toolkit starts
`torchrun --nnodes N --nproc_per_node <GPUs, or 1 on CPU> --node_rank R --master_addr <first host>`
on every instance, and each process gets RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE.
One process in all (one instance, one GPU or a CPU) is the plain single-process run.

Ultralytics 8.4.190 trains inside such a process but assumes one node: it counts the local devices
as the world size (0 on a CPU), and at the end every rank validates best.pt from a folder only
rank 0's instance has, on CUDA. `distributed_trainer` adapts exactly that: the world size from
WORLD_SIZE (so the global batch is split across every rank and DDP's gradient average is undone by
the right factor), the device from LOCAL_RANK (CPU ranks use gloo), the final validation on rank 0.
Only global rank 0 writes the model dir, the checkpoints and the metrics (Ultralytics' own rule).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import ParameterError

#: The Ultralytics release the adaptation below was read against (engine/trainer.py `__init__`,
#: `_setup_ddp`, `_setup_train`, `final_eval`; data/build.py's sampler seed).
CHECKED_ULTRALYTICS = "8.4.190"
#: The timeout Ultralytics gives its own process group (a slow validation on rank 0 must not trip it).
GROUP_TIMEOUT = timedelta(hours=3)
_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class World:
    """Where this process stands among the job's training processes (torchrun's environment)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.size // max(1, self.local_size))

    def describe(self) -> str:
        return f"{self.nodes} instance(s) x {self.local_size} process(es) = {self.size}"


def detect(environ: Mapping[str, str]) -> World:
    """torchrun's variables, or a world of one when it did not start this process."""
    if "WORLD_SIZE" not in environ:
        return World()
    try:
        rank, local_rank, size, local_size = (int(environ.get(name, "0" if "RANK" in name else "1")) for name in _ENV)
    except ValueError:
        raise ParameterError(f"torchrun's {', '.join(_ENV)} must be integers; start train.py with torchrun") from None
    if not (0 <= rank < size and 0 <= local_rank < local_size <= size):
        raise ParameterError(f"inconsistent torchrun environment RANK={rank} LOCAL_RANK={local_rank} "
                             f"WORLD_SIZE={size} LOCAL_WORLD_SIZE={local_size}")
    return World(rank, local_rank, size, local_size)


def check_ultralytics(version: str) -> None:
    """Refuse to train distributed on an Ultralytics the adaptation was not checked against."""
    if version != CHECKED_ULTRALYTICS:
        raise ParameterError(f"training on several instances is checked with ultralytics=={CHECKED_ULTRALYTICS}, "
                             f"found {version}; pin it in training_code/requirements.txt")


def processes(world: World, device: Any) -> int:
    """Training processes of the run: torchrun's world, else the GPUs Ultralytics spawns on itself."""
    if world.distributed:
        return world.size
    text = str(device or "cpu")
    return 1 if text in ("cpu", "mps") else len(text.split(","))


def global_batch(local_batch: int, gpu_count: int, world: World) -> int:
    """The fast default for one instance (per-GPU batch x its GPUs, or the CPU batch), kept per process
    while the instances add up: per-process batch x every process."""
    if not world.distributed:
        return local_batch
    return local_batch // max(1, gpu_count) * world.size


def resume_batch(recorded_processes: int, recorded_batch: int, world_processes: int) -> tuple[int, str | None]:
    """The batch to resume with, and what to tell the user when the number of processes changed.

    The global batch of the checkpoint stays (so the learning-rate schedule, the gradient accumulation
    and the weight decay it was trained with stay), re-split across the processes there are now.
    """
    if recorded_processes == world_processes or recorded_batch < 1:
        return recorded_batch, None
    batch = max(world_processes, recorded_batch - recorded_batch % world_processes)
    return batch, (f"the checkpoint was trained by {recorded_processes} process(es), this job has {world_processes}: "
                   f"resuming with global batch {batch} ({batch // world_processes} per process)")


def start(world: World) -> None:
    """The process group every rank joins (gloo on CPU, NCCL on GPUs), before Ultralytics builds anything."""
    if not world.distributed:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=GROUP_TIMEOUT,
                            rank=world.rank, world_size=world.size)


def stop(world: World) -> None:
    if not world.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast(world: World, value: Any) -> Any:
    """Rank 0's `value` on every rank (as is when there is one process)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share_file(world: World, path: Path | None, folder: Path) -> Path | None:
    """Rank 0's file on every rank: other ranks get its bytes in `folder` (their own disk, not a folder
    SageMaker syncs). None on every rank when rank 0 has none."""
    if not world.distributed:
        return path
    payload = None
    if world.is_main and path is not None and path.is_file():
        data = path.read_bytes()
        payload = (path.name, hashlib.sha256(data).hexdigest(), data)
    payload = broadcast(world, payload)
    if payload is None:
        return None
    if world.is_main:
        return path
    name, digest, data = payload
    if hashlib.sha256(data).hexdigest() != digest:
        raise RuntimeError(f"{name} arrived damaged from rank 0")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_bytes(data)
    return target


def distributed_trainer(base: type, world: World) -> type:
    """`base` (an Ultralytics trainer class) adapted to `world`; `base` itself for one process."""
    if not world.distributed:
        return base
    import torch
    import torch.distributed as dist
    from ultralytics.engine import trainer as trainer_module
    from ultralytics.engine import validator as validator_module
    from ultralytics.models.yolo.detect import val as detect_val_module
    from ultralytics.utils import LOCAL_RANK, RANK
    from ultralytics.utils.torch_utils import get_torch_device_backend, init_seeds

    validator_modules = (validator_module, detect_val_module)

    if (world.rank, world.local_rank) != (RANK, LOCAL_RANK):  # read by Ultralytics when it was imported
        raise RuntimeError("ultralytics was imported before torchrun's environment was set")

    class DistributedTrainer(base):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Ultralytics counts this instance's devices (0 on CPU); the batch split, DDP's gradient
            # average and the process group need every rank of every instance.
            self.world_size = world.size
            self.ddp = False  # torchrun started this process: train here, spawn nothing
            # Ultralytics seeds rank r with seed+1+r and a single process with seed: rank 0 builds the
            # model a one-process run builds (DDP hands it to every rank), the others augment apart.
            init_seeds(self.args.seed + world.rank, deterministic=self.args.deterministic)

        def _setup_ddp(self) -> None:
            if self.device.type == "cuda":
                index = int(str(self.args.device).split(":")[-1].split(",")[world.local_rank])
                self.device = torch.device("cuda", index)
                self.accelerator = get_torch_device_backend(self.device)
                self.accelerator.set_device(index)
                os.environ["TORCH_NCCL_BLOCKING_WAIT"] = "1"  # as Ultralytics: enforce the timeout
            start(world)

        def _setup_train(self) -> None:
            with _ddp_on_cpu(trainer_module) if self.device.type == "cpu" else contextlib.nullcontext():
                super()._setup_train()

        def final_eval(self) -> None:
            # Ultralytics validates best.pt on every rank, each reading it from its own disk (other
            # instances have none) and on CUDA only. Rank 0 has it: it validates alone, on the whole split.
            if not world.is_main:
                dist.barrier()  # the one barrier of final_eval, under which rank 0 strips the optimizer
                return
            self.validator.dataloader = None  # the training one holds this rank's shard only
            with _single_process(validator_modules):
                super().final_eval()

    DistributedTrainer.__name__ = DistributedTrainer.__qualname__ = f"Distributed{base.__name__}"
    return DistributedTrainer


@contextlib.contextmanager
def _single_process(modules: tuple[types.ModuleType, ...]) -> Iterator[None]:
    """The validator modules' RANK / LOCAL_RANK (read at import) as in a single process: no gathering, no
    barriers, the device from the arguments."""
    saved = [(module, name, getattr(module, name)) for module in modules for name in ("RANK", "LOCAL_RANK")]
    try:
        for module, name, _ in saved:
            setattr(module, name, -1)
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


@contextlib.contextmanager
def _ddp_on_cpu(trainer_module: types.ModuleType) -> Iterator[None]:
    """Ultralytics wraps the model as `DistributedDataParallel(model, device_ids=[device.index])`, which
    torch refuses for a CPU module ([None]); while it sets up, the trainer sees a DDP that drops them."""
    import torch

    class CpuDistributedDataParallel(torch.nn.parallel.DistributedDataParallel):  # type: ignore[misc]
        def __init__(self, module: Any, device_ids: Any = None, **kwargs: Any) -> None:
            super().__init__(module, device_ids=None, **kwargs)

    # A copy of torch.nn, not a proxy: the optimizer groups its parameters by scanning `nn.__dict__`.
    nn_with_cpu_ddp = types.ModuleType("torch.nn")
    nn_with_cpu_ddp.__dict__.update(torch.nn.__dict__)
    nn_with_cpu_ddp.parallel = types.SimpleNamespace(  # type: ignore[attr-defined]
        **{**vars(torch.nn.parallel), "DistributedDataParallel": CpuDistributedDataParallel})
    original = trainer_module.nn  # type: ignore[attr-defined]
    trainer_module.nn = nn_with_cpu_ddp  # type: ignore[attr-defined]
    try:
        yield
    finally:
        trainer_module.nn = original  # type: ignore[attr-defined]
