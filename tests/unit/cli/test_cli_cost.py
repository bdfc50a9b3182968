"""`yolopipe report` shows what each job of a run cost, `compare` the estimated total per run.

Against the local mode's emulator: its executor records the jobs' real timing
(TrainingTimeInSeconds / BillableTimeInSeconds, ProcessingStartTime / EndTime) as SageMaker does,
and a local endpoint prices from the dated list-price table (no Price List API there).
"""

from __future__ import annotations

import re
from typing import Any

from yolopipe_shared import cost

BUCKET = "yolopipe-unit-cli"  # as tests/unit/cli/conftest.py creates them
DATASET = f"s3://{BUCKET}/datasets/d/"
TABLE = f"list price table of {cost.LIST_PRICES_DATE}"


def _finished(cli: Any, local: dict[str, Any], *extra: str) -> str:
    started = cli("run", *local["args"], "--pipeline", "good", "--dataset", DATASET, "--json", *extra)
    assert started.code == 0, started.err
    arn = str(started.json()["execution_arn"])
    local["executor"].wait(arn, 30)
    return arn


def test_report_shows_a_cost_table_and_json_carries_the_numbers(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN a finished local run (Train on ml.g4dn.xlarge, Evaluate on ml.m5.large, as deployed)
    arn = _finished(cli, local)
    # WHEN the user asks for its report
    result = cli("report", *local["args"], "--pipeline", "good", arn.rsplit("/", 1)[-1])
    # THEN a cost table has a row per job with its instance and the table's price, and a total line
    assert result.code == 0, result.err
    section = result.out.split("cost (estimate: SageMaker jobs only)\n", 1)[1]
    assert re.search(rf"^Train\s+ml\.g4dn\.xlarge × 1\s+\d+m\d\ds\s+\d+m\d\ds\s+(< )?\$0\.\d\d\s+\$0\.736/h, {TABLE}$",
                     section, re.MULTILINE), section
    assert re.search(rf"^Evaluate\s+ml\.m5\.large × 1\s+\d+m\d\ds\s+\d+m\d\ds\s+(< )?\$0\.\d\d\s+\$0\.115/h, {TABLE}$",
                     section, re.MULTILINE), section
    assert re.search(r"^Total: (< \$0\.01|≈ \$0\.\d\d)$", section, re.MULTILINE), section
    # AND --json carries the numbers: real seconds from the run, billable x count x price
    data = cli("report", *local["args"], "--pipeline", "good", arn, "--json").json()
    train = next(job for job in data["cost"]["jobs"] if job["step"] == "Train")
    assert train["instance_type"] == "ml.g4dn.xlarge" and train["instance_count"] == 1
    assert train["seconds"] >= 1 and train["billable_seconds"] == train["seconds"]
    assert train["usd_per_hour"] == cost.LIST_PRICES["ml.g4dn.xlarge"] and train["price_source"] == TABLE
    assert train["usd"] == round(train["billable_seconds"] / 3600 * 0.736, 4)
    assert data["cost"]["total_usd"] > 0 and data["cost"]["unpriced"] == []


def test_compare_has_an_estimated_cost_row_per_execution(cli: Any, local: dict[str, Any]) -> None:
    # GIVEN two finished runs
    first, second = _finished(cli, local, "--epochs", "1"), _finished(cli, local, "--epochs", "2")
    # WHEN the user compares them
    result = cli("compare", *local["args"], "--pipeline", "good", first, second)
    # THEN one row gives each run's estimated total
    assert result.code == 0, result.err
    row = next(r for r in result.out.splitlines() if r.startswith("est. cost"))
    assert len(re.findall(r"(< \$0\.01|≈ \$\d+\.\d\d)", row)) == 2, row
    totals = [r["cost"]["total_usd"] for r in cli("compare", *local["args"], "--pipeline", "good", first, second,
                                                   "--json").json()]
    assert all(isinstance(total, float) and total > 0 for total in totals)
