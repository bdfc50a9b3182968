"""A training job on several instances in local mode: one process per instance, as SageMaker's
PyTorch toolkit starts them (`torchrun --nnodes N`, one process per instance on a CPU).

Each instance gets its own folder laid out like its container (`<step>/algo-K/opt/ml`: its own copy
of every channel, FullyReplicated, and of the checkpoints) and torchrun's environment (RANK,
LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); the first instance is the
step's own folder, whose model dir and checkpoints the executor uploads, as rank 0 is the one that
writes them. The other instances' output goes to `<step>/algo-K.log`.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MASTER_ADDR = "127.0.0.1"


def host_name(index: int) -> str:
    """SageMaker's name of the index-th instance (0-based): algo-1, algo-2, ..."""
    return f"algo-{index + 1}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((MASTER_ADDR, 0))
        return int(probe.getsockname()[1])


def torchrun_environment(rank: int, count: int, port: int) -> dict[str, str]:
    """What torchrun gives the one process of instance `rank` among `count` (one process per instance)."""
    return {
        "RANK": str(rank), "LOCAL_RANK": "0", "GROUP_RANK": str(rank), "ROLE_RANK": str(rank),
        "WORLD_SIZE": str(count), "LOCAL_WORLD_SIZE": "1", "ROLE_WORLD_SIZE": str(count),
        "MASTER_ADDR": MASTER_ADDR, "MASTER_PORT": str(port),
        "SM_HOSTS": json.dumps([host_name(i) for i in range(count)]), "SM_CURRENT_HOST": host_name(rank),
    }


def relocate(text: str, first: Path, other: Path) -> str:
    """A path of the first instance's container as the same path in another instance's."""
    return text.replace(str(first), str(other))


@dataclass
class OtherInstances:
    """Instances 2..N of one training job: prepared, started, then waited for."""

    step_folder: Path
    count: int
    port: int = field(default_factory=free_port)
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def folder(self, rank: int) -> Path:
        return self.step_folder / host_name(rank)

    def prepare(self, first_ml: Path, download: Callable[[str, Path], int], channels: Mapping[str, str],
                checkpoint_uri: str | None) -> None:
        """Each instance's own container folders, channels and checkpoints (what SageMaker copies to each)."""
        for rank in range(1, self.count):
            ml = self.folder(rank) / "opt" / "ml"
            for path in (ml / "model", ml / "output" / "data", ml / "checkpoints", ml / "input" / "config"):
                path.mkdir(parents=True, exist_ok=True)
            for name, uri in channels.items():
                download(uri, ml / "input" / "data" / name)
            if checkpoint_uri:
                download(checkpoint_uri, ml / "checkpoints")
            config = first_ml / "input" / "config" / "hyperparameters.json"
            if config.is_file():
                (ml / "input" / "config" / "hyperparameters.json").write_text(config.read_text())

    def start(self, command: Sequence[str], env: Mapping[str, str], first_folder: Path, cwd: Path) -> None:
        """Start instances 2..N: the first instance's command and environment, moved to their own folders."""
        for rank in range(1, self.count):
            folder = self.folder(rank)
            own_env = {**{k: relocate(v, first_folder, folder) for k, v in env.items()},
                       **torchrun_environment(rank, self.count, self.port)}
            log = self.step_folder.parent / f"{self.step_folder.name}-{host_name(rank)}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen([relocate(part, first_folder, folder) for part in command], cwd=cwd,
                                           env=own_env, stdout=out, stderr=subprocess.STDOUT)
            self.processes.append((host_name(rank), process, log))

    def wait(self, timeout: float) -> str | None:
        """Wait for every other instance; the first failure as `algo-K exited N: <last line>`, or None."""
        failure = None
        for host, process, log in self.processes:
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0 and failure is None:
                lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
                failure = f"{host} exited {code}: {lines[-1].strip() if lines else 'no output'}"
        return failure

    def stop(self) -> None:
        for _, process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
