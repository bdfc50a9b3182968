"""Every one-line error the trigger, the CLI and train.py can print has a cause and a fix in the
troubleshooting guide: the messages are read from the code (docs/error_catalogue.py), the
explanations from docs/troubleshooting.yaml."""

from __future__ import annotations

import ast

import error_catalogue
import gen_reference


def test_every_message_in_the_code_has_an_explanation() -> None:
    # GIVEN the messages the code raises WHEN matched with the explanations THEN none is left out
    found = error_catalogue.templates()
    explained = {m for entry in gen_reference.troubleshooting_entries() for m in entry["messages"]}
    missing = sorted(set(found) - explained)
    assert not missing, ("add these messages to docs/troubleshooting.yaml (an existing entry or a new one), then "
                         "`make docs-reference`:\n" + "\n".join(f"  - {m!r}  ({found[m][0].path}:{found[m][0].line})"
                                                               for m in missing))


def test_every_explanation_names_messages_the_code_still_has() -> None:
    found = error_catalogue.templates()
    stale = [(entry["title"], m) for entry in gen_reference.troubleshooting_entries() for m in entry["messages"]
             if m not in found]
    assert not stale, f"docs/troubleshooting.yaml names messages the code no longer has: {stale}"


def test_every_entry_has_a_title_a_cause_and_a_fix() -> None:
    for entry in gen_reference.troubleshooting_entries():
        assert entry["title"].strip() and entry["cause"].strip() and entry["fix"].strip(), entry
        assert entry["messages"], f"{entry['title']}: no messages"


def test_the_scan_finds_messages_of_each_kind_and_audience() -> None:
    # GIVEN the repository WHEN scanned THEN messages from the trigger's dataset rules, a CLI error line,
    # train.py's refusals and a parameter's bounds are all there, with `{}` for interpolated values
    found = error_catalogue.templates()
    assert "not found: put data.yaml at the dataset root (upload it last)" in found
    assert "give --local or --endpoint-url, not both" in found
    assert "{} must be at least {}, got {}" in found
    assert {m.source for messages in found.values() for m in messages} == {"trigger", "cli", "train.py"}
    assert any(m.path == "training_code/train.py" for messages in found.values() for m in messages)


def test_a_new_domain_error_message_is_caught(tmp_path) -> None:
    # GIVEN code that raises a new subclass of a domain error with an f-string, a Problem and an err line
    source = (
        "class Oops(ParameterError):\n    pass\n"
        "def f(x):\n"
        "    err(f'cannot frobnicate {x}: run it again')\n"
        "    problems.append(Problem('data.yaml', 3, 'bad ' + f'{x} here'))\n"
        "    raise Oops(f'the value {x!r} is wrong; use {x + 1}')\n"
        "def g(x):\n    raise ValueError('internal, not a user message')\n"
    )
    tree = ast.parse(source)
    errors = error_catalogue.domain_errors([tree, ast.parse("class ParameterError(YolopipeError):\n    pass\n")])
    # THEN the subclass counts as a domain error, the ValueError does not
    assert "Oops" in errors and "ValueError" not in errors
    # AND each message becomes a template with `{}` for the values
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    templates = {error_catalogue.template(c.args[-1]) for c in calls if error_catalogue._name(c.func) in
                 ("err", "Problem", "Oops")}
    assert templates == {"cannot frobnicate {}: run it again", "bad {} here", "the value {} is wrong; use {}"}
