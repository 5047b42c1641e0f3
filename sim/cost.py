"""Resource cost model of the dataflow pipeline: LUT, FF, DSP and block RAM per block.

:func:`estimate` predicts what ``codesign synth`` measures (hierarchical Yosys synthesis,
see :mod:`codesign.synth`) for every block of a :class:`~codesign.models.hwconfig.Design`: each
pipeline stage (its units: sliding window, MVAU/VVAU, activation, pool), each FIFO and each
width converter, and the total.

- DSP and block RAM counts follow the rules Yosys applies, derived from its ECP5 flow
  (:mod:`codesign.sim.cost_rules`), on the Verilog ``codesign synth`` measures
  (``generate(..., target="ecp5")``): a registered product of a pipelined datapath (an
  MVAU's lanes and an activation's per-channel multipliers, ``pipeline: auto``) is one
  MULT18X18D instance with its registers inside, however narrow, when both operands fit
  18-bit two's complement (:func:`codesign.models.device.registered_dsp`); a product Yosys
  infers (``pipeline: off``, a constant requantization multiplier, operands too wide for
  one block) of two non-constant operands, or of an operand and a constant that is neither
  0 nor a power of two, becomes ``ceil(a/18)·ceil(b/18)`` MULT18X18D when both operands are
  at least 2 bits wide (``mul2dsp`` with ``DSP_A/B_MINWIDTH=2``); a memory that is not a
  ROM in logic goes to LUT RAM (TRELLIS_DPR16X4, 16×4, cost 4 each, plus 1/2 per bit and
  extra bank of 16 words for the read multiplexer) or to DP16KD/PDPW16KD block RAM (cost
  128 each; a ROM's constant bit columns are dropped first), whichever is cheaper, a tie
  going to LUT RAM (the cost rule was derived from the sweep's measurements);
  memories of one word are registers. A window's line buffer in block RAM is DP16KD
  instances with a write port and a registered read port each (at most 18 bits a port,
  :func:`codesign.models.device.tdp_brams`), as the ECP5 Verilog builds it.
- LUT and FF counts are linear in features of each unit (bit widths times parallelism,
  adder-tree bits, memory widths, and the logic of constant tables from their actual bits:
  an MVAU's weight ROM in logic, per-channel biases and thresholds, see :func:`rom_tree`;
  and the register stages of each credit pipeline, from :meth:`Design.pipeline
  <codesign.models.hwconfig.Design.pipeline>`: an MVAU's tags travelling beside its data,
  its operand, block-RAM output, product landing and adder-tree registers, an activation's
  stage registers, and the stage's credit queue, a ``SyncFIFOBuffered`` of
  ``queue_depth`` beats — ``queue_depth - 1`` words in LUT RAM or flip-flops as a FIFO's
  memory maps — with its credit counter),
  with non-negative coefficients (a free intercept) fitted by least squares to Yosys runs
  over a sweep of small generated networks (``python -m codesign.cost_fit``, which writes
  :data:`DATA`; ``--refit`` refits the stored measurements in seconds). XNOR MVAUs
  (``mvau_xnor``) and multiplying ones (``mvau``) have separate coefficients; an N:M sparse
  MVAU (:mod:`codesign.models.compress.sparsity`) is a ``mvau`` whose product lanes,
  adder tree and DSPs are PE·SIMD·N/M, whose ROM holds the kept values and their indices
  (its exact bits, :func:`~codesign.models.compress.sparsity.weight_rom`), with two
  features of its own: the input multiplexers (``sel_mux``: per bit of each kept weight's
  input, a two-input mux fewer than the positions it can select,
  :func:`~codesign.models.compress.sparsity.mux_inputs`) and the ``select`` stage's
  registers (``sel_bits``); input elements no multiplexer can select are left out of the
  input vector's memory and registers, as Yosys leaves them out. The zoo
  designs are measured but held out of the fit, so tests/sim/test_cost.py checks the model
  on networks it was not fitted to.
- A weight ROM in logic deeper than 128 words (only when a config forces
  ``mem_style: distributed``; the default puts it in block RAM) is the least predictable
  unit: ABC's LUT mapping of the same truth tables varies by 15-25% with the order of the
  columns alone.

This module imports only ``models``, numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from codesign.models.compress.sparsity import mux_inputs, products, read_inputs, weight_rom
from codesign.models.deform.stage import gather_shape, matrix_input
from codesign.models.device import fits_mult18, lane_shape, registered_dsp, tdp_brams
from codesign.models.hwconfig import (
    ConfigError,
    Design,
    MemStyle,
    Stage,
    StageConfig,
    StageKind,
    fifo_name,
    fork_name,
    port_width,
    readers,
    resolve_mem_style,
    stage_io,
)
from codesign.models.layers import Clip, MultiThreshold, Requant
from codesign.models.linebuffer import READ_LATENCY, window_geometry
from codesign.models.pipelining import (
    FIFO_PREFETCH,
    PRODUCT_STAGES,
    PipelineMode,
    compare_bits,
    stage_pipeline,
    tree_groups,
)
from codesign.models.plan import stage_matrix
from codesign.models.qtype import Kind, QType

from .cost_rules import (
    clog2,
    const_dsp,
    element_bits,
    live_bits,
    matrix_accumulator,
    memory_map,
    range_width,
    rom_brams,
    rom_tree,
    table_logic,
    tree_adders,
    tree_registers,
    var_dsp,
    window_lead_bits,
)
from .deform.cost import COEFFICIENTS as GATHER_COEFFICIENTS
from .deform.cost import gather_cost

__all__ = [
    "DATA",
    "REGISTER_FEATURES",
    "TARGETS",
    "UnitCost",
    "estimate",
    "memory_map",
    "rom_brams",
    "units",
]

#: Fitted coefficients and the raw sweep they were fitted to (written by codesign.cost_fit).
DATA = Path(__file__).with_name("cost_data.json")

#: Targets with fitted coefficients.
TARGETS = ("ecp5",)


@dataclass(frozen=True)
class UnitCost:
    """One hardware unit (a stage's unit, a FIFO or a width converter) and its facts.

    ``features`` are the regressors of the fitted LUT and FF models (by name); ``dsp``,
    ``bram`` and ``lutram`` are exact counts.
    """

    block: str  #: ``stage_<name>``, ``fifo_<name>`` or ``dwc_<name>``
    unit: str | None  #: ``u1_mvau`` ... inside a stage, else None
    kind: str  #: model family: mvau, mvau_xnor, vvau, activation, swg, pool, fifo, dwc, top
    features: dict[str, float] = field(default_factory=dict)
    dsp: int = 0
    bram: int = 0
    lutram: int = 0


#: Features that count the register bits of the pipelines and nothing else (a register's
#: input is computed by logic that other features count): the fit gives them no LUTs.
REGISTER_FEATURES = frozenset(
    {
        "tag_bits",
        "op_bits",
        "mem_bits",
        "land_bits",
        "tree_regs",
        "stage_bits",
        "vec_ff",
        "read_ff",
        "sel_bits",
    }
)


# -- units ---------------------------------------------------------------------------------


def _tree_bits(widths: list[int]) -> int:
    """Adder bits of the RTL's balanced adder tree over terms of ``widths``."""
    return sum(tree_adders(widths))


def _mul_width(a: int, a_signed: bool, b: int, b_signed: bool) -> int:
    """Bits of an exact product (amaranth: an unsigned operand beside a signed one gains a
    sign bit)."""
    if a_signed != b_signed:
        return a + b + 1
    return a + b


def _groups(simd: int, head: tuple[str, ...]) -> tuple[int, ...]:
    """The adder tree's register groups of a matrix unit whose head has ``head`` stages."""
    return tree_groups(simd, PipelineMode.AUTO) if "tree" in head else ()


def _mvau(stage: Stage, cfg: StageConfig, name: str, head: tuple[str, ...]) -> UnitCost:
    w, xnor, _ = stage_matrix(stage)
    mh, mw = w.shape
    pe, simd = cfg.pe, cfg.simd
    sf, nf = mw // simd, mh // pe
    # product lanes a PE: SIMD, or SIMD·N/M for an N:M sparse MVAU (models/compress)
    terms = products(simd, cfg.sparsity)
    in_q = matrix_input(stage).qtype
    in_b = element_bits(in_q)
    bias, acc_b = matrix_accumulator(stage, w, xnor, simd)
    out_b = element_bits(stage.acc.qtype)
    lane = lane_shape(w, in_q, xnor)
    wbits = lane.wbits
    # the input vector's bits: a sparse MVAU's elements that no kept weight ever selects
    # are removed by synthesis (with a matrix of few words, some are)
    vec_b = simd * in_b
    if cfg.sparsity is not None:  # N kept values and their indices per M-group
        rom = weight_rom(w, pe, simd, cfg.sparsity, wbits)
        vec_b = read_inputs(w, pe, simd, cfg.sparsity) * in_b
        choices = mux_inputs(w, pe, simd, cfg.sparsity).sum(axis=1)
    else:
        enc = w & ((1 << wbits) - 1)
        # ROM words in (nf, sf) order, lane (p, s) bit b at column (p*simd + s)*wbits + b
        blocks = enc.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
        bits = (blocks[:, :, None] >> np.arange(wbits)) & 1
        rom = bits.reshape(nf * sf, pe * simd * wbits)
    width = rom.shape[1]
    if rom.shape[0] < 2:
        rom = np.vstack([rom, np.zeros_like(rom)])  # depth max(words, 2), the pad word is 0
    f: dict[str, float] = {"one": 1.0}
    bram = lutram = dsp = 0
    if resolve_mem_style(cfg.mem_style, nf * sf) is MemStyle.BLOCK:
        # Yosys drops the ROM's constant bit columns (opt_mem) before mapping it
        live = int((rom.min(axis=0) != rom.max(axis=0)).sum())
        bram += rom_brams(rom.shape[0], live) if live else 0
        f["rom_ff"] = 0.0
    else:
        t = rom_tree(rom)
        f["rom_ff"] = float(t["cols"])
        f["rom_leaf"], f["rom_mux"], f["rom_mux8"] = (
            float(t["leaf"]),
            float(t["mux567"]),
            float(t["mux8"]),
        )
    style, n = memory_map(max(sf, 2), vec_b)
    if style == "bram" and "operand" in head:
        # a RegisteredRam (hdl/dataflow/bram.py): a write port and a registered read port,
        # 18 bits or fewer each
        n = tdp_brams(max(sf, 2), vec_b)
    if style == "bram":
        bram += n
    elif style == "lutram":
        lutram += n
    f["vec_ff"] = float(vec_b) if style != "bram" else 0.0
    f["vec_mem_ff"] = float(max(sf, 2) * vec_b) if style == "ff" else 0.0
    f["x_bits"] = float(vec_b)
    f["acc_bits"] = float(pe * acc_b)
    f["out_bits"] = float(pe * out_b)
    # -- register stages of the credit pipeline (models/pipelining.matrix_stages)
    nf_b = clog2(max(nf, 2))
    bias_varies = bias is not None and nf > 1 and bool((bias.reshape(nf, pe) != bias[:pe]).any())
    # valid and last travel to the accumulator (the bias row index nf only when a
    # bias varies by row); the input-or-buffer flag is read at the fetch stage only; when
    # pipelined, each PE has its own copy of valid and last at the accumulator, loaded
    # from ceil(sqrt(pe)) copies a stage earlier (mvau.py _Tags.replicas)
    f["tag_bits"] = float((2 + (nf_b if bias_varies else 0)) * (len(head) - 1) + 1 + 1)
    if pe > 1 and len(head) > 3:  # three tag stages at least
        f["tag_bits"] += 2 * (pe + math.isqrt(pe - 1) + 1)
    f["op_bits"] = float(vec_b) if "operand" in head else 0.0
    if "operand" in head:
        # each bank of the weight ROM (64 output bits in logic, one in block RAM) has its
        # own address counter stepping with the fetch stage
        banks = (
            1 if resolve_mem_style(cfg.mem_style, nf * sf) is MemStyle.BLOCK else -(-width // 64)
        )
        f["rom_addr"] = float(banks * clog2(max(nf * sf, 2)))
    # the block RAM's output register stage delays the vector; the next registers both
    f["mem_bits"] = float(vec_b + width) * (("memory" in head) + ("weight" in head))
    if cfg.sparsity is not None:
        # a multiplexer of input elements per kept weight, over the positions it can
        # select (u of them: u - 1 two-input muxes a bit; a lane whose index never changes
        # is a wire), and the ``select`` stage's registers: the chosen element and its weight
        f["sel_mux"] = float(in_b * (choices - 1).sum())
        f["sel_bits"] = float(pe * terms * (in_b + wbits)) if "select" in head else 0.0
    if xnor:
        f["tree_regs"] = float(pe * tree_registers([1] * simd, _groups(simd, head)))
    if xnor:
        f["xnor_lanes"] = float(pe * simd)
        # up to four bits a PE's popcount folds into the LUTs in front of its accumulator's
        # carry chain; each lane beyond costs about 7 LUTs in a combinational popcount
        # (``pipeline: off``; tfc_w1a1 fc1, PE 4, at SIMD 1, 2, 4, 8, 16, 32, 64: 82, 75, 79,
        # 211, 390, 870, 1653 LUTs before the pipelines), and fewer in one registered every
        # two adder levels, which Yosys cannot merge into one carry-save tree
        lanes = float(pe * max(simd - 4, 0))
        f["pop_lanes" if _groups(simd, head) else "pop_comb"] = lanes
    else:
        a, b, per = lane.a, lane.b, lane.dsp
        prod = a + b
        if PRODUCT_STAGES[0] in head:  # registered products (hdl/dataflow/dsp.py)
            xa = 2 if in_q.kind is Kind.BIPOLAR else in_b
            xs = in_q.signed or in_q.kind is Kind.BIPOLAR
            wq = QType.covering(int(w.min()), int(w.max()))
            per = registered_dsp(xa, xs, wq.bits, wq.signed)
            prod = _mul_width(xa, xs, wq.bits, wq.signed)
            land = prod
            if not fits_mult18(xa, xs, wq.bits, wq.signed):  # fabric input/output registers
                land += xa + wq.bits + prod
            f["land_bits"] = float(pe * terms * land)
        dsp = pe * terms * per
        f["sum_bits"] = float(pe * terms * prod)
        f["tree_bits"] = float(pe * _tree_bits([prod] * terms))
        f["tree_regs"] = float(pe * tree_registers([prod] * terms, _groups(terms, head)))
        f["dsp"] = float(pe * terms * per)
        if per == 0:
            f["soft_mul"] = float(pe * terms * a * b)
    if bias is not None and nf > 1:
        rows = bias.reshape(nf, pe)
        varies = int((rows != rows[:1]).any(axis=0).sum())
        f["bias_mux"] = float(varies * acc_b * nf)
        f["bias_rom"] = sum(table_logic(rows[:, p]) for p in range(pe))
    f["counters"] = float(clog2(sf + 1) + clog2(nf + 1) + clog2(nf * sf + 1))
    kind = "mvau_xnor" if xnor else "mvau"
    return UnitCost(f"stage_{stage.name}", name, kind, f, dsp, bram, lutram)


def _vvau(stage: Stage, cfg: StageConfig, name: str) -> UnitCost:
    w = stage_matrix(stage).weights  # (C, taps)
    c, taps = w.shape
    pe = cfg.pe
    in_q = matrix_input(stage).qtype
    in_b = element_bits(in_q)
    t = QType.covering(int(w.min()), int(w.max()))
    out_b = element_bits(stage.acc.qtype)
    groups = c // pe
    f = {
        "one": 1.0,
        "acc_bits": float(pe * groups * out_b),
        "x_bits": float(pe * in_b),
        "sum_bits": float(pe * (in_b + t.bits)),
        "rom_bits": float(pe * t.bits * taps * groups),
    }
    dsp = pe * var_dsp(in_b + (1 if t.signed and not in_q.signed else 0), t.bits)
    return UnitCost(f"stage_{stage.name}", name, "vvau", f, dsp)


def _per_channel(values, channels: int, n: int) -> list[np.ndarray]:
    v = np.broadcast_to(np.asarray(values, dtype=np.int64).reshape(-1), (channels,))
    return [v[lane::n] for lane in range(n)]


def _activation(
    stage: Stage, cfg: StageConfig, name: str, layers, in_q, channels, stages: tuple[str, ...]
) -> UnitCost:
    n = cfg.pe
    in_b = element_bits(in_q)
    out_b = element_bits(stage.output.qtype)
    groups = channels // n
    clip = next((la for la in layers if isinstance(la, Clip)), None)
    rq = next((la for la in layers if isinstance(la, Requant)), None)
    th = next((la for la in layers if isinstance(la, MultiThreshold)), None)
    f: dict[str, float] = {"one": 1.0, "in_bits": float(n * in_b), "out_bits": float(n * out_b)}
    f["group_bits"] = float(clog2(groups + 1)) if groups > 1 else 0.0
    f["clip_bits"] = (
        float(n * in_b * ((clip.min is not None) + (clip.max is not None))) if clip else 0
    )
    dsp = 0
    # a clip at a non-negative minimum leaves the sign bit constant; Yosys drops it
    mul_b = in_b - 1 if clip and clip.min is not None and clip.min >= 0 and in_q.signed else in_b
    if rq is not None:
        shift = int(np.asarray(rq.shift).reshape(-1)[0])
        mult_bits = 0
        for col in _per_channel(rq.multiplier, channels, n):
            if np.all(col == col[0]):
                dsp += const_dsp(int(col[0]), mul_b)
                mb = int(abs(col[0])).bit_length()
            else:
                mb = range_width(int(col.min()), int(col.max()))
                dsp += var_dsp(mul_b, mb)
                f["rq_mux"] = f.get("rq_mux", 0.0) + mb * groups
                f["param_bits"] = f.get("param_bits", 0.0) + live_bits(col)
            mult_bits += mb
        f["rq_bits"] = float(n * in_b + mult_bits + n * max(shift, 0))
        if PRODUCT_STAGES[0] in stages:  # registered products (hdl/dataflow/act.py)
            dsp = 0
            land = 0
            cmul = 0
            for col in _per_channel(rq.multiplier, channels, n):
                if np.all(col == col[0]):
                    # a constant multiplier stays shift-add in fabric between two registers
                    c = int(col[0])
                    dsp += const_dsp(c, mul_b)
                    pw = mul_b + abs(c).bit_length() + 1
                    cmul += mul_b + pw
                else:
                    lo, hi = int(col.min()), int(col.max())
                    mb = range_width(lo, hi)
                    dsp += registered_dsp(in_b, in_q.signed, mb, lo < 0)
                    pw = _mul_width(in_b, in_q.signed, mb, lo < 0)
                    if not fits_mult18(in_b, in_q.signed, mb, lo < 0):
                        cmul += in_b + mb + pw
                land += pw
            f["cmul_bits"] = float(cmul)
            f["land_bits"] = float(land)
            f["stage_bits"] = float((n * mul_b if "clip" in stages else 0) + len(stages) + 1)
            if "saturate" in stages:  # the floor, rounding bit and 4 range flags registered
                f["stage_bits"] += float(land - n * max(shift, 0) + 5 * n)
    if th is not None:
        rows = np.asarray(th.thresholds, dtype=np.int64)
        if rows.shape[0] == 1:
            rows = np.broadcast_to(rows, (channels, rows.shape[1]))
        cmp_bits = 0.0
        mux = 0.0
        param = 0
        for lane in range(n):
            col = rows[lane::n]
            for k in range(rows.shape[1]):
                cmp_bits += in_b
                if not np.all(col[:, k] == col[0, k]):
                    mux += in_b * groups
                    param += live_bits(col[:, k])
        f["th_bits"], f["th_mux"] = cmp_bits, mux
        if "compare" in stages:
            # the clip's register, the bits of each comparator (compare_bits: one for a
            # narrow compare) and the registered
            # count tree (many thresholds); the last count register is the output
            reg = n * mul_b if "clip" in stages else 0
            reg += n * rows.shape[1] * compare_bits(in_b)
            t = rows.shape[1]
            cnt = tree_groups(t, PipelineMode.AUTO) if t > 8 and "count" in stages else ()
            reg += n * tree_registers([1] * t, cnt)
            f["stage_bits"] = float(reg + len(stages) + 1)
        f["param_bits"] = f.get("param_bits", 0.0) + param
        if groups > 1:
            # every lane's thresholds as one table over the channel groups: its distinct
            # non-constant bit columns are the registers' flip-flops and its LUT4 leaves and
            # muxes the logic that loads them (Yosys merges equal flip-flops and shares
            # equal logic across the whole unit, not per lane)
            nb = range_width(min(int(rows.min()), 0), max(int(rows.max()), 0))
            bits = (rows.reshape(groups, n * rows.shape[1])[:, :, None] >> np.arange(nb)) & 1
            tree = rom_tree(bits.reshape(groups, -1))
            f["param_ff"] = float(tree["cols"])
            f["th_leaf"] = float(tree["leaf"])
            f["th_mux567"] = float(tree["mux567"])
            f["th_mux8"] = float(tree["mux8"])
    f.setdefault("stage_bits", float(len(stages) + 1))
    return UnitCost(f"stage_{stage.name}", name, "activation", f, dsp)


def _window(stage: Stage, cfg: StageConfig, simd: int, channel_major: bool):
    """Facts of a sliding-window line buffer: features, DSP, memory mapping."""
    _, h, w = stage.input.shape
    geo = window_geometry(stage, simd, channel_major)
    (kh, kw), g, rows, oh, ow = geo.kernel, geo.groups, geo.rows, geo.oh, geo.ow
    yb, xb, slot_b, depth, dsp = geo.yb, geo.xb, geo.slot_b, geo.depth, geo.dsp
    wg = w * g
    beat = simd * element_bits(stage.input.qtype)
    style, n = memory_map(depth, beat)
    if style == "bram":  # on ECP5, DP16KD instances with a write port of their own
        n = tdp_brams(depth, beat)
    counters = (
        clog2(oh)
        + clog2(ow)
        + clog2(kh)
        + clog2(kw)
        + 2 * clog2(g)
        + clog2(w)
        + 4 * yb
        + 2 * xb
        + 3 * slot_b
        + 2 * clog2(h * wg)
        + clog2(depth)
        + clog2(3 * h + rows)
    )
    # the writer's lead on the tap (a few frames of input beats), the three thresholds it
    # is compared with (the selected loop's move), its three subtractions and its
    # increment, and the read address's replica (hdl/dataflow/swg.py)
    lead_b = window_lead_bits(rows, h, w, g)
    th_b = clog2(kh * wg + kw * g + ow * g) + 2
    f = {
        "one": 1.0,
        "beat_bits": float(beat),
        "counters": float(counters),
        "lead_bits": float(4 * lead_b),
        "ctrl_regs": float(3 * th_b + clog2(depth + wg) + 1),
        "mem_ff": float(depth * beat) if style == "ff" else 0.0,
        "lutram_mux": float(beat * math.ceil(depth / 16)) if style == "lutram" else 0.0,
        # the read's stages after the first (the memory's read register): a valid and a
        # padding flag each, and the beat's register unless it is a DP16KD's own (block RAM)
        "read_ff": float((READ_LATENCY - 1) * (2 + (beat if style != "bram" else 0))),
    }
    return f, dsp, style, n


def _swg(stage: Stage, cfg: StageConfig, name: str) -> UnitCost:
    simd = cfg.pe if stage.depthwise else cfg.simd
    f, dsp, style, n = _window(stage, cfg, simd, channel_major=False)
    return UnitCost(
        f"stage_{stage.name}",
        name,
        "swg",
        f,
        dsp,
        n if style == "bram" else 0,
        n if style == "lutram" else 0,
    )


def _pool(stage: Stage, cfg: StageConfig, name: str) -> UnitCost:
    f, dsp, style, n = _window(stage, cfg, cfg.pe, channel_major=True)
    la = stage.main
    kh, kw = la.kernel
    el = element_bits(stage.input.qtype)
    f["reduce_bits"] = float(cfg.pe * el)
    f["taps_bits"] = float(clog2(kh * kw))
    if la.op != "maxpool2d":
        f["avg_bits"] = float(cfg.pe * (el + clog2(kh * kw)))
    return UnitCost(
        f"stage_{stage.name}",
        name,
        "pool",
        f,
        dsp,
        n if style == "bram" else 0,
        n if style == "lutram" else 0,
    )


def gather_unit(stage: Stage, cfg: StageConfig, name: str) -> UnitCost:
    """A deformable stage's gather unit (``DeformWindow``, in place of a sliding window):
    its frame store of ``cfg.deform_banks`` memories with ``cfg.deform_ports`` read ports
    and its position, corner and bilinear-product logic (:mod:`codesign.sim.deform.cost`)."""
    g = gather_shape(stage, cfg.deform_banks, cfg.deform_ports)
    c = gather_cost(g)
    return UnitCost(
        f"stage_{stage.name}", name, "gather", c["features"], c["dsp"], c["bram"], c["lutram"]
    )


def _fifo(stage: Stage, width: int, depth: int) -> UnitCost:
    f: dict[str, float] = {"one": 1.0, "ptr_bits": float(clog2(depth + 1))}
    if depth == 1:
        style, n = "ff", 0
        mem = 0
    else:
        style, n = memory_map(depth - 1, width)
        mem = depth - 1
    if style == "bram":  # a BlockFIFO: DP16KD with output registers, a prefetch buffer
        f["slot_bits"] = float((FIFO_PREFETCH + 1) * width)  # its words and the output's
        return UnitCost(f"fifo_{stage.name}", None, "blockfifo", f, 0, tdp_brams(mem, width), 0)
    f["ff_width"] = float(width) if style == "ff" else 0.0
    f["ff_mem"] = float(width * mem) if style == "ff" else 0.0
    f["lutram_width"] = float(width) if style == "lutram" else 0.0
    f["lutram_mux"] = float(width * (math.ceil(mem / 16) - 1)) if style == "lutram" else 0.0
    f["bram_width"] = float(width) if style == "bram" else 0.0
    return UnitCost(
        f"fifo_{stage.name}",
        None,
        "fifo",
        f,
        0,
        n if style == "bram" else 0,
        n if style == "lutram" else 0,
    )


def _queue(stage: Stage, name: str, n_out: int, depth: int) -> UnitCost:
    """The credit queue at a credit pipeline's output (``hdl/dataflow/credit.py``): a
    ``SyncFIFOBuffered`` of ``depth`` beats of the stage's output, as a FIFO is, and the
    credit count (reserved results not yet taken, and the registered ``space``)."""
    fifo = _fifo(stage, n_out * element_bits(stage.output.qtype), depth)
    f = dict(fifo.features)
    f["credit_bits"] = float(clog2(depth + 1))
    return dataclasses.replace(
        fifo, block=f"stage_{stage.name}", unit=name, kind="queue", features=f
    )


def _dwc(stage: Stage, el: int, n_in: int, n_out: int) -> list[UnitCost]:
    out = []

    def one(a: int, b: int) -> None:
        if a == b:
            return
        if b % a == 0:  # gather
            k = b // a
            f = {"one": 1.0, "gather_bits": float(a * el * k), "k_bits": float(clog2(k))}
        elif a % b == 0:  # split
            k = a // b
            f = {
                "one": 1.0,
                "split_bits": float(a * el),
                "split_mux": float(b * el * (k - 1)),
                "k_bits": float(clog2(k)),
            }
        else:
            g = math.gcd(a, b)
            one(a, g)
            one(g, b)
            return
        out.append(UnitCost(f"dwc_{stage.name}", None, "dwc", f))

    one(n_in, n_out)
    return out


#: First-principles LUT/FF rules of units the fitted coefficients do not cover yet (no
#: synthesis sweep has measured them): a fork (two "taken" flags and its ready logic), an
#: add of two streams (one carry-chain adder bit per output bit and the ``sum`` stage's
#: register bit, and its valid), a global pool (one accumulator register per channel bit,
#: one adder bit per lane bit).
UNFITTED = {
    # a FIFO in block RAM (hdl/dataflow/stream.py BlockFIFO): per word bit of the prefetch
    # slots and the output register a flip-flop and the slots' input and output
    # multiplexers; the counters and pointers per pointer bit. Set from Yosys's counts of
    # cnv_tiny's block FIFOs (256 x 8 bits: 166 LUT, 93 FF; 169 x 64 bits: 556 LUT,
    # 373 FF), not yet refitted with the other kinds
    "blockfifo": {
        "lut": {"slot_bits": 1.43, "ptr_bits": 10.0, "one": 19.0},
        "ff": {"slot_bits": 1.0, "ptr_bits": 4.0, "one": 17.0},
    },
    "fork": {"lut": {"one": 3.0}, "ff": {"one": 2.0}},
    # a VVAU (hdl/dataflow/vvau.py; no zoo network had a depthwise convolution when the
    # sweep ran): per accumulator bit (C of them, one per channel) a flip-flop and the
    # adder bit and its load select (its lane's adder, shared over the channel groups, and
    # the output's choice among the groups); per weight ROM bit in logic a quarter LUT4
    # (16 words a LUT4 per output bit, as a ROM's leaves); the tap and group counters
    "vvau": {
        "lut": {"acc_bits": 1.0, "rom_bits": 0.25, "one": 12.0},
        "ff": {"acc_bits": 1.0, "one": 8.0},
    },
    # the head of an element-wise credit pipeline: one AND gate (valid and space), no
    # registers (Yosys: 1 LUT, 0 FF for a threshold stage of 16 channels)
    "admit": {"lut": {"one": 1.0}, "ff": {}},
    "add": {"lut": {"sum_bits": 1.0, "one": 2.0}, "ff": {"sum_bits": 1.0, "one": 1.0}},
    "gpool": {
        "lut": {"lane_bits": 1.0, "count_bits": 2.0, "one": 4.0},
        "ff": {"acc_bits": 1.0, "out_bits": 1.0, "count_bits": 1.0, "one": 1.0},
    },
}


#: LUT/FF rules of units fitted outside the sweep: the deformable gather unit, fitted to
#: Yosys's counts of DeformWindow configurations (:mod:`codesign.sim.deform.cost`).
MEASURED_APART = {"gather": GATHER_COEFFICIENTS}


def _add(stage: Stage, cfg: StageConfig, name: str) -> UnitCost:
    bits = cfg.pe * element_bits(stage.acc.qtype)
    return UnitCost(f"stage_{stage.name}", name, "add", {"one": 1.0, "sum_bits": float(bits)})


def _global_pool(stage: Stage, cfg: StageConfig, name: str) -> UnitCost:
    c, h, w = stage.input.shape
    el = element_bits(stage.input.qtype)
    acc = el if stage.main.op == "maxpool2d" else el + clog2(h * w) + 1
    f = {
        "one": 1.0,
        "acc_bits": float(c * acc),
        "lane_bits": float(cfg.pe * acc),
        "out_bits": float(cfg.pe * element_bits(stage.output.qtype)),
        "count_bits": float(clog2(h * w) + clog2(c // cfg.pe)),
    }
    return UnitCost(f"stage_{stage.name}", name, "gpool", f)


def stage_units(s: Stage, cfg: StageConfig, mode: PipelineMode) -> list[UnitCost]:
    """The units of stage ``s``'s own block (``stage_<name>``) at configuration ``cfg``
    (PE, SIMD and a concrete memory style): they depend on nothing else."""
    out: list[UnitCost] = []
    n_out = stage_io(s, cfg)[1]
    pipe = stage_pipeline(s, cfg, mode)
    act_st = pipe.activation if pipe is not None else ()
    k = 0
    if s.kind is StageKind.ADD:
        out.append(_add(s, cfg, "u0_addstreams"))
        k = 1
        if len(s.layers) > 1:
            out.append(
                _activation(s, cfg, "u1_activation", s.layers[1:], s.acc.qtype, s.channels, act_st)
            )
            k = 2
    elif s.global_pool:
        out.append(_global_pool(s, cfg, "u0_pool2d"))
    elif s.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM):
        if s.kind is StageKind.CONV:
            out.append(_swg(s, cfg, f"u{k}_slidingwindow"))
            k += 1
        elif s.kind is StageKind.DEFORM:  # the gather replaces the sliding window
            out.append(gather_unit(s, cfg, f"u{k}_deformwindow"))
            k += 1
        acts = s.layers[1:]
        has_act = any(isinstance(la, Clip | Requant | MultiThreshold) for la in acts)
        if s.depthwise:
            out.append(_vvau(s, cfg, f"u{k}_vvau"))
            if has_act:
                k += 1
                out.append(UnitCost(f"stage_{s.name}", f"u{k}_admit", "admit", {"one": 1.0}))
        else:
            out.append(_mvau(s, cfg, f"u{k}_mvau", pipe.head))
        k += 1
        if has_act:
            out.append(_activation(s, cfg, f"u{k}_activation", acts, s.acc.qtype, s.mh, act_st))
            k += 1
    elif s.kind is StageKind.POOL:
        out.append(_pool(s, cfg, "u0_pool2d"))
        k = 1
    elif s.kind is StageKind.ACT:
        out.append(UnitCost(f"stage_{s.name}", "u0_admit", "admit", {"one": 1.0}))
        out.append(
            _activation(s, cfg, "u1_activation", s.layers, s.input.qtype, s.channels, act_st)
        )
        k = 2
    else:
        raise ConfigError(f"stage {s.name!r}: the cost model has no {s.kind.value} stage")
    if pipe is not None:
        out.append(_queue(s, f"u{k}_creditqueue", n_out, pipe.queue_depth))
    return out


def input_units(s: Stage, port: int, prev_n: int, n_in: int, depth: int | None) -> list[UnitCost]:
    """The units in front of input ``port`` of stage ``s``: a width converter from
    ``prev_n`` to ``n_in`` elements per beat (none when equal) and a FIFO of ``depth``
    beats (none when ``depth`` is None). Blocks ``dwc_<fifo name>`` and ``fifo_<fifo name>``."""
    el = element_bits(s.inputs[port].qtype)
    fs = s if port == 0 else dataclasses.replace(s, name=fifo_name(s.name, port))
    out = _dwc(fs, el, prev_n, n_in) if prev_n != n_in else []
    if depth is not None:
        out.append(_fifo(fs, n_in * el, depth))
    return out


def fork_unit(src: str | None, k: int, beat_bits: int) -> UnitCost:
    """The ``k``-th two-way fork copying producer ``src``'s stream of ``beat_bits`` a beat."""
    return UnitCost(fork_name(src, k), None, "fork", {"one": 1.0, "beat_bits": float(beat_bits)})


def top_unit(last: Stage, n_out: int) -> UnitCost:
    """The top level's output beat counter (the last stage emits ``n_out`` elements a beat)."""
    beats = last.output.size // n_out
    return UnitCost("top", None, "top", {"one": 1.0, "beat_bits": float(clog2(beats + 1))})


def units(design: Design) -> list[UnitCost]:
    """Every unit of the design's pipeline, in stream order, with its features and exact
    DSP/BRAM/LUT RAM counts."""
    out: list[UnitCost] = []
    for src, rs in readers(design.stages).items():
        width = design.in_width(design.stage(rs[0][0]), rs[0][1])
        bits = width * element_bits(design.stage(rs[0][0]).inputs[rs[0][1]].qtype)
        out += [fork_unit(src, k, bits) for k in range(len(rs) - 1)]
    mode = design.config.pipeline
    for s in design.stages:
        cfg = design.config[s.name]
        for port in range(len(s.inputs)):
            depth = design.fifo_depth(s, port) if design.has_fifo(s, port) else None
            n_in = port_width(s, cfg, port)  # a gather's offsets: a pixel's a beat
            out += input_units(s, port, design.in_width(s, port), n_in, depth)
        out += stage_units(s, cfg, mode)
    last = design.stages[-1]
    out.append(top_unit(last, stage_io(last, design.config[last.name])[1]))
    return out


def block_totals(us: list[UnitCost], coef: dict) -> dict[str, dict]:
    """Units summed per block under coefficients ``coef``: block → ``lut``, ``ff`` (model
    values, rounded per block as :func:`estimate` reports them), ``dsp``, ``bram``,
    ``lutram`` and ``units`` (per unit inside a stage)."""
    blocks: dict[str, dict] = {}
    for u in us:
        lut, ff = predict(u, coef)
        b = blocks.setdefault(
            u.block, {"block": u.block, "lut": 0.0, "ff": 0.0, "dsp": 0, "bram": 0, "lutram": 0}
        )
        b["lut"] += lut
        b["ff"] += ff
        b["dsp"] += u.dsp
        b["bram"] += u.bram
        b["lutram"] += u.lutram
        if u.unit is not None:
            b.setdefault("units", {})[u.unit] = {
                "lut": round(lut),
                "ff": round(ff),
                "dsp": u.dsp,
                "bram": u.bram,
                "lutram": u.lutram,
            }
    for b in blocks.values():
        b["lut"], b["ff"] = round(b["lut"]), round(b["ff"])
    return blocks


@cache
def _coefficients(path: str) -> dict:
    return json.loads(Path(path).read_text())["coefficients"]


def coefficients(target: str = "ecp5", data: str | Path | None = None) -> dict:
    """The fitted LUT/FF coefficients of ``target`` (from ``data``, default :data:`DATA`)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    return _coefficients(str(data or DATA))[target]


def predict(u: UnitCost, coef: dict) -> tuple[float, float]:
    """LUT and FF of one unit under fitted coefficients ``coef[kind][lut|ff][feature]``."""
    c = coef.get(u.kind) or MEASURED_APART.get(u.kind) or UNFITTED[u.kind]
    lut = sum(c["lut"].get(k, 0.0) * v for k, v in u.features.items())
    ff = sum(c["ff"].get(k, 0.0) * v for k, v in u.features.items())
    return max(lut, 0.0), max(ff, 0.0)


def estimate(design: Design, target: str = "ecp5", data: str | Path | None = None) -> dict:
    """Predicted resources of ``design`` on ``target``, per block and in total.

    Returns
    -------
    dict
        ``target``, ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram`` (totals) and ``blocks``:
        rows with ``block``, ``kind`` (stage, fifo, dwc), ``stage``, the same classes and,
        for stages, ``units`` (unit name → classes). LUT and FF are rounded model values.
    """
    coef = coefficients(target, data)
    rows = []
    for b in block_totals(units(design), coef).values():
        kind, _, stage = b["block"].partition("_")
        rows.append({**b, "kind": kind, "stage": stage or None})
    total = {k: sum(r[k] for r in rows) for k in ("lut", "ff", "dsp", "bram", "lutram")}
    return {"target": target, **total, "blocks": rows}
