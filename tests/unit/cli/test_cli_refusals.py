"""Refused datasets in the CLI: the trigger's records under refusals/ show in `executions list`,
end `watch latest` with exit 1 and their problems, and end the wait after an upload at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from yolopipe_shared.refusal import MAX_REFUSAL_BYTES, Refusal

BUCKET = "yolopipe-unit-cli"  # as tests/unit/cli/conftest.py creates them
PIPELINE = "yolopipe-unit-cli"


def _refuse(s3: Any, dataset: str = "zebras", version: str = "v1", count: int = 3) -> Refusal:
    """What the trigger writes for a refused upload."""
    refusal = Refusal.of(bucket=BUCKET, dataset=dataset, version=version,
                         marker_uri=f"s3://{BUCKET}/datasets/{dataset}/data.yaml",
                         refused_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         problems=[f"labels/train/{i}.txt:1: class id 7 but data.yaml has 3 names"
                                   for i in range(count)])
    s3.put_object(Bucket=BUCKET, Key=refusal.key, Body=refusal.to_json())
    return refusal


def test_refused_dataset_is_listed_and_watch_latest_shows_its_problems(cli: Any, aws: dict[str, Any]) -> None:
    """GIVEN the trigger refused the newest upload (no execution since)
    WHEN the user lists executions, then watches `latest`
    THEN the list has a Refused row naming the dataset and its first problem, and watch prints every
    problem and the record's location and exits 1."""
    _refuse(aws["s3"], count=3)

    listed = cli("executions", "list")
    watched = cli("watch", "latest")

    assert listed.code == 0, listed.err
    [row] = [line for line in listed.out.splitlines() if "Refused" in line]
    assert "zebras" in row and "3 problem(s): labels/train/0.txt:1" in row
    assert watched.code == 1, watched.err
    assert "Refused: dataset zebras (version v1)" in watched.out
    assert watched.out.count("class id 7 but data.yaml has 3 names") == 3
    assert f"s3://{BUCKET}/refusals/zebras/v1.json" in watched.out


def test_waiting_after_an_upload_ends_at_its_refusal(aws: dict[str, Any]) -> None:
    """GIVEN an upload of version v2 WHEN the CLI waits for the trigger THEN it returns nothing while
    neither refusal nor execution exists, and the refusal of v2 (not another version's) once written."""
    from yolopipe.refusals import wait_for_outcome

    since = datetime.now(UTC) - timedelta(seconds=1)
    wait = dict(pipeline=PIPELINE, bucket=BUCKET, dataset="zebras", dataset_uri=f"s3://{BUCKET}/datasets/zebras/",
                since=since, timeout=0, sleep=lambda _: None)
    _refuse(aws["s3"], version="v1")
    assert wait_for_outcome(aws["sagemaker"], aws["s3"], version="v2", **wait) is None
    _refuse(aws["s3"], version="v2", count=60)
    found = wait_for_outcome(aws["sagemaker"], aws["s3"], version="v2", **wait)
    assert isinstance(found, Refusal) and found.version == "v2"
    assert found.problem_count == 60 and found.lines()[-1] == "... and 10 more problem(s)"


def test_a_record_that_is_not_a_refusal_is_ignored(cli: Any, aws: dict[str, Any]) -> None:
    """GIVEN files under refusals/ that the trigger did not write (too large, not JSON)
    WHEN the user lists executions THEN they are skipped, not shown and not fatal."""
    aws["s3"].put_object(Bucket=BUCKET, Key="refusals/x/big.json", Body=b"[" * (MAX_REFUSAL_BYTES + 10))
    aws["s3"].put_object(Bucket=BUCKET, Key="refusals/x/text.json", Body=b"not json")
    listed = cli("executions", "list")
    assert listed.code == 0, listed.err
    assert "Refused" not in listed.out
