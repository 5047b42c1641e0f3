"""Balanced adder trees shared by the dataflow, TULIP and MST blocks."""

from __future__ import annotations

from amaranth import Module, Signal

__all__ = ["pipelined_tree_sum", "tree_sum"]


def tree_sum(terms, m: Module | None = None):
    """Sum of ``terms`` (Amaranth values) as a balanced tree of adders: a chain of hundreds
    would exceed Python's recursion limit in the simulator and be slower in hardware.

    With a module ``m``, every partial sum is a wire marked ``keep``: Yosys then maps each
    adder to a carry chain (CCU2C on ECP5) instead of merging the tree into one carry-save
    multi-operand adder of full adders in LUTs (``alumacc``/``maccmap``), which on ECP5
    took 3-4 LUT4s per full adder, e.g. 6322 LUTs for tfc_w2a2 fc0's MVAU against 294 LUTs
    and 760 CCU2C with kept sums. Worth it for multi-bit products; a popcount of single
    bits maps as well or better without (tfc_w1a1 fc1: 79 LUTs, 103 with kept sums)."""
    n = 0
    while len(terms) > 1:
        nxt = []
        for k in range(0, len(terms), 2):
            if k + 1 < len(terms):
                v = terms[k] + terms[k + 1]
                if m is not None:
                    sig = Signal(v.shape(), name=f"sum{n}", attrs={"keep": 1})
                    n += 1
                    m.d.comb += sig.eq(v)
                    v = sig
                nxt.append(v)
            else:
                nxt.append(terms[k])
        terms = nxt
    return terms[0]


def pipelined_tree_sum(m: Module, terms, groups, *, name: str = "tree", keep: bool = True):
    """Balanced adder tree over ``terms`` with a register after each group of levels:
    ``groups`` (from :func:`codesign.models.pipelining.tree_groups`) gives each group's
    level count, at least the tree's depth in all (empty: a combinational tree). Returns
    the sum, ``len(groups)`` cycles later. ``keep`` marks partial sums as :func:`tree_sum`
    does with a module (off for popcounts of single bits)."""
    if not groups:
        return tree_sum(terms, m if keep else None)
    n = 0
    terms = list(terms)
    for g, levels in enumerate(groups):
        for _ in range(levels):
            nxt = []
            for k in range(0, len(terms), 2):
                if k + 1 < len(terms):
                    v = terms[k] + terms[k + 1]
                    if keep:
                        sig = Signal(v.shape(), name=f"{name}_sum{n}", attrs={"keep": 1})
                        n += 1
                        m.d.comb += sig.eq(v)
                        v = sig
                    nxt.append(v)
                else:
                    nxt.append(terms[k])
            terms = nxt
        regs = []
        for k, t in enumerate(terms):
            r = Signal(t.shape(), name=f"{name}_r{g}_{k}")
            m.d.sync += r.eq(t)
            regs.append(r)
        terms = regs
    if len(terms) != 1:
        raise ValueError(f"{sum(groups)} tree levels leave {len(terms)} terms, not one")
    return terms[0]
