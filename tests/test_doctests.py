"""The examples in the docstrings run, under the installed import names.

pytest's ``--doctest-modules`` would import ``models/arith.py`` by its path as a second copy
(``models.arith`` beside ``codesign.models.arith``), whose enums are not the real ones; so the
doctests run here, from the modules as ``import codesign.models...`` loads them.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "codesign": "codesign",
    "models": "codesign.models",
    "sim": "codesign.sim",
    "hdl": "codesign.hdl",
}


def _modules_with_examples() -> list[str]:
    names = []
    for folder, package in LAYERS.items():
        for f in sorted((ROOT / folder).rglob("*.py")):
            if ">>> " not in f.read_text():
                continue
            parts = list(f.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join([package, *parts]))
    return names


MODULES = _modules_with_examples()


def test_some_modules_have_examples():
    assert {"codesign", "codesign.models.arith", "codesign.models.qtype"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = doctest.DocTestFinder().find(module, name)
    assert sum(len(t.examples) for t in tests) > 0, f"{name}: no examples found"
    for t in tests:
        runner.run(t, out=out.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(out)
