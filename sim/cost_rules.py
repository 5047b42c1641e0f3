"""Exact mapping rules and table structure for :mod:`codesign.sim.cost`: which products become
ECP5 DSPs, where a memory goes (registers, LUT RAM or block RAM), how many block RAMs it
takes, and the structure of a constant table in logic (its LUT4 leaves and multiplexers).
These are counts derived from Yosys's ECP5 flow, not fitted (the DSP rule and the block RAM
shapes, which the folding planner needs too, live in :mod:`codesign.models.device`);
:mod:`codesign.sim.cost`
uses them for its exact DSP/BRAM/LUT RAM counts and as features of its fitted LUT and FF
models.

This module imports only ``models``, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
from codesign.models.deform.stage import matrix_input
from codesign.models.device import (
    BRAM_SHAPES,
    const_dsp,
    memory_map,
    range_width,
    rom_brams,
    var_dsp,
)
from codesign.models.hwconfig import accumulator_range
from codesign.models.qtype import Kind, QType

__all__ = [
    "BRAM_SHAPES",
    "const_dsp",
    "element_bits",
    "live_bits",
    "matrix_accumulator",
    "memory_map",
    "range_width",
    "rom_brams",
    "rom_tree",
    "table_logic",
    "var_dsp",
    "window_lead_bits",
]


def matrix_accumulator(stage, w: np.ndarray, xnor: bool, simd: int) -> tuple:
    """``(bias, bits)`` of a matrix unit's accumulator: the stage's bias (an int64 array, or
    None) and the exact accumulator width over its input range
    (:func:`~codesign.models.deform.stage.matrix_input`: 0 included when a convolution
    pads, a deformable stage's samples), as the RTL sizes it
    (:func:`~codesign.models.hwconfig.accumulator_range`)."""
    _, lo, hi = matrix_input(stage)
    bias = getattr(stage.main, "bias", None)
    bias = None if bias is None else np.asarray(bias, dtype=np.int64)
    alo, ahi = accumulator_range(w, bias, lo, hi, simd, xnor)
    return bias, QType.covering(alo, ahi).bits


def element_bits(q: QType) -> int:
    return 1 if q.kind is Kind.BIPOLAR else q.bits


def rom_tree(words: np.ndarray) -> dict[str, int]:
    """Structure of a ROM in logic from its bit matrix ``words`` (depth × width of 0/1), as
    a Shannon tree over the address bits per output column, LUT4 leaves over the low four:

    - ``cols``: distinct non-constant columns (the data register; constant columns are free),
    - ``leaf``: distinct non-constant 16-entry leaf functions over all columns (Yosys/ABC
      share identical logic), not counting single address literals (wires),
    - ``mux567``: distinct 2:1 mux nodes at address levels 5–7 (ECP5's PFUMX/L6MUX, the
      LUT5–LUT7 that ``abc -lut 4:7`` maps), ``mux8``: those above (built in LUTs),
    - ``abits``: address bits.

    Words past the depth (the address never reaches them) repeat the lower half, so they
    add no muxes. ABC's mapping of the same truth tables varies with their order: permuting
    the columns of tfc_w2a2 fc1's ROM alone moves its Yosys count from 1191 to 942 LUTs,
    so these are features of the expected count, fitted, not an exact count."""
    depth = words.shape[0]
    abits = max((depth - 1).bit_length(), 1)
    full = 1 << abits
    cols = words.T.astype(np.uint8)
    cols = cols[cols.min(axis=1) != cols.max(axis=1)]
    out = {"cols": 0, "leaf": 0, "mux567": 0, "mux8": 0, "abits": abits}
    if cols.size == 0:
        return out
    cols = np.unique(cols, axis=0)
    out["cols"] = cols.shape[0]
    pad = np.zeros((cols.shape[0], full), dtype=np.uint8)
    pad[:, :depth] = cols
    if full > depth:
        idx = np.arange(depth, full)
        pad[:, depth:] = pad[:, idx - (1 << (abits - 1))]
    lb = min(4, abits)
    leaves = pad.reshape(-1, 1 << lb)
    distinct = np.unique(leaves, axis=0)
    distinct = distinct[distinct.min(axis=1) != distinct.max(axis=1)]
    i = np.arange(1 << lb)
    literal = np.zeros(distinct.shape[0], dtype=bool)
    for b in range(lb):
        x = ((i >> b) & 1).astype(np.uint8)
        literal |= (distinct == x).all(axis=1) | (distinct == 1 - x).all(axis=1)
    out["leaf"] = int((~literal).sum())
    # mux levels: node ids, a node whose two children are equal is its child
    _, ids = np.unique(leaves, axis=0, return_inverse=True)
    ids = ids.reshape(cols.shape[0], -1)
    level = lb
    while ids.shape[1] > 1:
        level += 1
        pairs = ids.reshape(ids.shape[0], -1, 2)
        flat = pairs.reshape(-1, 2)
        is_mux = flat[:, 0] != flat[:, 1]
        upairs, inv = np.unique(flat, axis=0, return_inverse=True)
        n = int((upairs[:, 0] != upairs[:, 1]).sum())
        out["mux567" if level <= 7 else "mux8"] += n
        node = np.where(is_mux, inv.reshape(-1) + flat.max() + 1, flat[:, 0])
        _, ids = np.unique(node, return_inverse=True)
        ids = ids.reshape(pairs.shape[0], pairs.shape[1])
    return out


def live_bits(values: np.ndarray) -> int:
    """Bits of a register holding one of ``values`` (two's complement, at the values' width)
    that are not the same for all of them: Yosys removes the constant ones."""
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    nb = range_width(min(int(v.min()), 0), max(int(v.max()), 0))
    bits = (v[:, None] >> np.arange(nb)) & 1
    return int((bits.min(axis=0) != bits.max(axis=0)).sum())


def table_logic(table: np.ndarray) -> float:
    """LUT estimate of a constant table indexed by a counter (``Array(Const...)[i]``, or a
    logic ROM): :func:`rom_tree`'s non-trivial LUT4 leaves plus its mux nodes above the
    LUT7 level, over the two's-complement bits of the ``len(table)`` × k integer table."""
    t = np.asarray(table, dtype=np.int64).reshape(len(table), -1)
    if len(t) < 2:
        return 0.0
    lo, hi = int(t.min()), int(t.max())
    nb = max(range_width(min(lo, 0), max(hi, 0)), 1)
    bits = ((t[:, :, None] >> np.arange(nb)) & 1).reshape(len(t), -1)
    r = rom_tree(bits)
    return float(r["leaf"] + r["mux8"])


def window_lead_bits(rows: int, height: int, width: int, groups: int) -> int:
    """Bits of a sliding-window generator's lead (the writer's lead on the tap, in beats:
    a few frames of input beats, hdl/dataflow/swg.py's ``span``), for a line buffer of
    ``rows`` rows over a ``height`` x ``width`` image of ``groups`` beats per pixel: the
    width of its carry chains, which the cost and Fmax models both read."""
    frame = height * width * groups
    return (((rows // height + 8) * frame) - 1).bit_length() + 2


def tree_adders(widths: list[int]) -> list[int]:
    """The adders of the RTL's balanced adder tree over terms of ``widths``, level by level:
    each one bit wider than its wider operand (an odd term passes to the next level)."""
    adders: list[int] = []
    while len(widths) > 1:
        nxt = []
        for k in range(0, len(widths), 2):
            if k + 1 < len(widths):
                w = max(widths[k], widths[k + 1]) + 1
                adders.append(w)
                nxt.append(w)
            else:
                nxt.append(widths[k])
        widths = nxt
    return adders


def tree_registers(widths: list[int], groups: tuple[int, ...]) -> int:
    """Register bits of a pipelined adder tree (``hdl/dataflow/sums.py``) over terms of
    ``widths`` with a register after each group of levels
    (:func:`codesign.models.pipelining.tree_groups`): the partial sums' widths after every
    group."""
    total = 0
    for levels in groups:
        for _ in range(levels):
            nxt = []
            for k in range(0, len(widths), 2):
                if k + 1 < len(widths):
                    nxt.append(max(widths[k], widths[k + 1]) + 1)
                else:
                    nxt.append(widths[k])
            widths = nxt
        total += sum(widths)
    return total


def clog2(n: int) -> int:
    """Bits of a counter or address over ``n`` values (at least 1)."""
    return max((int(n) - 1).bit_length(), 1)
