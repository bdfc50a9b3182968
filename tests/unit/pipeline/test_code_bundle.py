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
    assert {"train.py", "evaluate.py", "yolopipe_shared/evaluation.py", "yolopipe_shared/data_yaml.py"} <= set(names)
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}
    code, shared = _copy_sources(tmp_path)
    with (code / "evaluate.py").open("a") as handle:
        handle.write("\n# changed\n")
    assert build_bundle(code, shared).key != bundle.key


def test_bundle_holds_only_what_training_imports(tmp_path):
    """GIVEN the bundle WHEN listed THEN it carries the contract modules training imports and none of
    the functions' own modules (execution reading, SNS topic, overrides), so they never reach the
    step-cache key."""
    with tarfile.open(fileobj=io.BytesIO(build_bundle().data)) as tar:
        shared = {m.name for m in tar.getmembers() if m.name.startswith("yolopipe_shared/")}
    assert {"yolopipe_shared/errors.py", "yolopipe_shared/labels.py"} <= shared
    assert not shared & {"yolopipe_shared/execution_report.py", "yolopipe_shared/topic.py",
                         "yolopipe_shared/overrides.py", "yolopipe_shared/config.py"}


def test_notifier_and_trigger_changes_leave_the_tarball_unchanged(tmp_path):
    """GIVEN a change to a Slack message (notifier), to the trigger and to a shared module training
    does not import WHEN the bundle is built again THEN its sha256 is the same: an unchanged dataset
    is not trained again (SageMaker's step cache keys on the tarball URI)."""
    reference = build_bundle()
    code, shared = _copy_sources(tmp_path)
    repo = TRAINING_CODE_DIR.parent
    for edited in (repo / "functions" / "notifier" / "slack.py", repo / "functions" / "trigger" / "start_training.py"):
        assert edited.is_file()  # the functions' own logic lives beside their handlers, outside the bundle
    with (shared / "execution_report.py").open("a") as handle:
        handle.write("\n# a new line in a notification\n")
    assert build_bundle(code, shared).sha256 == reference.sha256
    with (shared / "data_yaml.py").open("a") as handle:  # a contract module training does use
        handle.write("\n# changed\n")
    assert build_bundle(code, shared).sha256 != reference.sha256
