"""The training-code tarball: same sources, same bytes, same S3 key."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

from pipeline.code_bundle import SHARED_PACKAGE_DIR, TRAINING_CODE_DIR, build_bundle


def _copy_sources(root: Path) -> tuple[Path, Path]:
    code = root / "training_code"
    shared = root / "yolopipe_shared"
    shutil.copytree(TRAINING_CODE_DIR, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(SHARED_PACKAGE_DIR, shared, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return code, shared


def test_bundle_is_byte_identical_whatever_the_checkout(tmp_path):
    """GIVEN the same sources checked out at another time, with bytecode caches lying around WHEN the
    bundle is built THEN the bytes and the key are the same (so the deploy uploads it once)."""
    reference = build_bundle()
    code, shared = _copy_sources(tmp_path)
    for path in list(code.rglob("*")) + list(shared.rglob("*")):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0junk")
    (shared / "stale.pyc").write_bytes(b"\0junk")
    again = build_bundle(code, shared)
    assert again.data == reference.data
    assert again.key == reference.key
    assert reference.key.startswith("code/training-") and reference.key.endswith(".tar.gz")


def test_bundle_layout_and_content_address(tmp_path):
    """GIVEN the bundle WHEN a container unpacks it THEN train.py and evaluate.py sit at the root next to
    yolopipe_shared/, with no bytecode; GIVEN one changed line THEN the key changes."""
    bundle = build_bundle()
    with tarfile.open(fileobj=io.BytesIO(bundle.data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {"train.py", "evaluate.py", "yolopipe_shared/evaluation.py", "yolopipe_shared/parameters.py"} <= set(names)
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}
    code, shared = _copy_sources(tmp_path)
    with (code / "evaluate.py").open("a") as handle:
        handle.write("\n# changed\n")
    assert build_bundle(code, shared).key != bundle.key
