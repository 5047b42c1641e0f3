"""The notebooks run, so they cannot rot, and are committed without their outputs.

Each ``notebooks/*.ipynb`` is executed with nbclient in a Python kernel of this environment
(``sys.executable``, with its ``bin/`` first on ``PATH`` as ``dev.py`` sets it), from a
temporary working directory: a notebook writes only relative paths, so nothing lands in the
repository. A notebook fails its test when a cell raises, its own ``assert`` included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STRIP = ROOT / "tools" / "strip_notebooks.py"

#: Seconds a cell may run before the test fails: a guard against a hung kernel or
#: simulator, far above what any cell needs (a cold Verilator build is the longest).
CELL_TIMEOUT = 900

#: The name of the kernel the notebooks ask for (their ``kernelspec``); the tests define it
#: themselves, so a user's own ``python3`` kernel elsewhere cannot stand in for this one.
KERNEL = "python3"


def _kernel_manager(tmp: Path):
    """A kernel manager whose only kernel spec is ``KERNEL`` on this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec_dir = tmp / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    bin_dir = str(Path(sys.executable).parent)  # the venv's, where Verilator's wrapper is
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({sys.executable})",
        "language": "python",
        "env": {
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "IPYTHONDIR": str(tmp / "ipython"),  # not the user's profile
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {ROOT / 'notebooks'}"


def _execute(nb, tmp: Path) -> None:
    """Run ``nb`` in place in a kernel of this environment, from the empty folder
    ``tmp/cwd``; raises ``nbclient.exceptions.CellExecutionError`` when a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    # first, that the kernel is this environment's Python (same prefix: the venv)
    check = f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.executable"
    nb.cells.insert(0, nbformat.v4.new_code_cell(check, id="test-kernel-check"))
    work = tmp / "cwd"
    work.mkdir()
    client = NotebookClient(
        nb,
        km=_kernel_manager(tmp),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(work)}},
    )
    client.execute(cwd=str(work), cleanup_kc=True)


@pytest.mark.simulator
@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == KERNEL
    _execute(nb, tmp_path)
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in ran)


def test_a_failing_cell_fails_the_run(tmp_path):
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("r = {'mismatches': 3}\nassert r['mismatches'] == 0")])
    with pytest.raises(CellExecutionError, match="AssertionError"):
        _execute(nb, tmp_path)


def test_notebooks_are_stripped():
    proc = subprocess.run(
        [sys.executable, str(STRIP), "--check", *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        f"run `python tools/strip_notebooks.py` before committing:\n{proc.stdout}{proc.stderr}"
    )


def test_strip_removes_outputs_and_keeps_sources(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    code = new_code_cell("print(1)", id="c", execution_count=3)
    code.outputs = [new_output("stream", name="stdout", text="1\n")]
    code.metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    code.metadata["tags"] = ["keep"]
    nb = new_notebook(cells=[new_markdown_cell("# Title", id="m"), code])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.12.0"}
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()

    def strip(*args):
        return subprocess.run(
            [sys.executable, str(STRIP), *args, str(path)], capture_output=True, text=True
        )

    checked = strip("--check")
    assert checked.returncode == 1
    assert "cell 1 (c): 1 outputs" in checked.stdout
    assert "metadata.widgets" in checked.stdout
    assert path.read_bytes() == before  # --check changes nothing
    assert strip().returncode == 0
    assert strip("--check").returncode == 0
    out = nbformat.read(path, as_version=4)
    assert [c.source for c in out.cells] == ["# Title", "print(1)"]
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert dict(out.cells[1].metadata) == {"tags": ["keep"]}
    assert "widgets" not in out.metadata and "language_info" not in out.metadata
    stripped = path.read_bytes()
    assert strip().returncode == 0
    assert path.read_bytes() == stripped  # a stripped notebook is left alone
