"""Target devices and the resource facts that both the folding planner and the cost model
need: which multiplier lanes become DSP blocks, what block RAM a memory takes, and how many
LUTs a lane that is not a DSP takes.

The DSP and block RAM rules are exact counts of what Yosys's ECP5 flow does (derived from
its ``mul2dsp``/``memory_bram`` mapping and checked against synthesis in
``tests/sim/test_cost.py``); :mod:`codesign.sim.cost_rules` re-exports them for the cost model, and
:mod:`codesign.models.folding` reads them to keep a default design inside the device. The per-lane
LUT figures are taken from the cost model's fitted coefficients (``sim/cost_data.json``),
where each is stated; ``tests/sim/test_cost.py`` checks they still agree with the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .qtype import Kind, QType

__all__ = [
    "BRAM_SHAPES",
    "DEVICES",
    "ECP5_85F",
    "TDP_SHAPES",
    "XNOR_ACC_BIT_LUT",
    "XNOR_POP_LANE_LUT",
    "Device",
    "LaneShape",
    "bram_tiling",
    "const_dsp",
    "fits_mult18",
    "lane_shape",
    "memory_map",
    "range_width",
    "registered_dsp",
    "rom_brams",
    "tdp_brams",
    "var_dsp",
]


@dataclass(frozen=True)
class Device:
    """A part's resources: LUT4 slots, multiplier blocks and block RAMs."""

    name: str
    lut: int  #: LUT4s (on ECP5 a carry cell CCU2C takes two, a LUT RAM DPR16X4 two)
    dsp: int  #: 18x18 multipliers
    bram: int  #: 18-kbit block RAMs

    def __post_init__(self) -> None:
        for k in ("lut", "dsp", "bram"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{k} must be a non-negative int, not {v!r}")


#: Lattice ECP5 LFE5U-85F (the largest ECP5, ``codesign synth --target ecp5``'s part):
#: 83,640 LUT4s, 156 18x18 multipliers (MULT18X18D) and 208 DP16KD 18-kbit sysMEM block
#: RAMs (3,744 kbit), from the ECP5 and ECP5-5G family data sheet (Lattice FPGA-DS-02012,
#: table 1.1); nextpnr-ecp5 ``--85k`` reports the same capacities.
ECP5_85F = Device("LFE5U-85F", lut=83640, dsp=156, bram=208)

#: ECP5 parts a design-space constraint can name (``device: LFE5U-45F``): LUT4s (two per
#: TRELLIS_SLICE: 12,144 / 21,924 / 41,820 slices as nextpnr-ecp5 ``--25k/--45k/--85k``
#: reports them), 18x18 multipliers and DP16KD block RAMs (ECP5 and ECP5-5G family data
#: sheet, Lattice FPGA-DS-02012, table 1.1: 28 / 72 / 156 and 56 / 108 / 208).
DEVICES = {
    d.name: d
    for d in (
        Device("LFE5U-25F", lut=24288, dsp=28, bram=56),
        Device("LFE5U-45F", lut=43848, dsp=72, bram=108),
        ECP5_85F,
    )
}

#: Block RAM shapes (depth, width) of DP16KD/PDPW16KD.
BRAM_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

#: LUTs of each XNOR-popcount lane beyond the fourth of a PE: at least the ``pop_lanes`` plus
#: ``xnor_lanes`` coefficients of the ``mvau_xnor`` LUT model in ``sim/cost_data.json``
#: (ecp5). It was the combinational popcount's 5.744, rounded up; the pipelined popcount
#: (``pipeline: auto``) fits 1.082 + 1.042 = 2.12 at the refit of 2026-12-06, and the
#: figure is kept so that the default foldings stay as they are. The first four lanes of a
#: PE fold into the LUTs in front of its accumulator's carry chain.
XNOR_POP_LANE_LUT = 6.0
#: LUTs per accumulator bit of an XNOR PE: ``acc_bits`` of the same model (1.490 at the refit
#: of 2026-12-06), rounded up to a quarter.
XNOR_ACC_BIT_LUT = 1.5


def range_width(lo: int, hi: int) -> int:
    """Bits of amaranth ``Shape.cast(range(lo, hi + 1))``."""
    if lo >= 0:
        return max(hi.bit_length(), 0)
    return max(hi.bit_length(), (-lo - 1).bit_length()) + 1


def const_dsp(c: int, other_bits: int) -> int:
    """MULT18X18D of a product of a ``other_bits``-bit signal by the constant ``c``."""
    if c == 0 or (c > 0 and c & (c - 1) == 0) or other_bits < 2:
        return 0
    cb = abs(c).bit_length() + (1 if c < 0 else 0)
    if cb < 2:
        return 0
    return math.ceil(other_bits / 18) * math.ceil(cb / 18)


def var_dsp(a: int, b: int) -> int:
    """MULT18X18D of a product of an ``a``-bit by a ``b``-bit signal: Yosys's ``mul2dsp``
    with ``DSP_A_MINWIDTH = DSP_B_MINWIDTH = 2`` leaves narrower products in LUTs."""
    if a < 2 or b < 2:
        return 0
    return math.ceil(a / 18) * math.ceil(b / 18)


def fits_mult18(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool) -> bool:
    """Whether a product of an ``a_bits`` by a ``b_bits`` operand fits one MULT18X18D with
    both operands as 18-bit two's complement (an unsigned operand gains a sign bit)."""
    return a_bits + (not a_signed) <= 18 and b_bits + (not b_signed) <= 18


def registered_dsp(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool) -> int:
    """MULT18X18D of a registered product on ECP5 (``hdl/dataflow/dsp.py``
    ``RegisteredProduct``): one instance, whatever the widths, when both operands fit
    (:func:`fits_mult18`); otherwise registers in fabric around a ``*`` that Yosys maps as
    :func:`var_dsp` of the operands widened to a common signedness."""
    if fits_mult18(a_bits, a_signed, b_bits, b_signed):
        return 1
    a = a_bits + (1 if b_signed and not a_signed else 0)
    b = b_bits + (1 if a_signed and not b_signed else 0)
    return var_dsp(a, b)


#: Block RAM shapes of a DP16KD with a write port and a read port of their own (each port
#: 18 bits at most: the 36-bit mode takes both ports for one).
TDP_SHAPES = BRAM_SHAPES[:-1]


def bram_tiling(
    depth: int, width: int, shapes: tuple[tuple[int, int], ...] = BRAM_SHAPES
) -> tuple[int, int]:
    """The DP16KD shape ``(depth, width)`` of ``shapes`` that holds a ``depth`` ×
    ``width`` memory in the fewest blocks (of equal counts, the deepest shape: fewer banks
    to select between at the output); the memory takes ``ceil(depth / d)`` banks of
    ``ceil(width / w)`` blocks."""
    if depth < 1 or width < 1:
        raise ValueError(f"a memory needs depth and width >= 1, not {depth} x {width}")
    return min(
        shapes,
        key=lambda s: (math.ceil(depth / s[0]) * math.ceil(width / s[1]), math.ceil(depth / s[0])),
    )


def tdp_brams(depth: int, width: int) -> int:
    """Block RAMs of a ``depth`` × ``width`` memory with a write port and a registered read
    port of its own built from DP16KD (``hdl/dataflow/bram.py`` ``RegisteredRam``)."""
    d, w = bram_tiling(depth, width, TDP_SHAPES)
    return math.ceil(depth / d) * math.ceil(width / w)


def rom_brams(depth: int, width: int) -> int:
    """Block RAMs of a ``depth`` × ``width`` memory (the best DP16KD/PDPW16KD shape)."""
    d, w = bram_tiling(depth, width)
    return math.ceil(depth / d) * math.ceil(width / w)


def memory_map(depth: int, width: int) -> tuple[str, int]:
    """How Yosys maps a one-write, one-synchronous-read memory on ECP5: ``("ff", 0)``,
    ``("lutram", n)`` (TRELLIS_DPR16X4) or ``("bram", n)`` (DP16KD/PDPW16KD)."""
    if depth <= 1:
        return "ff", 0
    banks = math.ceil(depth / 16)
    lutram = banks * math.ceil(width / 4)
    bram = rom_brams(depth, width)
    # LUT RAM deeper than 16 words also needs a read multiplexer over its banks
    if 4 * lutram + 0.5 * width * (banks - 1) <= 128 * bram:
        return "lutram", lutram
    return "bram", bram


@dataclass(frozen=True)
class LaneShape:
    """The operands of one MVAU lane (one weight times one input element) as the RTL
    builds it."""

    xnor: bool  #: an XNOR of two bits (binary layers)
    wbits: int  #: bits of a weight in the weight memory
    a: int  #: bits of the input operand of the product (0 for XNOR)
    b: int  #: bits of the weight operand of the product (0 for XNOR)

    @property
    def dsp(self) -> int:
        """MULT18X18D of the lane's product (0 for XNOR and for products under 2 bits)."""
        return 0 if self.xnor else var_dsp(self.a, self.b)


def lane_shape(weights: np.ndarray, in_type: QType, xnor: bool) -> LaneShape:
    """The operand widths of a lane of an MVAU over integer ``weights`` (any shape) on
    inputs of ``in_type``: the weight's two's-complement width, each operand widened by a
    sign bit when the other is signed (a bipolar input is a 2-bit signed value)."""
    if xnor:
        return LaneShape(True, 1, 0, 0)
    w = np.asarray(weights)
    t = QType.covering(int(w.min()), int(w.max()))
    in_b = 1 if in_type.kind is Kind.BIPOLAR else in_type.bits
    in_signed = in_type.signed and in_type.kind is not Kind.BIPOLAR
    a = in_b + (1 if t.signed and not in_signed else 0)
    if in_type.kind is Kind.BIPOLAR:
        a = 2
    b = t.bits + (1 if in_signed and not t.signed else 0)
    return LaneShape(False, t.bits, a, b)
