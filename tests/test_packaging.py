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


#: Private names still imported across modules, each by the work that removes it: the
#: cycle simulator's unit classes (sim/dataflow, being reworked for pipelined blocks) and
#: the window helpers pool.py shares with swg.py (hdl/dataflow, being restructured). The
#: list only shrinks: an entry that is no longer imported fails the test too.
PRIVATE_IMPORTS_TO_REMOVE: set[str] = set()


def _module_name(path: Path) -> str:
    """The import name of a file of the installed packages (``models/x.py`` is
    ``codesign.models.x``)."""
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = ["codesign"] + ([] if folder == "codesign" else [folder]) + rest
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    """A private name: a leading underscore, but not a dunder (``__future__``)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_imports(path: Path) -> list[str]:
    """``path: module.name`` for every private name (a leading underscore) the file imports
    from another module, and every import of a private module (``amaranth._toolchain``)."""
    import ast

    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [a.name for a in node.names]
            if source != module:
                found += [f"{source}.{n}" for n in names if _private(n)]
            modules = [source]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        found += [m for m in modules if any(_private(p) for p in m.split("."))]
    rel = path.relative_to(ROOT).as_posix()
    return [f"{rel}: {name}" for name in found]


def test_private_import_scan_sees_what_it_forbids(tmp_path, monkeypatch):
    """The scan below finds each kind of private import (so an empty result means something)
    and leaves alone a module's own names and public names."""
    pkg = tmp_path / "hdl" / "dataflow"
    pkg.mkdir(parents=True)
    f = pkg / "x.py"
    f.write_text(
        "from __future__ import annotations\n"
        "import amaranth._toolchain.yosys\n"
        "from amaranth._toolchain.yosys import YosysError\n"
        "from amaranth.back.verilog import YosysError as E\n"
        "from .swg import _check_int, SlidingWindow\n"
        "from ..tools import _x\n"
        "from codesign.hdl.dataflow.x import _mine\n"
        "from . import _helpers\n"
        "from codesign import __version__\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _private_imports(f) == [
        "hdl/dataflow/x.py: amaranth._toolchain.yosys",
        "hdl/dataflow/x.py: amaranth._toolchain.yosys",
        "hdl/dataflow/x.py: codesign.hdl.dataflow.swg._check_int",
        "hdl/dataflow/x.py: codesign.hdl.tools._x",
        "hdl/dataflow/x.py: codesign.hdl.dataflow._helpers",
    ]


def test_no_module_imports_a_private_name_of_another():
    """No module of the packages imports another module's private name (``from .swg import
    _x``: what two modules share is a public name) or a private module of a dependency
    (``amaranth._toolchain``: use its public API, e.g. ``amaranth.back.verilog.YosysError``)."""
    found = set()
    for folder in ("models", "sim", "hdl", "codesign"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            found.update(_private_imports(f))
    assert sorted(found - PRIVATE_IMPORTS_TO_REMOVE) == []
    assert sorted(PRIVATE_IMPORTS_TO_REMOVE - found) == [], "no longer imported: drop from the list"
