"""data.yaml rules: what a user's data.yaml may say before anyone trains on it.

GIVEN a data.yaml text, WHEN it is parsed, THEN a safe one gives names and splits, and each
unsafe or inconsistent one is refused with one problem naming the file, the line and what to do.
"""

from __future__ import annotations

import pytest

from yolopipe_shared.data_yaml import DataYaml, Problem, parse_data_yaml

GOOD = """\
path: .
train: images/train
val: images/val
names:
  0: cat
  1: dog
"""


def parse_ok(text: str) -> DataYaml:
    parsed, problems = parse_data_yaml(text)
    assert problems == []
    assert parsed is not None
    return parsed


def refused(text: str) -> list[Problem]:
    parsed, problems = parse_data_yaml(text)
    assert parsed is None
    assert problems
    return problems


def test_a_plain_data_yaml_gives_names_and_splits() -> None:
    # GIVEN the data.yaml Ultralytics' own examples use, WHEN parsed
    parsed = parse_ok(GOOD)
    # THEN names come in id order and splits are relative to the data.yaml folder
    assert parsed.names == ["cat", "dog"]
    assert parsed.splits == {"train": ["images/train"], "val": ["images/val"]}
    assert parsed.nc == 2


def test_names_as_a_list_lists_and_a_test_split_are_accepted() -> None:
    parsed = parse_ok("train: [images/a, images/b]\nval: lists/val.txt\ntest: images/test\nnames: [cat, dog]\nnc: 2\n")
    assert parsed.names == ["cat", "dog"]
    assert parsed.splits == {
        "train": ["images/a", "images/b"],
        "val": ["lists/val.txt"],
        "test": ["images/test"],
    }


def test_a_relative_path_inside_the_dataset_prefixes_the_splits() -> None:
    parsed = parse_ok("path: sub/ds\ntrain: images/train\nval: ./images/../images/val\nnames: [a]\n")
    assert parsed.root == "sub/ds"
    assert parsed.splits == {"train": ["sub/ds/images/train"], "val": ["sub/ds/images/val"]}


def test_validation_key_is_read_as_val_like_ultralytics_does() -> None:
    parsed = parse_ok("train: images/train\nvalidation: images/valid\nnames: [a]\n")
    assert parsed.splits["val"] == ["images/valid"]


def test_nc_alone_names_classes_with_a_warning() -> None:
    parsed = parse_ok("train: images/train\nval: images/val\nnc: 3\n")
    assert parsed.names == ["class_0", "class_1", "class_2"]
    assert [w.line for w in parsed.warnings] == [3]


def test_for_ultralytics_keeps_only_checked_keys_and_points_path_at_the_dataset() -> None:
    # GIVEN a data.yaml with an extra harmless key, WHEN turned into what Ultralytics reads
    parsed = parse_ok(GOOD + "roboflow: {workspace: x}\n")
    doc = parsed.for_ultralytics("/opt/ml/input/data/dataset")
    # THEN path is the dataset folder and nothing unchecked goes through
    assert doc == {
        "path": "/opt/ml/input/data/dataset",
        "train": "images/train",
        "val": "images/val",
        "nc": 2,
        "names": {0: "cat", 1: "dog"},
    }


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # Ultralytics runs `download` as a URL, a shell command or Python
        (GOOD + "download: bash ./get.sh\n", 7, "`download` is not allowed"),
        (GOOD + "download: |\n  import os\n  os.system('id')\n", 7, "`download` is not allowed"),
        # ... even when a YAML merge key smuggles it in from an anchor
        ("x: &a {download: 'https://e.vil/x.zip'}\n<<: *a\n" + GOOD, 1, "`download` is not allowed"),
        ("path: .\ntrain: /etc/images\nval: images/val\nnames: [a]\n", 2, "absolute path"),
        ("train: images/train\nval: ../../other/val\nnames: [a]\n", 2, "climbs out"),
        ("train: [images/a, ../b]\nval: images/val\nnames: [a]\n", 1, "climbs out"),
        ("train:\n  - images/a\n  - /abs/b\nval: images/val\nnames: [a]\n", 3, "absolute path"),
        ("train: images/train\nval: s3://bucket/val\nnames: [a]\n", 2, "is a URL"),
        ("train: images\\train\nval: images/val\nnames: [a]\n", 1, "backslash"),
        ("train: C:/data/train\nval: images/val\nnames: [a]\n", 1, "absolute path"),
        # `path` is rewritten by the consumer: it may only point inside the dataset
        ("path: /content/datasets/x\ntrain: images/train\nval: images/val\nnames: [a]\n", 1, "set `path: .`"),
        ("path: ../datasets/x\ntrain: images/train\nval: images/val\nnames: [a]\n", 1, "set `path: .`"),
        # a split inside the dataset stays inside it even after `path`
        ("path: sub\ntrain: ../../x\nval: images/val\nnames: [a]\n", 2, "climbs out"),
        ("train: images/train\nval: images/val\nnames: [a, b]\nnc: 3\n", 4, "`nc: 3` but `names` lists 2"),
        ("train: images/train\nval: images/val\nnames: {0: a, 2: b}\n", 3, "without gaps"),
        ("train: images/train\nval: images/val\nnames: {1: a, 2: b}\n", 3, "without gaps"),
        ("train: images/train\nval: images/val\nnames: {a: x}\n", 3, "not a class id"),
        ("train: images/train\nval: images/val\nnames: []\n", 3, "is empty"),
        ("train: images/train\nval: images/val\nnames: cat\n", 3, "must be a list or a mapping"),
        ("train: images/train\nval: images/val\nnames:\n  - a\n  - [b]\n", 5, "needs a name"),
        ("train: images/train\nval: images/val\nnames: [a]\nnc: two\n", 4, "whole number"),
        ("train: images/train\nval: images/val\n", None, "`names` is missing"),
        ("train: images/train\nnames: [a]\n", None, "`val` is missing"),
        ("val: images/val\nnames: [a]\n", None, "`train` is missing"),
        ("train: ''\nval: images/val\nnames: [a]\n", 1, "`train` is missing"),
        ("train: 3\nval: images/val\nnames: [a]\n", 1, "must be a path"),
        ("train: images/train\nval: images/val\nnames: [a]\ntrain: other\n", 4, "appears twice"),
        ("train: images/train\nval: images/val\nnames: [a]\nkpt_shape: 17\n", 4, "`kpt_shape` must be a list"),
        # not YAML at all, or not a mapping
        ("train: [images/train\nval: x\n", 2, "not valid YAML"),
        ("- train\n- val\n", None, "must be a YAML mapping"),
        ("", None, "must be a YAML mapping"),
        ("just words\n", None, "must be a YAML mapping"),
        ("a: 1\n---\nb: 2\n", 2, "not valid YAML"),
        # python tags would run code under an unsafe loader: refused, never constructed
        ("!!python/object/apply:os.system ['id']\n", 1, "YAML tag not allowed"),
        ("train: images/train\nval: !!python/name:os.system\nnames: [a]\n", 2, "YAML tag not allowed"),
        ("train: !!binary aGVsbG8=\nval: images/val\nnames: [a]\n", 1, "must be a path"),
    ],
)
def test_each_bad_data_yaml_is_refused_with_its_line(text: str, line: int | None, words: str) -> None:
    # GIVEN a data.yaml with one thing wrong, WHEN parsed
    problems = refused(text)
    # THEN the problem names data.yaml, the line and says what is wrong in one line
    assert any(words in p.message for p in problems), problems
    hit = next(p for p in problems if words in p.message)
    assert hit.file == "data.yaml"
    assert hit.line == line
    assert "\n" not in str(hit)


def test_problem_reads_file_line_message() -> None:
    assert str(Problem("data.yaml", 3, "bad")) == "data.yaml:3: bad"
    assert str(Problem("data.yaml", None, "bad")) == "data.yaml: bad"


def test_a_huge_data_yaml_is_refused_without_parsing() -> None:
    problems = refused("names: [" + "a, " * 600_000 + "]\n")
    assert "at most 1 MiB" in problems[0].message


def test_a_python_tag_is_never_executed(tmp_path) -> None:
    # GIVEN a data.yaml that would create a file if its tag were constructed
    marker = tmp_path / "pwned"
    text = f"train: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
    # WHEN parsed THEN it is refused and nothing ran
    refused(text)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # deep nesting would blow the parser's recursion
        ("train: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply"),
        # a NUL byte: PyYAML's reader refuses it before parsing
        ("train: x\x00\nval: y\nnames: [a]\n", "unacceptable character"),
        # aliases that expand exponentially: the message names the kind, never the value
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "names: [*d]\ntrain: x\nval: y\n",
            "not a list",
        ),
    ],
)
def test_hostile_yaml_is_a_short_problem_not_a_crash(text: str, words: str) -> None:
    problems = refused(text)
    assert words in problems[0].message
    assert len(str(problems[0])) < 200


# --------------------------------------------------------------------------- bounded: tiny files, big claims
def _alias_bomb(levels: int, width: int = 10) -> str:
    """A few hundred bytes of nested YAML aliases standing for width**levels values."""
    text = f"a0: &a0 [{', '.join(['x'] * width)}]\n"
    for level in range(1, levels):
        text += f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]\n"
    return text


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # 50 bytes that would build 10^8 class names (gigabytes) before anything else is checked
        ("train: images/train\nval: images/val\nnc: 100000000\n", 3, "over the 10,000 classes"),
        ("train: images/train\nval: images/val\nnc: 10001\n", 3, "over the 10,000 classes"),
        ("train: images/train\nval: images/val\nnames: [" + ", ".join(["c"] * 10_001) + "]\n", 3,
         "lists 10,001 classes"),
        # ~400 bytes standing for 10^9 values: refused before anything walks them
        (_alias_bomb(9) + "train: images/train\nval: images/val\nnames: [*a8]\n", 1, "YAML aliases"),
        # a merge key pulling an alias bomb into the top level
        (_alias_bomb(9) + "<<: {x: *a8}\ntrain: images/train\nval: images/val\nnames: [a]\n", 1, "YAML aliases"),
        # many distinct values: composing stops at the limit
        ("train: images/train\nval: images/val\nnames: [a]\nextra: [" + ", ".join(["1"] * 50_000) + "]\n", 4,
         "holds more than 40,000 values"),
        # an anchor inside itself
        ("a: &a [*a]\ntrain: images/train\nval: images/val\nnames: [a]\n", None, ""),
    ],
)
def test_a_small_file_cannot_claim_unbounded_memory(text: str, line: int | None, words: str) -> None:
    # GIVEN a data.yaml that is small on disk but stands for a huge structure
    # WHEN parsed (the trigger, `yolopipe dataset validate` and train.py all parse it here)
    problems = refused(text) if words else parse_data_yaml(text)[1]
    # THEN it is refused in one line naming the limit, quickly and without a MemoryError
    if words:
        hit = next(p for p in problems if words in p.message)
        assert hit.line == line and "\n" not in str(hit) and len(str(hit)) < 200


def test_ten_thousand_classes_are_accepted() -> None:
    # GIVEN the largest vocabulary allowed (LVIS has 1,203 classes, Objects365 365) WHEN parsed THEN it passes
    parsed = parse_ok("train: images/train\nval: images/val\nnc: 10000\n")
    assert parsed.nc == 10_000
