"""Our label rules give Ultralytics' verdicts: what its pre-training scan drops, we refuse.

GIVEN label files of every kind (good, and each fault Ultralytics' verify_image_label catches),
WHEN both check them, THEN both call the same files bad: a dataset we pass trains on every image.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from yolopipe_shared.labels import check_label

LABELS = {
    "box": "0 0.5 0.5 0.2 0.2\n1 0.1 0.9 0.05 0.1\n",
    "bom_crlf": "\ufeff2 0.5 0.5 0.2 0.2\r\n",
    "blank": "\n  \n",
    "tolerance_high": "0 1.009 0.5 0.2 0.2\n",
    "tolerance_low": "0 -0.009 0.5 0.2 0.2\n",
    "float_class": "2.0 0.5 0.5 0.2 0.2\n",
    "zero_size_box": "0 0.5 0.5 0 0\n",
    "polygon": "0 0.1 0.1 0.9 0.1 0.9 0.9\n1 0.2 0.2 0.4 0.2 0.3 0.5 0.25 0.45\n",
    "class_out_of_range": "0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n",
    "negative_class": "-1 0.5 0.5 0.2 0.2\n",
    "fractional_class": "1.5 0.5 0.5 0.2 0.2\n",
    "pixels": "0 320 240 64 48\n",
    "over_tolerance": "0 1.02 0.5 0.2 0.2\n",
    "negative_width": "0 0.5 0.5 -0.005 0.2\n",
    "nan": "0 0.5 0.5 nan 0.2\n",
    "four_values": "0 0.5 0.5 0.2\n",
    "six_values": "0 0.5 0.5 0.2 0.2 0.9\n",
    "ragged": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 1\n",
    "words": "cat 0.5 0.5 0.2 0.2\n",
    "mixed_polygon_box": "0 0.1 0.1 0.9 0.1 0.9 0.9\n0 0.5 0.5 0.2 0.2\n",
    "odd_polygon": "0 0.1 0.1 0.9 0.1 0.9 0.9 0.5\n",
    "latin1": "0 0.5 0.5 0.2 0.2 \xe9\n",
}


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("parity") / "images" / "a.jpg"
    path.parent.mkdir(parents=True)
    Image.new("RGB", (32, 32), (100, 120, 140)).save(path)
    return path


@pytest.mark.parametrize("name", sorted(LABELS))
def test_same_verdict_as_ultralytics(name: str, image: Path, tmp_path: Path) -> None:
    from ultralytics.data.utils import verify_image_label

    content = LABELS[name]
    data = content.encode("latin-1") if name == "latin1" else content.encode()
    label = tmp_path / f"{name}.txt"
    label.write_bytes(data)
    # Ultralytics' per-image scan: (im_file, lb_file, prefix, keypoint, num_cls, nkpt, ndim, single_cls)
    result = verify_image_label((str(image), str(label), "", False, 3, 0, 0, False))
    ultralytics_corrupt = result[8] == 1
    ours = check_label(data, 3)
    assert (ours is not None) == ultralytics_corrupt, (ours, result[9])
