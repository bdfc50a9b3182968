"""The notebooks in notebooks/ run, headless, top to bottom, as a user runs them.

Each is executed by nbclient in a fresh IPython kernel that inherits this process's environment
(tests/conftest.py: no real AWS credentials, YOLO_OFFLINE=1, a YOLO_CONFIG_DIR with a local font),
so nothing is downloaded. ml-engineer.ipynb starts the local mode itself and trains twice (1-2
epochs at 32 px on 12 generated images); data-scientist.ipynb converts and draws generated data.
A failing cell fails the test with the notebook, the cell's number, its first line and the error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(notebook: Path, cwd: Path) -> None:
    """Run every cell; on failure raise AssertionError naming the cell that failed and why."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    document = nbformat.read(notebook, as_version=4)
    client = NotebookClient(document, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        code_cells = [c for c in document.cells if c.cell_type == "code"]
        failed = next((i for i, c in enumerate(code_cells)
                       if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        where = "a cell" if failed is None else (
            f"code cell {failed + 1} of {len(code_cells)} ({code_cells[failed].source.splitlines()[0]!r})")
        error = "" if failed is None else next(
            f"{o['ename']}: {o['evalue']}" for o in code_cells[failed].outputs if o.get("output_type") == "error")
        raise AssertionError(f"{notebook.name}: {where} failed: {error or exc}") from None


@pytest.mark.parametrize("name", ["data-scientist.ipynb", "ml-engineer.ipynb"])
def test_notebook_runs_top_to_bottom(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a notebook as stored (no outputs), its temporary files kept under this test's folder
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    # WHEN every cell runs in a fresh kernel THEN none fails
    execute(NOTEBOOKS / name, tmp_path)
