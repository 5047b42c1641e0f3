"""Fmax of a dataflow design without place and route: a register-to-register path model
calibrated on nextpnr-ecp5 (LFE5U-85F, speed 6).

Each stage of a :class:`~codesign.models.hwconfig.Design` holds a few kinds of
register-to-register paths, each described by the same structural terms (:data:`TERMS`),
all computed from models/ facts (the register stages of :mod:`codesign.models.pipelining`,
accumulator widths from :func:`~codesign.models.hwconfig.accumulator_range`, memory styles
from :func:`~codesign.models.hwconfig.resolve_mem_style` and
:func:`codesign.sim.cost_rules.memory_map`, window geometry from
:func:`~codesign.models.linebuffer.window_geometry`):

- ``one``: every path (clock-to-out and setup of fabric flip-flops, a first routing hop),
- ``bram``: the path starts at a block RAM read without its output register (DP16KD
  ``NOREG``), ``bram_reg``: at one with it (:data:`BRAM_OUTREG`), ``dsp``: at a
  MULT18X18D's output register,
- ``lut``: LUT levels (a mux, a compare's last level, a ROM's LUT4 and PFUMX levels),
- ``chain``: the path passes a carry chain (routing into and out of a column of CCU2C
  cells), ``carry``: bits of that chain (an adder, a counter, a compare),
- ``fan``: log2 of the fan-out of the path's widest net (a ROM bank's address register),
- ``spread``: a block RAM's read feeds another unit's several sinks (a FIFO's or a line
  buffer's read into the next unit's input register and buffer), not one register placed
  beside it (a weight ROM's output register): about two nanoseconds more of routing,
- ``act``: the path is inside an activation unit (its registers sit among per-lane
  parameter tables and many lanes' carry chains; nextpnr's paths there are about a
  nanosecond longer than the same terms elsewhere).

A path's delay is the dot product of its terms with fitted coefficients (ns); a stage's
is the longest of its paths; the design's clock period is the longest stage's plus one
fitted whole-design term ``design`` (what a full placement adds: routing between stages and
congestion), and Fmax is ``1000 / period`` MHz. :func:`stage_paths` lists a stage's paths,
:func:`predict_fmax` predicts one design, :func:`predict_fmax_batch` many foldings of one
network at once (numpy, no loop over points).

The coefficients are fitted by ``python -m codesign.fmax_fit`` to per-stage nextpnr runs
and whole-network results stored with them in :data:`DATA` (:func:`fit`); tests/sim/
test_fmax.py checks the model on every zoo network held out of its own fit.

The calibration covers the default ``pipeline: auto``. A design in ``pipeline: off`` gets
an estimate from the same terms (its datapath one long path) that no sample calibrates: it
overestimates Fmax by up to 3x (jet_tagger: 67 MHz predicted, 37.7 measured before the
pipelining).

This module imports only ``models``, numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
import json
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from codesign.models.device import bram_tiling, fits_mult18, lane_shape, memory_map
from codesign.models.hwconfig import (
    AUTO_FIFO_MAX,
    ConfigError,
    Design,
    HardwareConfig,
    MemStyle,
    Stage,
    StageConfig,
    StageKind,
    readers,
    resolve_mem_style,
    stage_io,
)
from codesign.models.layers import Clip, MultiThreshold, Requant
from codesign.models.linebuffer import window_geometry
from codesign.models.pipelining import COMPARE_PIECE, PipelineMode, stage_pipeline, tree_groups
from codesign.models.plan import stage_matrix
from codesign.models.qtype import QType

from .cost_rules import clog2, element_bits, matrix_accumulator, window_lead_bits

__all__ = [
    "DATA",
    "TERMS",
    "FmaxEstimate",
    "fit",
    "fit_report",
    "fold_columns",
    "predict_fmax",
    "predict_fmax_batch",
    "stage_delay",
    "stage_paths",
]

#: Fitted coefficients, the per-stage samples and the whole-network results
#: (written by ``python -m codesign.fmax_fit``).
DATA = Path(__file__).with_name("fmax_data.json")

#: Structural terms of a path, in the order of a path's vector.
TERMS = ("one", "bram", "bram_reg", "dsp", "lut", "chain", "carry", "fan", "spread", "act")


#: Block RAMs read through the DP16KD's own output register (``REGMODE "OUTREG"``, 0.96 ns
#: clock-to-out at speed 6 against 5.8 ns), by where they are: a FIFO's storage, a line
#: buffer, an MVAU's weight ROM and its input-vector buffer. A path from such a block RAM has
#: the term ``bram_reg`` in place of ``bram``. Set an entry when the RTL gains the register
#: there, then rerun ``python -m codesign.fmax_fit`` (its samples are remeasured on the new
#: generator sources and ``bram_reg`` fitted).
BRAM_OUTREG = {"fifo": True, "window": True, "weights": True, "vector": True}


def _path(
    one=1.0, bram=0.0, dsp=0.0, lut=0.0, carry=0.0, fan=0.0, spread=0.0, act=0.0
) -> np.ndarray:
    chain = 1.0 if carry > 0 else 0.0
    return np.array([one, bram, 0.0, dsp, lut, chain, carry, fan, spread, act], dtype=float)


def _bram_path(where: str, **terms) -> np.ndarray:
    """A path starting at a block RAM read (:data:`BRAM_OUTREG` says which kind)."""
    v = _path(bram=1.0, **terms)
    if BRAM_OUTREG[where]:
        v[TERMS.index("bram")], v[TERMS.index("bram_reg")] = 0.0, 1.0
    return v


# -- the paths of each stage ----------------------------------------------------------------


def fifo_depth(stage: Stage, cfg: StageConfig, port: int) -> int:
    """Depth of the FIFO in front of input ``port`` of ``stage`` as the model takes it: the
    configured one, else one frame of that input, at most ``AUTO_FIFO_MAX`` beats, as
    :meth:`Design.fifo_depth <codesign.models.hwconfig.Design.fifo_depth>` has it; for an
    add stage a whole frame, uncapped, in place of the design's deadlock bound (which
    depends on the folding of every stage on the two branches, so a vectorised estimate
    cannot afford it): the skip branch's FIFO holds up to a frame, and that puts it in
    block RAM where the bound does (resnet_tiny: 405 beats). The depth enters the model
    through the FIFO's level counter, logarithmically, and its memory style."""
    given = cfg.fifo_depth if port == 0 else cfg.fifo_depth_b
    if given is not None:
        return given
    n_in = stage_io(stage, cfg)[0]
    if stage.kind is StageKind.ADD:
        return max(2, stage.inputs[port].size // n_in)
    return max(2, min(stage.inputs[port].size // n_in, AUTO_FIFO_MAX))


def _fifo_paths(stage: Stage, cfg: StageConfig, port: int) -> dict[str, np.ndarray]:
    """The FIFO in front of ``port`` (``SyncFIFOBuffered``): its read, where its memory is
    block RAM, straight into the stage's first unit (the block RAM's read register is the
    FIFO's output; an add stage's adder is on that path); its level counter stepped by the
    reader's ready, which the stage's head computes from its own registers."""
    depth = fifo_depth(stage, cfg, port)
    n_in = stage_io(stage, cfg)[0]
    width = n_in * element_bits(stage.inputs[port].qtype)
    out = {f"fifo{port}.level": _path(lut=3, carry=clog2(depth + 1))}
    style = memory_map(depth - 1, width)[0] if depth > 1 else "ff"
    if style == "lutram":  # read address → a LUT RAM bank → the mux over 16-word banks
        banks = math.ceil((depth - 1) / 16)
        out[f"fifo{port}.lutram"] = _path(lut=1 + math.ceil(math.log2(banks) / 2))
    if style == "bram":
        # a BlockFIFO: the block's output register into a prefetch slot (the slot's load
        # select), then the slots' mux into the output register, which feeds the stage
        # (an add stage's adder)
        out[f"fifo{port}.bram"] = _bram_path("fifo", lut=1)
        add = max(element_bits(t.qtype) for t in stage.inputs) + 1
        carry = add if stage.kind is StageKind.ADD else 0
        out[f"fifo{port}.read"] = _path(lut=1, carry=carry, spread=1)
    return out


def _window_paths(stage: Stage, simd: int, channel_major: bool, into_lut: float, into_carry):
    """A sliding window's address and loop control (whether the next tap is written: the
    writer's lead less a registered threshold, one carry chain as wide as the lead, and the
    select by this cycle's write and step) and its line buffer's read into what follows
    it."""
    geo = window_geometry(stage, simd, channel_major)
    beat = simd * element_bits(stage.input.qtype)
    _, h, w = stage.input.shape
    lead = window_lead_bits(geo.rows, h, w, geo.groups)
    ctl = max(geo.yb, geo.xb, geo.slot_b, clog2(geo.depth), lead)
    out = {"window.control": _path(lut=2, carry=ctl)}
    style = memory_map(geo.depth, beat)[0] if geo.depth > 1 else "ff"
    if style == "bram":
        out["window.buffer"] = _bram_path("window", lut=into_lut, carry=into_carry, spread=1)
    elif style == "lutram":
        out["window.buffer"] = _path(lut=into_lut + 1 + math.ceil(geo.depth / 16) // 2)
    return out


def _act_path(**terms) -> np.ndarray:
    return _path(act=1.0, **terms)


def _activation_paths(
    stage: Stage, cfg: StageConfig, layers, in_q: QType, channels: int, st: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """An activation's register stages (``activation_stages``): the clip's compare, the
    requantization's product, rounding and saturation, or the thresholds' compares (a
    per-channel threshold selected by the channel group) and their count."""
    if not st:
        return {}
    in_b = element_bits(in_q)
    groups = channels // cfg.pe
    sel = math.ceil(clog2(groups) / 2) if groups > 1 else 0
    clip = next((la for la in layers if isinstance(la, Clip)), None)
    rq = next((la for la in layers if isinstance(la, Requant)), None)
    th = next((la for la in layers if isinstance(la, MultiThreshold)), None)
    out: dict[str, np.ndarray] = {}
    if st == ("all",):  # pipeline: off, one combinational stage
        carry = in_b + (in_b + 18 if rq is not None else 0)
        out["act.all"] = _act_path(lut=2 + sel + (2 if th is not None else 0), carry=carry)
        return out
    if clip is not None:
        out["act.clip"] = _act_path(lut=1, carry=in_b)
    if rq is not None:
        mul = np.asarray(rq.multiplier).reshape(-1)
        mb = max(1, max(int(abs(int(v))).bit_length() for v in mul))
        constant = bool(np.all(mul == mul[0]))
        pw = in_b + mb + 1
        if constant:  # shifts and adds in fabric: one adder per set bit but the first
            adds = bin(abs(int(mul[0]))).count("1") - 1
            out["act.product"] = _act_path(lut=max(adds - 1, 0), carry=pw if adds else 0)
        elif not fits_mult18(in_b, in_q.signed, mb + 1, bool((mul < 0).any())):
            out["act.product"] = _act_path(lut=2, carry=pw)  # a multiplier in fabric
        else:
            out["act.product"] = _act_path(dsp=1, lut=sel)
        shift = int(np.asarray(rq.shift).reshape(-1)[0])
        # the range flags of the floor: the bits above the output type's as reductions,
        # its own bits in a short compare (hdl/dataflow/compare.py at_least)
        qw = max(pw - shift, 1)
        ob = element_bits(rq.qtype)
        above = max(qw - ob, 1)
        out["act.round"] = _act_path(lut=2 + math.ceil(math.log(above, 4)), carry=min(ob, qw))
        # floor + bit on the output type's bits, then the select
        out["act.saturate"] = _act_path(lut=1, carry=min(ob, qw))
    elif th is not None:
        t = int(th.thresholds.shape[1])
        # every comparator reads the value: it fans out to the thresholds' carry chains
        # (unsigned compares of pieces of at most COMPARE_PIECE bits when wider than 8
        # bits: split_at_least)
        w = in_b + 1
        piece = w if w <= 8 else -(-w // -(-w // COMPARE_PIECE))
        out["act.compare"] = _act_path(lut=1 + sel, carry=piece, fan=math.log2(t))
        levels = len(tree_groups(t, PipelineMode.AUTO)) if t > 8 else 0
        # the pieces' bits merged (a LUT), then counted
        out["act.count"] = _act_path(lut=2, carry=clog2(t + 1) if levels else 0)
    return out


def _matrix_paths(stage: Stage, cfg: StageConfig, mode: PipelineMode, head) -> dict:
    """An MVAU (``hdl/dataflow/mvau.py``): issue counters and their enables, the weight ROM
    (block RAM, or LUTs read through one address register per 64-bit bank), the input
    vector's buffer, the products (MULT18X18D or fabric), one adder level per register, the
    accumulator."""
    w, xnor, _ = stage_matrix(stage)
    mh, mw = w.shape
    pe, simd = cfg.pe, cfg.simd
    sf, nf = mw // simd, mh // pe
    words = max(sf * nf, 2)
    in_b = element_bits(stage.input.qtype)
    _, acc_b = matrix_accumulator(stage, w, xnor, simd)
    lane = lane_shape(w, stage.input.qtype, xnor)
    width = pe * simd * lane.wbits
    block = resolve_mem_style(cfg.mem_style, sf * nf) is MemStyle.BLOCK
    banks = 1 if block else -(-width // 64)
    vstyle = memory_map(max(sf, 2), simd * in_b)[0]
    out: dict[str, np.ndarray] = {}
    fan = math.log2(1 + banks + (simd * in_b if vstyle != "bram" else 0))
    out["mvau.issue"] = _path(lut=2, carry=clog2(words), fan=fan)
    if block and "memory" in head:
        # DP16KD banks with their output registers (hdl/dataflow/bram.py RegisteredRom),
        # a word selected among the banks, into the multipliers' input registers
        d, _ = bram_tiling(words, width)
        sel = math.ceil(math.log2(math.ceil(words / d)) / 2) if words > d else 0
        out["mvau.weights"] = _bram_path("weights", lut=sel)  # into the "weight" stage
        if "weight" in head:  # its registers to the multipliers' input registers
            out["mvau.weight"] = _path(spread=1)
    elif block:  # pipeline: off, a Memory read into the products without a register
        out["mvau.weights"] = _path(bram=1, lut=1, spread=1)
    else:
        abits = clog2(words)
        out["mvau.weights"] = _path(lut=1 + max(0, abits - 4), fan=math.log2(min(width, 64)))
    if vstyle == "bram" and "operand" in head:
        # a RegisteredRam read through the block's output register, selected against the
        # input beat into the operand register's place: the multipliers' inputs
        out["mvau.vector"] = _bram_path("vector", lut=1, spread=1)
    elif vstyle == "bram":  # pipeline: off, a Memory read into the products
        out["mvau.vector"] = _path(bram=1, lut=1, spread=1)
    elif vstyle == "lutram":
        out["mvau.vector"] = _path(lut=2 + clog2(math.ceil(sf / 16)) // 2)
    else:
        out["mvau.vector"] = _path(lut=1 + clog2(max(sf, 2)) // 2)
    if xnor:
        pw = 1
        levels = clog2(simd) if simd > 1 else 0
    else:
        a, b = lane.a, lane.b
        pw = a + b
        levels = len(tree_groups(simd, mode))
        if mode is PipelineMode.AUTO:
            if fits_mult18(a, True, b, True):
                out["mvau.product"] = _path(dsp=1)
            else:
                out["mvau.product"] = _path(lut=2, carry=pw)
    if mode is PipelineMode.OFF:
        comb = clog2(simd) if simd > 1 else 0
        out["mvau.datapath"] = _path(
            dsp=0 if xnor else 1, lut=2 + comb, carry=pw + comb + acc_b, fan=fan
        )
        return out
    if levels:
        out["mvau.tree"] = _path(carry=pw + levels)
    out["mvau.acc"] = _path(lut=1, carry=acc_b)
    return out


def stage_paths(stage: Stage, cfg: StageConfig, mode: PipelineMode, fifos=(0,)) -> dict:
    """The register-to-register paths of ``stage`` folded by ``cfg``, with those of the
    FIFOs in front of the input ports ``fifos``: path name → its terms (a vector over
    :data:`TERMS`)."""
    if stage.kind is StageKind.DEFORM:
        raise ConfigError(
            f"stage {stage.name!r}: the Fmax model has no paths of a deformable gather unit yet "
            "(no pipeline with one has been placed and routed to fit them)"
        )
    out: dict[str, np.ndarray] = {}
    for port in fifos:
        out.update(_fifo_paths(stage, cfg, port))
    pipe = stage_pipeline(stage, cfg, mode)
    act = pipe.activation if pipe is not None else ()
    if pipe is not None:
        qd = pipe.queue_depth
        # the reader's ready → taken → the count's adder (the next ``space`` is computed
        # from the count alone, the ready only selects it: hdl/dataflow/credit.py)
        out["queue.credit"] = _path(lut=2, carry=clog2(qd + 1))
    kind = stage.kind
    if kind in (StageKind.MVAU, StageKind.CONV):
        if kind is StageKind.CONV:
            simd = cfg.pe if stage.depthwise else cfg.simd
            out.update(_window_paths(stage, simd, False, into_lut=1, into_carry=0))
        acts = stage.layers[1:]
        if stage.depthwise:
            w = stage_matrix(stage).weights
            in_b = element_bits(stage.input.qtype)
            t = QType.covering(int(w.min()), int(w.max()))
            out["vvau.acc"] = _path(lut=1, carry=element_bits(stage.acc.qtype))
            out["vvau.product"] = _path(lut=2, carry=in_b + t.bits)
        else:
            out.update(_matrix_paths(stage, cfg, mode, pipe.head))
        out.update(_activation_paths(stage, cfg, acts, stage.acc.qtype, stage.mh, act))
    elif kind is StageKind.POOL:
        el = element_bits(stage.input.qtype)
        if stage.global_pool:
            _, h, w = stage.input.shape
            acc = el if stage.main.op == "maxpool2d" else el + clog2(h * w) + 1
            out["pool.acc"] = _path(lut=1, carry=acc)
        else:
            kh, kw = stage.main.kernel
            extra = 0 if stage.main.op == "maxpool2d" else clog2(kh * kw)
            out.update(_window_paths(stage, cfg.pe, True, into_lut=2, into_carry=el + extra))
            out["pool.reduce"] = _path(lut=2, carry=el + extra)
    elif kind is StageKind.ADD:
        bits = max(element_bits(t.qtype) for t in stage.inputs) + 1
        out["add.sum"] = _path(lut=1, carry=bits)
        out.update(
            _activation_paths(stage, cfg, stage.layers[1:], stage.acc.qtype, stage.channels, act)
        )
    elif kind is StageKind.ACT:
        out.update(
            _activation_paths(stage, cfg, stage.layers, stage.input.qtype, stage.channels, act)
        )
    else:
        raise ConfigError(f"stage {stage.name!r}: the Fmax model has no {kind.value} stage")
    return out


# -- coefficients and prediction ------------------------------------------------------------


@cache
def _coefficients(path: str) -> dict:
    doc = json.loads(Path(path).read_text())
    return doc["coefficients"]


def coefficients(data: str | Path | None = None) -> dict:
    """The fitted coefficients: ``terms`` (term → ns) and ``design`` (ns)."""
    return _coefficients(str(DATA if data is None else data))


def _vector(coef: dict) -> np.ndarray:
    return np.array([coef["terms"][t] for t in TERMS], dtype=float)


def stage_delay(
    stage: Stage, cfg: StageConfig, mode: PipelineMode, fifos=(0,), coef: dict | None = None
) -> tuple[float, str]:
    """The longest path of a stage (ns) and its name (:func:`stage_paths`)."""
    c = _vector(coefficients() if coef is None else coef)
    paths = stage_paths(stage, cfg, mode, fifos)
    name = max(paths, key=lambda k: float(paths[k] @ c))
    return float(paths[name] @ c), name


def _fifo_ports(design: Design, stage: Stage) -> tuple[int, ...]:
    return tuple(p for p in range(len(stage.inputs)) if design.has_fifo(stage, p))


@dataclass(frozen=True)
class FmaxEstimate:
    """A design's predicted Fmax (MHz) and the stage and path that limit it."""

    fmax_mhz: float
    period_ns: float
    stage: str  #: the stage whose longest path is the longest
    path: str  #: that path's name (:func:`stage_paths`)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def predict_fmax(design: Design, coef: dict | None = None) -> FmaxEstimate:
    """Predicted Fmax of ``design`` after place and route on ECP5 at speed 6 (nextpnr), with
    the critical stage and path."""
    coef = coefficients() if coef is None else coef
    mode = design.config.pipeline
    best = (-1.0, "", "")
    for s in design.stages:
        d, p = stage_delay(s, design.config[s.name], mode, _fifo_ports(design, s), coef)
        if d > best[0]:
            best = (d, s.name, p)
    period = best[0] + coef["design"]
    return FmaxEstimate(1000.0 / period, period, best[1], best[2])


#: Path matrices of the foldings :func:`predict_fmax_batch` has seen, per design (the
#: stage's paths do not depend on the coefficients, so a second call is only a gather).
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fold_columns(design: Design, values, field: str) -> np.ndarray:
    """Stage name → array (``analytic``'s convention; the design's own value for a stage
    not named) as an (N, S) array; an array is taken as it is."""
    if not isinstance(values, Mapping):
        return np.asarray(values, dtype=np.int64)
    n = max([len(np.atleast_1d(v)) for v in values.values()] or [1])
    cols = []
    for s in design.stages:
        own = getattr(design.config[s.name], field) or 1
        cols.append(np.broadcast_to(np.asarray(values.get(s.name, own), dtype=np.int64), (n,)))
    return np.stack(cols, axis=1)


def predict_fmax_batch(design: Design, pe, simd, coef: dict | None = None) -> np.ndarray:
    """Predicted Fmax (MHz) of N foldings of ``design``'s network, vectorised.

    Parameters
    ----------
    design
        Any design of the network: its stages, pipeline mode, memory styles and FIFO depths
        given in its config are kept; only PE and SIMD vary.
    pe, simd
        Integer arrays of shape (N, S), one column per stage of ``design.stages`` in order
        (a stage without SIMD ignores its column), or, as
        :func:`codesign.sim.dataflow.analytic.analytic` takes them, mappings of stage name
        → array of N values (a stage not named keeps the design's own value); every value
        must be one of the stage's :meth:`~codesign.models.plan.Stage.pe_choices` /
        ``simd_choices``. Throughput at the predicted Fmax is this divided by
        ``analytic(...)["ii"]``, point by point.

    Returns
    -------
    numpy.ndarray
        N predicted Fmax values, each equal to :func:`predict_fmax` of the design with that
        folding. A stage's paths are computed once per distinct (PE, SIMD) it takes (a
        stage has a few dozen foldings; kept for later calls with the same ``design``) and
        gathered for the N points: about a second per million points of a zoo network
        on first use, a third of that after.
    """
    coef = coefficients() if coef is None else coef
    c = _vector(coef)
    pe, simd = fold_columns(design, pe, "pe"), fold_columns(design, simd, "simd")
    n_stages = len(design.stages)
    if pe.ndim != 2 or pe.shape[1] != n_stages or simd.shape != pe.shape:
        raise ValueError(
            f"pe and simd must be arrays of shape (N, {n_stages}), not {pe.shape} and {simd.shape}"
        )
    mode = design.config.pipeline
    worst = np.zeros(pe.shape[0])
    for k, s in enumerate(design.stages):
        uses_simd = s.kind in (StageKind.MVAU, StageKind.CONV) and not s.depthwise
        cols = simd[:, k] if uses_simd else np.zeros_like(simd[:, k])
        if pe[:, k].min() < 1 or cols.min() < 0:
            raise ValueError(f"stage {s.name!r}: pe and simd must be positive")
        width = int(cols.max()) + 1
        key = pe[:, k] * width + cols  # small integers: a bincount finds the distinct ones
        present = np.flatnonzero(np.bincount(key))
        fifos = _fifo_ports(design, s)
        known = _TABLES.setdefault(design, {})
        table = np.zeros(int(key.max()) + 1)
        for u in present.tolist():
            p, q = divmod(u, width)
            if (k, p, q) not in known:  # the stage's paths at this folding, as a matrix
                # an automatic style resolves at each folding, as in a Design
                cfg = design.point_config(s, p, q if uses_simd else None)
                known[(k, p, q)] = np.array(list(stage_paths(s, cfg, mode, fifos).values()))
            table[u] = float(np.max(known[(k, p, q)] @ c))
        np.maximum(worst, table[key], out=worst)
    return 1000.0 / (worst + coef["design"])


# -- fitting (used by codesign.fmax_fit; here so the tests can refit without hdl/) ----------


def spec_design(spec: dict) -> Design:
    """The design of a calibration sample: network ``spec["net"]`` with stage
    ``spec["stage"]`` folded by ``spec["pe"]``, ``spec["simd"]`` (the others automatic)."""
    from codesign.models.loader import load

    one = StageConfig(pe=spec["pe"], simd=spec["simd"], mem_style=spec.get("mem_style", "auto"))
    cfg = HardwareConfig(stages={spec["stage"]: one})
    return Design(load(spec["net"]), cfg)


def reader_fifo_depth(d: Design, s: Stage) -> int:
    """Depth of the FIFO of the first stage reading ``s`` (2 for the last stage)."""
    rs = readers(d.stages).get(s.name, [])
    if not rs:
        return 2
    name, port = rs[0]
    return d.fifo_depth(d.stage(name), port)


#: Which path of a stage nextpnr's critical path is, from its start and end cells: rules
#: (substring of the start cell, of the end cell, path name or name prefix), first match.
_LABELS = (
    ("creditqueue.space", "fifo_i_b", "fifo1.level"),
    ("creditqueue.space", "fifo_i", "fifo0.level"),
    ("creditqueue", "", "queue.credit"),
    ("fifo_o", "", "queue.credit"),
    ("fifo_i_b.queue.storage", "", "fifo1.bram"),
    ("fifo_i.queue.storage", "", "fifo0.bram"),
    ("fifo_i_b.queue.slot", "", "fifo1.read"),
    ("fifo_i.queue.slot", "", "fifo0.read"),
    ("fifo_i_b.queue.r_port", "", "fifo1.lutram"),
    ("fifo_i.queue.r_port", "", "fifo0.lutram"),
    ("fifo_i_b", "", "fifo1.level"),
    ("fifo_i", "", "fifo0.level"),
    ("", "fifo_i_b.", "fifo1.level"),
    ("", "fifo_i.", "fifo0.level"),
    ("buffer", "", "window.buffer"),
    ("slidingwindow", "", "window.control"),
    ("pool2d.window", "", "window.control"),
    ("pool2d", "", "pool."),
    ("", "activation.compare", "act.compare"),
    ("", "activation.clip", "act.clip"),
    ("activation", "round", "act.round"),
    ("activation.land", "", "act.round"),
    ("activation.round", "", "act.saturate"),
    ("activation.mul", "", "act.product"),
    ("activation", "count", "act.count"),
    ("activation", "", "act."),
    ("mvau.w_f", "", "mvau.weight"),
    ("weights", "", "mvau.weights"),
    ("", "mvau.w_q", "mvau.weights"),
    ("waddr", "", "mvau.weights"),
    ("vector", "", "mvau.vector"),
    ("mvau.mul", "", "mvau.product"),
    ("mvau.prod", "", "mvau.tree"),
    ("mvau.tree", "", "mvau.acc"),
    ("mvau.acc", "", "mvau.acc"),
    ("mvau.res", "", "mvau.acc"),
    ("", "mvau.acc", "mvau.acc"),
    ("mvau", "", "mvau.issue"),
    ("addstreams", "", "add.sum"),
)


def label(sample: dict, names) -> str | None:
    """The path of :func:`stage_paths` (one of ``names``) that a sample's measured
    critical path is, when its cell names say so; else None."""
    cp = sample.get("critical_path") or {}
    a, b = str(cp.get("from_cell") or ""), str(cp.get("to_cell") or "")
    for src, dst, name in _LABELS:
        if src in a and dst in b:
            hits = [n for n in names if n.startswith(name)]
            return hits[0] if hits else None
    return None


def sample_paths(sample: dict) -> dict[str, np.ndarray]:
    """The model's paths of a calibration sample (its stage and the FIFO(s) in front)."""
    d = spec_design(sample["spec"])
    s = d.stage(sample["spec"]["stage"])
    fifos = tuple(range(len(s.inputs)))  # the harness puts a FIFO on every input
    return stage_paths(s, d.config[s.name], d.config.pipeline, fifos)


def _nnls(a: np.ndarray, y: np.ndarray, free: tuple[int, ...] = (0,)) -> np.ndarray:
    """Least squares with every coefficient but those in ``free`` non-negative (active
    set: drop the most negative, refit)."""
    keep = list(range(a.shape[1]))
    while True:
        x = np.zeros(a.shape[1])
        if keep:
            sol, *_ = np.linalg.lstsq(a[:, keep], y, rcond=None)
            x[keep] = sol
        neg = [i for i in keep if i not in free and x[i] < 0]
        if not neg:
            return x
        keep.remove(min(neg, key=lambda i: x[i]))


def fit(doc: dict, exclude: str | None = None, iterations: int = 30) -> dict:
    """Fit the coefficients to the samples and network results of a data document
    (``samples``, ``networks``), leaving out network ``exclude`` (its stage samples and its
    whole-network result) when given.

    The stage model is a maximum of linear functions (one per path); it is fitted by
    alternating assignment and least squares: each sample's critical path is the one its
    nextpnr cell names identify (:func:`label`) or, where they do not, the path the current
    coefficients predict longest; the coefficients are then the non-negative least-squares
    fit of those paths' terms to the measured periods, weighted to minimise relative error;
    repeated until the assignment is stable. The whole-design term is the mean of each
    fitted network's measured period less its predicted longest stage.
    """
    samples = [
        s
        for s in doc.get("samples", {}).values()
        if s.get("fmax_mhz") and s["spec"]["net"] != exclude
    ]
    if not samples:
        raise ValueError("fit needs at least one measured sample")
    paths = [sample_paths(s) for s in samples]
    y = np.array([1000.0 / s["fmax_mhz"] for s in samples])
    fixed = [label(s, list(p)) for s, p in zip(samples, paths, strict=True)]
    c = np.array([1.0, 5.0, 1.0, 1.5, 0.7, 1.0, 0.05, 0.3, 1.0, 0.5])  # a physical first guess (ns)
    chosen: list[tuple[int, str]] = []
    for _ in range(iterations):
        # each sample's critical path equals its measured period; any other path the
        # current coefficients put above it is pulled down to it (a hinge)
        rows = []
        for i, (f, p) in enumerate(zip(fixed, paths, strict=True)):
            crit = f if f is not None else max(p, key=lambda k, p=p: float(p[k] @ c))
            rows.append((i, crit))
            rows += [(i, k) for k in p if k != crit and float(p[k] @ c) > y[i]]
        a = np.array([paths[i][k] for i, k in rows])
        t = np.array([y[i] for i, _ in rows])
        c = _nnls(a / t[:, None], np.ones(len(t)), free=())  # relative error
        if rows == chosen:
            break
        chosen = rows
    coef = {"terms": {t: round(float(v), 5) for t, v in zip(TERMS, c, strict=True)}}
    gaps = []
    for net, rec in sorted(doc.get("networks", {}).items()):
        if net == exclude or not rec.get("fmax_mhz"):
            continue
        est = predict_fmax(_zoo_design(net), {**coef, "design": 0.0})
        gaps.append(1000.0 / rec["fmax_mhz"] - est.period_ns)
    coef["design"] = round(float(np.mean(gaps)) if gaps else 0.0, 5)
    return coef


@cache
def _zoo_design(net: str) -> Design:
    from codesign.models.loader import load

    return Design(load(net))


def fit_report(doc: dict) -> list[str]:
    """Lines describing the fit: coefficients, per-sample error, and per network the
    held-out prediction (fitted without that network's samples and result)."""
    coef = doc["coefficients"]
    lines = [
        "coefficients (ns): "
        + ", ".join(f"{t} {v:.3f}" for t, v in coef["terms"].items())
        + f", design {coef['design']:.3f}"
    ]
    c = _vector(coef)
    for sid, s in sorted(doc.get("samples", {}).items()):
        if not s.get("fmax_mhz"):
            continue
        p = sample_paths(s)
        name = max(p, key=lambda k: float(p[k] @ c))
        pred = 1000.0 / float(p[name] @ c)
        lab = label(s, list(p))
        lines.append(
            f"  {sid:34s} measured {s['fmax_mhz']:6.1f} predicted {pred:6.1f} "
            f"({100 * (pred / s['fmax_mhz'] - 1):+5.1f}%) path {name} (nextpnr: {lab})"
        )
    for net, rec in sorted(doc.get("networks", {}).items()):
        held = fit(doc, exclude=net)
        est = predict_fmax(_zoo_design(net), held)
        err = 100 * (est.fmax_mhz / rec["fmax_mhz"] - 1)
        hc = _vector(held)
        errs = [
            100
            * (1000.0 / max(float(v @ hc) for v in sample_paths(s).values()) / s["fmax_mhz"] - 1)
            for s in doc["samples"].values()
            if s["spec"]["net"] == net and s.get("fmax_mhz")
        ]
        lines.append(
            f"held out {net}: measured {rec['fmax_mhz']} predicted {est.fmax_mhz:.1f} "
            f"({err:+.1f}%), {est.stage} {est.path}; its {len(errs)} stage samples "
            f"{min(errs):+.1f}% to {max(errs):+.1f}%"
        )
    return lines
