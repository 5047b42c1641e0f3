"""The README's snippets run, so they cannot rot."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from codesign.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", README, flags=re.S | re.M)


def test_python_snippets_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    snippets = blocks("python")
    assert snippets
    for code in snippets:
        exec(compile(code, "README.md", "exec"), {})


#: README commands that place and route (2 minutes each): ``slow`` (``-m slow``); the
#: synthesis flow is proven in the default run by tests/codesign/test_synth.py, and the
#: steps of ``codesign run`` by their own tests (tests/codesign/test_cli.py runs it without
#: hardware; notebooks/01_quickstart generates and verifies a design)
SLOW_COMMANDS = ("codesign synth", "codesign run")


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(ln[2:], marks=pytest.mark.slow) if ln[2:].startswith(SLOW_COMMANDS) else ln[2:]
        for b in blocks("console")
        for ln in b.splitlines()
        if ln.startswith("$ codesign ")
    ],
)
def test_console_commands_succeed(line, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(line)[1:]) == 0


def test_two_setup_commands_are_documented():
    setup = blocks("sh")[0]
    assert "python3 dev.py run" in setup and "python3 dev.py test" in setup
    assert "python3 dev.py test" in (Path(__file__).parent.parent / ".ci" / "run").read_text()
