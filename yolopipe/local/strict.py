"""AWS's request checks, in front of the emulator: refuse what AWS refuses, in AWS's words.

moto accepts what AWS refuses. botocore's own ParamValidator checks types, required members and
`min` only; the service checks every constraint of its model: `max` and `min` (string length,
list length, map size, number range), `enum` and `pattern`. This module checks a request against
botocore's service model the way the service does and refuses with a ValidationException shaped
like AWS's::

    1 validation error detected: Value 'ml.nope.huge' at 'resourceConfig.instanceType' failed
    to satisfy constraint: Member must satisfy enum value set: [ml.p2.xlarge, ...]

CreatePipeline and UpdatePipeline also carry requests inside the definition: each job step's
`Arguments` is the CreateTrainingJob / CreateProcessingJob / CreateModelPackage... request
SageMaker sends when the step runs, and SageMaker validates it when the pipeline is created. Those
arguments are checked as their requests: pipeline expressions resolved by
`yolopipe.local.expressions` (parameters to their defaults, execution variables and earlier
steps' properties to realistic values, whatever only the run knows left unchecked) and the names
SageMaker fills in (TrainingJobName...) added.

`install()` puts the check in front of every boto3 client made afterwards (a botocore
`before-parameter-build` handler, called after botocore's own parameter handlers). The emulator
also checks CreatePipeline / UpdatePipeline on the wire, for clients made without it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import regex
from botocore import handlers as botocore_handlers
from botocore.exceptions import ClientError
from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    OperationNotFoundError,
    ServiceModel,
    Shape,
    StringShape,
    StructureShape,
)

from . import expressions

__all__ = [
    "UNKNOWN",
    "Violation",
    "check_request",
    "install",
    "json_request_refusal",
    "pipeline_violations",
    "validate_request",
    "validation_exception",
]

logger = logging.getLogger(__name__)

#: Where AWS stops listing: "10 validation errors detected: ..." at most.
MAX_REPORTED = 10
#: Longer values are shortened in messages (a 1 MB definition is not worth repeating).
MAX_SHOWN = 1024
HANDLER_ID = "yolopipe-strict-request-check"

#: Fetches a definition stored in S3: {"Bucket", "ObjectKey", "VersionId"?} -> its text.
DefinitionFetcher = Callable[[Mapping[str, Any]], str]


class _Unknown:
    """A value only the run knows (a parameter without default, a JsonGet): left unchecked."""

    #: What it reads as inside a Std:Join: a private-use character marks the string as partial.
    MARK = "\U000f0000"

    def __str__(self) -> str:
        return self.MARK

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
_MARK = _Unknown.MARK


# --- violations and the exception ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed constraint, rendered as AWS renders it."""

    path: str
    value: Any
    rule: str
    sensitive: bool = False
    #: botocore's ParamValidator refuses this itself (type, required, min) before anything is sent.
    client_side: bool = False

    def __str__(self) -> str:
        if self.sensitive:
            return f"Value at '{self.path}' failed to satisfy constraint: {self.rule}"
        shown = "null" if self.value is None else f"'{_shorten(_java_text(self.value))}'"
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: {self.rule}"


def _java_text(value: Any) -> str:
    """How the service prints a value: Java's toString of lists and maps."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java_text(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java_text(k)}={_java_text(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bytes | bytearray):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    return str(value).replace(_MARK, "${...}")


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...(truncated)"


def validation_message(violations: list[Violation]) -> str:
    """`1 validation error detected: ...; ...`, as AWS words it (at most MAX_REPORTED listed)."""
    listed = violations[:MAX_REPORTED]
    plural = "s" if len(listed) > 1 else ""
    return f"{len(listed)} validation error{plural} detected: " + "; ".join(str(v) for v in listed)


def validation_exception(operation_name: str, violations: list[Violation]) -> ClientError:
    """The ClientError botocore raises for AWS's ValidationException answer."""
    return ClientError(
        {
            "Error": {"Code": "ValidationException", "Message": validation_message(violations)},
            "ResponseMetadata": {"RequestId": "", "HostId": "", "HTTPStatusCode": 400, "HTTPHeaders": {},
                                 "RetryAttempts": 0},
        },
        operation_name,
    )


# --- patterns --------------------------------------------------------------------------------

# Java spellings Python's engines do not read: a UTF-16 surrogate pair range, \x{...}.
_SURROGATE_RANGE = re.compile(r"\\uD800\\uDC00-\\uDBFF\\uDFFF", re.IGNORECASE)
_JAVA_HEX = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_PATTERNS: dict[str, Callable[[str], Any] | None] = {}


def _matcher(pattern: str) -> Callable[[str], Any] | None:
    """The pattern's full-match function (the service matches the whole value), compiled once.

    The standard library's engine is several times faster; `regex` reads what it cannot
    (`\\p{L}`, `\\p{N}`...). A pattern neither can read (a handful of Java-only spellings in the
    whole of botocore) is not checked.
    """
    if pattern in _PATTERNS:
        return _PATTERNS[pattern]
    source = _SURROGATE_RANGE.sub(r"\\U00010000-\\U0010FFFF", pattern)
    source = _JAVA_HEX.sub(lambda m: "\\U" + m.group(1).rjust(8, "0"), source)
    matcher: Callable[[str], Any] | None
    try:
        matcher = re.compile(source).fullmatch
    except re.error:
        try:
            matcher = regex.compile(source).fullmatch
        except regex.error:
            logger.debug("pattern %r cannot be compiled; not checked", pattern)
            matcher = None
    _PATTERNS[pattern] = matcher
    return matcher


# --- shapes compiled to checks ---------------------------------------------------------------

#: check(value, path, violations): appends what `value` (at `path`) breaks.
Check = Callable[[Any, str, list[Violation]], None]
_CHECKS: dict[tuple[str, str, str], Check] = {}
_COMPILING = threading.RLock()


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _ignore(value: Any, path: str, out: list[Violation]) -> None:
    return None


def _rules(shape: Shape) -> list[str]:
    """A member shape's constraints as the service lists them inside `[...]`."""
    meta = shape.metadata
    rules: list[str] = []
    length = shape.type_name in ("string", "list", "map", "blob")
    if "max" in meta:
        rules.append(f"Member must have {'length' if length else 'value'} less than or equal to {meta['max']}")
    if "min" in meta:
        rules.append(f"Member must have {'length' if length else 'value'} greater than or equal to {meta['min']}")
    if "pattern" in meta:
        rules.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    enum = getattr(shape, "enum", None)
    if enum:
        rules.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
    rules.append("Member must not be null")
    return rules


def _check_for(shape: Shape, service: ServiceModel) -> Check:
    """The compiled check of `shape` (cached per service, API version and shape name)."""
    key = (service.service_name, service.api_version, shape.name)
    # Always under the lock (the emulator and upload's workers check from threads): while one thread
    # compiles, _CHECKS holds placeholders that only that thread may call.
    with _COMPILING:
        check = _CHECKS.get(key)
        if check is None:
            # Recursive shapes (DynamoDB's AttributeValue...) reach themselves while compiling.
            cell: list[Check] = []
            _CHECKS[key] = lambda value, path, out: cell[0](value, path, out)
            check = _compile(shape, service)
            cell.append(check)
            _CHECKS[key] = check
    return check


def _compile(shape: Shape, service: ServiceModel) -> Check:
    kind = shape.type_name
    if shape.serialization.get("jsonvalue") or shape.metadata.get("document"):
        return _ignore
    if isinstance(shape, StructureShape):
        return _compile_structure(shape, service)
    if isinstance(shape, ListShape):
        return _compile_list(shape, service)
    if isinstance(shape, MapShape):
        return _compile_map(shape, service)
    if isinstance(shape, StringShape):
        return _compile_string(shape)
    if kind in ("integer", "long", "float", "double"):
        return _compile_number(shape)
    if kind == "boolean":
        return _compile_boolean(shape)
    return _ignore  # blob (bytes, file objects, streams), timestamp (botocore accepts several forms)


def _compile_structure(shape: StructureShape, service: ServiceModel) -> Check:
    if shape.metadata.get("eventstream"):
        return _ignore
    members = {name: (_lower_first(name), _check_for(member, service)) for name, member in shape.members.items()}
    required = [(name, _lower_first(name)) for name in shape.required_members]

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            if value is not UNKNOWN:
                out.append(Violation(path, value, "Member must be a structure", client_side=True))
            return
        prefix = f"{path}." if path else ""
        for name, camel in required:
            if value.get(name) is None:
                out.append(Violation(prefix + camel, None, "Member must not be null", client_side=True))
        for name, item in value.items():
            member = members.get(name)
            if member is not None and item is not None:
                member[1](item, prefix + member[0], out)

    return check


def _container_bounds(shape: Shape) -> tuple[int | None, int | None]:
    return shape.metadata.get("min"), shape.metadata.get("max")


def _compile_list(shape: ListShape, service: ServiceModel) -> Check:
    low, high = _container_bounds(shape)
    member = shape.member
    item_check = _check_for(member, service)
    scalar = member.type_name not in ("structure", "list", "map")
    rules = "Member must satisfy constraint: [" + ", ".join(_rules(member)) + "]"
    sensitive = bool(member.metadata.get("sensitive"))

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not list and not isinstance(value, tuple):
            if value is not UNKNOWN:
                out.append(Violation(path, value, "Member must be a list", client_side=True))
            return
        size = len(value)
        if high is not None and size > high:
            out.append(Violation(path, value, f"Member must have length less than or equal to {high}"))
        if low is not None and size < low:
            out.append(Violation(path, value, f"Member must have length greater than or equal to {low}",
                                 client_side=True))
        if scalar:
            # Scalars: one violation for the whole list, listing the member's constraints (AWS's form).
            found: list[Violation] = []
            for item in value:
                if item is None:
                    found.append(Violation(path, None, "null", client_side=True))
                else:
                    item_check(item, path, found)
                if found:
                    break
            if found:
                out.append(Violation(path, value, rules, sensitive, found[0].client_side))
            return
        for index, item in enumerate(value, start=1):
            item_check(item, f"{path}.{index}.member", out)

    return check


def _compile_map(shape: MapShape, service: ServiceModel) -> Check:
    low, high = _container_bounds(shape)
    key_check = _check_for(shape.key, service)
    value_shape = shape.value
    value_check = _check_for(value_shape, service)
    scalar = value_shape.type_name not in ("structure", "list", "map")
    key_rules = "Map keys must satisfy constraint: [" + ", ".join(_rules(shape.key)) + "]"
    value_rules = "Map value must satisfy constraint: [" + ", ".join(_rules(value_shape)) + "]"
    sensitive = bool(value_shape.metadata.get("sensitive"))

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            if value is not UNKNOWN:
                out.append(Violation(path, value, "Member must be a map", client_side=True))
            return
        size = len(value)
        if high is not None and size > high:
            out.append(Violation(path, value, f"Member must have length less than or equal to {high}"))
        if low is not None and size < low:
            out.append(Violation(path, value, f"Member must have length greater than or equal to {low}"))
        bad_key = bad_value = False
        for key, item in value.items():
            if not bad_key:
                found: list[Violation] = []
                key_check(key, path, found)
                if found:
                    bad_key = True
                    out.append(Violation(path, value, key_rules, sensitive, found[0].client_side))
            if scalar:
                if not bad_value:
                    found = []
                    if item is None:
                        found.append(Violation(path, None, "null", client_side=True))
                    else:
                        value_check(item, path, found)
                    if found:
                        bad_value = True
                        out.append(Violation(path, value, value_rules, sensitive, found[0].client_side))
            elif item is not None:
                value_check(item, f"{path}.{key}.member", out)

    return check


def _compile_string(shape: StringShape) -> Check:
    meta = shape.metadata
    low, high = meta.get("min"), meta.get("max")
    pattern = meta.get("pattern")
    matches = _matcher(pattern) if pattern is not None else None
    enum = frozenset(shape.enum) if shape.enum else None
    enum_rule = f"Member must satisfy enum value set: [{', '.join(shape.enum)}]" if enum else ""
    sensitive = bool(meta.get("sensitive"))

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not str and not isinstance(value, str):
            if value is not UNKNOWN:
                out.append(Violation(path, value, "Member must be a string", sensitive, client_side=True))
            return
        if _MARK in value:  # a Join with a part only the run knows: only what is known is checked
            known = len(value) - value.count(_MARK) * len(_MARK)
            if high is not None and known > high:
                out.append(Violation(path, value, f"Member must have length less than or equal to {high}", sensitive))
            return
        size = len(value)
        if high is not None and size > high:
            out.append(Violation(path, value, f"Member must have length less than or equal to {high}", sensitive))
        if low is not None and size < low:
            out.append(Violation(path, value, f"Member must have length greater than or equal to {low}", sensitive,
                                 client_side=True))
        if matches is not None and matches(value) is None:
            out.append(Violation(path, value, f"Member must satisfy regular expression pattern: {pattern}", sensitive))
        if enum is not None and value not in enum:
            out.append(Violation(path, value, enum_rule, sensitive))

    return check


def _compile_number(shape: Shape) -> Check:
    meta = shape.metadata
    low, high = meta.get("min"), meta.get("max")
    integral = shape.type_name in ("integer", "long")
    kinds: tuple[type, ...] = (int,) if integral else (int, float, Decimal)  # what botocore accepts
    kind_rule = "Member must be an integer" if integral else "Member must be a number"

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if value is UNKNOWN:
            return
        if isinstance(value, bool) or not isinstance(value, kinds):
            out.append(Violation(path, value, kind_rule, client_side=True))
            return
        if high is not None and value > high:
            out.append(Violation(path, value, f"Member must have value less than or equal to {high}"))
        if low is not None and value < low:
            out.append(Violation(path, value, f"Member must have value greater than or equal to {low}",
                                 client_side=True))

    return check


def _compile_boolean(shape: Shape) -> Check:
    def check(value: Any, path: str, out: list[Violation]) -> None:
        if value is not UNKNOWN and not isinstance(value, bool):
            out.append(Violation(path, value, "Member must be a boolean", client_side=True))

    return check


# --- requests --------------------------------------------------------------------------------

_SERVICE_MODELS: dict[str, ServiceModel] = {}


def _service_model(service_name: str) -> ServiceModel:
    model = _SERVICE_MODELS.get(service_name)
    if model is None:
        import botocore.session

        model = botocore.session.get_session().get_service_model(service_name)
        _SERVICE_MODELS[service_name] = model
    return model


def request_violations(
    operation: OperationModel,
    params: Mapping[str, Any],
    *,
    region: str = "us-east-1",
    fetch_definition: DefinitionFetcher | None = None,
    path: str = "",
) -> list[Violation]:
    """What `params` breaks of `operation`'s input shape (and, for pipelines, of its steps)."""
    shape = operation.input_shape
    if shape is None:
        return []
    out: list[Violation] = []
    _check_for(shape, operation.service_model)(params, path, out)
    if (
        operation.service_model.service_name == "sagemaker"
        and operation.name in _PIPELINE_OPERATIONS
        and not any(v.path.startswith(_lower_first("PipelineDefinition")) for v in out)
    ):
        out.extend(pipeline_violations(params, region=region, fetch_definition=fetch_definition))
    return out


def validate_request(
    service_name: str,
    operation_name: str,
    params: Mapping[str, Any],
    *,
    region: str = "us-east-1",
    fetch_definition: DefinitionFetcher | None = None,
) -> list[str]:
    """AWS's complaints about this request, one line each (empty: AWS accepts it).

    `service_name` as botocore names it (`sagemaker`, `s3`, `logs`...). For CreatePipeline with
    `PipelineDefinitionS3Location`, `fetch_definition` reads the stored definition (without one,
    its steps are not checked).
    """
    operation = _service_model(service_name).operation_model(operation_name)
    found = request_violations(operation, params, region=region, fetch_definition=fetch_definition)
    return [str(v) for v in found]


def check_request(
    service_name: str,
    operation_name: str,
    params: Mapping[str, Any],
    *,
    region: str = "us-east-1",
    fetch_definition: DefinitionFetcher | None = None,
) -> None:
    """Raise the ValidationException AWS would answer to this request (nothing if it accepts it)."""
    operation = _service_model(service_name).operation_model(operation_name)
    found = request_violations(operation, params, region=region, fetch_definition=fetch_definition)
    if found:
        raise validation_exception(operation_name, found)


def json_request_refusal(
    service_name: str,
    operation_name: str,
    body: bytes,
    *,
    region: str = "us-east-1",
    fetch_definition: DefinitionFetcher | None = None,
) -> dict[str, str] | None:
    """For a server: the JSON-protocol error body refusing `body`, or None when AWS accepts it."""
    try:
        params = json.loads(body or b"{}")
        operation = _service_model(service_name).operation_model(operation_name)
    except (ValueError, LookupError, OperationNotFoundError):
        return None  # not ours to judge: the server answers as it does
    if not isinstance(params, Mapping):
        return None
    found = request_violations(operation, params, region=region, fetch_definition=fetch_definition)
    if not found:
        return None
    return {"__type": "ValidationException", "message": validation_message(found)}


# --- the pipeline definition's steps, as the requests they stand for ------------------------

_PIPELINE_OPERATIONS = frozenset({"CreatePipeline", "UpdatePipeline"})

#: Step type -> the request SageMaker sends when the step runs, and the name it fills in.
STEP_REQUESTS: dict[str, tuple[str, str | None]] = {
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Model": ("CreateModel", "ModelName"),
    "RegisterModel": ("CreateModelPackage", None),
}
#: A realistic execution id (SageMaker's are 12 lowercase letters and digits).
SAMPLE_EXECUTION_ID = "k5uu2uj2vuyv"
_SAMPLE_SUFFIX = "AbCdEfGhIj"
_ACCOUNT_IN_ROLE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):")


def _flatten(steps: list[Any]) -> Iterator[dict[str, Any]]:
    for step in steps:
        if not isinstance(step, dict):
            continue
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments") or {}
            yield from _flatten(list(arguments.get("IfSteps") or []) + list(arguments.get("ElseSteps") or []))


def _parameter_values(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter's default; a missing or empty default is given at start: unknown here."""
    values: dict[str, Any] = {}
    for parameter in definition.get("Parameters") or []:
        if isinstance(parameter, dict) and isinstance(parameter.get("Name"), str):
            default = parameter.get("DefaultValue")
            values[parameter["Name"]] = UNKNOWN if default is None or default == "" else default
    return values


def _job_name(step_name: str, shape: Shape | None) -> str:
    """The job name SageMaker gives a step's job: pipelines-<execution id>-<step>-<suffix>."""
    high = int(shape.metadata.get("max", 63)) if shape is not None else 63
    readable = re.sub(r"[^a-zA-Z0-9]+", "-", step_name).strip("-") or "step"
    head = f"pipelines-{SAMPLE_EXECUTION_ID}-{readable}"[: max(1, high - len(_SAMPLE_SUFFIX) - 1)].rstrip("-")
    return f"{head}-{_SAMPLE_SUFFIX}"


def _blind(value: Any, scope: expressions.Scope) -> Any:
    """Earlier steps' properties resolved where known (their requests, echoed), else UNKNOWN;
    `Std:JsonGet` reads a file the run writes: UNKNOWN."""
    if isinstance(value, list):
        return [_blind(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Get" and isinstance(inner, str) and inner.startswith("Steps."):
            try:
                found = expressions.get(inner, scope)
            except expressions.ExpressionError:
                return UNKNOWN
            return UNKNOWN if isinstance(found, expressions.PropertyFileRef) else found
        if key == "Std:JsonGet":
            return UNKNOWN
    return {key: _blind(item, scope) for key, item in value.items()}


def _step_properties(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    """What Describe*Job answers for the step, as far as its request tells (the request echoed,
    plus the artifacts' URI SageMaker derives from it)."""
    properties = dict(request)
    if kind == "Training":
        output = (request.get("OutputDataConfig") or {}).get("S3OutputPath")
        name = request.get("TrainingJobName")
        if isinstance(output, str) and isinstance(name, str):
            properties["ModelArtifacts"] = {"S3ModelArtifacts": f"{output.rstrip('/')}/{name}/output/model.tar.gz"}
    return properties


def _ordered(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps after the steps whose properties they read (definition order otherwise)."""
    names = {step.get("Name") for step in steps}
    done: set[Any] = set()
    ordered: list[dict[str, Any]] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if (expressions.step_references(s.get("Arguments")) & names) <= done]
        if not ready:  # a cycle: the rest in definition order, their references unknown
            ready = pending[:1]
        for step in ready:
            pending.remove(step)
            ordered.append(step)
            done.add(step.get("Name"))
    return ordered


def pipeline_violations(
    params: Mapping[str, Any],
    *,
    region: str = "us-east-1",
    fetch_definition: DefinitionFetcher | None = None,
) -> list[Violation]:
    """CreatePipeline/UpdatePipeline: each job step's Arguments checked as the request it stands for."""
    text = params.get("PipelineDefinition")
    location = params.get("PipelineDefinitionS3Location")
    if text is None and isinstance(location, Mapping) and fetch_definition is not None:
        try:
            text = fetch_definition(location)
        except Exception as exc:  # a missing object is the service's answer to give, not ours
            logger.debug("definition at %s not readable: %s", location, exc)
            return []
    if not isinstance(text, str | bytes):
        return []
    at = _lower_first("PipelineDefinition")
    try:
        definition = json.loads(text)
    except ValueError:
        return [Violation(at, "...", "Unable to parse pipeline definition: it is not valid JSON", sensitive=True)]
    if not isinstance(definition, dict):
        return [Violation(at, "...", "Unable to parse pipeline definition: it is not a JSON object", sensitive=True)]
    sagemaker = _service_model("sagemaker")
    name = str(params.get("PipelineName") or "pipeline").split("/")[-1]
    account_match = _ACCOUNT_IN_ROLE.match(str(params.get("RoleArn") or ""))
    account = account_match.group(1) if account_match else "123456789012"
    pipeline_arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{name.lower()}"
    scope = expressions.Scope(parameters=_parameter_values(definition), execution={})
    out: list[Violation] = []
    for step in _ordered(list(_flatten(definition.get("Steps") or []))):
        step_name, kind = str(step.get("Name")), step.get("Type")
        if kind not in STEP_REQUESTS or not isinstance(step.get("Arguments"), dict):
            continue  # Condition, Fail, Lambda, Callback...: no request of their own
        operation_name, name_member = STEP_REQUESTS[kind]
        operation = sagemaker.operation_model(operation_name)
        members = operation.input_shape.members if operation.input_shape is not None else {}
        job_name = _job_name(step_name, members.get(name_member) if name_member else None)
        scope.execution = {
            "PipelineExecutionId": SAMPLE_EXECUTION_ID,
            "PipelineExecutionArn": f"{pipeline_arn}/execution/{SAMPLE_EXECUTION_ID}",
            "PipelineName": name,
            "PipelineArn": pipeline_arn,
            "StartDateTime": UNKNOWN,
            "CurrentDateTime": UNKNOWN,
            "TrainingJobName": job_name,
            "ProcessingJobName": job_name,
        }
        where = f"{at}.Steps.{step_name}.Arguments"
        try:
            request = expressions.evaluate(_blind(step["Arguments"], scope), scope)
        except expressions.ExpressionError as exc:
            out.append(Violation(where, step_name, f"Step arguments must refer to what the pipeline defines ({exc})"))
            continue
        if not isinstance(request, dict):
            continue
        if name_member is not None and name_member not in request:
            request[name_member] = job_name
        # botocore never sees inside the definition: every complaint here is the service's.
        out.extend(replace(v, client_side=False) for v in request_violations(operation, request, path=where))
        scope.steps[step_name] = _step_properties(kind, request)
    return out


# --- on everywhere: a botocore event handler --------------------------------------------------


@functools.lru_cache(maxsize=32)
def _default_fetcher(region: str | None) -> DefinitionFetcher:
    """Reads a stored definition through a fresh S3 client (made as the caller's would be)."""

    def fetch(location: Mapping[str, Any]) -> str:
        import boto3

        request: dict[str, Any] = {"Bucket": location["Bucket"], "Key": location["ObjectKey"]}
        if location.get("VersionId"):
            request["VersionId"] = location["VersionId"]
        body = boto3.session.Session().client("s3", region_name=region).get_object(**request)["Body"]
        return str(body.read().decode("utf-8"))

    return fetch


def before_parameter_build(params: Any, model: OperationModel, context: Any = None, **_: Any) -> None:
    """botocore handler: refuse, as AWS would, a request botocore is about to send.

    What botocore's own ParamValidator refuses (a wrong type, a missing required member, a value
    under `min`) is left to it, so the caller gets the ParamValidationError it gets against AWS.
    """
    if not isinstance(params, Mapping):
        return
    context = context if isinstance(context, Mapping) else {}
    region = context.get("client_region") or "us-east-1"
    found = request_violations(model, params, region=region, fetch_definition=_default_fetcher(region))
    if not found:
        return
    config = context.get("client_config")
    botocore_checks = getattr(config, "parameter_validation", True) is not False
    if botocore_checks and any(v.client_side for v in found):
        return
    raise validation_exception(model.name, found)


def install(events: Any = None) -> None:
    """Check every request of every boto3/botocore client created from now on (idempotent).

    Registers the handler with every botocore session created afterwards (botocore's list of
    built-in handlers, as moto's `mock_aws` does for its own), with boto3's default session if
    it exists, and with `events` when given: a botocore event emitter, a botocore or boto3
    session, or a client (whose calls are then checked too). Clients made earlier are not.
    """
    entry = ("before-parameter-build", before_parameter_build, botocore_handlers.REGISTER_LAST)
    if entry not in botocore_handlers.BUILTIN_HANDLERS:
        botocore_handlers.BUILTIN_HANDLERS.append(entry)
    targets = [events]
    boto3 = sys.modules.get("boto3")
    if boto3 is not None and getattr(boto3, "DEFAULT_SESSION", None) is not None:
        targets.append(boto3.DEFAULT_SESSION)
    for target in targets:
        emitter = _emitter(target)
        if emitter is not None and not _registered(emitter):
            emitter.register_last("before-parameter-build", before_parameter_build, unique_id=HANDLER_ID)


def _registered(emitter: Any) -> bool:
    """Whether the handler is already there (a session made after install() has it from botocore's list)."""
    inner = getattr(emitter, "_emitter", emitter)  # a client's events wrap the emitter
    inner = getattr(inner, "_events", inner)  # a botocore session holds one
    try:
        return before_parameter_build in inner._handlers.prefix_search("before-parameter-build")
    except AttributeError:
        return False


def _emitter(target: Any) -> Any:
    if target is None:
        return None
    if hasattr(target, "register_last"):
        return target
    for path in (("meta", "events"), ("events",), ("_session", "_events"), ("_events",)):
        found = target
        for attribute in path:
            found = getattr(found, attribute, None)
        if found is not None and hasattr(found, "register_last"):
            return found
    raise TypeError(f"cannot install the request check on a {type(target).__name__}")
