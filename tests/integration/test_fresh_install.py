"""`pip install` of the package into an empty Python 3.11 environment gives a working `yolopipe`: the
declared dependencies cover every import its commands make (a missing one is a traceback for the user).

The wheel is built from a copy of the sources with the dev environment's setuptools, then installed
with its dependencies resolved by pip from the package index (the pip cache makes that quick) into a
fresh venv; `yolopipe --help` and an `upload --dry-run` against the local emulator must work there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: What pyproject.toml's [tool.setuptools] packages need, and the files it names.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "yolopipe", "pipeline", "functions/shared/yolopipe_shared")


def _python311() -> str:
    found = shutil.which("python3.11")
    if found is None:
        pytest.skip("no python3.11 on PATH")
    return found


def _fresh_install(tmp_path: Path) -> Path:
    """A venv with nothing but the built wheel and what it declares; returns its bin folder."""
    source = tmp_path / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([_python311(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The dev environment's pip installs into the new interpreter (--python): no ensurepip, no bytecode.
    wheel = next((tmp_path / "dist").glob("yolopipe-*.whl"))
    installed = subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-compile",
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv / "bin"


#: Run by the fresh interpreter: every module a core file imports (at the top or inside a function)
#: must be installed, unless the import is guarded (`try: ... except ImportError:`, which says what to
#: install: `predict` and `weights stage` need Ultralytics, the `train` extra). yolopipe/local needs the
#: `local` extra and is left out.
IMPORT_CHECK = """
import ast, importlib.util, sys
from pathlib import Path
import yolopipe, yolopipe_shared
def catches_import_error(handler):
    return handler.type is not None and any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                                            for n in ast.walk(handler.type))
for package in (yolopipe, yolopipe_shared):
    root = Path(package.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if "local" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text())
        guarded = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try)
                   and any(catches_import_error(h) for h in node.handlers)
                   for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names}:
                if top not in sys.stdlib_module_names and top not in ("yolopipe", "yolopipe_shared", "pipeline") \\
                        and importlib.util.find_spec(top) is None:
                    print(f"{path.relative_to(root.parent)}:{node.lineno} imports {top}, which is not installed")
"""


def test_a_fresh_pip_install_runs_help_and_an_upload_dry_run(tmp_path: Path, sample_dataset: Any) -> None:
    from yolopipe.local.emulator import Emulator

    # GIVEN yolopipe installed with pip into an empty environment (no dev packages, no checkout on the path)
    bin_dir = _fresh_install(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dataset = sample_dataset("cats", train=4, val=2, imgsz=32)
    with Emulator() as emulator:
        emulator.client("s3").create_bucket(Bucket="fresh-install")
        env.update(emulator.environment())
        # WHEN the user asks for help, then for an upload's dry run against an S3 endpoint
        helped = subprocess.run([str(bin_dir / "yolopipe"), "--help"], capture_output=True, text=True, env=env,
                                cwd=tmp_path, timeout=60)
        planned = subprocess.run([str(bin_dir / "yolopipe"), "upload", str(dataset.root), "--name", "cats",
                                  "--dry-run", "--bucket", "fresh-install", "--endpoint-url", emulator.endpoint_url],
                                 capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        imports = subprocess.run([str(bin_dir / "python"), "-c", IMPORT_CHECK], capture_output=True, text=True,
                                 env=env, cwd=tmp_path, timeout=120)
        model = tmp_path / "best.pt"
        model.write_bytes(b"not read: the command stops before")
        predicted = subprocess.run([str(bin_dir / "yolopipe"), "predict", str(model), str(next(dataset.root.rglob(
            "*.jpg")))], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    # THEN both work: no ImportError, no traceback
    # AND every import of the installed package is covered by its declared dependencies
    assert imports.returncode == 0 and imports.stdout == "", imports.stdout + imports.stderr
    assert helped.returncode == 0 and "exit codes:" in helped.stdout, helped.stderr
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "files to send" in planned.stdout and "Traceback" not in planned.stderr
    # AND a command that needs an extra (predict: Ultralytics) says in one line what to install
    assert predicted.returncode == 1 and predicted.stderr.count("\n") == 1, predicted.stderr
    assert "pip install 'yolopipe[train]'" in predicted.stderr
