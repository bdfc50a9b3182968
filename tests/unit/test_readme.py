"""The README stays true: its parameter table and its make targets match the code."""

from __future__ import annotations

import re
from pathlib import Path

from yolopipe_shared.parameters import PARAMETERS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_the_parameter_table_lists_every_pipeline_parameter_with_its_default() -> None:
    # GIVEN the README's "Pipeline parameters" table
    section = README.split("### Pipeline parameters", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| (\w+) \| ([^|]+) \|", section, re.M)}
    rows.pop("parameter", None)
    # THEN it names exactly the parameters the code defines, in order, each with its real default
    assert list(rows) == [spec.name for spec in PARAMETERS]
    for spec in PARAMETERS:
        if spec.default not in ("", None):
            assert rows[spec.name] == str(spec.default), spec.name


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert named and named <= targets, named - targets


def test_the_exit_code_table_is_the_one_the_cli_prints() -> None:
    from yolopipe.cli.output import EXIT_MEANINGS

    # GIVEN the README's exit-code table
    table = README.split("| exit code | meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M)
    # THEN it is the table `yolopipe --help` prints, code for code, word for word
    assert [(int(code), meaning) for code, meaning in rows] == list(EXIT_MEANINGS)
