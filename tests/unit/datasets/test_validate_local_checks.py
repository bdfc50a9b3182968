"""`yolopipe dataset validate` on a local folder: the trigger's verdicts plus what only a local copy
shows (every image decodes, every label file has its image), in one pass, with the README's exit codes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels (PIL reads the size before any pixel)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_broken_images_and_orphan_labels_are_problems_background_images_a_note(cli: Any, sample_dataset: Any) -> None:
    """GIVEN a dataset with a truncated image, a 5-pixel image, a decompression bomb, an orphan label
    file, and one image without a label file (a background image) and a data.yaml problem
    WHEN `dataset validate` runs
    THEN it exits 1 listing every one of those problems at once, and the background image only as a
    warning with its count."""
    ds = sample_dataset("shapes", train=8, val=4)
    train = sorted((ds.root / "images" / "train").glob("*.jpg"))
    train[0].write_bytes(train[0].read_bytes()[:40])  # truncated
    Image.new("RGB", (5, 5)).save(train[1], "JPEG")  # too small for Ultralytics
    train[2].with_suffix(".png").write_bytes(_png_header(30_000, 30_000))  # bomb
    (ds.root / "labels" / "train" / "lost_image.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # orphan
    (ds.root / "labels" / "train" / f"{train[3].stem}.txt").unlink()  # background image
    with (ds.root / "data.yaml").open("a") as handle:
        handle.write("download: bash get.sh\n")

    result = cli("dataset", "validate", ds.root)

    assert result.code == 1, result.err
    out = result.out
    assert f"images/train/{train[0].name}: does not decode" in out, out
    assert f"images/train/{train[1].name}: is 5x5 pixels" in out, out
    assert f"images/train/{train[2].stem}.png: has more than" in out and "decompression bomb" in out, out
    assert "labels/train/lost_image.txt: has no image" in out, out
    assert "`download` is not allowed" in out, out
    assert "warning: data.yaml:" in out and "1 of 9 images have no label file and train as background" in out, out
    decoded = cli("dataset", "validate", ds.root, "--json").json()
    assert decoded["images_decoded"] == 13 and decoded["images_without_labels_per_split"]["train"] == 1


def test_a_clean_dataset_passes_with_every_image_decoded(cli: Any, sample_dataset: Any) -> None:
    ds = sample_dataset("shapes", train=8, val=4)
    result = cli("dataset", "validate", ds.root)
    assert result.code == 0, result.out + result.err
    assert "OK" in result.out and "12 images decoded" in result.out


def test_a_folder_without_data_yaml_is_a_dataset_problem(cli: Any, tmp_path: Path) -> None:
    """GIVEN a folder without data.yaml WHEN validated THEN exit 1 (the README: dataset problems; a
    PATH that is no folder is bad usage, exit 2: test_cli_basics) and where data.yaml goes."""
    (tmp_path / "empty").mkdir()
    empty = cli("dataset", "validate", tmp_path / "empty")
    assert empty.code == 1 and "data.yaml: not found: put data.yaml at the dataset root" in empty.out
