"""The training-code tarball: training_code/* plus the yolopipe_shared modules it imports (and
theirs), byte-identical for identical sources and named by its sha256.

Only what training imports goes in: the tarball's URI is part of the Train and Evaluate step
arguments, i.e. of SageMaker's step-cache key, so a change to the notifier, the trigger or any
contract module training does not use must leave the tarball, and the cache, as they are.

What the SageMaker containers unpack (`sagemaker_submit_directory` for training, the `code`
processing input for evaluation), what the deploy function uploads once per content
(`code/training-<sha256[:16]>.tar.gz`), and what the local executor unpacks. Deterministic:
sorted names, fixed mtime / uid / gid / owner names / modes, gzip header mtime 0, no
__pycache__ or *.pyc, so the same sources always give the same key.

    python -m pipeline.code_bundle --output build/code.tar.gz   # prints the key
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import sys
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAINING_CODE_DIR = REPO_ROOT / "training_code"
SHARED_PACKAGE_DIR = REPO_ROOT / "functions" / "shared" / "yolopipe_shared"

#: Key prefix of the tarballs in the stack's bucket.
CODE_KEY_PREFIX = "code/training-"
_FIXED_MTIME = 0
_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class CodeBundle:
    """The tarball's bytes and its content address."""

    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        """`code/training-<sha256[:16]>.tar.gz`: the object key in the stack's bucket."""
        return code_key(self.sha256)

    def s3_uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key}"


def code_key(sha256: str) -> str:
    """The object key of a tarball with this sha256."""
    return f"{CODE_KEY_PREFIX}{sha256[:16]}.tar.gz"


def _files(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """(name in the archive, path on disk) for every regular file under `root`, unsorted."""
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in _EXCLUDED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink() or not path.is_file() or path.suffix in _EXCLUDED_SUFFIXES:
            continue
        yield (f"{prefix}{relative.as_posix()}", path)


def _shared_imports(source: Path, package: str) -> set[str]:
    """Module names of `package` that `source` imports (absolute `package.x`, or relative `.x` when
    `source` lies inside the package)."""
    tree = ast.parse(source.read_bytes(), filename=str(source))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith(package + "."))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 0 and (base == package or base.startswith(package + ".")):
                parts = base.split(".")
                found.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif node.level == 1:
                found.update([base.split(".")[0]] if base else [a.name for a in node.names])
    return found


def shared_modules_for(training_code_dir: Path = TRAINING_CODE_DIR, shared_dir: Path = SHARED_PACKAGE_DIR) -> list[str]:
    """The yolopipe_shared modules training needs: the import closure of training_code/*.py."""
    package = shared_dir.name
    todo = set().union(*(_shared_imports(p, package) for p in training_code_dir.glob("*.py")))
    needed: set[str] = set()
    while todo:
        name = todo.pop()
        if name in needed or not (shared_dir / f"{name}.py").is_file():
            continue
        needed.add(name)
        todo |= _shared_imports(shared_dir / f"{name}.py", package)
    return sorted(needed)


def bundle_members(
    training_code_dir: Path = TRAINING_CODE_DIR, shared_dir: Path = SHARED_PACKAGE_DIR
) -> list[tuple[str, Path]]:
    """Sorted (archive name, source path) pairs: training_code/* at the root, then the
    yolopipe_shared modules it imports."""
    if not (training_code_dir / "train.py").is_file():
        raise FileNotFoundError(f"{training_code_dir}/train.py not found: is this a yolopipe checkout?")
    members = dict(_files(training_code_dir, ""))
    for module in ["__init__", *shared_modules_for(training_code_dir, shared_dir)]:
        name = f"{shared_dir.name}/{module}.py"
        if name in members:
            raise ValueError(f"{name} exists in both {training_code_dir} and {shared_dir}")
        members[name] = shared_dir / f"{module}.py"
    return sorted(members.items())


def build_bundle(training_code_dir: Path = TRAINING_CODE_DIR, shared_dir: Path = SHARED_PACKAGE_DIR) -> CodeBundle:
    """Build the tarball in memory (a few hundred KB at most)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in bundle_members(training_code_dir, shared_dir):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _FIXED_MTIME
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of the local path and the clock.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return CodeBundle(compressed.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.code_bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="where to write the tarball")
    args = parser.parse_args(argv)
    try:
        bundle = build_bundle()
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(bundle.data)
    print(bundle.key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
