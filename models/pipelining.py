"""Register boundaries of the dataflow datapaths: the pipeline depth of every stage, a fact
that the RTL generator builds and both simulators read.

A stage that computes (matrix unit, add, activation) is a *credit pipeline*: a head unit
decides when a step issues (the MVAU's fetch, an add taking a beat from both inputs, an
activation stage taking its input beat), the datapath behind it never stalls, and its
results land in a small queue at the stage's output. The head issues a step that completes
an output only while the queue has a free slot counting every result still in flight
(a credit), so the datapath needs no clock enable and no ``ready`` travels through it: the
only back-pressure is the head's own registered credit count.

Cycle accounting (exact; :mod:`codesign.sim.dataflow` and :mod:`codesign.hdl.dataflow` both
read it): a step issued in cycle ``t`` writes its result into the queue in cycle
``t + latency``; the queue is a ``SyncFIFOBuffered`` (a beat written in cycle ``w`` is valid at
its output in ``w + 2``); the head may issue the step that completes output ``j`` in cycle
``t`` only if output ``j - queue_depth`` left the queue in a cycle before ``t``. The queue
depth is the least that keeps the head from ever waiting for credit while the stage's
reader takes every beat at once: ``queue_depth * gap >= latency + 3``, ``gap`` the fewest
cycles between two outputs (the MVAU's SF, 1 for element-wise stages, a window's taps for a
pool).

A windowed pool is one too: its head is the sliding-window generator's reader, which reads
the tap that completes a window (the last of its ``kh * kw`` consecutive taps) only with a
credit; the line buffer's read stages and the reducer behind it never stall
(:func:`pool_stages`). A global pool (one accumulator per channel, no line buffer) is not.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .layers import Clip, MultiThreshold, Requant
from .linebuffer import READ_LATENCY

if TYPE_CHECKING:
    from .hwconfig import StageConfig
    from .plan import Stage

__all__ = [
    "FIFO_PREFETCH",
    "PRODUCT_STAGES",
    "TREE_LEVELS",
    "PipelineMode",
    "StagePipeline",
    "activation_stages",
    "credit_depth",
    "matrix_stages",
    "pool_stages",
    "stage_pipeline",
    "tree_groups",
]


class PipelineMode(enum.Enum):
    """How deeply the datapaths are pipelined (``pipeline`` in a hardware config).

    ``auto``: registers at the multipliers' inputs and outputs, every :data:`TREE_LEVELS`
    adder levels, at the accumulator and between the activation's clip, product (or
    comparisons) and rounding, so no path crosses more than a few LUT levels or one carry
    chain (the default; aims at 150 MHz and more on ECP5).
    ``off``: one register after the accumulator and one per activation: the fewest
    cycles of latency, a long combinational path (about 40-70 MHz on ECP5).
    """

    AUTO = "auto"
    OFF = "off"


#: Register stages of a product in ``auto`` mode: the multiplier's input registers, its
#: output register (both inside a DSP block where the target has one), and a landing
#: register in fabric beside the logic that reads it (a DSP column may be far away).
PRODUCT_STAGES = ("multiply", "product", "land")

#: Word registers of a block-RAM FIFO's prefetch buffer (``hdl/dataflow/stream.py``
#: ``BlockFIFO``): a word read from the block RAM reaches the buffer three cycles after its
#: read, and the slots cover the four words the output register takes meanwhile, so the
#: FIFO behaves cycle for cycle as ``SyncFIFOBuffered`` (with three, it does not).
FIFO_PREFETCH = 4

#: Adder-tree levels between two registers in ``auto`` mode (each level one carry chain;
#: two in series with their routing limited jet_tagger to 127 MHz at speed 6).
TREE_LEVELS = 1


#: The widest piece a threshold comparator compares with one carry chain (three CCU2C);
#: a wider compare is cut into pieces whose ``gt``/``eq`` bits (and the lowest piece's
#: ``ge``) are registered and merged in the count stage (hdl/dataflow/compare.py,
#: ``split_at_least``). resnet_tiny's stem compared 17-bit sums in two pieces of 8 and 9
#: bits, whose 5-cell chains nextpnr split twice into feed-out cells (7.1 ns at speed 6).
COMPARE_PIECE = 6


def compare_bits(width: int) -> int:
    """Register bits of one comparator of two ``width``-bit variables: one up to 8 bits,
    else two per piece of at most :data:`COMPARE_PIECE` bits but the lowest's one."""
    return 1 if width <= 8 else 2 * -(-width // COMPARE_PIECE) - 1


def tree_groups(terms: int, mode: PipelineMode) -> tuple[int, ...]:
    """Adder levels of a balanced tree over ``terms`` inputs, grouped by register: one
    entry per registered group (its level count); empty for a single term or in ``off``
    mode (the tree is then combinational)."""
    levels = max(0, math.ceil(math.log2(terms))) if terms > 1 else 0
    if mode is PipelineMode.OFF or levels == 0:
        return ()
    full, rest = divmod(levels, TREE_LEVELS)
    return (TREE_LEVELS,) * full + ((rest,) if rest else ())


def activation_stages(layers: Sequence, mode: PipelineMode) -> tuple[str, ...]:
    """Register stages of the activation unit that applies ``layers`` (any of clip,
    requant, multithreshold), in order; empty when there is no activation.

    ``auto``: ``clip`` (when there is one), then for a requantization the
    :data:`PRODUCT_STAGES`, ``round`` (floor and rounding bit) and ``saturate``, for
    thresholds ``compare`` and then ``count`` groups (one per :func:`tree_groups` group of
    the threshold count, at least one). (A landing register in front of the comparators
    was tried and measured: tfc_w2a2 124.8 → 124.3 MHz at speed 6, the critical path the
    same comparator's carry chain, split by nextpnr, from the new register; it is not
    kept.)
    ``off``: a single ``all`` stage.
    """
    clip = any(isinstance(la, Clip) for la in layers)
    rq = next((la for la in layers if isinstance(la, Requant)), None)
    th = next((la for la in layers if isinstance(la, MultiThreshold)), None)
    if not (clip or rq or th):
        return ()
    if mode is PipelineMode.OFF:
        return ("all",)
    stages: list[str] = ["clip"] if clip else []
    if rq is not None:
        stages += [*PRODUCT_STAGES, "round", "saturate"]
    elif th is not None:
        groups = (
            tree_groups(int(th.thresholds.shape[1]), mode) if th.thresholds.shape[1] > 8 else ()
        )
        stages += ["compare"] + ["count"] * max(1, len(groups))
    return tuple(stages)


def matrix_stages(
    terms: int, xnor: bool, mode: PipelineMode, *, block: bool = False, select: bool = False
) -> tuple[str, ...]:
    """Register stages of a matrix unit's datapath after its issue cycle, in order, for
    dot products of ``terms`` products per output lane (SIMD; SIMD·N/M for an N:M sparse
    MVAU, :func:`codesign.models.compress.sparsity.products`).

    Always ``fetch`` (weight and vector memories' read registers, the input register) and
    ``result`` (accumulator and result register). ``auto`` adds ``operand`` (the selected
    input vector, with the weight read one cycle later to meet it), ``memory`` and
    ``weight`` for weights in block RAM (its output register, then the word in fabric
    registers: a block RAM's output to a DSP block's input registers was a 5.7 ns route,
    tfc_w2a2 fc0 at 148 MHz at speed 6), ``select`` for a sparse MVAU (``select``: each kept
    weight's input element chosen from its M-group by an M:1 multiplexer on the weight's
    stored index, registered in fabric with the weight before the multiplier's input
    registers, which may be a DSP block's), the :data:`PRODUCT_STAGES` (not for XNOR, whose
    products are single gates) and one ``tree`` per :func:`tree_groups` group. In ``off``
    mode a sparse MVAU's multiplexers are combinational, in the one stage.
    """
    if mode is PipelineMode.OFF:
        return ("fetch", "result")
    middle = ["operand"] + (["memory", "weight"] if block else [])
    middle += ["select"] if select else []
    middle += [] if xnor else list(PRODUCT_STAGES)
    middle += ["tree"] * len(tree_groups(terms, mode))
    return ("fetch", *middle, "result")


def pool_stages(average: bool) -> tuple[str, ...]:
    """Register stages of a windowed pool after the read of a window's last tap, in order:
    the line buffer's :data:`~codesign.models.linebuffer.READ_LATENCY` read stages
    (``read``, then ``output``), after which the reducer folds the tap into the window and,
    for a maximum or a sum, writes the result into the queue in the same cycle; an average
    registers the window's sum (``sum``) and writes its rounded quotient a cycle later."""
    return ("read",) + ("output",) * (READ_LATENCY - 1) + (("sum",) if average else ())


def credit_depth(latency: int, gap: int) -> int:
    """Queue depth (and credits) of a credit pipeline of ``latency`` cycles whose outputs
    are at least ``gap`` cycles apart: the least depth at which the head never waits for
    credit when the reader takes each beat as soon as it is valid (at least 2)."""
    if latency < 1 or gap < 1:
        raise ValueError(f"latency and gap must be positive, not {latency!r}, {gap!r}")
    return max(2, -(-(latency + 3) // gap))


@dataclass(frozen=True)
class StagePipeline:
    """The pipeline of one stage: register stages of its head's datapath and of its
    activation, the resulting latency (issue to queue write) and the queue depth."""

    head: tuple[str, ...]  #: register stages after the issue cycle, up to the result
    activation: tuple[str, ...]  #: the activation's register stages (after ``head``)
    gap: int  #: fewest cycles between two outputs of the head

    @property
    def latency(self) -> int:
        """Cycles from a step's issue to its result's write into the queue."""
        return len(self.head) + len(self.activation)

    @property
    def queue_depth(self) -> int:
        return credit_depth(self.latency, self.gap)


def stage_pipeline(stage: Stage, cfg: StageConfig, mode: PipelineMode) -> StagePipeline | None:
    """The credit pipeline of ``stage`` folded by ``cfg``, or None for a stage that is not
    one (global pooling, and a depthwise convolution without activation, whose units drive
    the stage output themselves).

    - matrix unit (dense, convolution): head :func:`matrix_stages` over SIMD products
      (SIMD·N/M and a ``select`` stage when ``cfg.sparsity`` is N:M), outputs at least SF
      cycles apart;
    - depthwise convolution with an activation, activation stage: the head admits one beat
      per cycle straight into the activation (no registers of its own);
    - add: the head takes a beat from both inputs and registers their sum (``sum``);
    - windowed pool: head :func:`pool_stages`, outputs at least ``kh * kw`` cycles apart
      (the window's taps; the same in ``off`` mode: the window's read stages are fixed).
    """
    from .layers import BinaryConv2d, BinaryDense
    from .plan import StageKind

    act = activation_stages(stage.layers, mode)
    if stage.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM) and not stage.depthwise:
        from .compress.sparsity import products

        xnor = isinstance(stage.main, BinaryDense | BinaryConv2d)
        head = matrix_stages(
            products(cfg.simd, cfg.sparsity),
            xnor,
            mode,
            block=cfg.mem_style.value == "block",
            select=cfg.sparsity is not None,
        )
        return StagePipeline(head, act, stage.mw // cfg.simd)
    if stage.kind is StageKind.ADD:
        return StagePipeline(("sum",), act, 1)
    if stage.kind in (StageKind.ACT, StageKind.CONV, StageKind.DEFORM) and act:
        return StagePipeline((), act, 1)
    if stage.kind is StageKind.POOL and not stage.global_pool:
        kh, kw = stage.main.kernel
        return StagePipeline(pool_stages(stage.main.op == "avgpool2d"), (), kh * kw)
    return None
