"""Every command the user is shown works: the README's examples, every `--help`, and every hint the
CLI prints, run against `yolopipe local serve` with the exit code the README documents.

Collected, not listed, so commands added later are covered too:

- README: each `yolopipe ...` line of a ```bash block (`[--opt]` is run included, `a|b` as `a`);
- the parser tree: `--help` of every command and subcommand, and each `yolopipe ...` its text shows
  (the typical flow, `see \\`yolopipe ... --help\\``);
- the code: every backticked `yolopipe ...` in a string of yolopipe/ and functions/ (f-string holes
  are filled with real values, see HOLES);
- what the CLI printed: each backticked `yolopipe ...` in the output of every command run here.

A hint may name what the user fills in (PATH, NAME, EXECUTION...): PLACEHOLDERS gives real values.
AWS commands get `--local` (and a short `--interval`); `local serve` / `local run` are parsed
(`--help`), not started: the served stack here and tests/integration/test_local_mode.py run them.
One real training runs (the README's `upload --watch`, 1 epoch at 32 px); every execution a hint
starts afterwards is stopped at once, so `watch` on it exits 1 as documented (0 only on Succeeded).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import re
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BACKTICKED = re.compile(r"`(yolopipe [^`]+)`")
#: Commands that run until stopped or train from scratch: parsed with --help instead.
LONG_RUNNING = (("local", "serve"), ("local", "run"))


# --- collecting -----------------------------------------------------------------------------------

def readme_commands() -> list[tuple[str, str]]:
    """(where, command) for each `yolopipe` line of the README's bash blocks."""
    text = (REPO / "README.md").read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("#", 1)[0].strip()
            command = re.sub(r"^(\S*/)?yolopipe\b", "yolopipe", command)  # .venv/bin/yolopipe
            if command.startswith("yolopipe "):
                command = re.sub(r"\[([^\]]*)\]", r"\1", command)  # optional parts: run them too
                found.append(("README", " ".join(t.split("|")[0] for t in command.split())))
    return found


def code_hints() -> list[tuple[str, str]]:
    """(file:line, template) for every backticked `yolopipe ...` in the package's and functions' strings;
    f-string holes stay as `{expression}`."""
    found = []
    for path in sorted([*(REPO / "yolopipe").rglob("*.py"), *(REPO / "functions").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if id(node) in docstrings or id(node) in inner:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                               for v in node.values)
            else:
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            found += [(where, hint) for hint in BACKTICKED.findall(text)]
    return found


def parser_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser tree: (), ("upload",), ("dataset", "validate"), ..."""
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += parser_paths(sub, (*prefix, name))
    return paths


def leaf_parser(argv: list[str]) -> argparse.ArgumentParser:
    from yolopipe.cli.parser import build_parser

    parser = build_parser()
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or token not in subs[0].choices:
            break
        parser = subs[0].choices[token]
    return parser


def commands_in_help(text: str) -> list[str]:
    """Backticked commands, and the example lines (`  yolopipe ...`, then 2+ spaces) under a help text's
    `typical flow:` or `examples:` heading."""
    lines = []
    for section in re.findall(r"^(?:typical flow|examples):\n((?:[ \t]+\S.*\n?)+)", text, re.M):
        lines += [m.group(1) for m in re.finditer(r"^\s+(yolopipe \S.*?)(?:\s{2,}|$)", section, re.M)]
    return BACKTICKED.findall(text) + lines


# --- filling in and running -----------------------------------------------------------------------

class Stage:
    """The served stack, the datasets the examples name (in the working folder), and what ran."""

    def __init__(self, server: Any, lines: list[str], work: Path) -> None:
        self.server, self.lines, self.work = server, lines, work
        self.ran: dict[tuple[str, ...], tuple[str, int, str]] = {}
        self.failures: list[str] = []
        self.seconds: dict[tuple[str, ...], float] = {}
        #: Executions this test stopped (one training is enough): a command about one may exit 1, as the
        #: README's table says for an execution that is Stopped (`download`: no trained model).
        self.stopped: set[str] = set()

    # values ------------------------------------------------------------------------------------
    def latest_arn(self) -> str:
        sagemaker = self.server.emulator.client("sagemaker")
        pipeline = sagemaker.list_pipelines()["PipelineSummaries"][0]["PipelineName"]
        runs = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
        return str(max(runs, key=lambda r: r["StartTime"])["PipelineExecutionArn"]) if runs else ""

    def bucket(self) -> str:
        return str(self.server.emulator.client("s3").list_buckets()["Buckets"][0]["Name"])

    def placeholders(self) -> dict[str, str]:
        arn = self.latest_arn()
        return {"PATH": "./cats", "NAME": "cats", "<name>": "cats", "EXECUTION": arn.rsplit("/", 1)[-1],
                "EXEC": arn.rsplit("/", 1)[-1], "TYPE": "ml.g4dn.xlarge", "SRC": "./coco/instances.json",
                "DST": "./converted", "N": "2"}

    def holes(self) -> list[tuple[str, Callable[[], str]]]:
        """f-string expression (regex) -> the value a user would see there."""
        arn = self.latest_arn
        return [
            (r"arn\.rsplit\(.*\)\[-1\]", lambda: arn().rsplit("/", 1)[-1]),
            (r"(\w+\.)?arn", arn),
            (r"sources\.execution_id", lambda: arn().rsplit("/", 1)[-1]),
            (r"(\w+\.)?variant", lambda: "n"),
            (r"(args\.)?path|result\.root|root", lambda: "./cats"),
            (r"(args\.)?name", lambda: "cats"),
            (r"(result\.)?s3_uri|uri", lambda: f"s3://{self.bucket()}/datasets/cats/"),
            (r"args\.command", lambda: "upload"),
            (r"flag", lambda: "--training-instance-type"),
            (r"report\.dataset or '<name>'", lambda: "cats"),
        ]

    def fill(self, where: str, template: str) -> str | None:
        def hole(match: re.Match[str]) -> str:
            for pattern, value in self.holes():
                if re.fullmatch(pattern, match.group(1)):
                    return value()
            raise KeyError(match.group(1))

        try:
            return re.sub(r"\{([^{}]+)\}", hole, template)
        except KeyError as unknown:
            self.failures.append(f"{where}: hint `{template}` has a hole {unknown} this test cannot fill: "
                                 "add it to Stage.holes")
            return None

    def argv(self, command: str) -> list[str]:
        values = self.placeholders()
        tokens = []
        for token in shlex.split(command)[1:]:
            bare = token.removesuffix("...")
            tokens.append(values.get(bare, token))
        if tuple(tokens[:2]) in LONG_RUNNING:
            return [*tokens[:2], "--help"]
        options = leaf_parser(tokens)._option_string_actions
        if "--local" in options and "--local" not in tokens and "--endpoint-url" not in tokens:
            tokens.append("--local")
        if "--interval" in options and "--interval" not in tokens and "--help" not in tokens:
            tokens += ["--interval", "0.5"]
        return tokens

    # running -----------------------------------------------------------------------------------
    def run(self, where: str, command: str) -> None:
        from yolopipe.cli import main

        try:
            argv = self.argv(command)
        except ValueError as error:  # shlex
            self.failures.append(f"{where}: `{command}` does not parse as a command line: {error}")
            return
        if tuple(argv) in self.ran:
            return
        triggers = len([line for line in self.lines if "trigger:" in line])
        started = time.perf_counter()
        out, errors = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errors):
            try:
                code = main(argv)
            except SystemExit as exit_:  # --help and argparse errors
                code = int(exit_.code or 0)
        printed = out.getvalue() + errors.getvalue()
        self.ran[tuple(argv)] = (where, code, printed)
        ended = re.findall(r"^(Succeeded|Failed|Stopped) after", out.getvalue(), re.M)
        # watch: 0 only on Succeeded; an execution this test stopped is Stopped (1); none should fail
        expected = 1 if ended and ended[-1] == "Stopped" else 0
        if code != expected and code == 1 and self.about_a_stopped_execution(argv):
            expected = 1  # e.g. `download latest` after this test stopped the latest run: nothing trained
        if code != expected:
            self.failures.append(f"{where}: `yolopipe {shlex.join(argv)}` exited {code}, expected {expected}:\n"
                                 f"{printed[-1500:]}\nlocal serve said:\n" + "\n".join(self.lines[-15:]))
        if "data.yaml written last" in printed:
            self.wait_for(lambda: len([line for line in self.lines if "trigger:" in line]) > triggers)
        self.stop_running()
        self.seconds[tuple(argv)] = time.perf_counter() - started

    def stop_running(self) -> None:
        """Stop what a hint started (a run or an upload's trigger): one training is enough for this test."""
        sagemaker = self.server.emulator.client("sagemaker")
        for pipeline in sagemaker.list_pipelines()["PipelineSummaries"]:
            runs = sagemaker.list_pipeline_executions(PipelineName=pipeline["PipelineName"])
            for run in runs["PipelineExecutionSummaries"]:
                if run["PipelineExecutionStatus"] == "Executing":
                    arn = run["PipelineExecutionArn"]
                    sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=uuid.uuid4().hex)
                    self.stopped.add(arn)
                    self.wait_for(lambda arn=arn: sagemaker.describe_pipeline_execution(
                        PipelineExecutionArn=arn)["PipelineExecutionStatus"] not in ("Executing", "Stopping"))

    def about_a_stopped_execution(self, argv: list[str]) -> bool:
        """Whether the command names (or means by `latest`) an execution this test stopped."""
        ids = {arn.rsplit("/", 1)[-1] for arn in self.stopped} | self.stopped
        return ("latest" in argv and self.latest_arn() in self.stopped) or any(token in ids for token in argv)

    @staticmethod
    def wait_for(done: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            threading.Event().wait(0.2)

    def hints_printed(self) -> list[tuple[str, str]]:
        return [(f"output of `yolopipe {shlex.join(argv)}`", hint)
                for argv, (_, _, printed) in list(self.ran.items()) for hint in BACKTICKED.findall(printed)]


def _datasets(work: Path, sample_dataset: Callable[..., Any]) -> None:
    """./cats and ./my-dataset (one short training each, if asked), ./coco/instances.json for convert."""
    for name in ("cats", "my-dataset"):
        dataset = sample_dataset(name, train=4, val=2, imgsz=32)
        (dataset.root / "yolopipe.yaml").write_text("epochs: 1\nimage_size: 32\nbatch_size: 4\n")
        (work / name).symlink_to(dataset.root)
    coco = work / "coco"
    coco.mkdir()
    images = sorted((work / "cats" / "images" / "train").glob("*.jpg"))
    (work / "photo.jpg").write_bytes(images[0].read_bytes())  # what `predict latest photo.jpg` looks at
    for image in images:
        (coco / image.name).write_bytes(image.read_bytes())
    (coco / "instances.json").write_text(json.dumps({
        "images": [{"id": i, "file_name": p.name, "width": 32, "height": 32} for i, p in enumerate(images)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 16, 16], "area": 256, "iscrowd": 0}
                        for i in range(len(images))],
        "categories": [{"id": 1, "name": "cat"}],
    }))


@pytest.fixture
def official_weights_at_hand(tmp_path: Path) -> Iterator[Path]:
    """Ultralytics' weights folder holds a yolo11n.pt, as after a download (nothing downloads here: it is a
    YOLO11n built from its architecture), so `weights stage n` stages it as it would the official file."""
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    folder = tmp_path / "weights"
    folder.mkdir()
    before = SETTINGS["weights_dir"]
    SETTINGS.update({"weights_dir": str(folder)})
    try:
        YOLO("yolo11n.yaml").save(folder / "yolo11n.pt")
        yield folder
    finally:
        SETTINGS.update({"weights_dir": before})


def test_every_command_example_and_hint_runs_with_its_documented_exit_code(
    served: Any, sample_dataset: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_weights_at_hand: Path
) -> None:
    from yolopipe.cli.parser import build_parser

    server, lines = served
    # GIVEN the local stack, and the datasets the examples name in the working folder
    work = tmp_path / "work"
    work.mkdir()
    _datasets(work, sample_dataset)
    monkeypatch.chdir(work)
    stage = Stage(server, lines, work)
    # ... and the hints `local serve` printed when it started
    served_hints = [("local serve", hint) for line in lines for hint in BACKTICKED.findall(line)]
    assert served_hints, lines

    # WHEN every README example runs, in the README's order (its `upload --watch` trains once)
    readme = readme_commands()
    assert any(cmd.startswith("yolopipe upload") for _, cmd in readme), readme
    for where, command in readme:
        stage.run(where, command)
    # AND `--help` of every command, and every command those help texts show
    for path in parser_paths(build_parser()):
        stage.run("parser", shlex.join(("yolopipe", *path, "--help")))
    for argv, (_, _, printed) in list(stage.ran.items()):
        if "--help" in argv:
            for command in commands_in_help(printed):
                stage.run(f"help of `yolopipe {shlex.join(argv)}`", command)
    # AND every hint written in the code, with real values in its holes
    for where, template in [*served_hints, *code_hints()]:
        command = stage.fill(where, template)
        if command is not None:
            stage.run(where, command)
    # AND every hint those commands printed, until no new one appears
    for _ in range(3):
        before = len(stage.ran)
        for where, command in stage.hints_printed():
            stage.run(where, command)
        if len(stage.ran) == before:
            break

    slowest = sorted(stage.seconds.items(), key=lambda item: -item[1])[:15]
    print("\n".join(f"{seconds:6.1f}s  {shlex.join(argv)}  -> {stage.ran[argv][1]}" for argv, seconds in slowest))
    print(f"{len(stage.ran)} commands")
    # THEN each exited as documented
    assert not stage.failures, "\n\n".join(stage.failures)
    # AND the run covered what it claims: the README's training succeeded, hints were found in code
    assert len(stage.ran) > 40, sorted(stage.ran)
    watched = [code for argv, (_, code, _) in stage.ran.items() if argv[:1] == ("upload",) and "--watch" in argv]
    assert watched == [0]
