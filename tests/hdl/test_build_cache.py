"""The simulator build cache's key: what makes two builds the same build."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cocotb
from codesign.hdl.manifest import Manifest
from codesign.hdl.verify import build_key


def _manifest(tmp_path: Path, verilog: str = "module top; endmodule\n") -> Manifest:
    v = tmp_path / "top.v"
    v.write_text(verilog)
    fields = {f.name: None for f in dataclasses.fields(Manifest)}
    fields.update(path=tmp_path / "manifest.json", name="top", top="top", verilog=v, stages=())
    return Manifest(**fields)


def test_key_follows_the_content(tmp_path):
    m = _manifest(tmp_path)
    assert build_key(m, "verilator", False) == build_key(m, "verilator", False)
    assert build_key(m, "verilator", False) != build_key(m, "icarus", False)
    assert build_key(m, "verilator", False) != build_key(m, "verilator", True)
    (tmp_path / "other").mkdir()
    other = _manifest(tmp_path / "other", "module top; wire a; endmodule\n")
    assert build_key(other, "verilator", False) != build_key(m, "verilator", False)


def test_key_follows_cocotbs_location(tmp_path, monkeypatch):
    """A Verilator model links cocotb's VPI library by absolute path, so a build made by
    another environment's cocotb (another venv) is not reused: it would fail to load
    ``libcocotbvpi_verilator.so`` once that venv is gone (it happened)."""
    m = _manifest(tmp_path)
    here = build_key(m, "verilator", False)
    monkeypatch.setattr(cocotb, "__file__", "/elsewhere/venv/site-packages/cocotb/__init__.py")
    assert build_key(m, "verilator", False) != here
