"""A refused dataset, seen where the user already looks: local mode runs the deployed path
(S3 -> functions/trigger -> refusals/<name>/<version>.json + "Dataset Refused" event -> EventBridge
rule -> functions/notifier -> Slack; the topic -> email), and the CLI shows it within seconds."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_refused_upload_is_shown_by_the_cli_within_seconds_and_reaches_slack_and_email(
        served: Any, sample_dataset: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from yolopipe.cli import main as yolopipe
    from yolopipe.client import Yolopipe

    server, lines = served
    # GIVEN a dataset whose data.yaml the trigger refuses (`download:`), sent without the local check
    dataset = sample_dataset("zebras", train=4, val=2)
    data_yaml = dataset.root / "data.yaml"
    data_yaml.write_text(data_yaml.read_text() + "download: https://example.com/zebras.zip\n")
    # WHEN the user uploads it and waits for the trigger
    started = time.monotonic()
    code = yolopipe(["upload", str(dataset.root), "--name", "zebras", "--local", "--no-validate", "--watch",
                    "--start-timeout", "30"])
    waited = time.monotonic() - started
    out = capsys.readouterr().out
    # THEN upload --watch shows the refusal with its problem within seconds, exit 1
    assert code == 1, out + "\n".join(lines)
    assert waited < 20, (waited, out, "\n".join(lines))
    assert "Refused: dataset zebras" in out and "`download` is not allowed" in out, out
    # AND the record is in S3, outside datasets/
    client = Yolopipe(local=True)
    s3 = client.aws.client("s3")
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=client.aws.bucket(), Prefix="refusals/zebras/")["Contents"]]
    assert key.endswith(".json")
    record = json.loads(s3.get_object(Bucket=client.aws.bucket(), Key=key)["Body"].read())
    assert record["dataset"] == "zebras" and record["problem_count"] >= 1
    # AND `watch latest` and `executions list` show it too
    assert yolopipe(["watch", "latest", "--local"]) == 1
    assert "`download` is not allowed" in capsys.readouterr().out
    assert yolopipe(["executions", "list", "--local"]) == 0
    listed = capsys.readouterr().out
    assert "Refused" in listed and "zebras" in listed, listed
    # AND Slack (through the notifier) and email (through the topic) received it
    for _ in range(100):
        shown = "\n".join(lines)
        if "Dataset refused: zebras" in shown and "Subject: yolopipe: dataset zebras refused" in shown:
            break
        time.sleep(0.1)
    slack = shown[shown.index("Dataset refused: zebras"):]
    assert "`download` is not allowed" in slack.split("└", 1)[0], shown
    assert "Subject: yolopipe: dataset zebras refused" in shown, shown
