"""A dataset's `yolopipe.yaml`: parameter overrides beside data.yaml (any spelling: `epochs: 50`,
`model_variant: s`, `imgsz: 320`) and any Ultralytics train setting by its own name (`patience: 20`,
`optimizer: AdamW`; they become the UltralyticsSettings parameter), checked against the shared
parameter bounds, `only_overridable` (a dataset
cannot lower its own quality gate) and the stack's cost bounds (StackLimits: MaxEpochs, the
allowed training instance types, the longest training run). The trigger, the CLI and the local
mode read it with this one parser.

The file is untrusted (anyone who can write to the bucket wrote it): at most 64 KiB and
MAX_OVERRIDES_NODES YAML values with aliases expanded, one scalar per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from . import parameters, ultralytics_settings
from .data_yaml import Problem, YamlTooLarge, load_untrusted_yaml, short
from .errors import ParameterError

OVERRIDES_FILE = "yolopipe.yaml"
OVERRIDES_MAX_BYTES = 64 * 1024
#: A flat mapping of a dozen parameters is ~25 values; aliases cannot make it stand for more than this.
MAX_OVERRIDES_NODES = 200


@dataclass(frozen=True)
class StackLimits:
    """The stack's bounds on what a dataset may choose (template parameters MaxEpochs,
    AllowedTrainingInstanceTypes, MaxTrainingRuntimeSeconds, MaxTrainingInstanceCount). None: only the
    parameter's own bounds."""

    max_epochs: int | None = None
    allowed_instance_types: tuple[str, ...] | None = None
    max_runtime_seconds: int | None = None
    #: Instances training together: each multiplies the bill, so an uploader gets 1 unless the deployer allows more.
    max_instance_count: int | None = None

    @classmethod
    def from_stack_parameters(cls, values: dict[str, str]) -> StackLimits:
        """The limits a deployed stack set (CloudFormation's parameter values by name); the template's
        defaults for any it does not list."""
        default = TEMPLATE_DEFAULT_LIMITS

        def number(name: str, fallback: int | None) -> int | None:
            try:
                return int(values[name])
            except (KeyError, ValueError):
                return fallback

        types = tuple(t.strip() for t in values.get("AllowedTrainingInstanceTypes", "").split(",") if t.strip())
        return cls(number("MaxEpochs", default.max_epochs), types or default.allowed_instance_types,
                   number("MaxTrainingRuntimeSeconds", default.max_runtime_seconds),
                   number("MaxTrainingInstanceCount", default.max_instance_count))

    def check(self, name: str, value: parameters.Value) -> None:
        """Raise ParameterError when `value` of parameter `name` is outside the stack's bounds."""
        if name == "Epochs" and self.max_epochs is not None and int(value) > self.max_epochs:
            raise ParameterError(f"Epochs must be at most {self.max_epochs} on this stack (MaxEpochs), got {value}")
        if (name == "TrainingInstanceType" and self.allowed_instance_types is not None
                and value not in self.allowed_instance_types):
            raise ParameterError(f"TrainingInstanceType {value} is not allowed on this stack; choose one of "
                                 f"{', '.join(self.allowed_instance_types)} (AllowedTrainingInstanceTypes)")
        if name == "MaxRuntimeSeconds" and self.max_runtime_seconds is not None and int(value) > \
                self.max_runtime_seconds:
            raise ParameterError(f"MaxRuntimeSeconds must be at most {self.max_runtime_seconds} on this stack "
                                 f"(MaxTrainingRuntimeSeconds), got {value}")
        if name == "TrainingInstanceCount" and self.max_instance_count is not None and int(value) > \
                self.max_instance_count:
            raise ParameterError(f"TrainingInstanceCount must be at most {self.max_instance_count} on this stack "
                                 f"(MaxTrainingInstanceCount: each instance is billed), got {value}")


#: template.yaml's defaults of MaxEpochs, AllowedTrainingInstanceTypes, MaxTrainingRuntimeSeconds and
#: MaxTrainingInstanceCount: the
#: limits a stack has unless its deployer changed them (tests/unit/shared/test_stack_limits.py compares).
TEMPLATE_DEFAULT_LIMITS = StackLimits(
    max_epochs=300,
    allowed_instance_types=("ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g6.xlarge",
                            "ml.g6.2xlarge"),
    max_runtime_seconds=86400,
    max_instance_count=1,
)


def parse_overrides(text: str, limits: StackLimits | None = None) -> tuple[dict[str, parameters.Value], list[Problem]]:
    """Parse and check an overrides file: a flat YAML mapping of parameter -> value."""
    limits = limits or StackLimits()
    if len(text) > OVERRIDES_MAX_BYTES:
        return {}, [Problem(OVERRIDES_FILE, None, f"is larger than {OVERRIDES_MAX_BYTES // 1024} KiB; "
                                                  "it should hold a few parameters only")]
    try:
        node, data = load_untrusted_yaml(text, max_nodes=MAX_OVERRIDES_NODES)
    except YamlTooLarge as error:
        return {}, [Problem(OVERRIDES_FILE, error.line, f"{error}; write a flat mapping such as `epochs: 50`")]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return {}, [Problem(OVERRIDES_FILE, line, f"not valid YAML ({getattr(error, 'problem', None) or 'syntax'})")]
    except RecursionError:
        return {}, [Problem(OVERRIDES_FILE, None, "nests too deeply; write a flat mapping such as `epochs: 50`")]
    if data is None:
        return {}, []
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        return {}, [Problem(OVERRIDES_FILE, 1, "expected a mapping of parameter: value, e.g. `epochs: 50`")]
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    resolved: dict[str, parameters.Value] = {}
    settings: dict[str, object] = {}
    problems: list[Problem] = []
    for key, value in data.items():
        line = lines.get(str(key), 1)
        if isinstance(value, dict | list | set | tuple):
            problems.append(Problem(OVERRIDES_FILE, line, f"{short(key)} must be one value, not {short(value)}"))
            continue
        try:
            for name, checked in parameters.resolve({str(key): value}, only_overridable=True).items():
                limits.check(name, checked)
                if name == "UltralyticsSettings":  # one key at a time: gather them into one object
                    settings.update(ultralytics_settings.decode(checked))
                else:
                    resolved[name] = checked
        except ParameterError as error:
            problems.append(Problem(OVERRIDES_FILE, line, str(error)))
            continue
    try:
        if settings:
            resolved["UltralyticsSettings"] = ultralytics_settings.encode(settings)
        parameters.check_learning_rate(resolved)
    except ParameterError as error:
        problems.append(Problem(OVERRIDES_FILE, None, str(error)))
    names = [parameters.spec_for(str(k)).name for k in data if _known(str(k))]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(Problem(OVERRIDES_FILE, 1, f"{name} is given twice"))
    return resolved, problems


def _known(key: str) -> bool:
    try:
        parameters.spec_for(key)
    except ParameterError:
        return False
    return True
