"""The installed import names: ``models/``, ``sim/`` and ``hdl/`` install as ``codesign.models``,
``codesign.sim`` and ``codesign.hdl``, so nothing collides with a user's own modules."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_installed():
    """A new family's folder with an ``__init__.py`` must join pyproject's package list."""
    prefix = {
        "codesign": "codesign",
        "models": "codesign.models",
        "sim": "codesign.sim",
        "hdl": "codesign.hdl",
    }
    found = set()
    for folder, name in prefix.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([name, *rel]))
    assert found == set(PYPROJECT["packages"])
    assert PYPROJECT["package-dir"] == {
        **{k: k for k in ["codesign"]},
        **{v: k for k, v in prefix.items() if k != "codesign"},
    }


SCRIPT = """
import codesign
net = codesign.load("jet_tagger")
y = codesign.golden(net, codesign.random_inputs(net, 2, seed=1))
import codesign.sim.dataflow, codesign.hdl.verify, codesign.models.arith, codesign.cli
r = codesign.simulate(codesign.design(net), frames=2)
print(y.shape, r.ii > 0)
"""


def test_import_beside_users_models_sim_hdl(tmp_path):
    """``import codesign`` from a folder holding the user's own models.py, sim.py and hdl.py
    (normal in PyTorch projects): none of them is imported, and the flows work."""
    for name in ("models", "sim", "hdl"):
        (tmp_path / f"{name}.py").write_text(f"raise SystemExit('the user\\'s {name}.py ran')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2, 5) True"


def _imports(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_layers_import_only_downwards():
    """models imports no other layer; sim and hdl never import each other (nor codesign's
    flows); no module imports the old top-level names."""
    forbidden = {
        "models": ("codesign.sim", "codesign.hdl", "codesign.flows", "codesign.cli"),
        "sim": ("codesign.hdl", "codesign.flows", "codesign.cli"),
        "hdl": ("codesign.sim", "codesign.flows", "codesign.cli"),
    }
    bad = []
    for folder in ("models", "sim", "hdl", "codesign", "tests", "benchmarks", "tools"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            for name in _imports(f):
                top = name.split(".")[0]
                if top in ("models", "sim", "hdl") or name.startswith(
                    forbidden.get(folder, ("@",))
                ):
                    bad.append(f"{f.relative_to(ROOT)}: {name}")
    assert bad == []


def test_licence_is_apache_2():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Apache License 2.0: see [LICENSE](LICENSE)." in (ROOT / "README.md").read_text()
