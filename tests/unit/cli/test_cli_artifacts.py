"""What `yolopipe download` unpacks is untrusted: an archive in the bucket can be written by anyone who
can write there. Each test builds the hostile archive a user could be handed and checks nothing lands
outside the target and the sizes are bounded."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from yolopipe import artifacts


def _archive(path: Path, *members: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _file(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def test_a_model_archive_unpacks_its_files_and_folders(tmp_path: Path) -> None:
    # GIVEN model.tar.gz as SageMaker writes it WHEN extracted THEN its files are there, and listed
    code = tarfile.TarInfo("code")
    code.type = tarfile.DIRTYPE
    archive = _archive(tmp_path / "model.tar.gz", _file("best.pt"), code, _file("code/inference.py"))
    written = artifacts.extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["best.pt", "code/inference.py"]


@pytest.mark.parametrize("member", ["../escape.pt", "/etc/escape.pt", "model/../../escape.pt"])
def test_a_member_outside_the_target_is_refused(tmp_path: Path, member: str) -> None:
    # GIVEN an archive whose member would land outside the target WHEN extracted THEN one-line refusal,
    # nothing written
    archive = _archive(tmp_path / "model.tar.gz", _file("best.pt"), _file(member))
    with pytest.raises(artifacts.ArchiveRefused, match="outside"):
        artifacts.extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.pt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_links_and_special_files_are_refused(tmp_path: Path, kind: bytes) -> None:
    # GIVEN an archive with a link (to /etc/passwd) or a device WHEN extracted THEN refused, nothing written
    link = tarfile.TarInfo("best.pt")
    link.type = kind
    link.linkname = "/etc/passwd"
    archive = _archive(tmp_path / "model.tar.gz", link)
    with pytest.raises(artifacts.ArchiveRefused, match="link or a special file"):
        artifacts.extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sizes_and_member_count_are_bounded_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN bounds (lowered here so the test archive stays tiny) WHEN an archive claims more THEN refused
    monkeypatch.setattr(artifacts, "MAX_ARCHIVE_BYTES", 10)
    big = _archive(tmp_path / "big.tar.gz", _file("a.pt", 8), _file("b.pt", 8), data=b"12345678")
    with pytest.raises(artifacts.ArchiveRefused, match="unpacks to more than"):
        artifacts.extract(big, tmp_path / "out")
    monkeypatch.setattr(artifacts, "MAX_MEMBERS", 2)
    many = _archive(tmp_path / "many.tar.gz", _file("a"), _file("b"), _file("c"))
    with pytest.raises(artifacts.ArchiveRefused, match="more than 2 members"):
        artifacts.extract(many, tmp_path / "out")
    assert not (tmp_path / "out").exists()
