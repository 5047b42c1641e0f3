"""Hardware facts of a deformable stage (:data:`~codesign.models.plan.StageKind.DEFORM`) that
the cost, energy and folding models share, and the one rule for what a matrix unit reads.

A deformable stage is a CONV stage whose sliding-window generator is replaced by the gather
unit (``hdl/deform/window.py``'s ``DeformWindow``): its MVAU (full form, SIMD = C) or VVAU
(depthwise, PE = C) reads the gather's *samples*, not the image, so every model that sizes a
matrix unit from its input must read :func:`matrix_input` rather than ``stage.input``.
:func:`gather_shape` gives the gather's own facts: its frame store (``banks`` memories of
``⌈H/banks⌉·W`` words of C elements, ``ports`` read ports each) and its bilinear products.

This module imports only ``models`` and numpy.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..device import const_dsp, memory_map, var_dsp
from ..plan import Stage, StageKind
from ..qtype import Kind, QType
from .engine import sample_bits
from .fixed import OffsetShape, offset_channels

__all__ = [
    "GatherShape",
    "MatrixInput",
    "gather_brams",
    "gather_dsp",
    "gather_read_ports",
    "gather_shape",
    "matrix_input",
]


class MatrixInput(NamedTuple):
    """The elements a stage's matrix unit (MVAU or VVAU) multiplies by its weights."""

    qtype: QType  #: their type (the width of the unit's input operand)
    lo: int  #: least value one may take
    hi: int  #: greatest value one may take


def matrix_input(stage: Stage) -> MatrixInput:
    """The type and range of the elements the matrix unit of ``stage`` reads.

    - a deformable stage: the gather's samples, ``engine.sample_bits(input bits, signed,
      F)`` bits of the input's signedness (``F`` the offsets' fraction bits: a rounded
      variant's sample is shifted into the same units), over
      ``[min(lo, 0)·2**S, max(hi, 0)·2**S]`` with ``S = layer.sample_frac(offsets)`` (0 is a
      sample outside the image);
    - a convolution that pads: the input's type over its range widened to hold 0 (a padding
      element);
    - any other matrix stage: the input's type and range.

    Raises
    ------
    ValueError
        For a stage without a matrix unit.
    """
    if stage.kind not in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM):
        raise ValueError(f"stage {stage.name!r}: a {stage.kind.value} stage has no matrix unit")
    x = stage.input
    if stage.kind is StageKind.DEFORM:
        g = gather_shape(stage)
        s = stage.main.sample_frac(stage.inputs[1])
        q = QType.int(g.sample_bits, signed=g.signed)
        return MatrixInput(q, min(x.lo, 0) << s, max(x.hi, 0) << s)
    if stage.kind is StageKind.CONV and any(getattr(stage.main, "padding", (0, 0))):
        return MatrixInput(x.qtype, min(x.lo, 0), max(x.hi, 0))
    return MatrixInput(x.qtype, x.lo, x.hi)


class GatherShape(NamedTuple):
    """What a deformable stage's gather unit is built of (``DeformWindow``'s parameters)."""

    channels: int  #: C: elements of a frame-store word and of an output beat
    height: int
    width: int
    element_bits: int  #: bits of one input element
    signed: bool  #: the elements' (and the samples') signedness
    kernel: tuple[int, int]
    out_size: tuple[int, int]  #: (Ho, Wo)
    frac: int  #: fraction bits of the positions after the variant (0 when rounded)
    #: fraction bits F of the offsets as they arrive: a sample is in units of ``2**-2F`` for
    #: every variant (a rounded variant's whole-pixel sample is shifted by ``2F``)
    offset_frac: int
    offset_bits: int  #: bits of one offset value as it arrives
    offset_values: int  #: offset values per output pixel (one offs beat)
    square: bool  #: a square variant (one offset a pixel, expanded by constant products)
    banks: int  #: frame-store memories
    ports: int  #: read ports per memory

    @property
    def sample_bits(self) -> int:
        """Bits of one sample (the gather's output element)."""
        return sample_bits(self.element_bits, self.signed, self.offset_frac)

    @property
    def bank_depth(self) -> int:
        """Words of each frame-store memory: ``⌈H / banks⌉·W``."""
        return math.ceil(self.height / self.banks) * self.width

    @property
    def word_bits(self) -> int:
        """Bits of one frame-store word: a pixel's C elements."""
        return self.channels * self.element_bits

    @property
    def weight_bits(self) -> int:
        """Bits of a corner weight, ``range(2**(2F') + 1)``: ``2F' + 1`` (1 when rounded)."""
        return 2 * self.frac + 1

    @property
    def products(self) -> int:
        """Bilinear products: four corners times C channels."""
        return 4 * self.channels

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]


def gather_shape(stage: Stage, banks: int = 1, ports: int = 1) -> GatherShape:
    """The gather unit of deformable stage ``stage`` with ``banks`` memories of ``ports`` read
    ports (``cfg.deform_banks``, ``cfg.deform_ports``).

    Raises
    ------
    ValueError
        For a stage that is not deformable.
    """
    if stage.kind is not StageKind.DEFORM:
        raise ValueError(f"stage {stage.name!r}: a {stage.kind.value} stage has no gather unit")
    la = stage.main
    x, off = stage.inputs[0], stage.inputs[1]
    c, h, w = (int(v) for v in x.shape)
    q = x.qtype
    el = 1 if q.kind is Kind.BIPOLAR else q.bits
    return GatherShape(
        channels=c,
        height=h,
        width=w,
        element_bits=el,
        signed=bool(q.signed),
        kernel=la.kernel,
        out_size=(int(stage.output.shape[1]), int(stage.output.shape[2])),
        frac=0 if la.variant.rounded else la.offset_frac(off),
        offset_frac=la.offset_frac(off),
        offset_bits=int(off.qtype.bits),
        offset_values=offset_channels(la.variant, 1, la.kernel),
        square=la.variant.shape is OffsetShape.SQUARE,
        banks=int(banks),
        ports=int(ports),
    )


def gather_dsp(g: GatherShape) -> int:
    """MULT18X18D blocks of the gather unit as Yosys maps its products (ECP5, ``mul2dsp``
    with ``DSP_A/B_MINWIDTH = 2``: :func:`~codesign.models.device.var_dsp` of the operands'
    widths, :func:`~codesign.models.device.const_dsp` of a product by a constant):

    - the 4·C bilinear products ``weight × element``: the corner weight is unsigned,
      ``2F' + 1`` bits (a signed element widens it by a sign bit); none when rounded
      (``F' = 0``: a 1-bit weight is an AND gate);
    - (the four corner weights ``wy·wx`` are shift-adds of registered one-dimensional
      weights: no block);
    - a row's first word ``(y div banks)·W`` of the top and of the bottom corners: two
      products by the constant W, none when W is a power of two;
    - a square variant's expansion ``d·s_y``, ``d·s_x`` (``s`` a tap's constant from a table
      of ``signed(8)``): two products of the offset by an 8-bit operand.
    """
    wb = g.weight_bits + (1 if g.signed else 0)
    dsp = g.products * var_dsp(wb, g.element_bits)
    dsp += 2 * const_dsp(g.width, max(g.height.bit_length(), 2))
    if g.square:
        dsp += 2 * var_dsp(g.offset_bits, 8)
    return dsp


def gather_read_ports(g: GatherShape) -> int:
    """Read ports of each frame-store memory that the unit ever uses: ``ports``, but no more
    than the corners a tap can need from one memory (4 in one bank, 2, a row's, when the
    rows are in different banks, 1 when rounded); Yosys removes a port whose address is
    constant and whose data is unread."""
    corners = 1 if g.frac == 0 else (4 if g.banks == 1 else 2)
    return min(g.ports, corners)


def gather_brams(g: GatherShape) -> tuple[str, int]:
    """Where the frame store goes and how many of the target's memories it takes:
    ``(style, n)`` as :func:`~codesign.models.device.memory_map` maps one memory of
    :attr:`GatherShape.bank_depth` words of :attr:`GatherShape.word_bits`, times ``banks``
    memories, times :func:`gather_read_ports` (Yosys builds a memory with two read ports and
    one write port as two copies of one write and one read port)."""
    style, n = memory_map(g.bank_depth, g.word_bits)
    return style, n * g.banks * gather_read_ports(g)
