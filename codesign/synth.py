"""Synthesis flow: a design's Verilog through Yosys (and nextpnr) to per-block resources and
Fmax, cached by the design's hash.

What is measured: one hierarchical Yosys run (:data:`codesign.hdl.tools.HIERARCHICAL_SCRIPTS`), so
each block (pipeline stage unit, FIFO, width converter) is optimized on its own and counted
by ``stat``; the total is the sum of the blocks and the top-level glue. A flattened run can
optimize across block boundaries, so its total differs by a few percent (the report of the
cost model gives the figures). The flattened netlist of the same run is placed and routed by
nextpnr for Fmax (ECP5 and iCE40; Xilinx has no open place and route here), at the
design's clock target (nextpnr's ``--freq``) and at one or more ECP5 speed grades; the result
names the critical path's start and end blocks (:func:`cell_block`) and checks the clock
target (:func:`clock_verdict`).

``lut`` counts LUT4 cells (``SB_LUT4`` on iCE40, LUT1–LUT6 on Xilinx); carry cells
(``carry``) and LUT RAM (``lutram``) are counted apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codesign.models.errors import UserError
from codesign.models.fileio import atomic_write
from codesign.models.hwconfig import Design, HardwareConfig
from codesign.models.ir import Network
from codesign.models.timing import slack_ns

from .summary import network_hash

if TYPE_CHECKING:
    from codesign.hdl.tools import ToolError

__all__ = [
    "CLASSES",
    "TARGETS",
    "SynthError",
    "block_of",
    "cache_key",
    "cell_block",
    "clock_verdict",
    "config_doc",
    "default_cache_dir",
    "hdl_source_hash",
    "speed_grades",
    "synth_text",
    "synthesize",
]

#: Targets of ``codesign synth``.
TARGETS = ("ecp5", "ice40", "xilinx")

#: Resource classes reported per block and in total.
CLASSES = ("lut", "ff", "dsp", "bram", "lutram", "carry")

#: Bump when the result format or the measuring method changes (invalidates the cache).
FORMAT = 2

_NO_PNR = {
    "xilinx": "no open place and route for Xilinx devices in this flow (Yosys only)",
}


class SynthError(UserError, RuntimeError):
    """Synthesis cannot run (a tool is missing or failed) or was asked for a bad target."""


def default_cache_dir() -> Path:
    """``~/.cache/codesign/synth`` (``$XDG_CACHE_HOME/codesign/synth`` when that is set)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "codesign" / "synth"


def hdl_source_hash() -> str:
    """Hash of the generator and tool-runner sources, and of the models/ facts the generator
    reads (pipeline depths, line buffers, device rules: ``models/*.py``; a sparse MVAU's
    weight memory layout: ``models/compress/sparsity.py``): a change to any of them
    invalidates results (a change to ``models/pipelining.py`` alone changes the RTL)."""
    import codesign.hdl as hdl
    import codesign.models as models

    root = Path(hdl.__file__).parent
    facts = Path(models.__file__).parent
    h = hashlib.sha256()
    files = [*root.glob("dataflow/*.py"), root / "tools.py", *facts.glob("*.py")]
    files.append(facts / "compress" / "sparsity.py")
    for f in sorted(files):
        h.update(f"{f.parent.name}/{f.name}".encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def config_doc(d: Design) -> dict:
    """The design's configuration as built: the clock and, per stage, PE, SIMD, the concrete
    weight memory style and the depth of each input FIFO (configured or automatic). A
    synthesis result's cache key holds it, and the cost model's sweep records it (with the
    pipeline mode)."""
    return {
        "clock_mhz": d.config.clock_mhz,
        "pipeline": d.config.pipeline.value,
        "stages": {
            s.name: {
                "pe": d.config[s.name].pe,
                "simd": d.config[s.name].simd,
                "mem_style": d.config[s.name].mem_style.value,
                **_sparsity_doc(d.config[s.name].sparsity),
                "fifo_depth": d.fifo_depth(s),
                **({"fifo_depth_b": d.fifo_depth(s, 1)} if len(s.sources) > 1 else {}),
            }
            for s in d.stages
        },
    }


def _sparsity_doc(sparsity: tuple[int, int] | None) -> dict:
    """A stage's N:M sparsity in :func:`config_doc` (nothing for a dense stage, so the keys
    of dense designs are those from before sparsity existed)."""
    return {} if sparsity is None else {"sparsity": f"{sparsity[0]}:{sparsity[1]}"}


def cache_key(
    d: Design, target: str, *, pnr: bool = True, seed: int = 1, speed: int | None = None
) -> str:
    """The cache key of a synthesis result: network hash, resolved configuration, target,
    place-and-route settings (seed, speed grade, None for the target's default, and the
    clock target nextpnr aims at), tool versions and a hash of the generator's sources."""
    from codesign.hdl.tools import tool_versions

    pnr = pnr and target not in _NO_PNR
    if pnr and speed is None:  # the target's default grade, as synthesize() resolves it
        speed = speed_grades(target, None)[0]
    doc = {
        "format": FORMAT,
        "network": network_hash(d.network),
        "config": config_doc(d),
        "target": target,
        "pnr": pnr,
        "seed": seed,
        "speed": speed if pnr else None,
        "freq_mhz": d.config.clock_mhz if pnr else None,
        "tools": tool_versions(),
        "hdl": hdl_source_hash(),
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


#: A stage unit's instance name in the generated Verilog (``u0_mvau``, ``u1_activation``).
_UNIT = re.compile(r"u\d+_[a-z]\w*")
#: A pipeline block's instance name (``stage_fc1``, ``fifo_fc1``, ``dwc_fc1``, ``fork_conv1``).
_BLOCK = re.compile(r"(stage|fifo|dwc|fork)_\w+")


def cell_block(
    cell: str, top: str, modules: Collection[str] | None = None
) -> tuple[str, str | None]:
    """The pipeline block and stage unit (as :func:`block_of`) of a cell of the flattened
    netlist, named by its instance path (``core.stage_fc3.u0_mvau.acc_TRELLIS_FF_Q``, as
    nextpnr reports it).

    ``modules`` are the module names of the hierarchical netlist (``<top>.core.stage_fc3``,
    ...): the cell belongs to the deepest one whose path prefixes its name. Without them the
    generator's instance names decide (``core.<block>[.u<k>_<unit>].<cell>``, the block a
    ``stage_``, ``fifo_``, ``dwc_`` or ``fork_`` one).
    """
    parts = cell.split(".")
    if modules is not None:
        for n in range(len(parts) - 1, 0, -1):
            name = ".".join([top, *parts[:n]])
            if name in modules:
                return block_of(name, top)
        return "top", None
    if parts[0] != "core" or len(parts) < 3 or not _BLOCK.fullmatch(parts[1]):
        return "top", None
    unit = len(parts) > 3 and parts[1].startswith("stage_") and _UNIT.fullmatch(parts[2])
    return parts[1], parts[2] if unit else None


def _where(block: str, unit: str | None) -> str:
    return f"{block}.{unit}" if unit else block


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
    # the stages' blocks in pipeline order, then any other (the forks of a residual network's
    # skip), then the wrapper: every block counted once, so the rows sum to the totals
    others = sorted(set(found) - {*order, "top"})
    for block in [*order, *others, "top"]:
        if block in found:
            b = found[block]
            kind, _, stage = block.partition("_")
            b["kind"], b["stage"] = kind, (stage or None)
            rows.append(b)
    return rows


def speed_grades(
    target: str, speed: int | Sequence[int] | None, pnr: bool = True
) -> tuple[int | None, ...]:
    """The speed grades :func:`synthesize` places and routes at for ``speed`` (a grade, a
    sequence of them, or None for the target's default), duplicates dropped; ``(None,)``
    where no place and route runs (``pnr`` False, Xilinx) or the target has no grades.

    Raises
    ------
    SynthError
        When a grade is not the target's, or a grade is given for a target without any.
    """
    from codesign.hdl.tools import DEVICES

    grades = DEVICES[target].get("speeds", ()) if target in DEVICES else ()
    if speed is None:
        seq: tuple = (grades[0],) if grades and pnr else (None,)
        return seq
    seq = (speed,) if isinstance(speed, int) else tuple(speed)
    if not grades:
        raise SynthError(f"speed grades apply to ecp5 only, not {target}: leave the speed out")
    choices = ", ".join(map(str, grades))
    bad = [s for s in seq if isinstance(s, bool) or s not in grades]
    if bad or not seq:
        raise SynthError(
            f"speed must be one of {choices} for {target}, not {bad[0] if bad else speed!r}"
        )
    if not pnr:
        return (None,)
    return tuple(dict.fromkeys(seq))


def synthesize(
    design_or_net: Design | Network | str | Path,
    target: str = "ecp5",
    *,
    config: HardwareConfig | str | Path | None = None,
    pnr: bool = True,
    out_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 1,
    speed: int | Sequence[int] | None = None,
) -> dict:
    """Per-block and total resources, Fmax and the critical path of a design, measured by
    Yosys and nextpnr, and whether it meets its clock target.

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
        Results are cached here by :func:`cache_key`, one per speed grade (default
        :func:`default_cache_dir`); a rerun on the same design returns the stored result with
        ``cached`` True.
    seed
        nextpnr's placement seed.
    speed
        ECP5 speed grade(s) to place and route at (6, 7, 8; a sequence such as ``(6, 8)``
        for several, one Yosys run and one nextpnr run each); None for the target's default
        (6 on ECP5). iCE40 and Xilinx have none.

    Returns
    -------
    dict
        ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``, ``carry`` (totals), ``blocks`` (one
        row per block with the same classes, stage blocks with ``units``), ``device``,
        ``clock_mhz`` (the design's clock target, which nextpnr aims at), ``synth_seconds``,
        ``tools``, ``cached``; and, at the first speed grade: ``speed``, ``fmax_mhz`` (or
        None with ``fmax_reason``), ``meets_clock`` (Fmax ≥ the clock target; None without
        Fmax), ``slack_ns``, ``critical_path`` (``from``/``to`` block labels such as
        ``stage_fc3.u0_mvau``, their ``*_block``, ``*_unit`` and ``*_cell``, ``delay_ns``,
        ``logic_ns``, ``routing_ns``, ``logic_levels``; see
        :func:`codesign.hdl.timing.critical_path`), ``timing_report`` (where nextpnr's JSON
        report is kept, every critical path segment by segment), ``pnr_seconds``, ``key``.
        ``timing``
        holds the same place-and-route fields for every speed grade, in the order asked.

    Raises
    ------
    SynthError
        For a bad target or speed grade, a tool that is missing or failed, or an unwritable
        cache.
    """
    from .flows import design as _design

    if target not in TARGETS:
        raise SynthError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    speeds = speed_grades(target, speed, pnr)
    if isinstance(design_or_net, Design):
        d = design_or_net
    else:
        net = design_or_net
        if not isinstance(net, Network):
            from codesign.models.loader import load

            net = load(net)
        d = _design(net, config)
    from codesign.hdl import tools

    keys = {s: cache_key(d, target, pnr=pnr, seed=seed, speed=s) for s in speeds}
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    results: dict = {}
    for s, key in keys.items():
        try:
            stored = json.loads((cache / f"{key}.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(stored, dict) and stored.get("key") == key:
            results[s] = {**stored, "cached": True}
    missing = [s for s in speeds if s not in results]
    if missing:
        try:  # before the minutes of work whose result it keeps
            tools.writable_dir(
                cache,
                "the synthesis cache",
                "XDG_CACHE_HOME" if cache_dir is None else "cache_dir",
            )
        except tools.ToolError as e:
            raise SynthError(str(e)) from None
        for s, r in _measure(d, target, pnr, seed, missing, keys, out_dir).items():
            atomic_write(cache / f"{keys[s]}.json", json.dumps(r, indent=1) + "\n")
            results[s] = {**r, "cached": False}
    first = results[speeds[0]]
    return {
        **first,
        "timing": [{k: results[s].get(k) for k in _TIMING} for s in speeds],
        "cached": all(results[s]["cached"] for s in speeds),
    }


#: The place-and-route fields of a result, one set per speed grade (``timing``).
_TIMING = (
    "speed",
    "fmax_mhz",
    "fmax_reason",
    "meets_clock",
    "slack_ns",
    "critical_path",
    "timing_report",
    "pnr_seconds",
    "key",
)


def _measure(
    d: Design,
    target: str,
    pnr: bool,
    seed: int,
    speeds: list,
    keys: dict,
    out_dir: str | Path | None,
) -> dict:
    """Yosys once, then nextpnr at each speed grade of ``speeds``: speed → result."""
    from codesign.hdl import tools

    from .flows import generate

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
    base = {
        "network": d.network.name,
        "network_hash": network_hash(d.network),
        "target": target,
        "measured": "hierarchical Yosys synthesis (each block optimized on its own)",
        **{c: syn[c] for c in CLASSES},
        "clock_mhz": d.config.clock_mhz,
        "speed": None,
        "fmax_mhz": None,
        "meets_clock": None,
        "slack_ns": None,
        "critical_path": None,
        "blocks": _blocks(syn["modules"], top, d),
        "cells": syn["cells"],
        "device": tools.DEVICES[target]["name"] if target in tools.DEVICES else None,
        "synth_seconds": syn["seconds"],
        "pnr_seconds": None,
        "config": config_doc(d),
        "tools": tools.tool_versions(),
        "verilog": str(out / doc["verilog"]),
    }
    out_results = {}
    for s in speeds:
        result = {**base, "key": keys[s], "speed": s}
        out_results[s] = result
        if not pnr:
            result["fmax_reason"] = "place and route not run (--no-pnr)"
            continue
        if target in _NO_PNR:
            result["fmax_reason"] = _NO_PNR[target]
            continue
        stem = "" if s is None else f".speed{s}"
        log = netlist.with_suffix(f"{stem}.nextpnr.log")
        try:
            p = tools.place_and_route(
                netlist,
                target,
                counts=syn,
                seed=seed,
                freq_mhz=d.config.clock_mhz,
                speed=s,
                log=log,
                report=netlist.with_suffix(f"{stem}.nextpnr.json"),
            )
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
            continue
        result["meets_clock"] = p["fmax_mhz"] >= d.config.clock_mhz
        result["slack_ns"] = round(slack_ns(d.config.clock_mhz, p["fmax_mhz"]), 3)
        result["critical_path"] = _located(p["critical_path"], top, syn["modules"])
        result["timing_report"] = str(netlist.with_suffix(f"{stem}.nextpnr.json"))
    return out_results


def _located(path: dict | None, top: str, modules: Collection[str]) -> dict | None:
    """nextpnr's critical path with its start and end cells mapped to blocks and units."""
    if path is None:
        return None
    out = {}
    for end in ("from", "to"):
        block, unit = cell_block(path[f"{end}_cell"], top, modules)
        out[end] = _where(block, unit)
        out[f"{end}_block"], out[f"{end}_unit"] = block, unit
    return {**out, **path}


def clock_verdict(r: dict) -> str | None:
    """Whether a :func:`synthesize` result (or one entry of its ``timing``, with
    ``clock_mhz`` given) meets its clock target, in one line; None without Fmax.

    ``misses 150 MHz by 12.3 MHz (Fmax 137.7 MHz at speed 6); critical path
    stage_fc2.u0_mvau → stage_fc2.u1_activation`` or ``meets 150 MHz (Fmax 171.2 MHz at
    speed 6, slack 0.83 ns)``.
    """
    fmax, clock = r.get("fmax_mhz"), r.get("clock_mhz")
    if fmax is None or clock is None:
        return None
    at = f" at speed {r['speed']}" if r.get("speed") is not None else ""
    if fmax >= clock:
        return (
            f"meets {clock:g} MHz (Fmax {fmax:.1f} MHz{at}, slack {slack_ns(clock, fmax):.2f} ns)"
        )
    gap = clock - fmax
    text = f"misses {clock:g} MHz by {gap:.{1 if gap >= 0.1 else 2}f} MHz (Fmax {fmax:.1f} MHz{at})"
    cp = r.get("critical_path")
    if cp:
        text += f"; critical path {cp['from']} → {cp['to']}"
    return text


def _path_text(cp: dict) -> str:
    return (
        f"critical path {cp['from']} → {cp['to']}: {cp['delay_ns']:.2f} ns (logic "
        f"{cp['logic_ns']:.2f} ns, routing {cp['routing_ns']:.2f} ns, {cp['logic_levels']} "
        f"logic levels), {cp['from_cell']} → {cp['to_cell']}"
    )


def _synth_error(e: ToolError, d: Design) -> SynthError:
    """The :class:`SynthError` of a failed tool run (a
    :class:`~codesign.hdl.tools.ToolError`): its one line, and what to change only when the
    tool's output showed the failure is the design's size."""
    from codesign.hdl.tools import size_advice

    return SynthError(f"{e}; {size_advice(d)}" if e.too_large else str(e))


def synth_text(r: dict) -> str:
    """A table of a :func:`synthesize` result: one row per block, then the total, and per
    speed grade the Fmax, the critical path and whether the clock target is met."""
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
    pnr_seconds = 0.0
    for t in r.get("timing") or [r]:
        grade = f" speed {t['speed']}" if t.get("speed") is not None else ""
        if t["fmax_mhz"] is not None:
            lines.append(
                f"Fmax {t['fmax_mhz']:.1f} MHz on {r['device']}{grade} (nextpnr, seed fixed)"
            )
            if t.get("critical_path"):
                lines.append("  " + _path_text(t["critical_path"]))
            verdict = clock_verdict({**t, "clock_mhz": r.get("clock_mhz")})
            if verdict:
                lines.append(f"  {verdict}")
        else:
            lines.append(f"Fmax{grade}: none ({t.get('fmax_reason')})")
        pnr_seconds += t.get("pnr_seconds") or 0.0
    secs = f"Yosys {r['synth_seconds']:.0f} s"
    if pnr_seconds:
        secs += f", nextpnr {pnr_seconds:.0f} s"
    lines.append(secs + (" (cached result)" if r.get("cached") else ""))
    return "\n".join(lines)
