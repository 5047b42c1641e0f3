"""Energy per inference of a dataflow design built as an ASIC, from operation counts times the
sourced parameters of ``sim/energy.csv`` (the project's one energy table).

The table (:func:`load_params`) gives every figure with its source: Horowitz's ISSCC 2014
45 nm figures for integer adds, multiplies and SRAM reads, and the rest as stated
assumptions (a gate, a clocked flip-flop bit, static power per bit and per logic cell). The
binary family's model (:mod:`codesign.sim.binary.energy`) reads the same table.

What is counted, per inference, for a :class:`~codesign.models.hwconfig.Design` (its stages,
their folding ``pe``/``simd``, its weight memory styles and FIFO depths), by kind:

``mac``
    Every product of a matrix unit (``vectors * mh * mw`` per inference, fixed by the
    network) at its operand widths (:func:`~codesign.models.device.lane_shape`; an ``a x b``
    multiply interpolated in ``a * b`` between Horowitz's 8- and 32-bit points, an XNOR one
    gate), each PE's balanced adder tree over its SIMD products (each adder one bit wider
    than its wider operand) and its accumulator add at the exact accumulator width
    (:func:`~codesign.sim.cost_rules.matrix_accumulator`). The adds are one per product
    whatever the folding, but a wider SIMD moves them from the wide accumulator into the
    narrower tree. Pools, element-wise adds and global pools count their adds or
    compares here too.
``weights``
    One read per issue cycle of a ``pe * simd * wbits``-bit word from the ``nf * sf``-word
    weight ROM, re-read for every output pixel of a convolution: in block RAM (an SRAM of
    that depth: the word costs ``width / 64`` of a 64-bit read of a ``64 * depth``-bit SRAM,
    Horowitz's points interpolated log-log, ∝ sqrt(depth) below 8 KB), or in logic (a
    multiplexer tree of ``ceil(log2 depth)`` gate levels per output bit). The bits read are
    fixed by the network; fewer, wider words from a shallower memory cost less per bit.
``activation``
    Per output element: a clip's compares, a requantization's multiply and rounding add,
    a multi-threshold's compares and the adder tree counting them; a per-channel parameter
    read from its table in logic when one lane serves several channels.
``buffers``
    Writes and reads of every storage array: the FIFO in front of each input (one write
    and one read per beat) and its width converter, the MVAU's input-vector buffer
    (written once per vector, read once per output row fold ``nf``: more PEs, fewer
    re-reads), the sliding window's line buffer, the credit queue at each stage's output.
    An array goes where the design's memory rule puts it
    (:func:`~codesign.models.device.memory_map`): block RAM is an SRAM (reads as above,
    writes ``sram_write_factor`` times a read), LUT RAM or registers a register file (a
    write costs ``reg_bit_pj`` per bit, a read ``ceil(log2 depth)`` gate levels per bit).
``registers``
    Every pipeline register bit (:meth:`~codesign.models.hwconfig.Design.pipeline`: operand,
    weight, product, adder-tree, accumulator and activation stages; the window's read
    stages, a width converter's register, a FIFO's output register) clocked every cycle:
    ``bits * reg_bit_pj * II``, no clock gating. Storage arrays are written per word (their
    words are clock-gated) and counted under ``buffers``.
``static``
    Leakage power of every bit of state and cell of logic (flip-flop and register-file
    bits ``leak_ff_nw``, SRAM bits ``leak_sram_bit_nw``, full-adder-sized logic cells
    ``leak_gate_nw``: multiplier partial products, adder and comparator bits, a ROM in
    logic one cell per bit) over the time of one inference, ``II`` cycles at the design's
    ``clock_mhz`` (the pipeline's steady state: one inference every II cycles).

Not counted: control (counters, FSMs, valid/ready), clock tree beyond the flip-flops,
wires between stages, I/O. The memory styles are the ones the design chose for its FPGA
target, each built as its ASIC equivalent.

Node scaling: every dynamic energy is multiplied by ``(node / ref_node) * (vdd / ref_vdd)²``
(``E = C V²`` with the switched capacitance ∝ feature size), static power by
``(node / ref_node) * (vdd / ref_vdd)`` (``P = I_off V`` with the leakage current ∝
device width ∝ feature size), where ``vdd`` is the table's ``target_vdd`` at every node.

This module imports only ``models``, numpy, the standard library and its own layer.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from codesign.models.device import lane_shape, memory_map
from codesign.models.hwconfig import (
    ConfigError,
    Design,
    MemStyle,
    Stage,
    StageConfig,
    StageKind,
    resolve_mem_style,
    stage_cycles,
    stage_io,
)
from codesign.models.joins import link_stages
from codesign.models.layers import Clip, MultiThreshold, Requant
from codesign.models.linebuffer import READ_LATENCY, window_geometry
from codesign.models.pipelining import compare_bits, stage_pipeline, tree_groups
from codesign.models.plan import stage_matrix
from codesign.models.qtype import QType

from .cost_rules import clog2, element_bits, matrix_accumulator, tree_adders, tree_registers
from .energy_table import EnergyParams, Param, default_params, load_params
from .fmax import fold_columns

__all__ = [
    "KINDS",
    "EnergyEstimate",
    "EnergyParams",
    "Param",
    "dataflow_energy",
    "dataflow_energy_batch",
    "load_params",
]

#: The kinds of :attr:`EnergyEstimate.breakdown`, in order (see the module docstring).
KINDS = ("mac", "weights", "activation", "buffers", "registers", "static")

_DYNAMIC = KINDS[:4]


# -- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per inference of a design at a node, per stage and per kind (:data:`KINDS`)."""

    nj: float  #: total energy per inference (nJ)
    node_nm: float  #: the node the figures are scaled to
    #: stage name → kind → nJ; a stage's FIFOs and width converters are in its ``buffers``,
    #: ``registers`` and ``static``
    breakdown: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    ii: int = 0  #: cycles per inference (the static energy's time, with ``clock_mhz``)
    clock_mhz: float = 0.0

    @property
    def by_kind(self) -> dict[str, float]:
        """nJ per kind, summed over the stages."""
        return {k: sum(s[k] for s in self.breakdown.values()) for k in KINDS}

    def to_dict(self) -> dict:
        return {
            "nj": self.nj,
            "node_nm": self.node_nm,
            "ii": self.ii,
            "clock_mhz": self.clock_mhz,
            "by_kind": self.by_kind,
            "breakdown": {s: dict(v) for s, v in self.breakdown.items()},
        }


@dataclass
class _Terms:
    """A block's energy at the reference node: dynamic pJ per inference by kind, register
    bits clocked every cycle, and static power (nW)."""

    dyn: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_DYNAMIC, 0.0))
    reg_bits: float = 0.0
    leak_nw: float = 0.0

    def add(self, other: _Terms) -> None:
        for k, v in other.dyn.items():
            self.dyn[k] += v
        self.reg_bits += other.reg_bits
        self.leak_nw += other.leak_nw

    def dyn_pj(self) -> float:
        return sum(self.dyn[k] for k in _DYNAMIC)


# -- unit models -----------------------------------------------------------------------------


def _memory(depth: int, width: int, reads: float, writes: float, p: EnergyParams) -> _Terms:
    """A storage array of ``depth`` words of ``width`` bits read and written that many times
    per inference, built where the design's memory rule puts it (see the module docstring)."""
    t = _Terms()
    if depth < 1 or width < 1:
        return t
    style, _ = memory_map(depth, width)
    bits = depth * width
    if style == "bram":
        word = p.read_pj(width, 64 * depth)
        t.dyn["buffers"] = (reads + writes * p["sram_write_factor"]) * word
        t.leak_nw = bits * p["leak_sram_bit_nw"]
    else:
        read = width * p["gate_pj"] * (clog2(depth) if depth > 1 else 0)
        t.dyn["buffers"] = reads * read + writes * width * p["reg_bit_pj"]
        t.leak_nw = bits * p["leak_ff_nw"]
    return t


def _rom(depth: int, width: int, reads: float, block: bool, p: EnergyParams) -> _Terms:
    """A constant table (weights, per-channel parameters) of ``depth`` words read that many
    times per inference: an SRAM (``block``) or logic."""
    t = _Terms()
    if block:
        t.dyn["weights"] = reads * p.read_pj(width, 64 * depth)
        t.leak_nw = depth * width * p["leak_sram_bit_nw"]
    else:
        t.dyn["weights"] = reads * width * p["gate_pj"] * (clog2(depth) if depth > 1 else 0)
        t.leak_nw = depth * width * p["leak_gate_nw"] if depth > 1 else 0.0
    return t


def _activation(layers, in_q, out_q, channels: int, n: int, elements: int, stages, p) -> _Terms:
    """A clip / requantization / multi-threshold unit of ``n`` lanes over ``channels``
    channels, applied to ``elements`` elements per inference; ``stages`` its registers."""
    t = _Terms()
    in_b, out_b = element_bits(in_q), element_bits(out_q)
    groups = max(channels // n, 1)
    clip = next((la for la in layers if isinstance(la, Clip)), None)
    rq = next((la for la in layers if isinstance(la, Requant)), None)
    th = next((la for la in layers if isinstance(la, MultiThreshold)), None)
    cells = 0.0
    mb, n_th = 0, 0
    if clip is not None:
        k = (clip.min is not None) + (clip.max is not None)
        t.dyn["activation"] += elements * k * p.add_pj(in_b)
        cells += n * k * in_b
    if rq is not None:
        m = np.asarray(rq.multiplier, dtype=np.int64).reshape(-1)
        mb = QType.covering(min(int(m.min()), 0), max(int(m.max()), 0)).bits
        t.dyn["activation"] += elements * (p.mul_pj(in_b, mb) + p.add_pj(in_b + mb))
        cells += n * (in_b * mb + in_b + mb)
        if m.size > 1 and np.any(m != m[0]) and groups > 1:
            rom = _rom(groups, n * mb, elements / n, False, p)
            t.dyn["activation"] += rom.dyn["weights"]
            t.leak_nw += rom.leak_nw
    if th is not None:
        rows = np.asarray(th.thresholds, dtype=np.int64)
        n_th = rows.shape[1]
        adders = tree_adders([1] * n_th)
        t.dyn["activation"] += elements * (n_th * p.add_pj(in_b) + sum(p.add_pj(w) for w in adders))
        cells += n * (n_th * in_b + sum(adders))
        if rows.shape[0] > 1 and groups > 1:
            rom = _rom(groups, n * n_th * in_b, elements / n, False, p)
            t.dyn["activation"] += rom.dyn["weights"]
            t.leak_nw += rom.leak_nw
    per_stage = {
        "clip": in_b,
        "multiply": in_b + mb,
        "product": in_b + mb,
        "land": in_b + mb,
        "round": out_b + 2,
        "saturate": out_b + 2,
        "compare": n_th * compare_bits(in_b),
        "count": max(n_th, 1).bit_length(),
        "all": out_b,
    }
    t.reg_bits = float(sum(n * per_stage[s] for s in stages))
    t.leak_nw += cells * p["leak_gate_nw"] + t.reg_bits * p["leak_ff_nw"]
    return t


def _matrix(stage: Stage, cfg: StageConfig, head: tuple[str, ...], mode, p) -> _Terms:
    """An MVAU (dense, or the matrix of a convolution): products, adder trees, accumulators,
    weight reads, input-vector buffer and pipeline registers."""
    w, xnor, _ = stage_matrix(stage)
    mh, mw = w.shape
    pe, simd = cfg.pe, cfg.simd
    sf, nf, vectors = mw // simd, mh // pe, stage.vectors
    steps = vectors * nf * sf
    in_b = element_bits(stage.input.qtype)
    _, acc_b = matrix_accumulator(stage, w, xnor, simd)
    lane = lane_shape(w, stage.input.qtype, xnor)
    prod = 1 if xnor else lane.a + lane.b
    e_prod = p["xnor_pj"] if xnor else p.mul_pj(lane.a, lane.b)
    groups = tree_groups(simd, mode) if "tree" in head else ()
    adders = tree_adders([prod] * simd)
    tree_regs = tree_registers([prod] * simd, groups)
    t = _Terms()
    t.dyn["mac"] = vectors * mh * mw * e_prod + steps * pe * (
        sum(p.add_pj(a) for a in adders) + p.add_pj(acc_b)
    )
    cells = pe * simd * (1 if xnor else lane.a * lane.b) + pe * (sum(adders) + acc_b)
    block = resolve_mem_style(cfg.mem_style, nf * sf) is MemStyle.BLOCK
    t.add(_rom(max(nf * sf, 2), pe * simd * lane.wbits, steps, block, p))
    t.add(_memory(max(sf, 2), simd * in_b, steps, vectors * sf, p))
    word, vec = pe * simd * lane.wbits, simd * in_b
    per_stage = {
        "fetch": word + vec,
        "operand": vec,
        "memory": word + vec,
        "weight": word + vec,
        "multiply": pe * simd * (lane.a + lane.b),
        "product": pe * simd * prod,
        "land": pe * simd * prod,
        "tree": 0,
        "result": 2 * pe * acc_b,
    }
    regs = sum(per_stage[s] for s in head) + tree_regs * pe + 2 * len(head)
    t.reg_bits += float(regs)
    t.leak_nw += cells * p["leak_gate_nw"] + regs * p["leak_ff_nw"]
    return t


def _window(stage: Stage, simd: int, channel_major: bool, reads: int, p) -> _Terms:
    """A sliding window's line buffer: each input beat written once, ``reads`` beats read."""
    geo = window_geometry(stage, simd, channel_major)
    beat = simd * element_bits(stage.input.qtype)
    t = _memory(geo.depth, beat, reads, stage.input.size // simd, p)
    regs = READ_LATENCY * beat
    t.reg_bits += regs
    t.leak_nw += regs * p["leak_ff_nw"]
    return t


def _stage_terms(stage: Stage, cfg: StageConfig, mode, p: EnergyParams) -> _Terms:
    """Everything of one stage but its input FIFOs and width converters."""
    pipe = stage_pipeline(stage, cfg, mode)
    act = pipe.activation if pipe is not None else ()
    n = cfg.pe
    t = _Terms()
    if stage.kind is StageKind.DEFORM:
        raise ConfigError(
            f"stage {stage.name!r}: the energy model has no deformable gather unit yet (its "
            "frame-store reads depend on the offsets: sim/deform counts them)"
        )
    if stage.kind in (StageKind.MVAU, StageKind.CONV) and not stage.depthwise:
        if stage.kind is StageKind.CONV:
            kh, kw = stage.main.weight.shape[2:]
            g = stage.input.shape[0] // cfg.simd
            t.add(_window(stage, cfg.simd, False, stage.vectors * kh * kw * g, p))
        t.add(_matrix(stage, cfg, pipe.head, mode, p))
        elements = stage.vectors * stage.mh
        t.add(
            _activation(
                stage.layers[1:],
                stage.acc.qtype,
                stage.output.qtype,
                stage.mh,
                n,
                elements,
                act,
                p,
            )
        )
    elif stage.kind is StageKind.CONV:  # depthwise: a VVAU
        c = stage.channels
        kh, kw = stage.main.weight.shape[2:]
        taps = kh * kw
        t.add(_window(stage, n, False, stage.vectors * taps * (c // n), p))
        w = stage_matrix(stage).weights
        wq = QType.covering(int(w.min()), int(w.max()))
        in_q = stage.input.qtype
        in_b = element_bits(in_q) + (1 if wq.signed and not in_q.signed else 0)
        acc_b = element_bits(stage.acc.qtype)
        products = stage.vectors * c * taps
        t.dyn["mac"] = products * (p.mul_pj(in_b, wq.bits) + p.add_pj(acc_b))
        rom = _rom(taps * (c // n), n * wq.bits, products / n, False, p)
        t.add(rom)
        regs = n * (in_b + in_b + wq.bits) + n * (c // n) * acc_b
        cells = n * (in_b * wq.bits + acc_b)
        t.reg_bits += regs
        t.leak_nw += regs * p["leak_ff_nw"] + cells * p["leak_gate_nw"]
        elements = stage.vectors * c
        t.add(
            _activation(
                stage.layers[1:], stage.acc.qtype, stage.output.qtype, c, n, elements, act, p
            )
        )
    elif stage.kind is StageKind.POOL:
        c, h, w = stage.input.shape
        el = element_bits(stage.input.qtype)
        kh, kw = stage.main.kernel
        taps = kh * kw
        op = stage.main.op
        if stage.global_pool:
            acc = el if op == "maxpool2d" else el + clog2(h * w) + 1
            t.dyn["mac"] = stage.input.size * p.add_pj(acc)
            regs = c * acc + n * element_bits(stage.output.qtype)
            cells = n * acc
        else:
            _, oh, ow = stage.output.shape
            t.add(_window(stage, n, True, oh * ow * taps * (c // n), p))
            acc = el if op == "maxpool2d" else el + clog2(taps)
            t.dyn["mac"] = stage.output.size * taps * p.add_pj(acc)
            regs = n * acc * (1 + ("sum" in pipe.head))
            cells = n * acc
        t.reg_bits += regs
        t.leak_nw += regs * p["leak_ff_nw"] + cells * p["leak_gate_nw"]
    elif stage.kind is StageKind.ADD:
        acc_b = element_bits(stage.acc.qtype)
        t.dyn["mac"] = stage.acc.size * p.add_pj(acc_b)
        regs = n * acc_b
        t.reg_bits += regs
        t.leak_nw += regs * p["leak_ff_nw"] + n * acc_b * p["leak_gate_nw"]
        t.add(
            _activation(
                stage.layers[1:],
                stage.acc.qtype,
                stage.output.qtype,
                stage.channels,
                n,
                stage.acc.size,
                act,
                p,
            )
        )
    elif stage.kind is StageKind.ACT:  # a standalone activation
        t.add(
            _activation(
                stage.layers,
                stage.input.qtype,
                stage.output.qtype,
                stage.channels,
                n,
                stage.output.size,
                act,
                p,
            )
        )
    else:
        raise ConfigError(f"stage {stage.name!r}: the energy model has no {stage.kind.value} stage")
    if pipe is not None:  # the credit queue: a SyncFIFOBuffered of queue_depth beats
        n_out = stage_io(stage, cfg)[1]
        width = n_out * element_bits(stage.output.qtype)
        t.add(_fifo(width, pipe.queue_depth, stage.output.size // n_out, p))
    return t


def _fifo(width: int, depth: int, beats: int, p: EnergyParams) -> _Terms:
    """A ``SyncFIFOBuffered`` of ``depth`` beats (``depth - 1`` words of storage and the
    output register) passing ``beats`` beats per inference."""
    t = _memory(depth - 1, width, beats, beats, p)
    t.dyn["buffers"] += beats * width * p["reg_bit_pj"]
    t.reg_bits += width
    t.leak_nw += width * p["leak_ff_nw"]
    return t


def _link_terms(stage: Stage, port: int, n_prev: int, n_in: int, depth: int, fifo: bool, p):
    """The width converter (when the widths differ) and FIFO (when there is one) in front
    of input ``port`` of ``stage``."""
    t = _Terms()
    tensor = stage.inputs[port]
    el = element_bits(tensor.qtype)
    if n_prev != n_in:  # every element passes through the converter's register once
        t.dyn["buffers"] += tensor.size * el * p["reg_bit_pj"]
        regs = max(n_prev, n_in) * el
        t.reg_bits += regs
        t.leak_nw += regs * p["leak_ff_nw"]
    if fifo:
        t.add(_fifo(n_in * el, depth, tensor.size // n_in, p))
    return t


# -- the design ------------------------------------------------------------------------------


def _node(node_nm, p: EnergyParams) -> float:
    if node_nm is None:
        return p["dataflow_node_nm"]
    if (
        isinstance(node_nm, bool)
        or not isinstance(node_nm, int | float)
        or not (0 < node_nm < math.inf)
    ):
        raise ValueError(f"node_nm must be a positive number (nm), not {node_nm!r}")
    return float(node_nm)


def _static_pj_per_nw(ii, clock_mhz: float):
    """pJ that one nW dissipates over ``ii`` cycles at ``clock_mhz`` (nW x ns = 1e-6 pJ)."""
    return ii * (1000.0 / clock_mhz) * 1e-6


def dataflow_energy(
    design: Design, node_nm: float | None = None, *, params: EnergyParams | None = None
) -> EnergyEstimate:
    """Energy per inference of ``design`` built as an ASIC at ``node_nm``.

    Parameters
    ----------
    design
        The design: its stages, folding, weight memory styles, FIFO depths, pipeline mode
        and ``clock_mhz`` (the static energy's time per inference is its ideal II in cycles
        at that clock).
    node_nm
        Technology node the figures are scaled to (see the module docstring); None: the
        table's ``dataflow_node_nm`` (45 nm, Horowitz's figures unscaled).
    params
        The parameter table; None: ``sim/energy.csv``.

    Returns
    -------
    EnergyEstimate
        The total (nJ) and the breakdown per stage and kind.
    """
    p = default_params() if params is None else params
    node = _node(node_nm, p)
    dyn_s, stat_s = p.scale_at(node), p.static_scale_at(node)
    mode = design.config.pipeline
    ii = design.ideal_ii
    clock = design.config.clock_mhz
    per_nw = _static_pj_per_nw(ii, clock)
    breakdown = {}
    total = 0.0
    for s in design.stages:
        cfg = design.config[s.name]
        t = _Terms()
        parts = [
            _link_terms(
                s,
                port,
                design.in_width(s, port),
                stage_io(s, cfg)[0],
                design.fifo_depth(s, port) if design.has_fifo(s, port) else 0,
                design.has_fifo(s, port),
                p,
            )
            for port in range(len(s.inputs))
        ]
        parts.append(_stage_terms(s, cfg, mode, p))
        for part in parts:
            t.add(part)
            total += _point_pj(part, p, ii, per_nw, dyn_s, stat_s)
        row = {k: t.dyn[k] * dyn_s / 1000 for k in _DYNAMIC}
        row["registers"] = t.reg_bits * p["reg_bit_pj"] * ii * dyn_s / 1000
        row["static"] = t.leak_nw * per_nw * stat_s / 1000
        breakdown[s.name] = MappingProxyType(row)
    return EnergyEstimate(total / 1000, node, MappingProxyType(breakdown), int(ii), clock)


def _point_pj(t: _Terms, p: EnergyParams, ii, per_nw, dyn_s: float, stat_s: float):
    return (t.dyn_pj() + t.reg_bits * p["reg_bit_pj"] * ii) * dyn_s + t.leak_nw * per_nw * stat_s


# -- vectorised ------------------------------------------------------------------------------

#: Per design: the terms of each stage and link at each folding seen (default table only).
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _uses_simd(s: Stage) -> bool:
    return s.kind in (StageKind.MVAU, StageKind.CONV) and not s.depthwise


def _stage_config(design: Design, s: Stage, pe: int, simd: int) -> StageConfig:
    """The stage's config at a folding, as a :class:`Design` of that folding has it."""
    base = design.config[s.name]
    given = design.given[s.name]
    if not _uses_simd(s):
        return dataclasses.replace(base, pe=pe)
    style = resolve_mem_style(given.mem_style, (s.mw // simd) * (s.mh // pe))
    return dataclasses.replace(base, pe=pe, simd=simd, mem_style=style)


def dataflow_energy_batch(
    design: Design, pe, simd, node_nm: float | None = None, *, params: EnergyParams | None = None
) -> np.ndarray:
    """Energy per inference (nJ) of N foldings of ``design``'s network, vectorised.

    Parameters
    ----------
    design
        Any design of the network: its pipeline mode, clock, given memory styles and FIFO
        depths are kept; only PE and SIMD vary (an automatic memory style and FIFO depth
        resolve at each folding, as in a :class:`Design` of that folding).
    pe, simd
        Integer arrays of shape (N, S), one column per stage of ``design.stages`` in order
        (a stage without SIMD ignores its column), or mappings of stage name → array of N
        values (a stage not named keeps the design's own value), as
        :func:`codesign.sim.fmax.predict_fmax_batch` takes them; each value one of the
        stage's ``pe_choices`` / ``simd_choices``.
    node_nm, params
        As :func:`dataflow_energy`.

    Returns
    -------
    numpy.ndarray
        N energies (nJ), each equal to ``dataflow_energy(...).nj`` of the design with that
        folding. A stage's terms (and a FIFO's, from the foldings it depends on) are
        computed once per distinct folding and gathered; the time per inference is the
        slowest stage's cycles (:func:`~codesign.models.hwconfig.stage_cycles`, the ``ii``
        of :func:`codesign.sim.dataflow.analytic.analytic`).
    """
    p = default_params() if params is None else params
    node = _node(node_nm, p)
    dyn_s, stat_s = p.scale_at(node), p.static_scale_at(node)
    pe, simd = fold_columns(design, pe, "pe"), fold_columns(design, simd, "simd")
    n_stages = len(design.stages)
    if pe.ndim != 2 or pe.shape[1] != n_stages or simd.shape != pe.shape:
        raise ValueError(
            f"pe and simd must be arrays of shape (N, {n_stages}), not {pe.shape} and {simd.shape}"
        )
    known = _TABLES.setdefault(design, {}) if params is None else {}
    mode = design.config.pipeline
    n = pe.shape[0]
    codes, folds = [], []  # per stage: each point's code, and the (pe, simd) of each code
    dyn = np.zeros(n)
    reg = np.zeros(n)
    leak = np.zeros(n)
    ii = np.zeros(n, dtype=np.int64)
    stage_tabs = []
    for k, s in enumerate(design.stages):
        cols = simd[:, k] if _uses_simd(s) else np.ones_like(simd[:, k])
        if n and (pe[:, k].min() < 1 or cols.min() < 1):
            raise ValueError(f"stage {s.name!r}: pe and simd must be positive")
        width = int(cols.max(initial=1)) + 1
        key = pe[:, k] * width + cols
        present = np.flatnonzero(np.bincount(key)) if n else np.zeros(0, dtype=np.int64)
        lookup = np.zeros(int(key.max(initial=0)) + 1, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        codes.append(lookup[key])
        folds.append([divmod(int(u), width) for u in present])
        tab = np.zeros((len(present), 4))
        for c, (pp, qq) in enumerate(folds[-1]):
            cfg = _stage_config(design, s, pp, qq)
            name = ("stage", k, pp, qq if _uses_simd(s) else 1)
            if name not in known:
                t = _stage_terms(s, cfg, mode, p)
                known[name] = (t.dyn_pj(), t.reg_bits, t.leak_nw, stage_cycles(s, cfg))
            tab[c] = known[name]
        stage_tabs.append(tab)
        np.maximum(ii, tab[codes[-1], 3].astype(np.int64), out=ii)
    for k, s in enumerate(design.stages):
        for port in range(len(s.inputs)):
            idx = link_stages(design, s, port)
            radix = [len(folds[j]) for j in idx]
            key = np.zeros(n, dtype=np.int64)
            for j, r in zip(idx, radix, strict=True):
                key = key * r + codes[j]
            if math.prod(radix) <= 1 << 24:
                present = np.flatnonzero(np.bincount(key)) if n else key[:0]
                lookup = np.zeros(math.prod(radix), dtype=np.int64)
                lookup[present] = np.arange(len(present))
                inverse = lookup[key]
            else:
                present, inverse = np.unique(key, return_inverse=True)
            tab = np.zeros((len(present), 3))
            for c, u in enumerate(present.tolist()):
                combo = []
                for r in reversed(radix):
                    u, d = divmod(u, r)
                    combo.append(d)
                combo = [folds[j][d] for j, d in zip(idx, reversed(combo), strict=True)]
                name = ("link", k, port, tuple(combo))
                if name not in known:
                    t = _link_at(design, s, port, dict(zip(idx, combo, strict=True)), p)
                    known[name] = (t.dyn_pj(), t.reg_bits, t.leak_nw)
                tab[c] = known[name]
            dyn += tab[inverse, 0]
            reg += tab[inverse, 1]
            leak += tab[inverse, 2]
        tab = stage_tabs[k]
        dyn += tab[codes[k], 0]
        reg += tab[codes[k], 1]
        leak += tab[codes[k], 2]
    per_nw = _static_pj_per_nw(ii, design.config.clock_mhz)
    return ((dyn + reg * p["reg_bit_pj"] * ii) * dyn_s + leak * per_nw * stat_s) / 1000


def _link_at(design: Design, s: Stage, port: int, folding: dict, p: EnergyParams) -> _Terms:
    """A link's terms with the stages of ``folding`` (index → (pe, simd)) folded so."""
    names = {design.stages[j].name: f for j, f in folding.items()}
    view = design.refold({n: f[0] for n, f in names.items()}, {n: f[1] for n, f in names.items()})
    fifo = view.has_fifo(s, port)
    n_in = stage_io(s, view.config[s.name])[0]
    depth = view.fifo_depth(s, port) if fifo else 0
    return _link_terms(s, port, view.in_width(s, port), n_in, depth, fifo, p)
