"""Every one-line error the trigger, the CLI and train.py can print, found in the code itself.

There is no hand-kept list to forget: an AST scan of the source finds each message template given
to a domain error (`raise SomeError("...")`, any subclass of yolopipe_shared.errors.YolopipeError),
to a dataset `Problem(file, line, "...")`, or to the CLI's `err("...")`. f-string fields become
`{}`, so `f"{self.name} must be at least {x}"` is the template `{} must be at least {}`. The
troubleshooting page joins these templates with the explanations in docs/troubleshooting.yaml, and
tests/unit/docs/test_troubleshooting.py fails when a message has none (or an explanation no message).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Who prints what: the sources each audience's errors come from (relative to the repository root).
SOURCES: dict[str, tuple[str, ...]] = {
    "trigger": ("functions/trigger", "functions/shared/yolopipe_shared"),
    "cli": ("yolopipe",),
    "train.py": ("training_code",),
}
BASE_ERROR = "YolopipeError"
#: Calls whose message argument is a user-facing line: name -> index of the message argument
#: (`problem(line, "...")` is data_yaml.py's shorthand for a Problem of data.yaml).
MESSAGE_CALLS = {"Problem": 2, "problem": 1, "err": 0}
#: Functions that return a problem as `(line, "message")` (a label file's first problem).
PROBLEM_RETURNS = {"check_label"}


@dataclass(frozen=True)
class Message:
    """One message template and where it is raised."""

    template: str
    kind: str  # the exception class, "Problem" or "err"
    source: str  # "trigger" | "cli" | "train.py"
    path: str
    line: int


def _python_files() -> Iterator[tuple[str, Path]]:
    for source, folders in SOURCES.items():
        for folder in folders:
            for path in sorted((ROOT / folder).rglob("*.py")):
                yield source, path


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def domain_errors(trees: list[ast.Module]) -> set[str]:
    """Names of YolopipeError and every class that derives from it, in any scanned file."""
    bases: dict[str, set[str]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(_name(b) for b in node.bases)
    found = {BASE_ERROR}
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in found and parents & found:
                found.add(name)
                changed = True
    return found


def template(node: ast.expr | None) -> str | None:
    """The message as a template (`{}` for each interpolated value), or None when it is not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                parts.append("{}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = template(node.left), template(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else "{}") + (right if right is not None else "{}")
    return None


def normalise(text: str) -> str:
    """One line, single spaces: the key an explanation is filed under."""
    return " ".join(text.split())


def _message_argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return call.args[index] if len(call.args) > index else None


@functools.cache
def scan() -> tuple[Message, ...]:
    """Every message template in the sources, in file order (duplicates kept, one per place); read once
    per process."""
    files = [(source, path, ast.parse(path.read_text(), filename=str(path))) for source, path in _python_files()]
    returned = {id(node.value.elts[1]) for _, _, tree in files for function in ast.walk(tree)
                if isinstance(function, ast.FunctionDef) and function.name in PROBLEM_RETURNS
                for node in ast.walk(function)
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2}
    errors = domain_errors([tree for _, _, tree in files])
    found: list[Message] = []
    for source, path, tree in files:
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            call: ast.Call | None = None
            kind = ""
            argument: ast.expr | None = None
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc.func) in errors:
                call, kind = node.exc, _name(node.exc.func)
                argument = _message_argument(call, 0, "message")
            elif isinstance(node, ast.Call) and _name(node.func) in MESSAGE_CALLS:
                call, kind = node, _name(node.func)
                argument = _message_argument(call, MESSAGE_CALLS[kind], "message")
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2 \
                    and id(node.value.elts[1]) in returned:
                kind, argument = "Problem", node.value.elts[1]
            if call is None and argument is None:
                continue
            text = template(argument)
            if text is None or not text.strip("{} "):
                continue  # a message passed through (str(exc)), found where it was made
            found.append(Message(normalise(text), kind, source, relative, getattr(node, "lineno", 0)))
    return tuple(found)


def templates() -> dict[str, list[Message]]:
    """{template: the places it is raised}, sorted by template."""
    grouped: dict[str, list[Message]] = {}
    for message in scan():
        grouped.setdefault(message.template, []).append(message)
    return dict(sorted(grouped.items()))
