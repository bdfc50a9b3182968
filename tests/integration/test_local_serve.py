"""`yolopipe local serve` + the CLI's `--local`: what a user does day to day, without an account.

GIVEN the local stack served on 127.0.0.1, WHEN a user uploads a dataset with `yolopipe upload
--local` and follows it with `yolopipe watch latest --local`, THEN the upload alone starts the
training (data.yaml written last), watch ends with the execution Succeeded, and `report`
shows the metrics and the registered model package.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_upload_with_the_cli_trains_and_watch_follows_it(served: Any, sample_dataset: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from yolopipe.cli import main as yolopipe

    server, lines = served
    # GIVEN a small dataset asking for one quick epoch in its yolopipe.yaml
    dataset = sample_dataset("shapes", train=8, val=4)
    (dataset.root / "yolopipe.yaml").write_text("epochs: 1\nimage_size: 64\nbatch_size: 8\n")
    # WHEN the user uploads it and watches the latest execution
    assert yolopipe(["upload", str(dataset.root), "--name", "shapes", "--local"]) == 0
    for _ in range(300):  # S3 -> trigger -> StartPipelineExecution takes a moment, as on AWS
        if any("trigger: started" in line for line in lines):
            break
        threading.Event().wait(0.2)
    watched = yolopipe(["watch", "latest", "--local"])
    # THEN the execution the upload started ends Succeeded
    output = capsys.readouterr()
    assert watched == 0, output.out + output.err + "\n".join(lines)
    assert yolopipe(["report", "latest", "--local"]) == 0
    report = capsys.readouterr().out
    assert "mAP50-95" in report or "map50_95" in report, report
    assert "model-package/yolopipe-local-models/1" in report, report
    # and the server showed the notifications and kept the artifacts
    for _ in range(50):
        if server.finished:
            break
        threading.Event().wait(0.2)
    assert [r.status for r in server.finished] == ["Succeeded"]
    assert (server.finished[0].output_dir / "model" / "best.pt").is_file()
    shown = "\n".join(lines)
    assert "─ Slack" in shown and "Training succeeded: shapes" in shown
