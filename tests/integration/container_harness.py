"""Run the pipeline's job steps as SageMaker runs them, with AWS's own code where AWS has some.

Train:    the rendered step's arguments, resolved for one execution, become the files SageMaker
          writes in a training container (/opt/ml/input/config/*.json, the `dataset` channel);
          then the `train` entry of AWS's sagemaker-training toolkit runs with the PyTorch
          image's SAGEMAKER_TRAINING_MODULE. The toolkit downloads the code tarball named by
          `sagemaker_submit_directory` from S3 (the emulator), pip-installs its requirements.txt
          and runs `sagemaker_program` with the hyperparameters.
Evaluate: the step's ProcessingInputs are copied from S3 to their LocalPaths (S3Prefix, as the
          service does), then ContainerEntrypoint + ContainerArguments run verbatim.

Several instances (TrainingInstanceCount > 1): one container per host, run together
(`run_together`), each with its own /opt; resourceconfig.json names the hosts by loopback addresses
(127.0.0.1, 127.0.0.2, ...), which resolve without DNS, so the toolkit's torchrun rendezvous at the
first host reaches the others over this machine's loopback. `torchrun` is on the image's PATH; here a
shim in each container's bin/ runs torch's launcher with the toolkit's interpreter.

Each job gets a root folder that a private mount namespace (`unshare`) binds over /opt, and over
each /tmp/<folder> its command names (not all of /tmp: the checkout and .venv-toolkit may lie
there), so every container path in the definition (/opt/ml/..., CheckpointConfig's LocalPath, the
processing LocalPaths, /tmp/yolopipe-code) is used as written, and nothing lands in the machine's
own /opt.
The toolkit and the jobs run in .venv-toolkit (Python 3.11, the toolkits, layered over .venv for
torch and training_code/requirements.txt, see toolkit-requirements.txt) with PIP_NO_INDEX=1: the
toolkit's `pip install -r requirements.txt` must find every pin installed, nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOOLKIT_VENV = REPO / ".venv-toolkit"
#: The module the PyTorch training image names in SAGEMAKER_TRAINING_MODULE.
PYTORCH_TRAINING_MODULE = "sagemaker_pytorch_container.training:main"
#: The container paths a job's root folder stands in for.
_MOUNTED = ("opt", "tmp")
#: /opt whole; under /tmp, each folder of the job's own tmp (mount points made as needed).
_ISOLATE = ('mount --bind "$0/opt" /opt || exit 97; '
            'for d in "$0"/tmp/*/; do [ -d "$d" ] || continue; n=$(basename "$d"); '
            'mkdir -p "/tmp/$n" && mount --bind "$d" "/tmp/$n" || exit 97; done; exec "$@"')
_TMP_FOLDER = re.compile(r"/tmp/([A-Za-z0-9._-]+)")


def isolation_problem() -> str | None:
    """Why jobs cannot get a private /opt and /tmp here (None when they can)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "--map-root-user", "--mount", "true"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        return f"no private mount namespace for the container paths: {probe.stderr.strip()}"
    return None


def toolkit_test_marks() -> list[Any]:
    """The marks of a module whose tests run containers through the toolkits: skipped, saying why, where
    .venv-toolkit or a private mount namespace is missing."""
    import pytest

    problem = isolation_problem()
    return [
        pytest.mark.integration,
        pytest.mark.skipif(not (TOOLKIT_VENV / ".installed").is_file(),
                           reason="needs .venv-toolkit: make .venv-toolkit/.installed (make integration does)"),
        pytest.mark.skipif(problem is not None, reason=str(problem)),
    ]


def all_steps(definition: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, condition branches included."""
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: Sequence[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            visit(step.get("Arguments", {}).get("IfSteps", []))
            visit(step.get("Arguments", {}).get("ElseSteps", []))

    visit(definition["Steps"])
    return found


@dataclass
class Container:
    """One job's filesystem: `root/opt` is its /opt, `root/tmp` its /tmp."""

    root: Path

    def __post_init__(self) -> None:
        for name in _MOUNTED:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        torchrun = self.root / "bin" / "torchrun"
        torchrun.parent.mkdir(exist_ok=True)
        torchrun.write_text(f'#!/bin/sh\nexec "{TOOLKIT_VENV / "bin" / "python"}" -m torch.distributed.run "$@"\n')
        torchrun.chmod(0o755)

    def host(self, container_path: str) -> Path:
        """`/opt/ml/model` -> `<root>/opt/ml/model`: where a container path lies on this machine."""
        path = Path(container_path)
        if not path.is_absolute() or path.parts[1] not in _MOUNTED:
            raise ValueError(f"{container_path} is outside the job's /opt and /tmp")
        return self.root.joinpath(*path.parts[1:])

    def run(self, command: Sequence[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run `command` with this root bound over /opt and its /tmp folders (stdout and stderr together, also
        kept in `<root>/job.log`)."""
        [process] = run_together([(self, command, env)], timeout)
        return process

    def start(self, command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
        """Start `command` in this container (see `run`), its output to `<root>/job.log`."""
        # Container paths under /tmp that the command names; not this machine's own (the checkout,
        # .venv-toolkit and the job's root may lie under /tmp too).
        ours = (REPO.resolve(), TOOLKIT_VENV.resolve(), self.root.resolve())
        for name in {m for part in command for m in _TMP_FOLDER.findall(str(part))}:
            if not any(path.is_relative_to(Path("/tmp", name)) for path in ours):  # noqa: S108
                (self.root / "tmp" / name).mkdir(parents=True, exist_ok=True)
        wrapped = ["unshare", "--map-root-user", "--mount", "sh", "-c", _ISOLATE, str(self.root), *command]
        env = {**env, "PATH": f"{self.root / 'bin'}:{env.get('PATH', '')}"}
        with (self.root / "job.log").open("w") as log:
            return subprocess.Popen(wrapped, env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT, text=True)


def run_together(jobs: Sequence[tuple[Container, Sequence[str], Mapping[str, str]]],
                 timeout: float) -> list[subprocess.CompletedProcess[str]]:
    """Run each (container, command, env) at once, as the instances of one job start; wait for all."""
    started = [(container, command, container.start(command, env)) for container, command, env in jobs]
    done = []
    try:
        for container, command, process in started:
            code = process.wait(timeout=timeout)
            done.append(subprocess.CompletedProcess(list(command), code, (container.root / "job.log").read_text()))
    finally:
        for _, _, process in started:
            if process.poll() is None:
                process.kill()
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def training_hosts(count: int) -> list[str]:
    """Host names for `count` instances that resolve here without DNS: 127.0.0.1, 127.0.0.2, ..."""
    return ["localhost"] if count == 1 else [f"127.0.0.{index + 1}" for index in range(count)]


def job_environment(aws: Mapping[str, str], step_environment: Mapping[str, Any], **extra: str) -> dict[str, str]:
    """A container's environment: the image's basics, the step's Environment, AWS (the emulator).

    PIP_NO_INDEX makes any pip install that would need a download fail instead of downloading.
    PET_MASTER_PORT: torchrun's port for one instance (default 29500), free here, where jobs share a network.
    """
    return {
        "PATH": f"{TOOLKIT_VENV / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/opt/ml/.home",  # the job's own (a SageMaker container's is /root)
        "LANG": "C.UTF-8",
        "PIP_NO_INDEX": "1",
        "PET_MASTER_PORT": str(free_port()),
        **aws,
        **{key: str(value) for key, value in step_environment.items()},
        **extra,
    }


def write_training_config(container: Container, arguments: Mapping[str, Any], hosts: Sequence[str] = ("localhost",),
                          current_host: str = "localhost") -> None:
    """The files SageMaker writes under /opt/ml/input/config for CreateTrainingJob `arguments`, on the
    instance `current_host` of `hosts` (`training_hosts`: the PyTorch toolkit waits until every host resolves).
    """
    config = container.host("/opt/ml/input/config")
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(arguments.get("HyperParameters") or {})))
    channels = {
        channel["ChannelName"]: {
            "TrainingInputMode": channel.get("InputMode")
            or arguments["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            "S3DistributionType": channel["DataSource"]["S3DataSource"].get("S3DistributionType",
                                                                            "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        for channel in arguments.get("InputDataConfig") or []
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    instance_type = str(arguments["ResourceConfig"]["InstanceType"])
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": current_host,
        "hosts": list(hosts),
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                             "hosts": list(hosts)}],
        "network_interface_name": "lo",
    }))
    for folder in ("/opt/ml/model", "/opt/ml/output/data"):
        container.host(folder).mkdir(parents=True, exist_ok=True)
    checkpoint = arguments.get("CheckpointConfig") or {}
    if checkpoint.get("LocalPath"):
        container.host(checkpoint["LocalPath"]).mkdir(parents=True, exist_ok=True)


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def upload_folder(s3: Any, folder: Path, uri: str) -> None:
    bucket, prefix = split_s3(uri)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}")


def upload_model(s3: Any, model_dir: Path, uri: str, scratch: Path) -> None:
    """What SageMaker does with /opt/ml/model at the end of a training job: model.tar.gz at `uri`."""
    archive = scratch / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    bucket, key = split_s3(uri)
    s3.upload_file(str(archive), bucket, key)


def download_prefix(s3: Any, uri: str, target: Path) -> list[str]:
    """S3Prefix input: every object under the URI's key, at its path relative to the key (an exact
    object key lands under its own file name). Returns the relative paths."""
    bucket, prefix = split_s3(uri)
    target.mkdir(parents=True, exist_ok=True)
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target / relative))
            found.append(relative)
    return found
