"""Settings every test shares: no real AWS, no network for Ultralytics, generated datasets."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Fake credentials and a region before anything builds a boto3 client: no test may reach AWS.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[_name] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "yolopipe-tests"

# AWS is the oracle: every boto3 client the tests make refuses what AWS refuses (lengths, enums,
# patterns; pipeline steps as their requests), which moto alone accepts.
from yolopipe.local.strict import install as _install_strict_requests  # noqa: E402

_install_strict_requests()

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"


@pytest.fixture(scope="session", autouse=True)
def _yolo_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ultralytics settings in a temp folder with a local font, so nothing tries a download."""
    config_dir = tmp_path_factory.mktemp("yolo-config")
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    try:
        import matplotlib

        font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        (config_dir / "Ultralytics").mkdir(exist_ok=True)
        shutil.copy(font, config_dir / "Ultralytics" / "Arial.ttf")
    except ImportError:  # the unit tests do not need matplotlib
        pass
    return config_dir


@pytest.fixture
def sample_dataset(tmp_path: Path):
    """Factory: `sample_dataset(train=16, val=8, test=0, imgsz=64, ...)` -> SampleDataset in tmp_path."""
    from yolopipe.datasets.sample import generate_dataset

    def make(name: str = "dataset", **kwargs):
        return generate_dataset(tmp_path / name, **kwargs)

    return make


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`cli("upload", path, "--name", "x")` -> Result(exit code, stdout, stderr), as a user sees them."""

    def run(*argv: str) -> Result:
        from yolopipe.cli import main

        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse usage errors and --help
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
