"""Synthesis flow: a design's Verilog through Yosys (and nextpnr) to per-block resources and
Fmax, cached by the design's hash.

What is measured: one hierarchical Yosys run (:data:`codesign.hdl.tools.HIERARCHICAL_SCRIPTS`), so
each block (pipeline stage unit, FIFO, width converter) is optimized on its own and counted
by ``stat``; the total is the sum of the blocks and the top-level glue. A flattened run can
optimize across block boundaries, so its total differs by a few percent (the report of the
cost model gives the figures). The flattened netlist of the same run is placed and routed by
nextpnr for Fmax (ECP5 and iCE40; Xilinx has no open place and route here).

``lut`` counts LUT4 cells (``SB_LUT4`` on iCE40, LUT1–LUT6 on Xilinx); carry cells
(``carry``) and LUT RAM (``lutram``) are counted apart.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from codesign.models.errors import UserError
from codesign.models.fileio import atomic_write
from codesign.models.hwconfig import Design, HardwareConfig
from codesign.models.ir import Network

from .summary import network_hash

if TYPE_CHECKING:
    from codesign.hdl.tools import ToolError

__all__ = [
    "CLASSES",
    "TARGETS",
    "SynthError",
    "block_of",
    "cache_key",
    "config_doc",
    "default_cache_dir",
    "synth_text",
    "synthesize",
]

#: Targets of ``codesign synth``.
TARGETS = ("ecp5", "ice40", "xilinx")

#: Resource classes reported per block and in total.
CLASSES = ("lut", "ff", "dsp", "bram", "lutram", "carry")

#: Bump when the result format or the measuring method changes (invalidates the cache).
FORMAT = 1

_NO_PNR = {
    "xilinx": "no open place and route for Xilinx devices in this flow (Yosys only)",
}


class SynthError(UserError, RuntimeError):
    """Synthesis cannot run (a tool is missing or failed) or was asked for a bad target."""


def default_cache_dir() -> Path:
    """``~/.cache/codesign/synth`` (``$XDG_CACHE_HOME/codesign/synth`` when that is set)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "codesign" / "synth"


def _hdl_source_hash() -> str:
    """Hash of the generator and tool-runner sources: a change to them invalidates results."""
    import codesign.hdl as hdl

    root = Path(hdl.__file__).parent
    h = hashlib.sha256()
    for f in sorted([*root.glob("dataflow/*.py"), root / "tools.py"]):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def config_doc(d: Design) -> dict:
    """The design's configuration as built: the clock and, per stage, PE, SIMD, the concrete
    weight memory style and the depth of each input FIFO (configured or automatic). A
    synthesis result's cache key holds it, and the cost model's sweep records it."""
    return {
        "clock_mhz": d.config.clock_mhz,
        "stages": {
            s.name: {
                "pe": d.config[s.name].pe,
                "simd": d.config[s.name].simd,
                "mem_style": d.config[s.name].mem_style.value,
                "fifo_depth": d.fifo_depth(s),
                **({"fifo_depth_b": d.fifo_depth(s, 1)} if len(s.sources) > 1 else {}),
            }
            for s in d.stages
        },
    }


def cache_key(d: Design, target: str, *, pnr: bool = True, seed: int = 1) -> str:
    """The cache key of a synthesis result: network hash, resolved configuration, target,
    place-and-route settings, tool versions and a hash of the generator's sources."""
    from codesign.hdl.tools import tool_versions

    doc = {
        "format": FORMAT,
        "network": network_hash(d.network),
        "config": config_doc(d),
        "target": target,
        "pnr": pnr and target not in _NO_PNR,
        "seed": seed,
        "tools": tool_versions(),
        "hdl": _hdl_source_hash(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def block_of(module: str, top: str) -> tuple[str, str | None]:
    """The pipeline block (``stage_<name>``, ``fifo_<name>``, ``dwc_<name>``, or ``top``
    for the AXI-Stream wrapper and the pipeline's own glue) and the stage unit
    (``u1_mvau``, ..., or None) of a module of the generated Verilog."""
    parts = module.split(".")
    if parts[:2] != [top, "core"] or len(parts) < 3:
        return "top", None
    return parts[2], parts[3] if len(parts) > 3 and parts[2].startswith("stage_") else None


def _blocks(modules: dict, top: str, d: Design) -> list[dict]:
    order = []
    for s in d.stages:
        order += [f"dwc_{s.name}", f"fifo_{s.name}", f"stage_{s.name}"]
    found: dict[str, dict] = {}
    for name, counts in modules.items():
        block, unit = block_of(name, top)
        b = found.setdefault(block, {"block": block, **dict.fromkeys(CLASSES, 0)})
        for c in CLASSES:
            b[c] += counts[c]
        if unit is not None:
            u = b.setdefault("units", {}).setdefault(unit, dict.fromkeys(CLASSES, 0))
            for c in CLASSES:
                u[c] += counts[c]
    rows = []
    for block in [*order, "top"]:
        if block in found:
            b = found[block]
            kind, _, stage = block.partition("_")
            b["kind"], b["stage"] = kind, (stage or None)
            rows.append(b)
    return rows


def synthesize(
    design_or_net: Design | Network | str | Path,
    target: str = "ecp5",
    *,
    config: HardwareConfig | str | Path | None = None,
    pnr: bool = True,
    out_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 1,
) -> dict:
    """Per-block and total resources (and Fmax) of a design, measured by Yosys and nextpnr.

    Parameters
    ----------
    design_or_net
        A :class:`~codesign.models.hwconfig.Design`, or a network (object, zoo name or description
        path) designed with ``config`` (automatic when None).
    target
        ``ecp5``, ``ice40`` or ``xilinx``.
    pnr
        Place and route for Fmax (ECP5, iCE40); ``fmax_mhz`` is None otherwise, with
        ``fmax_reason``.
    out_dir
        Where the Verilog and netlist go (default ``build/<net>/synth/<target>``).
    cache_dir
        Results are cached here by :func:`cache_key` (default :func:`default_cache_dir`);
        a rerun on the same design returns the stored result with ``cached`` True.
    seed
        nextpnr's placement seed.

    Returns
    -------
    dict
        ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``, ``carry`` (totals), ``fmax_mhz``,
        ``blocks`` (one row per block with the same classes, stage blocks with ``units``),
        ``device``, ``synth_seconds``, ``pnr_seconds``, ``tools``, ``key``, ``cached``.
    """
    from .flows import design as _design
    from .flows import generate

    if target not in TARGETS:
        raise SynthError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if isinstance(design_or_net, Design):
        d = design_or_net
    else:
        net = design_or_net
        if not isinstance(net, Network):
            from codesign.models.loader import load

            net = load(net)
        d = _design(net, config)
    from codesign.hdl import tools

    key = cache_key(d, target, pnr=pnr, seed=seed)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stored = cache / f"{key}.json"
    if stored.is_file():
        try:
            result = json.loads(stored.read_text())
        except (OSError, ValueError):
            result = None
        if result is not None and result.get("key") == key:
            return {**result, "cached": True}
    try:  # before the minutes of work whose result it keeps
        tools.writable_dir(
            cache, "the synthesis cache", "XDG_CACHE_HOME" if cache_dir is None else "cache_dir"
        )
    except tools.ToolError as e:
        raise SynthError(str(e)) from None

    out = (
        Path(out_dir) if out_dir is not None else Path("build") / d.network.name / "synth" / target
    )
    doc = generate(d, out, target="ecp5" if target == "ecp5" else None)
    top = doc["top"]
    netlist = out / f"{top}.{target}.json"
    try:
        syn = tools.synthesize(
            out / doc["verilog"],
            top,
            target,
            hierarchy=True,
            netlist=netlist if pnr and target not in _NO_PNR else None,
        )
    except tools.ToolError as e:
        raise _synth_error(e, d) from None
    result = {
        "network": d.network.name,
        "network_hash": network_hash(d.network),
        "target": target,
        "measured": "hierarchical Yosys synthesis (each block optimized on its own)",
        **{c: syn[c] for c in CLASSES},
        "fmax_mhz": None,
        "blocks": _blocks(syn["modules"], top, d),
        "cells": syn["cells"],
        "device": tools.DEVICES[target]["name"] if target in tools.DEVICES else None,
        "synth_seconds": syn["seconds"],
        "pnr_seconds": None,
        "config": config_doc(d),
        "tools": tools.tool_versions(),
        "verilog": str(out / doc["verilog"]),
        "key": key,
    }
    if not pnr:
        result["fmax_reason"] = "place and route not run (--no-pnr)"
    elif target in _NO_PNR:
        result["fmax_reason"] = _NO_PNR[target]
    else:
        try:
            p = tools.place_and_route(netlist, target, counts=syn, seed=seed)
        except tools.ToolError as e:
            raise _synth_error(e, d) from None
        result["fmax_mhz"] = p["fmax_mhz"]
        result["pnr_seconds"] = p["seconds"]
        result["utilization"] = p.get("utilization")
        if p["fmax_mhz"] is None:
            reason = p.get("reason") or "no Fmax"
            if reason.startswith("does not fit"):  # the device's room: the design's size
                reason += f"; {tools.size_advice(d)}"
            result["fmax_reason"] = reason
    atomic_write(stored, json.dumps(result, indent=1) + "\n")
    return {**result, "cached": False}


def _synth_error(e: ToolError, d: Design) -> SynthError:
    """The :class:`SynthError` of a failed tool run (a
    :class:`~codesign.hdl.tools.ToolError`): its one line, and what to change only when the
    tool's output showed the failure is the design's size."""
    from codesign.hdl.tools import size_advice

    return SynthError(f"{e}; {size_advice(d)}" if e.too_large else str(e))


def synth_text(r: dict) -> str:
    """A table of a :func:`synthesize` result: one row per block, then the total and Fmax."""
    head = "block                  LUT      FF   DSP  BRAM LUTRAM  carry"
    lines = [f"{r['network']} on {r['target']} ({r['measured']})", head]

    def row(name: str, b: dict) -> str:
        return (
            f"{name:18s} {b['lut']:7d} {b['ff']:7d} {b['dsp']:5d} {b['bram']:5d} "
            f"{b['lutram']:6d} {b['carry']:6d}"
        )

    for b in r["blocks"]:
        lines.append(row(b["block"], b))
        for unit, u in (b.get("units") or {}).items():
            lines.append(row(f"  {unit}", u))
    lines.append(row("total", r))
    if r["fmax_mhz"] is not None:
        lines.append(f"Fmax {r['fmax_mhz']:.1f} MHz on {r['device']} (nextpnr, seed fixed)")
    else:
        lines.append(f"Fmax: none ({r.get('fmax_reason')})")
    secs = f"Yosys {r['synth_seconds']:.0f} s"
    if r.get("pnr_seconds"):
        secs += f", nextpnr {r['pnr_seconds']:.0f} s"
    lines.append(secs + (" (cached result)" if r.get("cached") else ""))
    return "\n".join(lines)
