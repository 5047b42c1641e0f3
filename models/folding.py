"""The default folding: balance a pipeline's stages within a device's resources.

:func:`balance` repeatedly speeds up the slowest stage (growing the smaller of its SIMD and
PE to the next valid value) while the design's resources, as :func:`stage_usage` counts
them, stay within a :class:`Budget` of the device; it stops when the slowest stage cannot be
sped up. :class:`codesign.models.hwconfig.Design` calls it with :data:`DEFAULT_BUDGET` and the
hardware config's stages: every PE and SIMD the config gives stays as it is (and the
resources of its stage count as spent from the start), the others are balanced around
them, so a config that gives no PE or SIMD (only ``clock_mhz``, FIFO depths or memory
styles) gets exactly the automatic folding.

What is counted, per stage (the parts of a design that grow with PE and SIMD):

- DSP blocks: each multiplying lane whose product :func:`codesign.models.device.var_dsp` maps to
  MULT18X18D (both operands at least 2 bits; a deformable stage's lanes read the gather's
  samples, :func:`codesign.models.deform.stage.matrix_input`; an N:M sparse MVAU has
  PE·SIMD·N/M lanes, and only SIMD values that M divides), the window generators' address
  products (:func:`codesign.models.linebuffer.window_geometry`), a deformable stage's gather
  unit (:func:`codesign.models.deform.stage.gather_dsp`) and requantization multipliers;
- LUT4s: XNOR-popcount lanes and accumulators (the cost model's fitted per-lane figures,
  :data:`codesign.models.device.XNOR_POP_LANE_LUT`), the carry chains of a multiplying PE's kept
  adder tree (one LUT4 slot per sum bit: a CCU2C adds two bits in two slots), products
  too narrow for a DSP (one LUT4 per partial-product bit), weight ROMs in logic (one LUT4
  per output bit and 16 words: the PFUMX/L6MUX that join eight leaves are free) and the
  threshold comparators (one slot per bit);
- block RAMs: the weight ROMs in block RAM (:func:`codesign.models.device.rom_brams` of the whole
  word, before Yosys drops constant bit columns, so an upper bound) and a deformable stage's
  frame store (:func:`codesign.models.deform.stage.gather_brams`: it does not grow with the
  folding, but a whole frame on chip is too large to leave to the kept-back share).

A network whose weights alone already overfill a resource (cnv_w2a2's 3.09 Mbit of weights
in block RAM) still gets balanced: a step may leave a resource that is over its budget
where it is, but never grow it.

The rest of the design (line buffers, FIFOs, width converters, pool units, control,
and the routing headroom nextpnr needs) is covered by the fractions of :data:`DEFAULT_BUDGET`
that are kept back. ``tests/models/test_folding.py`` checks, with the cost model, that the
default design of every zoo network and of FINN's CNV fits the whole device.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .deform.stage import gather_brams, gather_dsp, gather_shape, matrix_input
from .device import (
    ECP5_85F,
    XNOR_ACC_BIT_LUT,
    XNOR_POP_LANE_LUT,
    Device,
    const_dsp,
    lane_shape,
    rom_brams,
    var_dsp,
)
from .hwconfig import (
    ConfigError,
    HardwareConfig,
    MemStyle,
    Stage,
    StageConfig,
    StageKind,
    plan,
    resolve_mem_style,
    stage_cycles,
)
from .ir import Network
from .layers import BinaryConv2d, BinaryDense, MultiThreshold, Requant
from .linebuffer import window_geometry

__all__ = ["DEFAULT_BUDGET", "Budget", "Usage", "balance", "stage_usage"]


@dataclass(frozen=True)
class Usage:
    """Resources of one stage (or a design) as the planner counts them."""

    dsp: int = 0
    lut: float = 0.0
    bram: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.dsp + other.dsp, self.lut + other.lut, self.bram + other.bram)


@dataclass(frozen=True)
class Budget:
    """The share of a device the folding planner may fill; the rest is kept for the parts
    of the design it does not count."""

    device: Device = ECP5_85F
    dsp: float = 1.0  #: fraction of the DSP blocks
    lut: float = 0.5  #: fraction of the LUT4s
    bram: float = 0.75  #: fraction of the block RAMs

    def __post_init__(self) -> None:
        for k in ("dsp", "lut", "bram"):
            v = getattr(self, k)
            if not (isinstance(v, int | float) and 0 <= v <= 1):
                raise ValueError(f"{k} must be a fraction in [0, 1], not {v!r}")

    def admits(self, new: Usage, old: Usage) -> bool:
        """Whether a step from ``old`` to ``new`` usage keeps every resource within the
        budget, or (one already over it, as a network whose weights alone overfill the
        block RAM) at least does not grow it."""
        d = self.device
        return all(
            n <= f * cap or n <= o
            for n, o, f, cap in (
                (new.dsp, old.dsp, self.dsp, d.dsp),
                (new.lut, old.lut, self.lut, d.lut),
                (new.bram, old.bram, self.bram, d.bram),
            )
        )


#: The default design's budget on the LFE5U-85F: every DSP block (the only other DSPs,
#: window address products and requantization multipliers, are counted), half of the
#: LUT4s (the other half for line buffers, FIFOs, width converters, pools, control, the
#: LUTs the counts above leave out and nextpnr's routing headroom) and three quarters of
#: the block RAMs (the rest for line buffers and FIFOs that map to block RAM).
DEFAULT_BUDGET = Budget()


def _tree_bits(width: int, n: int) -> int:
    """Sum bits of a balanced adder tree over ``n`` terms of ``width`` bits."""
    total = 0
    widths = [width] * n
    while len(widths) > 1:
        nxt = [max(widths[k], widths[k + 1]) + 1 for k in range(0, len(widths) - 1, 2)]
        total += sum(nxt)
        if len(widths) % 2:
            nxt.append(widths[-1])
        widths = nxt
    return total


def _matrix_usage(stage: Stage, cfg: StageConfig) -> Usage:
    la = stage.main
    xnor = isinstance(la, BinaryDense | BinaryConv2d)
    pe, simd = cfg.pe, cfg.simd
    acc_b = stage.acc.qtype.bits
    in_q = matrix_input(stage).qtype  # a deformable stage's MVAU/VVAU reads samples
    if stage.depthwise:
        lane = lane_shape(la.weight, in_q, False)
        return Usage(pe * lane.dsp, float(pe * (lane.a + lane.b + acc_b)), 0)
    lane = lane_shape(la.weight, in_q, xnor)
    depth = (stage.mw // simd) * (stage.mh // pe)
    width = pe * simd * lane.wbits
    if cfg.sparsity is not None:  # N:M: SIMD·N/M products a PE, stored with their indices
        from .compress.sparsity import index_bits, products

        simd = products(simd, cfg.sparsity)
        width = pe * simd * (lane.wbits + index_bits(cfg.sparsity[1]))
    dsp = 0
    lut = 0.0
    bram = 0
    if resolve_mem_style(cfg.mem_style, depth) is MemStyle.BLOCK:
        bram = rom_brams(max(depth, 2), width)
    else:
        lut += width * math.ceil(depth / 16) * (1 + (depth > 128))
    if xnor:
        lut += XNOR_POP_LANE_LUT * pe * max(simd - 4, 0) + XNOR_ACC_BIT_LUT * pe * acc_b
    else:
        dsp = pe * simd * lane.dsp
        prod = lane.a + lane.b
        lut += pe * (_tree_bits(prod, simd) + acc_b)
        if lane.dsp == 0:
            lut += pe * simd * lane.a * lane.b
    return Usage(dsp, lut, bram)


def _activation_usage(stage: Stage, lanes: int, in_bits: int) -> Usage:
    dsp = 0
    lut = 0.0
    for la in stage.layers:
        if isinstance(la, MultiThreshold):
            lut += lanes * np.asarray(la.thresholds).shape[1] * in_bits
        elif isinstance(la, Requant):
            mult = np.asarray(la.multiplier).reshape(-1)
            if np.all(mult == mult[0]):
                dsp += lanes * const_dsp(int(mult[0]), in_bits)
            else:
                mb = max(int(abs(m)).bit_length() for m in mult.tolist()) + 1
                dsp += lanes * var_dsp(in_bits, mb)
    return Usage(dsp, lut, 0)


def stage_usage(stage: Stage, cfg: StageConfig) -> Usage:
    """The DSP blocks, LUT4s and block RAMs of ``stage`` under ``cfg`` that grow with its
    folding, as the planner counts them (see the module's docstring)."""
    u = Usage()
    if stage.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM):
        u = _matrix_usage(stage, cfg)
        if stage.kind is StageKind.CONV:
            simd = cfg.pe if stage.depthwise else cfg.simd
            u = u + Usage(window_geometry(stage, simd, channel_major=False).dsp)
        elif stage.kind is StageKind.DEFORM:  # the gather unit in place of the window
            g = gather_shape(stage, cfg.deform_banks, cfg.deform_ports)
            style, n = gather_brams(g)
            u = u + Usage(gather_dsp(g), 0.0, n if style == "bram" else 0)
        u = u + _activation_usage(stage, cfg.pe, stage.acc.qtype.bits)
    elif stage.kind is StageKind.POOL:
        u = Usage(window_geometry(stage, cfg.pe, channel_major=True).dsp)
    elif stage.kind in (StageKind.ACT, StageKind.ADD):
        u = _activation_usage(stage, cfg.pe, stage.input.qtype.bits)
    else:
        raise ConfigError(
            f"stage {stage.name!r}: the planner cannot count a {stage.kind.value} stage"
        )
    return u


def _simd_choices(stage: Stage, cfg: StageConfig) -> list[int]:
    """The SIMD values ``stage`` may take under ``cfg``: with N:M sparsity only multiples of
    M (:func:`codesign.models.compress.sparsity.sparse_simd_choices`)."""
    if cfg.sparsity is None:
        return stage.simd_choices()
    from .compress.sparsity import sparse_simd_choices

    return sparse_simd_choices(stage, cfg.sparsity) or stage.simd_choices()


def balance(
    net: Network,
    stages: list[Stage] | None = None,
    budget: Budget = DEFAULT_BUDGET,
    given: Mapping[str, StageConfig] | None = None,
) -> HardwareConfig:
    """Balance the pipeline within ``budget``: repeatedly speed up the slowest stage (growing
    the smaller of its SIMD and PE to the next valid value, else the other) while the
    design's :func:`stage_usage` stays within the budget; stop when the slowest stage cannot
    be sped up.

    ``given`` (a config's stages) fixes what it sets: a PE or SIMD that is not None is never
    changed, and its stage's resources count as spent from the start; its weight memory
    style is the one the usage is counted with; its FIFO depths are kept. So the stages it
    leaves free are balanced around the fixed ones: sped up until the slowest stage is a
    fixed one (or the budget is full), never further. With ``given`` empty this is the
    automatic folding. Returns a config with every stage's PE and SIMD set.
    """
    stages = stages if stages is not None else plan(net)
    given = given or {}
    cfg: dict[str, StageConfig] = {}
    free: dict[str, tuple[bool, bool]] = {}  # stage: (pe may grow, simd may grow)
    for s in stages:
        g = given.get(s.name, StageConfig())
        pe_choices, simd_choices = s.pe_choices(), _simd_choices(s, g)
        free[s.name] = (
            g.pe is None and len(pe_choices) > 1,
            g.simd is None and len(simd_choices) > 1,
        )
        pe = g.pe if g.pe is not None else pe_choices[0]
        simd = g.simd if g.simd is not None else simd_choices[0]
        cfg[s.name] = dataclasses.replace(g, pe=pe, simd=simd)
    if not any(any(f) for f in free.values()):  # every folding given: nothing to balance
        return HardwareConfig(cfg)
    # a stage the config fixed completely ranks first among equally slow ones: once it is
    # (one of) the slowest, speeding up the others gains nothing
    pinned = {s.name: s.name in given and not any(free[s.name]) for s in stages}
    usage = {s.name: stage_usage(s, cfg[s.name]) for s in stages}
    total = sum(usage.values(), Usage())
    while True:
        slowest = max(stages, key=lambda s: (stage_cycles(s, cfg[s.name]), pinned[s.name]))
        cur = cfg[slowest.name]
        pe_free, simd_free = free[slowest.name]
        choices = _simd_choices(slowest, cur)
        bigger_simd = [v for v in choices if v > cur.simd] if simd_free else []
        bigger_pe = [v for v in slowest.pe_choices() if v > cur.pe] if pe_free else []
        simd_opt = pe_opt = None
        if bigger_simd:
            simd_opt = dataclasses.replace(cur, simd=bigger_simd[0])
        if bigger_pe:
            pe_opt = dataclasses.replace(cur, pe=bigger_pe[0])
        # grow the smaller of the two, so foldings stay square-ish (as FINN's are)
        preferred = (simd_opt, pe_opt) if cur.simd <= cur.pe else (pe_opt, simd_opt)
        chosen = None
        for opt in (o for o in preferred if o is not None):
            u = stage_usage(slowest, opt)
            t = total + Usage(
                u.dsp - usage[slowest.name].dsp,
                u.lut - usage[slowest.name].lut,
                u.bram - usage[slowest.name].bram,
            )
            if budget.admits(t, total):
                chosen = opt, u, t
                break
        if chosen is None:
            break
        cfg[slowest.name], usage[slowest.name], total = chosen
    return HardwareConfig(cfg)
