"""Fmax of a dataflow design without place and route (ECP5, nextpnr, speed 6)."""

from __future__ import annotations

from pathlib import Path

from codesign.models.hwconfig import Design, HardwareConfig, Stage, StageConfig
from codesign.models.plan import readers

DATA = Path(__file__).with_name("fmax_data.json")


def spec_design(spec: dict) -> Design:
    from codesign.models.loader import load

    cfg = HardwareConfig(stages={spec["stage"]: StageConfig(pe=spec["pe"], simd=spec["simd"])})
    return Design(load(spec["net"]), cfg)


def reader_fifo_depth(d: Design, s: Stage) -> int:
    rs = readers(d.stages).get(s.name, [])
    if not rs:
        return 2
    name, port = rs[0]
    return d.fifo_depth(d.stage(name), port)


def fit(doc):
    return {}


def fit_report(doc):
    return []
