"""What the CLI prints: exit codes, tables, JSON, the live status view and the progress bar.
Commands compute nothing here; they hand over what the API returned."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from yolopipe_shared import parameters

EXIT_OK = 0
EXIT_FAILED = 1  # dataset problems, execution Failed/Stopped, a doctor check failed
EXIT_USAGE = 2  # bad arguments or parameter values
EXIT_AWS = 3  # no credentials/region, AWS unreachable or denied, pipeline/execution/bucket/dataset not found
EXIT_INTERRUPTED = 130

#: The one table of exit codes: `--help` prints it, the README shows it (tests/unit/test_readme.py).
EXIT_MEANINGS = (
    (EXIT_OK, "success (watch/run --watch: the execution Succeeded)"),
    (EXIT_FAILED, "failed: dataset problems, execution Failed or Stopped, a doctor check failed, "
                  "a `local run` that did not succeed"),
    (EXIT_USAGE, "bad usage or parameter value (nothing was called)"),
    (EXIT_AWS, "AWS: no credentials/region, unreachable, access denied, or the pipeline, execution, bucket or "
               "dataset (its data.yaml in S3) not found"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)
EXIT_CODES = "exit codes:\n" + "\n".join(
    textwrap.fill(meaning, 100, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
    for code, meaning in EXIT_MEANINGS)


def print_json(data: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2, default=str) + "\n")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table drawn by rich: a header, a rule, one line per row (cells on one line, no
    markup, no colour), so it reads the same in a terminal, a pipe or a CI log. `--json` bypasses it."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style=None)
    for header in headers:
        grid.add_column(str(header), no_wrap=True)
    for row in rows:
        grid.add_row(*[Text("" if v is None else " ".join(str(v).split())) for v in row])
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, force_terminal=False, markup=False, emoji=False,
            highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").split("\n"))


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def fmt_metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value or "")


def fmt_parameter(name: str, value: Any) -> str:
    spec = parameters.BY_NAME.get(name)
    return spec.to_string(value) if spec is not None else str(value)


def fmt_usd(cost: dict[str, Any]) -> str:
    """An execution's estimated total: `≈ $0.28`, `price unknown`, `-` when it ran no job."""
    if not cost.get("jobs"):
        return "-"
    total = cost.get("total_usd")
    if total is None:
        return "price unknown"
    return ("< $0.01" if 0 < total < 0.005 else f"≈ ${total:.2f}") + (" +?" if cost.get("unpriced") else "")


def cost_table(cost: dict[str, Any]) -> str:
    """One row per job (instance, times, spot saving, USD and where the price came from), then the total."""
    rows = []
    for job in cost["jobs"]:
        saving = job["spot_saving"]
        if job["reused_from"]:
            rows.append((job["step"], "(step cache)", "", "", "", "$0.00",
                         f"reused from {job['reused_from'].rsplit('/', 1)[-1]}"))
            continue
        usd = job["usd"]
        rows.append((job["step"], f"{job['instance_type'] or '?'} × {job['instance_count'] or '?'}",
                     fmt_seconds(job["seconds"]), fmt_seconds(job["billable_seconds"]),
                     "" if saving is None else f"{saving:.0%}",
                     "price unknown" if usd is None else ("< $0.01" if 0 < usd < 0.005 else f"${usd:.2f}"),
                     f"${job['usd_per_hour']:g}/h, {job['price_source']}" if job["usd_per_hour"] else ""))
    return (table(rows, ("STEP", "INSTANCE", "RUN", "BILLABLE", "SPOT SAVED", "USD", "PRICE"))
            + f"\n{cost['total_line']}")


def err(message: str) -> None:
    sys.stderr.write(f"yolopipe: {message}\n")


def progress_bar(total: int, *, enabled: bool) -> Any:
    """The upload's progress on stderr (files, MB, rate, ETA) when it is a terminal; None otherwise."""
    if not enabled or total <= 0 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    class _Bar:
        def __init__(self) -> None:
            self.bytes = 0
            self.bar = Progress(TextColumn("upload"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[mb]:.1f} MB"), TimeRemainingColumn(),
                                console=Console(file=sys.stderr), transient=False)
            self.task = self.bar.add_task("upload", total=total, mb=0.0)
            self.bar.start()

        def update(self, files: int, size: int) -> None:
            self.bytes += size
            self.bar.update(self.task, advance=files, mb=self.bytes / 1e6)

        def close(self) -> None:
            self.bar.stop()

    return _Bar()


def refusal_text(refusal: Any) -> str:
    """A refused upload as the CLI shows it: what was refused, each problem, where the record is."""
    return "\n".join([
        f"Refused: dataset {refusal.dataset} (version {refusal.version}) started no training, "
        f"{refusal.problem_count} problem(s):",
        *(f"  {line}" for line in refusal.lines()),
        f"record: {refusal.uri}",
        "fix them, check with `yolopipe dataset validate PATH`, then upload again",
    ])
