#!/usr/bin/env python3
"""The README's two commands, on a fresh machine with only Python >= 3.11 and git.

    python3 dev.py run [ARGS...]    # codesign run ARGS (default network: jet_tagger)
    python3 dev.py test [ARGS...]   # the test suite (pytest ARGS)

Each creates the virtual environment ``.venv`` if it is missing and refreshes it whenever
``pyproject.toml`` changed (or the other command installed fewer extras), then runs inside it.
Uses only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".codesign-installed"


def _bin(name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return VENV / sub / (name + (".exe" if os.name == "nt" else ""))


def _ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 -- the bootstrap may run on an old Python
        sys.exit(f"dev.py: Python >= 3.11 is required, not {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists():
        have_digest, _, have_extras = STAMP.read_text().partition(":")
        # the test extras are a superset of what `run` needs
        if have_digest == digest and have_extras in (extras, "test"):
            return
    if not _bin("python").exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print(f"dev.py: installing codesign[{extras}] into .venv", flush=True)
    pip = [str(_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    spec = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "install", "-e", spec], check=True, cwd=ROOT)
    STAMP.write_text(f"{digest}:{extras}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    try:
        _ensure_venv("test" if cmd == "test" else "")
    except subprocess.CalledProcessError as e:
        print(f"dev.py: installing into .venv failed (exit {e.returncode})", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["PATH"] = str(_bin("python").parent) + os.pathsep + env.get("PATH", "")
    if cmd == "run":
        args = [str(_bin("codesign")), "run", *rest]
    else:
        args = [str(_bin("python")), "-m", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
