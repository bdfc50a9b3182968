"""Ultralytics' train settings under their own names (`patience`, `optimizer`, `mosaic`, ...), checked
before anything starts, without torch or Ultralytics: against `ultralytics_settings.json`, generated
from the pinned Ultralytics' default.yaml and type lists (`python -m pipeline.generate_ultralytics_settings`).

They reach train.py as one JSON object, the UltralyticsSettings pipeline parameter (at most 1,024
characters: StartPipelineExecution's limit on a parameter value, tighter than CreateTrainingJob's
2,500 per hyperparameter). Ultralytics' own check_cfg runs again in the job. Keys the pipeline
controls are refused with the reason; epochs, imgsz, batch and lr0 are pipeline parameters
(Epochs, ImageSize, BatchSize, LearningRate) and are routed there by `parameters.resolve`.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ParameterError

CATALOGUE_FILE = Path(__file__).with_name("ultralytics_settings.json")
#: StartPipelineExecution: a Parameter's Value is a String1024 (botocore's service model).
MAX_JSON_CHARS = 1024
#: A value given as text (`--set k=v`) longer than this is refused before it is parsed.
MAX_VALUE_CHARS = 256

#: Settings the pipeline decides; a user setting one is told what to use instead.
RESERVED = {
    "data": "the dataset is the one the run names (DatasetS3Uri)",
    "model": "choose the size with ModelVariant and the starting point with Weights",
    "pretrained": "choose the starting point with Weights (pretrained, scratch, s3://..., a model package)",
    "project": "outputs go to the training job's model and checkpoint folders",
    "name": "outputs go to the training job's model and checkpoint folders",
    "exist_ok": "outputs go to the training job's model and checkpoint folders",
    "save_dir": "outputs go to the training job's model and checkpoint folders",
    "save": "the pipeline needs best.pt and last.pt",
    "resume": "an interrupted training resumes from its checkpoint by itself",
    "device": "the training instance decides (TrainingInstanceType); every GPU it has is used",
    "time": "it would override Epochs and the stack's MaxEpochs; use Epochs and MaxRuntimeSeconds",
    "mode": "the Train step trains",
    "task": "yolopipe trains detection models",
    "cfg": "give the settings themselves",
}
#: Ultralytics names of pipeline parameters (ParameterSpec.hyperparameter): set through the parameter.
PARAMETER_NAMES = ("epochs", "imgsz", "batch", "lr0")


@cache
def catalogue() -> dict[str, dict[str, Any]]:
    """Every Ultralytics setting of the pinned version: {key: {"type", "default", ["min"]}}."""
    return dict(json.loads(CATALOGUE_FILE.read_text())["settings"])


@cache
def pinned_version() -> str:
    return str(json.loads(CATALOGUE_FILE.read_text())["ultralytics"])


def is_setting(key: str) -> bool:
    return key in catalogue()


def suggest(key: str, also: Iterable[str] = ()) -> str:
    """`; did you mean 'patience'?` (Ultralytics' settings and `also`), or a pointer to the list."""
    close = difflib.get_close_matches(key, [*catalogue(), *also], n=1)
    return f"; did you mean {close[0]!r}?" if close else "; see `yolo cfg` for Ultralytics' train settings"


def parse_text(raw: object) -> Any:
    """A value as given on a command line (`20`, `0.5`, `AdamW`, `true`, `[0, 1]`) typed as Ultralytics
    types CLI values (`smart_value`: literal_eval, else the text); other values as they are."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if len(text) > MAX_VALUE_CHARS:
        raise ParameterError(f"a setting's value is {len(text)} characters long; at most {MAX_VALUE_CHARS}")
    lowered = text.lower()
    if lowered in ("none", "null", ""):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def check_setting(key: str, raw: object) -> Any:
    """One setting checked by its type in the catalogue: the typed value, or ParameterError in one line."""
    if key in RESERVED:
        raise ParameterError(f"{key!r} cannot be set: {RESERVED[key]}")
    if key in PARAMETER_NAMES:  # inside the JSON they would escape the parameter's bounds (MaxEpochs)
        raise ParameterError(f"{key!r} is a pipeline parameter: set it on its own (`{key}: ...`, --{key})")
    entry = catalogue().get(key)
    if entry is None:
        raise ParameterError(f"unknown setting {key!r}{suggest(key)}")
    value = parse_text(raw)
    kind = entry["type"]
    if value is None:
        if entry["default"] is not None and kind != "any":
            raise ParameterError(f"{key} cannot be empty (its default is {entry['default']!r})")
        return None
    if not _scalar_or_list(value):
        raise ParameterError(f"{key} must be a number, text, true/false or a list of them, got {value!r}")
    if kind in ("float", "fraction"):
        if key == "fraction" and isinstance(value, list | tuple):
            return list(value)
        # Stricter than Ultralytics on one point: true/false (YAML's yes/on too) is not a number here.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ParameterError(f"{key} must be a number, got {value!r}")
        if kind == "fraction" and key != "fraction" and not 0.0 <= value <= 1.0:
            raise ParameterError(f"{key} must be between 0.0 and 1.0, got {value}")
        return float(value) if kind == "float" or key != "fraction" else value
    if kind == "int":
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ParameterError(f"{key} must be an integer, got {value!r}")
        if "min" in entry and value < entry["min"]:
            raise ParameterError(f"{key} must be at least {entry['min']}, got {int(value)}")
        return int(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ParameterError(f"{key} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ParameterError(f"{key} must be text, got {value!r}")
        return value
    return list(value) if isinstance(value, tuple) else value


def _scalar_or_list(value: Any) -> bool:
    scalar = (str, int, float, bool)
    if isinstance(value, list | tuple):
        return len(value) <= 64 and all(isinstance(x, scalar) for x in value)
    return isinstance(value, scalar)


def check_settings(settings: Mapping[str, object]) -> dict[str, Any]:
    """Every setting checked (keys as Ultralytics spells them), typed, in key order."""
    return {str(key): check_setting(str(key), value) for key, value in sorted(settings.items())}


def decode(text: object) -> dict[str, Any]:
    """The UltralyticsSettings parameter's JSON object (a dict is taken as it is), checked."""
    if isinstance(text, Mapping):
        return check_settings(text)
    raw = str(text).strip() or "{}"
    if len(raw) > MAX_JSON_CHARS:
        raise ParameterError(f"UltralyticsSettings is {len(raw)} characters long; at most {MAX_JSON_CHARS}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ParameterError("UltralyticsSettings must be a JSON object such as {\"patience\": 20}") from None
    if not isinstance(value, dict):
        raise ParameterError("UltralyticsSettings must be a JSON object such as {\"patience\": 20}")
    return check_settings(value)


def encode(settings: Mapping[str, Any]) -> str:
    """The UltralyticsSettings value: compact JSON, keys sorted (one spelling, one cache key)."""
    text = json.dumps(check_settings(settings), sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_JSON_CHARS:
        raise ParameterError(f"the Ultralytics settings are {len(text)} characters as JSON; a pipeline parameter "
                             f"holds at most {MAX_JSON_CHARS}: set fewer")
    return text


def check_parameter(raw: object) -> str:
    """ParameterSpec check of UltralyticsSettings: its canonical JSON."""
    return encode(decode(raw))
