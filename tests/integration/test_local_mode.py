"""The README's main job, locally: sample dataset -> trigger -> Train -> Evaluate -> gate ->
Register, with the Slack messages and emails a team would get; and the two ways it goes wrong
that a user must see (a refused dataset, a training that fails)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[str]]:
    """The README's main command (`make demo` = `python -m yolopipe.demo`) with its defaults."""
    from yolopipe.demo import run_demo

    lines: list[str] = []
    result = run_demo(["--output", str(tmp_path_factory.mktemp("runs"))], echo=lines.append)
    return result, lines


def test_sample_dataset_is_trained_evaluated_and_registered(main_job: tuple[Any, list[str]]) -> None:
    # GIVEN no dataset (the demo generates one)  WHEN the local run goes end to end
    result, _ = main_job
    # THEN the execution succeeds and the model package is registered for approval
    assert result.outcome == "started"
    assert result.status == "Succeeded", (result.failed_step, result.failure_reason)
    assert result.model_package_arn and ":model-package/yolopipe-local-models/" in result.model_package_arn
    # with the four headline metrics from evaluation.json
    assert set(result.metrics) == {"map50_95", "map50", "precision", "recall"}
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    assert result.metrics["map50"] > 0.0, "12 epochs on the generated shapes should find some of them"
    # and the run's parameters came from the dataset's yolopipe.yaml and the stack
    assert result.parameters["Epochs"] == "12" and result.parameters["ImageSize"] == "96"
    assert result.parameters["MinMap50_95"] == "0.0"


def test_artifacts_are_copied_to_runs_execution(main_job: tuple[Any, list[str]]) -> None:
    # GIVEN the finished run  WHEN the user opens runs/<execution>/
    result, _ = main_job
    folder = Path(result.output_dir)
    # THEN the trained model, its evaluation, the logs and the notifications are there
    assert folder.name == result.execution_arn.rsplit("/", 1)[-1]
    for name in ("model/best.pt", "model/last.pt", "model/results.csv", "model.tar.gz", "evaluation.json",
                 "logs/Train.log", "logs/Evaluate.log", "slack.json", "emails.txt", "summary.json", "steps.json",
                 # AND the plots: training's (output.tar.gz) and the evaluation's, as `yolopipe download` lays them out
                 "training/results.png", "training/BoxPR_curve.png", "evaluation/BoxPR_curve.png",
                 "evaluation/confusion_matrix.png"):
        assert (folder / name).is_file(), name
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert evaluation["metrics"]["map50_95"] == pytest.approx(result.metrics["map50_95"])
    steps = [s["StepName"] for s in json.loads((folder / "steps.json").read_text())]
    assert steps == ["Train", "Evaluate", "CheckQuality", "Register"]


def test_team_hears_start_and_success_in_slack_and_email(main_job: tuple[Any, list[str]]) -> None:
    # GIVEN the finished run  WHEN the team reads Slack and email
    result, lines = main_job
    # THEN one Slack message and one email said it started, and one of each that it succeeded
    texts = [m["text"] for m in result.slack_messages]
    assert len(texts) == 2
    assert texts[0].startswith("Training started: sample")
    assert texts[1].startswith("Training succeeded: sample") and "mAP50-95" in texts[1]
    subjects = [e.subject for e in result.emails]
    assert subjects == ["yolopipe: Training started: sample", "yolopipe: Training succeeded: sample"]
    assert result.model_package_arn in result.emails[-1].body
    # and the person running it saw the steps, the epochs and the messages go by
    output = "\n".join(lines)
    for expected in ("Quality gate MinMap50_95=0.0 for the demo",
                     "step Train (Training) started", "epoch 12/12", "step Evaluate succeeded",
                     "condition is true", "registered model package", "─ Slack", "─ Email", "status      Succeeded"):
        assert expected in output, expected


def test_refused_dataset_starts_nothing_and_says_why(run_locally: Any, sample_dataset: Any) -> None:
    # GIVEN a dataset whose data.yaml asks Ultralytics to download something
    dataset = sample_dataset("bad-yaml", train=4, val=2)
    text = dataset.data_yaml.read_text() + "download: https://example.com/evil.zip\n"
    dataset.data_yaml.write_text(text)
    # WHEN it is run locally
    result, lines = run_locally(dataset.root)
    # THEN the trigger refuses it: no execution, and the refusal email names the problem and the file
    assert result.outcome == "refused" and result.status == "Refused"
    assert result.execution_arn is None
    assert any("download" in p and "data.yaml" in p for p in result.problems), result.problems
    assert [e.subject for e in result.emails] == ["yolopipe: dataset bad-yaml refused"]
    assert "download" in result.emails[0].body
    # AND the notifier posted it to Slack (the trigger's event, routed by the template's rule)
    assert any("Dataset refused: bad-yaml" in json.dumps(m, ensure_ascii=False) for m in result.slack_messages)
    assert "Refused by the trigger" in "\n".join(lines)
    assert (Path(result.output_dir) / "emails.txt").read_text().count("Subject:") == 1


def test_training_failure_ends_failed_with_the_steps_reason(run_locally: Any, sample_dataset: Any) -> None:
    # GIVEN a dataset that passes validation but whose training images cannot be decoded
    dataset = sample_dataset("broken-images", train=8, val=4)
    for image in (dataset.root / "images" / "train").iterdir():
        image.write_bytes(b"this is not a jpeg")
    # WHEN it is run locally
    result, lines = run_locally(dataset.root, epochs=1)
    # THEN the execution fails in Train, and the reason (from the training script) reaches Slack and email
    assert result.outcome == "started"
    assert result.status == "Failed"
    assert result.failed_step == "Train"
    assert "AlgorithmError" in result.failure_reason
    final_slack = result.slack_messages[-1]["text"]
    assert final_slack.startswith("Training failed: broken-images")
    assert "failed step Train" in final_slack
    assert "Failed step: Train" in result.emails[-1].body
    assert result.failure_reason.splitlines()[0] in result.emails[-1].body
    # the reason speaks of the job's own paths (/opt/ml/...), as on SageMaker, and the summary shows its last line
    assert "/opt/ml/input/data/dataset" in result.failure_reason
    output = "\n".join(lines)
    assert "status      Failed" in output
    summary_line = next(line for line in lines if line.startswith("  failed step Train: "))
    assert "No valid images found" in summary_line, summary_line
