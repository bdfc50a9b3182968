"""Pipeline parameters, defined once: name, type, default, bounds, help.

Managed spot is not among them: SageMaker refuses MaxWaitTimeInSeconds when spot is off and a
definition cannot leave a field out by a parameter's value, so spot is a stack setting
(template parameter UseSpotInstances, applied by the deploy function).

Read by the pipeline definition (pipeline/definition.py turns each spec into a SageMaker
Parameter), the trigger (per-dataset overrides), the CLI (`yolopipe run --epochs ...`) and the
notifier (what to show). Nothing else declares a parameter.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from . import ultralytics_settings
from .errors import ParameterError
from .weights import check_weights

Kind = Literal["string", "integer", "float", "boolean"]
Value = str | int | float | bool

#: An MLflow tracking URI the jobs may log to: empty (off), a SageMaker MLflow tracking server's ARN, or an
#: http(s) URL without user:password@ (it would reach the logs) and short enough for a processing job's
#: 256-character argument. template.yaml's MlflowTrackingUri AllowedPattern is the same rule.
MLFLOW_URI_PATTERN = (r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:mlflow-tracking-server/"
                      r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,127}"
                      r"|https?://[A-Za-z0-9.\-]{1,100}(:[0-9]{1,5})?(/[A-Za-z0-9._~%/\-]{0,80})?)?")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class ParameterSpec:
    """One pipeline parameter and the rules every entry point checks it against."""

    name: str
    kind: Kind
    default: Value
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    #: Step of an integer's allowed values (ImageSize is a multiple of 32).
    multiple_of: int | None = None
    #: May a dataset's overrides file set it? (A dataset must not lower its own quality gate.)
    overridable: bool = True
    #: Must be given when an execution starts (no useful default).
    required: bool = False
    #: Extra check with its own message, for rules the bounds cannot say.
    note_over_maximum: str | None = None
    #: Values inside the bounds that are still refused (BatchSize 0: -1 means auto, else 1 or more).
    excluded: tuple[int, ...] = ()
    #: The training job's hyperparameter (train.py's argument, Ultralytics' name) it is passed as.
    hyperparameter: str | None = None
    #: A string parameter's own check and canonical form (Weights, UltralyticsSettings).
    check: Callable[[object], str] | None = None

    @property
    def sagemaker_type(self) -> str:
        """The pipeline definition's parameter type: String, Integer, Float or Boolean."""
        return self.kind.capitalize()

    @property
    def snake(self) -> str:
        """`MinMap50_95` -> `min_map50_95`: the Python / YAML spelling."""
        return _snake(self.name)

    @property
    def flag(self) -> str:
        """`MinMap50_95` -> `--min-map50-95`: the CLI spelling."""
        return "--" + self.snake.replace("_", "-")

    def coerce(self, raw: object) -> Value:
        """Parse and check one value; raise ParameterError with a one-line fix on failure."""
        value = self._parse(raw)
        self._check(value)
        return value

    def _parse(self, raw: object) -> Value:
        if self.kind == "boolean":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ParameterError(f"{self.name} must be true or false, got {raw!r}")
        if self.kind == "integer":
            if isinstance(raw, bool):
                raise ParameterError(f"{self.name} must be an integer, got {raw!r}")
            try:
                number = float(str(raw).strip())
            except ValueError:
                raise ParameterError(f"{self.name} must be an integer, got {raw!r}") from None
            if not number.is_integer():
                raise ParameterError(f"{self.name} must be an integer, got {raw!r}")
            return int(number)
        if self.kind == "float":
            if isinstance(raw, bool):
                raise ParameterError(f"{self.name} must be a number, got {raw!r}")
            try:
                number = float(str(raw).strip())
            except ValueError:
                raise ParameterError(f"{self.name} must be a number, got {raw!r}") from None
            if not math.isfinite(number):  # NaN passes every bound check (all comparisons are False)
                raise ParameterError(f"{self.name} must be a finite number, got {raw!r}")
            return number
        if self.check is not None:
            return self.check(raw)
        return str(raw).strip()

    def _check(self, value: Value) -> None:
        if self.choices is not None and str(value) not in self.choices:
            raise ParameterError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            # A URL's user:password@ is a secret: never echoed into an error (hence a log or a notice).
            shown = "(a URL with credentials, not shown)" if re.search(r"//[^/\s]*@", str(value)) else repr(value)
            raise ParameterError(f"{self.name} {shown} is not valid: {self.help}")
        if self.kind in ("integer", "float") and not isinstance(value, bool):
            assert isinstance(value, int | float)
            if not math.isfinite(value):
                raise ParameterError(f"{self.name} must be a finite number, got {value!r}")
            if value in self.excluded:
                raise ParameterError(f"{self.name} cannot be {value}: {self.help}")
            if self.minimum is not None and value < self.minimum:
                raise ParameterError(f"{self.name} must be at least {_num(self.minimum)}, got {value}")
            if self.maximum is not None and value > self.maximum:
                hint = f"; {self.note_over_maximum}" if self.note_over_maximum else ""
                raise ParameterError(f"{self.name} must be at most {_num(self.maximum)}, got {value}{hint}")
            if self.multiple_of and int(value) % self.multiple_of:
                raise ParameterError(f"{self.name} must be a multiple of {self.multiple_of}, got {value}")

    def to_string(self, value: Value) -> str:
        """The string SageMaker's StartPipelineExecution takes for this parameter."""
        if self.kind == "boolean":
            return "true" if value else "false"
        return str(value)


def _snake(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return text.replace("S3_Uri", "s3_uri").lower()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        "DatasetS3Uri", "string", "",
        "S3 URI of the dataset folder, s3://<bucket>/datasets/<name>/ (data.yaml at its root)",
        pattern=r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+/", overridable=False, required=True,
    ),
    ParameterSpec(
        "ModelVariant", "string", "n",
        "YOLO11 size: n (fastest, cheapest), s, m, l or x (most accurate)",
        choices=("n", "s", "m", "l", "x"), hyperparameter="variant",
    ),
    ParameterSpec("Epochs", "integer", 100, "training epochs (early stopping may end sooner)",
                  minimum=1, maximum=1000, hyperparameter="epochs"),
    ParameterSpec(
        "BatchSize", "integer", -1,
        "images per batch; -1 sizes it to the GPU memory (the fast default), CPU uses 16",
        minimum=-1, maximum=1024, excluded=(0,), hyperparameter="batch",
    ),
    ParameterSpec("ImageSize", "integer", 640, "training and evaluation image size in pixels",
                  minimum=32, maximum=2048, multiple_of=32, hyperparameter="imgsz"),
    ParameterSpec("LearningRate", "float", 0.01, "initial learning rate (Ultralytics lr0)",
                  minimum=1e-6, maximum=1.0, hyperparameter="lr0"),
    ParameterSpec(
        "TrainingInstanceType", "string", "ml.g4dn.xlarge",
        "SageMaker training instance type, e.g. ml.g4dn.xlarge (1 GPU) or ml.g5.12xlarge (4 GPUs)",
        pattern=r"ml\.[a-z0-9]+\.[a-z0-9]+",
    ),
    ParameterSpec(
        "TrainingInstanceCount", "integer", 1,
        "number of training instances; more than 1 trains on all of them at once (torchrun, one process per GPU)",
        minimum=1, maximum=8,
        note_over_maximum="YOLO training gains little past 8 instances: pick a larger multi-GPU instance type "
                          "such as ml.p4d.24xlarge instead",
    ),
    ParameterSpec("MaxRuntimeSeconds", "integer", 86400,
                  "training time limit in seconds, waiting for spot capacity included",
                  minimum=600, maximum=28 * 86400),
    ParameterSpec(
        "DatasetVersion", "string", "",
        "version of the dataset's data.yaml (S3 versionId or ETag), set by the trigger and by `run`: "
        "it keys the training cache and checkpoints, so a new upload retrains and a retry does not",
        pattern=r"[A-Za-z0-9._+/=\-]{0,1024}", overridable=False,
    ),
    ParameterSpec(
        "DatasetName", "string", "dataset",
        "the dataset's name as a label (`dataset_label`), set by the trigger and by `run`: it names the "
        "checkpoints and the registered model's metadata, where S3 URIs and most punctuation are refused",
        pattern=r"[\w.\-]{1,64}", overridable=False,
    ),
    ParameterSpec("MinMap50_95", "float", 0.5,
                  "quality gate: register the model only if mAP50-95 reaches this value",
                  minimum=0.0, maximum=1.0, overridable=False),
    ParameterSpec("MinImprovement", "float", 0.0,
                  "champion/challenger gate: register only if mAP50-95 beats the group's latest approved model "
                  "by at least this much (negative: may be that much worse; no approved model: this gate passes)",
                  minimum=-1.0, maximum=1.0, overridable=False),
    ParameterSpec(
        "Weights", "string", "pretrained",
        "what training starts from: pretrained (the official yolo11<variant>.pt), scratch, s3://BUCKET/KEY.pt "
        "(or a model.tar.gz) or a model package ARN; `yolopipe weights stage` puts the official file in the bucket",
        check=check_weights, hyperparameter="weights",
    ),
    ParameterSpec(
        "UltralyticsSettings", "string", "{}",
        "any other Ultralytics train setting, as a JSON object (patience, optimizer, mosaic, ...); "
        "set them by name: `patience: 20` in yolopipe.yaml, --set patience=20",
        check=ultralytics_settings.check_parameter, hyperparameter="settings",
    ),
    ParameterSpec(
        "ModelPackageGroupName", "string", "yolopipe-models",
        "model package group the approved candidates are registered in",
        pattern=r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", overridable=False,
    ),
    ParameterSpec(
        "MlflowTrackingUri", "string", "",
        "MLflow tracking: a SageMaker MLflow tracking server ARN or an http(s) tracking URI without credentials "
        "(empty: off); the stack's MlflowTrackingUri by default",
        pattern=MLFLOW_URI_PATTERN, overridable=False, hyperparameter="mlflow_tracking_uri",
    ),
)

#: Longest DatasetName: an S3 key segment of the checkpoints, and far below the 256 characters of a
#: CustomerMetadataProperties value.
DATASET_LABEL_MAX = 64
_LABEL_REFUSED = re.compile(r"[^\w.\-]+")  # \w: Unicode letters and digits, and "_"


def dataset_label(name: str) -> str:
    """`Zebras & Ünïcode v2` -> `Zebras-Ünïcode-v2-<8 hex>`: the dataset's name as DatasetName.

    Keeps Unicode letters and digits, `_`, `.` and `-`; any other run becomes one `-`. That is what
    both CreateModelPackage's CustomerMetadataProperties (`[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`, botocore's
    model) and an S3 key segment take without escaping (no `/`, `:`, `+` or space). A name that
    had to change gets a short hash of itself, so `a&b` and `a(b` still name different checkpoints.
    """
    text = unicodedata.normalize("NFC", name.strip().strip("/"))
    label = re.sub(r"-{2,}", "-", _LABEL_REFUSED.sub("-", text)).strip("-.")
    if label == text and 0 < len(label) <= DATASET_LABEL_MAX:
        return label
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = label[: DATASET_LABEL_MAX - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}" if head else f"dataset-{digest}"


def dataset_parameters(dataset_uri: str, version: str) -> dict[str, Value]:
    """The dataset's three pipeline parameters: its URI, its version and its name as a label.

    `s3://b/datasets/Zebras & co/` -> DatasetS3Uri as given, DatasetVersion, DatasetName `Zebras-co-<hash>`.
    """
    name = dataset_uri.rstrip("/").rsplit("/", 1)[-1]
    return {"DatasetS3Uri": dataset_uri, "DatasetVersion": version, "DatasetName": dataset_label(name)}


BY_NAME: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}
_ALIASES: dict[str, ParameterSpec] = {}
for _spec in PARAMETERS:
    # Ultralytics' name (imgsz, batch, lr0...) is one more spelling of the parameter it is passed as.
    for _alias in (_spec.name, _spec.name.lower(), _spec.snake, _spec.flag, _spec.flag[2:], _spec.hyperparameter):
        if _alias:
            _ALIASES[_alias] = _spec


def spec_for(key: str) -> ParameterSpec:
    """Find a parameter by any spelling (`Epochs`, `epochs`, `--min-map50-95`...), or say the close match."""
    spec = _ALIASES.get(key) or _ALIASES.get(key.lower())
    if spec is not None:
        return spec
    names = [s.snake for s in PARAMETERS]
    wanted = _snake(key.lstrip("-").replace("-", "_"))
    close = difflib.get_close_matches(wanted, [*names, *ultralytics_settings.catalogue()], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(names)} and Ultralytics' settings"
    raise ParameterError(f"unknown parameter or Ultralytics setting {key!r}{hint}")


def defaults() -> dict[str, Value]:
    """Every parameter's default, keyed by pipeline name."""
    return {spec.name: spec.default for spec in PARAMETERS}


def resolve(
    overrides: Mapping[str, object] | None = None,
    *,
    only_overridable: bool = False,
    max_epochs: int | None = None,
) -> dict[str, Value]:
    """Check `overrides` (any spelling) and return just them, keyed by pipeline name, typed.

    `only_overridable` refuses the parameters a dataset may not set itself; `max_epochs` is the
    stack's cap on what a dataset may ask for.
    """
    resolved: dict[str, Value] = {}
    settings: dict[str, object] = {}
    for key, raw in (overrides or {}).items():
        name = str(key).strip().lstrip("-").replace("-", "_")
        if not _known(str(key)) and (ultralytics_settings.is_setting(name) or name in ultralytics_settings.RESERVED):
            settings[name] = raw  # an Ultralytics setting by its own name: into UltralyticsSettings
            continue
        spec = spec_for(str(key))
        if only_overridable and not spec.overridable:
            raise ParameterError(f"{spec.name} cannot be set by a dataset; set it on the stack or with yolopipe run")
        if spec.name in resolved:
            raise ParameterError(f"{spec.name} is given twice")
        value = spec.coerce(raw)
        if spec.name == "Epochs" and max_epochs is not None and int(value) > max_epochs:
            raise ParameterError(f"Epochs must be at most {max_epochs} on this stack (MaxEpochs), got {value}")
        resolved[spec.name] = value
    if settings:
        merged = {**ultralytics_settings.decode(resolved.get("UltralyticsSettings", "{}")), **settings}
        resolved["UltralyticsSettings"] = ultralytics_settings.encode(merged)
    check_learning_rate(resolved)
    return resolved


def gate_warning(run_gate: object, stack_gate: object) -> str:
    """`quality gate lowered to 0.3 for this run (the stack's MinMap50_95 is 0.5)`, or "" when it was not."""
    try:
        run, stack = float(str(run_gate)), float(str(stack_gate))
    except ValueError:
        return ""
    if run >= stack:
        return ""
    return f"quality gate lowered to {_num(run)} for this run (the stack's MinMap50_95 is {_num(stack)})"


def check_gate(values: Mapping[str, Value], stack_gate: object, *, lower_gate: bool) -> str:
    """Refuse a MinMap50_95 below the stack's gate unless `lower_gate`; return the warning to show."""
    warning = gate_warning(values.get("MinMap50_95", stack_gate), stack_gate)
    if warning and not lower_gate:
        raise ParameterError(f"MinMap50_95 {values['MinMap50_95']} is below this stack's quality gate "
                             f"{_num(float(str(stack_gate)))}; pass --lower-gate (lower_gate=True) to lower it "
                             "for this run")
    return warning


def _known(key: str) -> bool:
    return key in _ALIASES or key.lower() in _ALIASES


def check_learning_rate(values: Mapping[str, Value]) -> None:
    """Ultralytics' optimizer=auto ignores lr0 (and momentum): a rate asked for with it would do nothing.
    Without an optimizer named, train.py picks SGD when the rate differs from the default."""
    settings = ultralytics_settings.decode(values.get("UltralyticsSettings", "{}"))
    rate_given = "LearningRate" in values or "momentum" in settings
    if rate_given and str(settings.get("optimizer", "")).lower() == "auto":
        raise ParameterError("optimizer=auto ignores lr0 and momentum (it chooses its own); name an optimizer "
                             "(SGD, AdamW, ...) or leave the learning rate at its default")


def to_execution_parameters(values: Mapping[str, Value]) -> list[dict[str, str]]:
    """`{"Epochs": 5}` -> `[{"Name": "Epochs", "Value": "5"}]` for StartPipelineExecution, in spec order."""
    return [
        {"Name": spec.name, "Value": spec.to_string(values[spec.name])}
        for spec in PARAMETERS
        if spec.name in values
    ]


def from_execution_parameters(items: Iterable[Mapping[str, str]]) -> dict[str, Value]:
    """The inverse, for what DescribePipelineExecution / ListPipelineParametersForExecution return."""
    values: dict[str, Value] = {}
    for item in items:
        spec = BY_NAME.get(item["Name"])
        if spec is not None:
            values[spec.name] = spec._parse(item["Value"])
    return values
