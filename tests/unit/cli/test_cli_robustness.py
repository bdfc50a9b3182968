"""The CLI against a world that misbehaves: an endpoint that never answers, endpoint and region
values botocore cannot use, dataset folders whose links point elsewhere. Each ends in one line and
an exit code, never a traceback or minutes of silence; nothing outside the dataset is uploaded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from yolopipe.upload import upload_dataset

BUCKET = "yolopipe-unit-cli"  # the stack's bucket in tests/unit/cli/conftest.py


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """http://127.0.0.1:<port>: accepts every connection, reads what it is sent, never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_endpoint_that_never_answers_ends_in_one_line(cli: Callable[..., Any], silent_endpoint: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an endpoint that accepts connections and never answers, and a 1 s read timeout
    _fake_credentials(monkeypatch)
    monkeypatch.setenv("YOLOPIPE_READ_TIMEOUT", "1")
    # WHEN the user lists executions against it
    started = time.monotonic()
    result = cli("executions", "list", "--endpoint-url", silent_endpoint, "--pipeline", "p", "--bucket", "b")
    elapsed = time.monotonic() - started
    # THEN after a few bounded attempts (not six minutes) one line names the endpoint and the wait, exit 3
    assert result.code == 3, result
    assert elapsed < 20, elapsed
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "did not answer within 1 s" in lines[0] and silent_endpoint in lines[0], lines[0]
    assert "--endpoint-url" in lines[0] and "Traceback" not in result.err


@pytest.mark.parametrize("flags", [
    ("--endpoint-url", "not a url"),
    ("--endpoint-url", "ftp://x"),
    ("--endpoint-url", "http://"),
    ("--region", "us east 1"),
    ("--region", "../../x"),
])
def test_malformed_endpoint_or_region_is_a_usage_error(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
                                                       flags: tuple[str, str]) -> None:
    # GIVEN credentials, and an --endpoint-url or --region botocore cannot use
    _fake_credentials(monkeypatch)
    # WHEN any command that talks to AWS runs with it
    result = cli("executions", "list", "--pipeline", "p", "--bucket", "b", *flags)
    # THEN one line names the option and the value, exit 2 (usage), and no request was tried
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and flags[0] in lines[0] and repr(flags[1]) in lines[0], result.err
    assert "Traceback" not in result.err


def test_malformed_region_from_the_environment_is_a_usage_error(cli: Callable[..., Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN AWS_REGION set to something that is not a region name
    _fake_credentials(monkeypatch)
    monkeypatch.setenv("AWS_REGION", "eu west 1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu west 1")
    # WHEN a command builds its first client
    result = cli("executions", "list", "--pipeline", "p", "--bucket", "b")
    # THEN one line, exit 2
    assert result.code == 2, result
    assert len(result.err.strip().splitlines()) == 1 and "'eu west 1'" in result.err, result.err


# --- links that point out of the dataset --------------------------------------------------------

def _keys(s3: Any, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents") or []}


@pytest.fixture
def linked_dataset(sample_dataset: Any, tmp_path: Path) -> Any:
    """A valid dataset with, beside its real files, a link to a secret file outside it, a link to a
    folder outside it, and a link to one of its own images (inside: a harmless copy)."""
    dataset = sample_dataset(train=4, val=2)
    outside = tmp_path / "home"
    (outside / ".ssh").mkdir(parents=True)
    (outside / ".ssh" / "id_rsa").write_text("PRIVATE KEY\n")
    (dataset.root / "id_rsa.txt").symlink_to(outside / ".ssh" / "id_rsa")
    (dataset.root / "keys").symlink_to(outside / ".ssh", target_is_directory=True)
    image = next((dataset.root / "images" / "train").iterdir())
    (dataset.root / "images" / "train" / f"again{image.suffix}").symlink_to(image)
    return dataset


def test_upload_skips_links_out_of_the_dataset_and_says_so(cli: Callable[..., Any], aws: dict[str, Any],
                                                            linked_dataset: Any) -> None:
    # GIVEN a dataset folder holding links to a file and a folder outside it
    # WHEN the user uploads it
    result = cli("upload", linked_dataset.root, "--name", "linked")
    # THEN nothing outside the dataset is in the bucket, the inside link is, and the output says what was skipped
    assert result.code == 0, result.err
    keys = _keys(aws["s3"], "datasets/linked/")
    assert "datasets/linked/id_rsa.txt" not in keys
    assert not any(key.startswith("datasets/linked/keys/") for key in keys)
    assert any(key.startswith("datasets/linked/images/train/again") for key in keys)
    assert "datasets/linked/data.yaml" in keys
    assert "skipped 2 links that point outside the dataset" in result.out + result.err


def test_upload_as_json_reports_the_skipped_links(cli: Callable[..., Any], aws: dict[str, Any],
                                                  linked_dataset: Any) -> None:
    # GIVEN the same dataset WHEN uploaded with --json THEN the result carries the warning
    result = cli("upload", linked_dataset.root, "--name", "linked", "--json")
    assert result.code == 0, result.err
    assert result.json()["skipped_links"] == 2
    assert any("skipped 2 links that point outside the dataset" in w for w in result.json()["warnings"])


def test_upload_function_never_sends_a_link_out_of_the_dataset(aws: dict[str, Any], linked_dataset: Any) -> None:
    # GIVEN the same dataset WHEN a notebook uploads it with the plain function
    result = upload_dataset(aws["s3"], linked_dataset.root, BUCKET, "nb")
    # THEN the secret is not in the bucket and the result says why
    assert "datasets/nb/id_rsa.txt" not in _keys(aws["s3"], "datasets/nb/")
    assert result.skipped_links == 2


def test_marker_that_links_out_of_the_dataset_is_refused(cli: Callable[..., Any], aws: dict[str, Any],
                                                         sample_dataset: Any, tmp_path: Path) -> None:
    # GIVEN a dataset whose data.yaml is a link to a file outside it
    dataset = sample_dataset(train=2, val=2)
    elsewhere = tmp_path / "elsewhere.yaml"
    (dataset.root / "data.yaml").rename(elsewhere)
    (dataset.root / "data.yaml").symlink_to(elsewhere)
    # WHEN the user uploads it (validation off: the upload itself must hold the line)
    result = cli("upload", dataset.root, "--name", "marker", "--no-validate")
    # THEN one line says so, and nothing was uploaded
    assert result.code != 0
    assert "data.yaml" in result.err and "outside" in result.err and "Traceback" not in result.err
    assert _keys(aws["s3"], "datasets/marker/") == set()
