"""`python -m pipeline.render`: offline, deterministic, and placeholders that substitute cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yolopipe_shared.errors import DefinitionError
from yolopipe_shared.pipeline_template import PLACEHOLDERS, find_placeholders, substitute

REPO = Path(__file__).resolve().parents[3]

# Runs `pipeline.render` with every socket connection refused: any network use fails the render.
_OFFLINE_RENDER = """
import socket, sys
def _refuse(*args, **kwargs):
    raise OSError("network used during render: %r" % (args,))
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
from pipeline.render import main
sys.exit(main(sys.argv[1:]))
"""


def _offline_env(home: Path, hash_seed: str) -> dict[str, str]:
    """No credentials anywhere (no env keys, no profile, empty HOME), no region, new hash seed."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SAGEMAKER_", "BOTO"))
    }
    env.update(
        HOME=str(home),
        PYTHONHASHSEED=hash_seed,
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_render_needs_no_credentials_no_network_and_is_byte_identical(tmp_path, rendered_text):
    """GIVEN no AWS credentials, no region and no network WHEN the definition is rendered in another
    process (other folder, other hash seed) THEN it succeeds and is byte-identical to this one's."""
    home = tmp_path / "home"
    home.mkdir()
    output = tmp_path / "out" / "pipeline.json"
    process = subprocess.run(
        [sys.executable, "-c", _OFFLINE_RENDER, "--output", str(output)],
        cwd=home,
        env=_offline_env(home, "7") | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert "network used" not in process.stderr
    text = output.read_text()
    assert text == rendered_text
    assert json.loads(text)["Version"] == "2020-12-01"
    assert find_placeholders(text) == set(PLACEHOLDERS)


def test_substitution_fills_every_placeholder(rendered_text):
    """GIVEN the rendered template WHEN the deploy values are substituted THEN no placeholder
    survives and the values land where the jobs read them."""
    values = {
        "Bucket": "yolopipe-dev-123",
        "RoleArn": "arn:aws:iam::123456789012:role/sm",
        "Region": "eu-west-1",
        "ImageAccountId": "763104351884",
        "CodeS3Uri": "s3://yolopipe-dev-123/code/training-0123456789abcdef.tar.gz",
    }
    text = substitute(rendered_text, values)
    assert find_placeholders(text) == set()
    train = json.loads(text)["Steps"][0]["Arguments"]
    assert train["RoleArn"] == values["RoleArn"]
    assert train["HyperParameters"]["sagemaker_submit_directory"] == values["CodeS3Uri"]
    assert train["OutputDataConfig"]["S3OutputPath"].startswith("s3://yolopipe-dev-123/")
    assert ".dkr.ecr.eu-west-1.amazonaws.com/" in train["AlgorithmSpecification"]["TrainingImage"]


def test_substitution_refuses_missing_unknown_and_surviving_values(rendered_text):
    """GIVEN a value missing, an unknown name, or a value that is itself a placeholder WHEN
    substituting THEN it fails with a message naming the culprit, never a half-filled definition."""
    full = {"Bucket": "b", "RoleArn": "arn:aws:iam::1:role/r", "Region": "us-east-1", "CodeS3Uri": "s3://b/c",
            "ImageAccountId": "763104351884"}
    with pytest.raises(DefinitionError, match="no value for placeholder.*CodeS3Uri"):
        substitute(rendered_text, {k: v for k, v in full.items() if k != "CodeS3Uri"})
    with pytest.raises(DefinitionError, match="unknown placeholder value.*Buckett"):
        substitute(rendered_text, full | {"Buckett": "x"})
    with pytest.raises(DefinitionError, match="survived"):
        substitute(rendered_text, full | {"Bucket": "${Region}"})
    with pytest.raises(DefinitionError, match=r"unknown placeholder\(s\) Mystery"):
        substitute('{"a": "${Mystery}"}', full)


def test_substituted_values_are_json_escaped():
    """GIVEN a value with a quote WHEN substituted THEN the JSON stays valid and holds the value."""
    text = substitute('{"RoleArn": "${RoleArn}"}', {"RoleArn": 'arn:"x"\\y'})
    assert json.loads(text) == {"RoleArn": 'arn:"x"\\y'}


def test_render_cli_concrete_values_and_bad_role(tmp_path, capsys):
    """GIVEN concrete deploy values WHEN rendering THEN the file has none of those placeholders; GIVEN a
    role that is not an ARN or an unknown region THEN one line says what to fix and nothing is written."""
    from pipeline.render import main

    output = tmp_path / "p.json"
    assert main(["--output", str(output), "--bucket", "bkt", "--region", "eu-west-1",
                 "--role", "arn:aws:iam::123456789012:role/r", "--code-s3-uri", "s3://bkt/code/x.tar.gz"]) == 0
    assert find_placeholders(output.read_text()) == set()
    assert "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training" in output.read_text()
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    assert main(["--output", str(bad), "--role", "my-role"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--role must be an IAM role ARN" in err
    assert main(["--output", str(bad), "--region", "moon-central-1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "region 'moon-central-1'" in err
    assert not bad.exists()
