"""A dataset's `yolopipe.yaml`: parameter overrides beside data.yaml (any spelling: `epochs: 50`,
`model_variant: s`), checked against the shared parameter bounds, `only_overridable` (a dataset
cannot lower its own quality gate) and the stack's MaxEpochs. The trigger, the CLI and the local
mode read it with this one parser.
"""

from __future__ import annotations

import yaml

from . import parameters
from .data_yaml import Problem
from .errors import ParameterError

OVERRIDES_FILE = "yolopipe.yaml"
OVERRIDES_MAX_BYTES = 64 * 1024


def parse_overrides(text: str, max_epochs: int | None) -> tuple[dict[str, parameters.Value], list[Problem]]:
    """Parse and check an overrides file: a flat YAML mapping of parameter -> value."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return {}, [Problem(OVERRIDES_FILE, line, f"not valid YAML ({getattr(error, 'problem', error)})")]
    if data is None:
        return {}, []
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        return {}, [Problem(OVERRIDES_FILE, 1, "expected a mapping of parameter: value, e.g. `epochs: 50`")]
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    resolved: dict[str, parameters.Value] = {}
    problems: list[Problem] = []
    for key, value in data.items():
        try:
            resolved.update(parameters.resolve({str(key): value}, only_overridable=True, max_epochs=max_epochs))
        except ParameterError as error:
            problems.append(Problem(OVERRIDES_FILE, lines.get(str(key), 1), str(error)))
            continue
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
