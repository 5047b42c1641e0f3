"""Strip what a run leaves in Jupyter notebooks, so the committed files hold only what was
written by hand (the test suite executes them; their outputs are never committed).

    python tools/strip_notebooks.py [--check] [NOTEBOOK ...]   (default: notebooks/*.ipynb)

Stripping clears every code cell's outputs and execution count, removes the cell metadata
of a run or a view (execution timing, collapsed or scrolled outputs) and the notebook
metadata a kernel or a widget writes (``widgets``, ``language_info``, ``signature``), and
rewrites a changed notebook in nbformat's own layout. Unchanged notebooks are not rewritten.

``--check`` changes nothing: it lists each notebook that is not stripped with what stripping
would remove, and exits with 1 if there is one. Needs only the standard library and nbformat.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Notebook metadata a run writes: widget state, the kernel's language version, a trust
#: signature.
RUN_METADATA = ("widgets", "language_info", "signature")

#: Cell metadata a run or a view writes: timing (JupyterLab, the ExecuteTime extension) and
#: whether the outputs were collapsed or scrolled.
RUN_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


def strip(nb) -> list[str]:
    """Strip ``nb`` (an ``nbformat.NotebookNode``) in place.

    Returns
    -------
    list of str
        What was removed, one entry per cell or metadata key (empty when ``nb`` was stripped
        already).
    """
    removed = []
    for key in RUN_METADATA:
        if key in nb.metadata:
            del nb.metadata[key]
            removed.append(f"metadata.{key}")
    for i, cell in enumerate(nb.cells):
        where = f"cell {i}"
        if "id" in cell:
            where += f" ({cell.id})"
        if cell.cell_type == "code":
            if cell.get("outputs"):
                removed.append(f"{where}: {len(cell.outputs)} outputs")
            if cell.get("execution_count") is not None:
                removed.append(f"{where}: execution_count {cell.execution_count}")
            cell.outputs = []
            cell.execution_count = None
        for key in RUN_CELL_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                removed.append(f"{where}: metadata.{key}")
    return removed


def main(argv: list[str] | None = None) -> int:
    """Strip (or with ``--check``, check) the notebooks given; returns the exit status."""
    import nbformat

    parser = argparse.ArgumentParser(
        prog="strip_notebooks.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if one is not stripped"
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = 0
    for path in paths:
        try:
            nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        except (OSError, ValueError) as e:  # ValueError: not JSON or not a notebook
            print(f"{path}: cannot be read as a notebook: {e}", file=sys.stderr)
            return 2
        removed = strip(nb)
        if not removed:
            continue
        dirty += 1
        if args.check:
            print(f"{path}: not stripped: {'; '.join(removed)}")
        else:
            nbformat.write(nb, path)
            print(f"{path}: stripped {len(removed)} items")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
