"""Evaluate the expressions of a SageMaker pipeline definition: what the service does server-side.

A definition's arguments hold plain JSON values and expression objects:
`{"Get": "Parameters.Epochs"}`, `{"Get": "Execution.PipelineExecutionId"}`,
`{"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}`,
`{"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}`,
`{"Std:Join": {"On": "/", "Values": [...]}}`,
`{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
"Path": "metrics.map50_95"}}`
(or with `"S3Uri"` instead of `"PropertyFile"`), and conditions
(`{"Type": "GreaterThanOrEqualTo", "LeftValue": ..., "RightValue": ...}`, `In`, `Not`, `Or`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from yolopipe_shared.errors import YolopipeError


class ExpressionError(YolopipeError):
    """An expression refers to something that does not exist, or has the wrong shape."""


@dataclass
class PropertyFileRef:
    """A step's property file: the processing output it lives in and its path there."""

    step: str
    name: str
    output_name: str
    file_path: str


@dataclass
class Scope:
    """What expressions can see while one execution runs."""

    parameters: dict[str, Any]
    execution: dict[str, Any]
    #: Step name -> its properties (the Describe*Job-shaped response), filled as steps finish.
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (step, property file name) -> file reference, from the steps' `PropertyFiles`.
    property_files: dict[tuple[str, str], PropertyFileRef] = field(default_factory=dict)
    #: Reads an s3:// URI's bytes (JsonGet); the executor gives one bound to its S3 client.
    read_s3: Callable[[str], bytes] | None = None


_TOKEN = re.compile(r"""\.?([A-Za-z0-9_]+)|\[(\d+)\]|\[['"]([^'"]+)['"]\]""")


def _path_tokens(path: str) -> Iterator[str | int]:
    """`A.B[0].C['x']` -> 'A', 'B', 0, 'C', 'x'."""
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, index, key = match.groups()
        if index is not None:
            yield int(index)
        else:
            yield name if name is not None else key
        position = match.end()


def _walk(value: Any, path: str, where: str) -> Any:
    for token in _path_tokens(path):
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                raise ExpressionError(f"{where}: no item [{token}]")
            value = value[token]
        elif isinstance(value, Mapping):
            if token not in value:
                raise ExpressionError(f"{where}: no property {token!r}")
            value = value[token]
        elif isinstance(value, list):
            # Outputs['evaluation'], InputDataConfig['dataset']: an item picked by its *Name field.
            matches = [
                item for item in value
                if isinstance(item, Mapping)
                and any(k.endswith("Name") and v == token for k, v in item.items())
            ]
            if not matches:
                raise ExpressionError(f"{where}: no item named {token!r}")
            value = matches[0]
        else:
            raise ExpressionError(f"{where}: {token!r} is not a property of a {type(value).__name__}")
    return value


def get(reference: str, scope: Scope) -> Any:
    """Resolve a `{"Get": reference}`."""
    head, _, rest = reference.partition(".")
    if head == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"{reference}: the pipeline has no parameter {rest!r}")
        return scope.parameters[rest]
    if head == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"{reference}: unknown execution variable")
        return scope.execution[rest]
    if head == "Steps":
        step, _, path = rest.partition(".")
        if path.startswith("PropertyFiles."):
            name = path.split(".", 1)[1]
            ref = scope.property_files.get((step, name))
            if ref is None:
                raise ExpressionError(f"{reference}: step {step!r} declares no property file {name!r}")
            return ref
        if step not in scope.steps:
            raise ExpressionError(f"{reference}: step {step!r} has not run (yet)")
        return _walk(scope.steps[step], path, reference)
    raise ExpressionError(f"{reference}: unknown reference (expected Parameters., Execution. or Steps.)")


def to_text(value: Any) -> str:
    """How the service prints a primitive inside a Join or a string argument."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def evaluate(value: Any, scope: Scope) -> Any:
    """Replace every expression inside `value` (recursively) with what it resolves to."""
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return get(value["Get"], scope)
    if set(value) == {"Std:Join"}:
        spec = value["Std:Join"]
        return str(spec.get("On", "")).join(to_text(evaluate(v, scope)) for v in spec.get("Values", []))
    if set(value) == {"Std:JsonGet"}:
        return json_get(value["Std:JsonGet"], scope)
    return {key: evaluate(item, scope) for key, item in value.items()}


def json_get(spec: Mapping[str, Any], scope: Scope) -> Any:
    """`Std:JsonGet`: read a JSON document written by an earlier step and pick a value by path."""
    if scope.read_s3 is None:
        raise ExpressionError("JsonGet needs S3 access")
    if "PropertyFile" in spec:
        ref = evaluate(spec["PropertyFile"], scope)
        if not isinstance(ref, PropertyFileRef):
            raise ExpressionError(f"JsonGet PropertyFile must be a step's property file, got {ref!r}")
        outputs = scope.steps.get(ref.step, {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
        uri = next(
            (o["S3Output"]["S3Uri"] for o in outputs if o.get("OutputName") == ref.output_name), None
        )
        if uri is None:
            raise ExpressionError(f"JsonGet: step {ref.step!r} has no output {ref.output_name!r}")
        uri = uri.rstrip("/") + "/" + ref.file_path
    elif "S3Uri" in spec:
        uri = to_text(evaluate(spec["S3Uri"], scope))
    else:
        raise ExpressionError("JsonGet needs a PropertyFile or an S3Uri")
    path = spec.get("Path", "")
    try:
        document = json.loads(scope.read_s3(uri))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExpressionError(f"JsonGet: {uri} is not valid JSON ({exc})") from exc
    return _walk(document, path, f"JsonGet {uri} {path}")


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def condition(spec: Mapping[str, Any], scope: Scope) -> bool:
    """Evaluate one condition of a Condition step."""
    kind = spec.get("Type")
    if kind in _COMPARE:
        left = evaluate(spec["LeftValue"], scope)
        right = evaluate(spec["RightValue"], scope)
        if kind != "Equals" or isinstance(left, int | float) or isinstance(right, int | float):
            left, right = _number(left), _number(right)
        try:
            return _COMPARE[kind](left, right)
        except TypeError as exc:
            raise ExpressionError(f"{kind}: cannot compare {left!r} with {right!r}") from exc
    if kind == "In":
        left = evaluate(spec["QueryValue"], scope)
        return any(left == evaluate(v, scope) for v in spec.get("Values", []))
    if kind == "Not":
        return not condition(spec["Condition"], scope)
    if kind == "Or":
        return any(condition(c, scope) for c in spec.get("Conditions", []))
    raise ExpressionError(f"unknown condition type {kind!r}")


def step_references(value: Any) -> set[str]:
    """Names of the steps whose properties `value` reads (its data dependencies)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= step_references(item)
    elif isinstance(value, dict):
        reference = value.get("Get")
        if isinstance(reference, str) and reference.startswith("Steps."):
            found.add(reference.split(".")[1])
        for item in value.values():
            found |= step_references(item)
    return found
