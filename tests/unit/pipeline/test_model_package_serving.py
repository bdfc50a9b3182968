"""The registered model package serves: its image and content types are those code/inference.py was
tested with (tests/integration/test_container_contract.py runs it through the inference toolkit)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[3]
SERVING = REPO / "training_code" / "serving"


def _inference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("inference", SERVING / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==", 1) for line in lines if "==" in line)


def test_package_names_the_inference_image_and_what_input_fn_accepts(steps: dict[str, Any]) -> None:
    """GIVEN the rendered Register step WHEN a client reads its InferenceSpecification THEN it names the
    PyTorch inference image code/inference.py targets, and the content types its input_fn accepts and
    output_fn answers, no more, no fewer."""
    inference = _inference()
    [container] = steps["Register"]["Arguments"]["InferenceSpecification"]["Containers"]
    spec = steps["Register"]["Arguments"]["InferenceSpecification"]
    assert container["Image"].endswith("/pytorch-inference:2.6.0-gpu-py312")
    assert "pytorch-inference:2.6.0-gpu-py312" in (SERVING / "requirements.txt").read_text()
    assert tuple(spec["SupportedContentTypes"]) == inference.CONTENT_TYPES
    assert tuple(spec["SupportedResponseMIMETypes"]) == inference.RESPONSE_TYPES


def test_serving_runs_the_ultralytics_that_trained_the_model() -> None:
    """GIVEN the serving requirements (installed by the inference container) and the training ones
    WHEN compared THEN every package both pin has the same version (a model loads as it was saved)."""
    serving, training = _pins(SERVING / "requirements.txt"), _pins(REPO / "training_code" / "requirements.txt")
    assert "ultralytics" in serving
    assert {name: version for name, version in serving.items() if name in training} == {
        name: training[name] for name in serving if name in training}
