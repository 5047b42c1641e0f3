"""Comparisons cut short for timing.

Yosys maps every ``>=`` to a carry chain as wide as its operands (a CCU2C per two bits on
ECP5), and nextpnr breaks a chain whose carry-out feeds logic with a feed-out cell (0.4 ns
of logic and about 0.8 ns of routing each time). A wide accumulator or product compared with
a bound is then the longest path of an activation unit (jet_tagger's rounding stage: 15
logic levels, 6.9 ns at speed 6). The forms here split a comparison at a bit: the high part
becomes a wide AND/OR (a shallow LUT tree) or a short compare, and only the low part keeps a
carry chain.

:func:`and_or` chooses among sums without a multiplexer cell: Yosys's ``opt_share`` turns a
multiplexer between sums that share an operand into one sum of a multiplexed operand, which
puts the select (often a ``ready`` from the next block) in front of the carry chain.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import Cat, Const, Value
from codesign.models.pipelining import COMPARE_PIECE

__all__ = ["and_or", "at_least", "merge_at_least", "split_at_least", "up_down"]


def and_or(flags, values, width: int) -> Value:
    """The ``width`` low bits of the value whose flag is set (exactly one is, or none for
    0), as ANDs with each flag and an OR: no multiplexer cell that synthesis could fold into
    the values' arithmetic, so the flags select after the carry chains."""
    return reduce(or_, (Value.cast(v).as_unsigned()[:width] & Value.cast(f).replicate(width)
                        for f, v in zip(flags, values, strict=True)))  # fmt: skip


def up_down(count, up, down) -> Value:
    """``count + up - down`` for 1-bit ``up`` and ``down`` (a count's next value), as the
    three sums of the register chosen by :func:`and_or` after their carry chains."""
    up, down = Value.cast(up), Value.cast(down)
    inc, dec = up & ~down, down & ~up
    return and_or((inc, dec, ~(inc | dec)), (count + 1, count - 1, count), len(count))


def _range(x: Value) -> tuple[int, int]:
    shape = x.shape()
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def _extend(v: Value, width: int) -> Value:
    """The bits of ``v`` sign- or zero-extended to ``width``."""
    pad = width - v.shape().width
    if pad == 0:
        return v.as_unsigned()
    fill = v[-1].replicate(pad) if v.shape().signed else Const(0, pad)
    return Cat(v, fill)


def at_least(x, c: int):
    """``x >= c`` for a constant ``c``: with ``k`` the least number of bits such that
    ``-2**k <= c < 2**k``, ``x``'s bits above ``k`` are all zeros or all ones where it can
    meet ``c`` at all, so the comparison is whether they are, and a ``k``-bit compare of the
    rest (a constant when ``c``'s low bits are zero)."""
    x = Value.cast(x)
    lo, hi = _range(x)
    if c <= lo:
        return Const(1)
    if c > hi:
        return Const(0)
    k = 0
    while not -(1 << k) <= c < (1 << k):
        k += 1
    width, signed = x.shape().width, x.shape().signed
    if width - k <= 2:
        return x >= c
    high = x[k:]  # unsigned bits: x = high * 2**k + low, high signed when x is
    low_ge = Const(1) if c % (1 << k) == 0 else x[:k] >= c % (1 << k)
    if c >= 0:  # the high part is 0 to meet c: above 0 passes, below (negative) fails
        above = high.any() & ~x[-1] if signed else high.any()
        return above | (~high.any() & low_ge)
    # c < 0 (x signed): the high part is -1 (all ones) to meet c; not negative passes
    return ~x[-1] | (high.all() & low_ge)


def split_at_least(x, t) -> tuple:
    """The bits from which :func:`merge_at_least` gives ``x >= t`` for two variables:
    ``x`` and ``t`` cut into pieces of at most :data:`PIECE` bits, highest first a
    ``gt`` and an ``eq`` per piece and ``ge`` for the lowest (unsigned compares). A
    narrow compare (8 bits or fewer) is the one bit ``x >= t``; 9-12 bits are the three
    bits ``(gt, eq, ge)`` of two halves, 13-18 five bits. Each chain is a piece long;
    registered, the merge is one LUT in the next stage. The equality is XORs and a
    reduction: written ``==``, Yosys's alumacc merges it into the ``>`` chain's
    subtraction and tests its sum bits after the chain."""
    x, t = Value.cast(x), Value.cast(t)
    signed = x.shape().signed or t.shape().signed
    width = max(x.shape().width, t.shape().width) + (
        1 if signed and not (x.shape().signed and t.shape().signed) else 0
    )
    # both at one width; signed operands in offset binary (the sign bit flipped), so that
    # every compare is unsigned: a signed one ends in a LUT and a PFUMX after the carry
    # chain that combine its carry-out with the sign bits (tfc_w2a2 fc1's 8-bit compares:
    # 7.3 ns at speed 6)
    flip = Const(1 << (width - 1), width) if signed else Const(0, width)
    xw, tw = _extend(x, width) ^ flip, _extend(t, width) ^ flip
    if isinstance(t, Const):  # a constant threshold: each piece against its constant bits
        c = (t.value & ((1 << width) - 1)) ^ flip.value

        def ge(a: int, b: int, plus: int = 0):
            # a constant where the compare cannot fail or pass (a comparison in the Verilog
            # would be left for Verilator's lint to flag; Yosys folds it the same way)
            k = ((c >> a) & ((1 << (b - a)) - 1)) + plus
            if k <= 0 or k >= 1 << (b - a):
                return Const(int(k <= 0))
            return xw[a:b] > k - 1 if plus else xw[a:b] >= k

    else:

        def ge(a: int, b: int, plus: int = 0):
            return xw[a:b] > tw[a:b] if plus else xw[a:b] >= tw[a:b]

    if width <= 8:
        return (ge(0, width),)
    n = -(-width // COMPARE_PIECE)
    cuts = [width * k // n for k in range(n + 1)]  # piece k: bits cuts[k] to cuts[k + 1]
    bits = []
    for k in range(n - 1, 0, -1):
        a, b = cuts[k], cuts[k + 1]
        bits += [ge(a, b, plus=1), ~(xw[a:b] ^ tw[a:b]).any()]
    bits.append(ge(0, cuts[1]))
    return tuple(bits)


def merge_at_least(*bits):
    """``x >= t`` from :func:`split_at_least`'s bits (highest piece first)."""
    hit = bits[-1]
    for i in range(len(bits) - 3, -1, -2):
        hit = bits[i] | (bits[i + 1] & hit)
    return hit
