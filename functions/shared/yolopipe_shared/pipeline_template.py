"""The rendered pipeline definition as a template: its `${Name}` placeholders, their substitution,
and the reference check. Pure Python, so the deploy function (boto3 only) and `pipeline.render`
(SageMaker SDK) share one implementation.

The definition is rendered at build time, when the bucket, role and region do not exist yet; the
deploy function fills them in (as Step Functions' DefinitionSubstitutions does). The image account
depends on the region (the SageMaker SDK's image_uri_config lists it per region): the build writes
that table beside the definition and the deploy function looks its region up in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import DefinitionError
from .evaluation import EVALUATION_PROPERTY_FILE, JSON_PATHS

#: Every deploy-time placeholder, with what it stands for. Nothing else may appear as `${...}`.
PLACEHOLDERS: dict[str, str] = {
    "Bucket": "S3 bucket for model artifacts, checkpoints, evaluations and the code tarball",
    "RoleArn": "ARN of the IAM role the training and processing jobs run as",
    "Region": "AWS region of the stack (part of the container image URIs)",
    "ImageAccountId": "account of the region's Deep Learning Containers registry (part of the image URIs)",
    "CodeS3Uri": "s3:// URI of the content-addressed training-code tarball",
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholder(name: str) -> str:
    """`Bucket` -> `${Bucket}` (names from PLACEHOLDERS only)."""
    if name not in PLACEHOLDERS:
        raise DefinitionError(f"unknown placeholder {name!r}; known: {', '.join(PLACEHOLDERS)}")
    return "${" + name + "}"


def find_placeholders(text: str) -> set[str]:
    """Names of the `${...}` placeholders left in `text`."""
    return set(_PLACEHOLDER.findall(text))


def substitute(definition_text: str, values: Mapping[str, str]) -> str:
    """Fill every placeholder; raise DefinitionError if a value is missing, unknown or one survives.

    Values are JSON-string escaped: placeholders only ever sit inside JSON strings.
    """
    unknown = sorted(set(values) - set(PLACEHOLDERS))
    if unknown:
        raise DefinitionError(f"unknown placeholder value(s) {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}")
    present = find_placeholders(definition_text)
    foreign = sorted(present - set(PLACEHOLDERS))
    if foreign:
        raise DefinitionError(f"the definition has unknown placeholder(s) {', '.join(foreign)}")
    missing = sorted(name for name in present if not values.get(name))
    if missing:
        raise DefinitionError(f"no value for placeholder(s) {', '.join(missing)}")
    text = _PLACEHOLDER.sub(lambda match: json.dumps(str(values[match.group(1)]))[1:-1], definition_text)
    left = find_placeholders(text)
    if left:  # a value that itself looks like a placeholder
        raise DefinitionError(f"placeholder(s) {', '.join(sorted(left))} survived the substitution")
    return text


# ---------------------------------------------------------------------------------------------
# The reference check


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _steps_in_order(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step, condition branches included, in document order."""
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            yield from _steps_in_order(arguments.get("IfSteps", []))
            yield from _steps_in_order(arguments.get("ElseSteps", []))


_EXECUTION_VARIABLES = {
    "PipelineName",
    "PipelineArn",
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "StartDateTime",
    "CurrentDateTime",
}


def check_definition(definition: Mapping[str, Any]) -> list[str]:
    """Problems with a definition's references, one line each (empty: fine).

    Every `{"Get": ...}` must name a declared parameter, an execution variable, or a property of a
    step that comes earlier (document order, condition branches included); every JsonGet must read
    a declared property file of an earlier step with a path from yolopipe_shared.evaluation.
    """
    problems: list[str] = []
    parameters = {item["Name"] for item in definition.get("Parameters", [])}
    steps = list(_steps_in_order(list(definition.get("Steps", []))))
    names = [str(step.get("Name")) for step in steps]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"step name {name!r} is used more than once")
    property_files = {
        step["Name"]: {item.get("PropertyFileName") for item in step.get("PropertyFiles", [])} for step in steps
    }
    allowed_paths = set(JSON_PATHS)
    for index, step in enumerate(steps):
        earlier = set(names[:index])
        where = f"step {step.get('Name')}"
        for node in _walk({key: value for key, value in step.items() if key != "Arguments"} | {
            "Arguments": _own_arguments(step)
        }):
            if not isinstance(node, dict):
                continue
            if "Get" in node and isinstance(node["Get"], str):
                problems.extend(_check_get(node["Get"], where, parameters, earlier, property_files))
            if "Std:JsonGet" in node:
                json_get = node["Std:JsonGet"]
                path = json_get.get("Path")
                if path not in allowed_paths:
                    problems.append(f"{where}: JsonGet path {path!r} is not one of {sorted(allowed_paths)}")
                file_ref = (json_get.get("PropertyFile") or {}).get("Get", "")
                if not re.fullmatch(rf"Steps\.[^.]+\.PropertyFiles\.{EVALUATION_PROPERTY_FILE}", file_ref):
                    problems.append(f"{where}: JsonGet reads {file_ref!r}, not the {EVALUATION_PROPERTY_FILE} file")
    for step in steps:
        for node in _walk(step.get("DependsOn", [])):
            if isinstance(node, str) and node not in names:
                problems.append(f"step {step.get('Name')}: depends on unknown step {node!r}")
    return problems


def _own_arguments(step: Mapping[str, Any]) -> Any:
    """A step's arguments without the nested branch steps (those are checked as steps themselves)."""
    arguments = step.get("Arguments", {})
    if step.get("Type") == "Condition" and isinstance(arguments, dict):
        return {key: value for key, value in arguments.items() if key not in ("IfSteps", "ElseSteps")}
    return arguments


def _check_get(
    reference: str,
    where: str,
    parameters: set[str],
    earlier: set[str],
    property_files: Mapping[str, set[str]],
) -> list[str]:
    head, _, rest = reference.partition(".")
    if head == "Parameters":
        return [] if rest in parameters else [f"{where}: {reference} is not a declared parameter"]
    if head == "Execution":
        return [] if rest in _EXECUTION_VARIABLES else [f"{where}: {reference} is not an execution variable"]
    if head == "Steps":
        step_name = re.split(r"[.\[]", rest, maxsplit=1)[0]
        if step_name not in earlier:
            return [f"{where}: {reference} refers to {step_name!r}, which is not an earlier step"]
        match = re.fullmatch(r"[^.]+\.PropertyFiles\.(.+)", rest)
        if match and match.group(1) not in property_files.get(step_name, set()):
            return [f"{where}: {reference}: step {step_name} declares no property file {match.group(1)!r}"]
        return []
    return [f"{where}: {reference} is neither a parameter, an execution variable nor a step property"]


def load_definition(text: str) -> dict[str, Any]:
    """Parse definition JSON, as a DefinitionError with the position on failure."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"the pipeline definition is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or "Steps" not in document:
        raise DefinitionError("the pipeline definition has no Steps")
    return document


def set_managed_spot(definition: dict[str, Any], enabled: bool) -> dict[str, Any]:
    """Switch managed spot training on or off in every Training step, in place.

    A stack-level choice, not a pipeline parameter: SageMaker refuses a training job that sets
    MaxWaitTimeInSeconds without managed spot, and a definition cannot omit a field by a
    parameter's value. Off: the field goes, MaxRuntimeInSeconds alone bounds the job.
    """
    for step in definition.get("Steps", []):
        if step.get("Type") != "Training":
            continue
        arguments = step["Arguments"]
        arguments["EnableManagedSpotTraining"] = enabled
        stopping = arguments.setdefault("StoppingCondition", {})
        if enabled:
            stopping.setdefault("MaxWaitTimeInSeconds", stopping.get("MaxRuntimeInSeconds"))
        else:
            stopping.pop("MaxWaitTimeInSeconds", None)
    return definition
