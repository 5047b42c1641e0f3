"""IEEE 754 floating-point add and multiply (fp32, bf16) as bit-serial PIM micro-op programs.

Each operand sits in one column, bit ``i`` in a row; every micro-op acts on all columns at once,
so the program below computes one result per column. The algorithms are the hardware ones,
written with the row-level pieces of :mod:`codesign.models.pim.fp_rows`:

Addition
    Compare the magnitudes (one borrow chain over exponent and fraction) and swap so that ``x``
    is the larger; unpack (hidden bit = exponent ≠ 0, a subnormal's exponent counts as 1);
    subtract the exponents; align ``y``'s significand with a logarithmic right shifter that ORs
    the bits it drops into a sticky bit (shift amounts past the datapath saturate); add or
    subtract (by the signs) on p + 3 bits (guard, round, sticky) plus a carry bit; normalise
    with a leading-zero log shifter whose every stage is limited by the exponent left, so a
    subnormal result stops at the smallest exponent; round to nearest, ties to even; overflow
    to infinity; special cases by muxes at the end.
Multiplication
    Swap so that ``x`` is normal (when one operand is); normalise ``y``'s significand (a
    subnormal one) with the leading-zero log shifter; multiply the significands by
    shift-and-add, folding the low product bits into a sticky bit as soon as they are final;
    add the exponents minus the bias; shift right by one when the product's top bit is set, or
    by as much as a subnormal result needs (log shifter with sticky, saturating); round to
    nearest, ties to even; overflow to infinity; special cases by muxes at the end.

Semantics are IEEE 754's for both formats: round to nearest even, gradual underflow
(subnormal operands and results), signed zeros (``x + (−x) = +0``, ``(−0) + (−0) = −0``, the
sign of a product is the XOR of the signs), overflow to ±inf, ``inf − inf`` and ``0 × inf`` are
NaN, a NaN operand gives a NaN. Every NaN result is the canonical quiet NaN, sign 0:
``0x7FC00000`` (fp32), ``0x7FC0`` (bf16) — the payload of a NaN operand is not propagated.

``ftz=True`` builds the flush-to-zero variant: subnormal operands count as zeros of their sign,
and a result whose exact value is nonzero but below the smallest normal number in magnitude
(tininess before rounding, as Arm's flush-to-zero mode) becomes a zero of its sign. It needs no
subnormal normaliser in the multiplier and no exponent-limited normalisation in the adder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .fp_rows import (
    Gates,
    add,
    all_,
    any_,
    multiply,
    normalize_left,
    round_pack,
    shift_right_sticky,
)
from .integer import lt_rows
from .isa import TECHNOLOGIES, Technology, technology
from .program import Builder, Program, execute, from_rows, to_rows

__all__ = [
    "FORMATS",
    "FP_OPS",
    "FpFormat",
    "canonical_nan",
    "fp_add",
    "fp_add_rows",
    "fp_format",
    "fp_mul",
    "fp_mul_rows",
    "fp_program",
    "fp_run",
]

FP_OPS = ("add", "mul")

Rows = list[int]


@dataclass(frozen=True)
class FpFormat:
    """A binary floating-point format: sign, ``exp_bits`` exponent bits, ``man_bits`` fraction
    bits (the hidden bit not counted)."""

    name: str
    exp_bits: int
    man_bits: int

    @property
    def bits(self) -> int:
        """Width of an encoded value."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self) -> int:
        """Significand bits, the hidden bit included."""
        return self.man_bits + 1

    @property
    def bias(self) -> int:
        """The exponent bias."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def dtype(self) -> np.dtype:
        """The unsigned integer type that holds one encoded value."""
        return np.dtype(np.uint32 if self.bits > 16 else np.uint16)


FORMATS = {f.name: f for f in (FpFormat("fp32", 8, 23), FpFormat("bf16", 8, 7))}


def fp_format(fmt: str | FpFormat) -> FpFormat:
    """The format called ``fmt`` (``fp32`` or ``bf16``)."""
    if isinstance(fmt, FpFormat):
        return fmt
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}") from None


def canonical_nan(fmt: str | FpFormat) -> int:
    """The NaN every program returns: quiet, sign 0, payload 0 (``0x7FC00000``, ``0x7FC0``)."""
    f = fp_format(fmt)
    return (((1 << f.exp_bits) - 1) << f.man_bits) | (1 << (f.man_bits - 1))


def _stages(n: int) -> int:
    """Stages of a log shifter whose amounts reach ``n``: the least K with 2^K − 1 ≥ n."""
    return n.bit_length()


# -- the two datapaths ------------------------------------------------------------------------


def fp_add_rows(g: Gates, fmt: FpFormat, a: Rows, b: Rows, *, ftz: bool = False) -> Rows:
    """Emit ``a + b`` on ``g``: operands and result are ``fmt.bits`` rows, bit 0 first.

    Consumes the operand rows.
    """
    e_bits, m_bits, p = fmt.exp_bits, fmt.man_bits, fmt.precision
    zero, one = g.const(0), g.const(1)
    sa, sb = a[-1], b[-1]

    # |a| < |b| from the borrow of |a| − |b| over exponent and fraction; x gets the larger
    swap = g.adopt(lt_rows(g.b, a[:-1], b[:-1], signed=False))
    x, y = g.swap(swap, a[:-1], b[:-1])
    sx = g.mux(swap, sb, sa)
    sub = g.xor(sa, sb)
    g.free(swap, a, b)
    fx, ex, fy, ey = x[:m_bits], x[m_bits:], y[:m_bits], y[m_bits:]
    hx, hy = any_(g, ex), any_(g, ey)

    # specials: x (the larger) is NaN, or inf − inf
    xmax, ymax, fxnz = all_(g, ex), all_(g, ey), any_(g, fx)
    t = g.and_(ymax, sub)
    u = g.or_(fxnz, t)
    nan = g.and_(xmax, u)
    g.free(ymax, fxnz, t, u)

    # exponent difference d = ex' − ey' ≥ 0 (a subnormal's exponent counts as 1)
    if ftz:
        ex1 = [g.ref(r) for r in ex]
        ney = [g.not_(r) for r in ey]
    else:
        ex1 = [g.xnor(ex[0], hx), *(g.ref(r) for r in ex[1:])]
        ney = [g.xor(ey[0], hy), *(g.not_(r) for r in ey[1:])]
    d, c = add(g, ex1, ney, cin=one)
    g.free(ney, c)

    # align y: right shift by d with sticky; amounts past the datapath saturate
    ka = _stages(p + 2)
    sat = any_(g, d[ka:])
    if ftz:  # a subnormal y is a zero: shift it all out, then drop the sticky bit
        nhy = g.not_(hy)
        t = g.or_(sat, nhy)
        g.free(sat, nhy)
        sat = t
    amount = [g.or_(dk, sat) for dk in d[:ka]]
    g.free(d, sat)
    v = [zero, zero, zero, *(g.ref(r) for r in fy), g.ref(hy)]  # sticky, round, guard, sig
    v = shift_right_sticky(g, v, amount)
    g.free(amount)
    if ftz:
        t = g.and_(v[0], hy)
        g.free(v[0])
        v[0] = t

    # add or subtract on p + 3 bits; the carry-out is the sum's top bit (a difference has none)
    mx = [zero, zero, zero, *(g.ref(r) for r in fx), g.ref(hx)]
    vv = [g.xor(r, sub) for r in v]
    g.free(v, x, y, hy)
    z, cout = add(g, mx, vv, cin=sub)
    g.free(mx, vv)
    z.append(g.xor(cout, sub))
    g.free(cout)
    nz = any_(g, z)

    # normalise: leading one to the top row, limited by the exponent (subnormal results)
    kn = _stages(p + 3)
    if ftz:
        z, shift, _ = normalize_left(g, z, kn)
        nshift = [g.not_(r) for r in shift]
        g.free(shift)
        base, c = add(  # ex − shift, one bit wider: negative = tiny
            g, [*ex1, zero], [*nshift, *[one] * (e_bits + 1 - kn)], cin=one
        )
        g.free(ex1, nshift, c)
        tiny = g.ref(base[-1])
        nzx = g.and_(nz, hx)
        zflag = g.not_(nzx)  # an exact zero: both operands (flushed) zero, or x + (−x)
        zk = g.or_(zflag, tiny)
        g.free(nzx, tiny)
    else:
        z, shift, base = normalize_left(g, z, kn, budget=ex1)
        g.free(shift)
        base = [*base, zero]
        zflag = g.not_(nz)
        zk = g.ref(zflag)
    g.free(nz, hx)

    # round: the significand is z[p+3 … 4], guard z[3], sticky z[2 … 0]; field = base + h + c
    sticky = any_(g, z[:3])
    frac, field, ovf = round_pack(g, z[4:], z[3], sticky, base, [z[p + 3]], e_bits)
    g.free(z, sticky, base)

    # sign: x's, but +0 for an exact zero of a difference; 0 for NaN
    t = g.and_(sub, zflag)
    g.free(sub, zflag)
    out = _assemble(g, fmt, sx, t, frac, field, ovf, zk, xmax, nan)
    g.free(t)
    return out


def fp_mul_rows(g: Gates, fmt: FpFormat, a: Rows, b: Rows, *, ftz: bool = False) -> Rows:
    """Emit ``a × b`` on ``g``: operands and result are ``fmt.bits`` rows, bit 0 first.

    Consumes the operand rows.
    """
    e_bits, m_bits, p = fmt.exp_bits, fmt.man_bits, fmt.precision
    n = e_bits + m_bits
    zero, one = g.const(0), g.const(1)
    sign = g.xor(a[-1], b[-1])
    ea, eb = a[m_bits:n], b[m_bits:n]
    ha, hb = any_(g, ea), any_(g, eb)

    # specials: NaN operand, or 0 × inf (a zero operand with an inf one)
    amax, bmax = all_(g, ea), all_(g, eb)
    fanz, fbnz = any_(g, a[:m_bits]), any_(g, b[:m_bits])
    if ftz:
        t = g.and_(ha, hb)
        zero_in = g.not_(t)
        g.free(t)
    else:
        az, bz = g.nor(ha, fanz), g.nor(hb, fbnz)
        zero_in = g.or_(az, bz)
        g.free(az, bz)
    anan, bnan = g.and_(amax, fanz), g.and_(bmax, fbnz)
    anymax = g.or_(amax, bmax)
    t1, t2 = g.or_(anan, bnan), g.and_(anymax, zero_in)
    nan = g.or_(t1, t2)
    g.free(amax, bmax, fanz, fbnz, anan, bnan, t1, t2)

    if ftz:  # operands normal (or flushed: killed at the end)
        mx = [*(g.ref(r) for r in a[:m_bits]), g.ref(ha)]
        my = [*(g.ref(r) for r in b[:m_bits]), g.ref(hb)]
        ex1, ey1 = [g.ref(r) for r in ea], [g.ref(r) for r in eb]
        lbits: Rows = []
    else:  # x normal if either is; y's significand normalised (it may be subnormal). The
        # exponents are only summed: no swap, each counts 1 when subnormal
        fx, fy = g.swap(ha, b[:m_bits], a[:m_bits])
        mx = [*fx, g.or_(ha, hb)]
        my, lbits, _ = normalize_left(g, [*fy, g.and_(ha, hb)], _stages(p - 1))
        ex1 = [g.xnor(ea[0], ha), *(g.ref(r) for r in ea[1:])]
        ey1 = [g.xnor(eb[0], hb), *(g.ref(r) for r in eb[1:])]
    g.free(a, b, ha, hb)

    # W = ex' + ey' − shift − bias − 2: the product's exponent minus 2 when its leading one is
    # at bit 2p−2 (−shift − bias − 2 = ¬shift − 2^(e−1): ¬shift's upper ones, bit e−1 cleared)
    s, c = add(g, ex1, ey1)
    g.free(ex1, ey1)
    nl = [g.not_(r) for r in lbits]
    q = [*nl, *[one] * (e_bits - 1 - len(nl)), zero, one, one]
    w, c2 = add(g, [*s, c, zero], q)
    g.free(s, c, c2, nl)

    # product: bits p−2 … 2p−1 kept, the lower ones folded into a sticky bit
    sticky, high = multiply(g, mx, my, keep_from=p - 2)
    g.free(mx, my)
    u = [sticky, *high]  # p + 3 rows: sticky, round, the significand at 2 … p+1, top bit
    top = g.ref(high[-1])

    if ftz:  # shift right by the top bit; tiny (|exact| < 2^emin) iff W + top ≤ −2
        u = shift_right_sticky(g, u, [top])
        hi = all_(g, w[1:])
        t = g.or_(w[0], top)
        m1 = g.and_(hi, t)
        tiny = g.andn(w[-1], m1)
        g.free(hi, t, m1)
        base, addend = w, [top, one]  # field = W + 2 + top + c
        zk = g.or_(zero_in, tiny)
        g.free(tiny, zero_in)
    else:  # W ≤ −2: subnormal, shift right by −1 − W = ¬W (saturating); else by the top bit
        ks = _stages(p + 2)
        hi, lo = all_(g, w[ks:]), all_(g, w[:ks])
        ones = g.and_(hi, lo)
        neg = g.andn(w[-1], ones)
        nneg = g.not_(neg)
        g.free(lo, ones)
        amount = []
        for k in range(ks):
            m1 = g.and_(w[k], hi)
            if k == 0:  # ¬W₀ (or saturated) if subnormal, else the top bit
                r0 = g.not_(m1)
                amount.append(g.mux(neg, r0, top))
                g.free(r0)
            else:
                amount.append(g.nor(nneg, m1))
            g.free(m1)
        g.free(hi)
        u = shift_right_sticky(g, u, amount)
        g.free(amount)
        h = g.mux(neg, u[p + 1], top)  # subnormal: field = h + c; else W + 2 + top + c
        base = [g.and_(r, nneg) for r in w]
        addend = [h, nneg]
        g.free(w, neg, top)
        zk = zero_in

    frac, field, ovf = round_pack(g, u[2 : p + 2], u[1], u[0], base, addend, e_bits)
    g.free(u, base, addend)
    return _assemble(g, fmt, sign, None, frac, field, ovf, zk, anymax, nan)


def _assemble(
    g: Gates,
    fmt: FpFormat,
    sign: int,
    plus_zero: int | None,
    frac: Rows,
    field: Rows,
    ovf: int,
    zk: int,
    maxflag: int,
    nan: int,
) -> Rows:
    """Consumes everything but ``plus_zero``: the result rows with the special cases muxed in.

    ``zk`` kills the magnitude (a zero result), ``maxflag`` (an inf or NaN operand) and ``ovf``
    (unless killed) set the exponent to all ones, ``nan`` sets the quiet bit and clears the
    sign; ``plus_zero`` clears the sign too.
    """
    e_bits = fmt.exp_bits
    t = g.andn(ovf, zk)
    setexp = g.or_(maxflag, t)
    keep = g.nor(zk, setexp)
    g.free(t, ovf, zk, maxflag)
    mant = [g.and_(r, keep) for r in frac]
    quiet = g.or_(mant[-1], nan)
    g.free(mant[-1])
    mant[-1] = quiet
    exp = []
    for r in field[:e_bits]:
        t = g.and_(r, keep)
        exp.append(g.or_(t, setexp))
        g.free(t)
    clear = nan if plus_zero is None else g.or_(plus_zero, nan)
    s = g.andn(sign, clear)
    if plus_zero is not None:
        g.free(clear)
    g.free(frac, field, keep, setexp, nan, sign)
    return [*mant, *exp, s]


# -- programs and runs --------------------------------------------------------------------------


def fp_program(
    op: str,
    fmt: str | FpFormat,
    tech: str | Technology = "sot-mram",
    *,
    ftz: bool = False,
    rows: int = 256,
) -> Program:
    """The whole program of a floating-point op: LOAD ``a`` (``fmt.bits`` rows, bit 0 first),
    LOAD ``b``, compute, STORE the result (bit 0 first).

    Parameters
    ----------
    op
        ``"add"`` or ``"mul"``.
    fmt
        ``"fp32"`` or ``"bf16"`` (or an :class:`FpFormat`).
    tech
        The technology (``"sot-mram"``, ``"nor"``).
    ftz
        Flush subnormal operands and tiny results to signed zero (see the module docstring).
    rows
        The subarray height; :class:`~codesign.models.pim.program.RowsExhaustedError` if the
        program does not fit.
    """
    if op not in FP_OPS:
        raise ValueError(f"floating-point op must be one of {', '.join(FP_OPS)}, not {op!r}")
    f = fp_format(fmt)
    t = technology(tech)
    if not isinstance(ftz, bool):
        raise TypeError(f"ftz must be a bool, not {ftz!r}")
    if TECHNOLOGIES.get(t.name) is t and FORMATS.get(f.name) == f:
        return _cached_program(op, f.name, t.name, ftz, rows)
    return _build(op, f, t, ftz, rows)


@functools.cache
def _cached_program(op: str, fmt: str, tech: str, ftz: bool, rows: int) -> Program:
    return _build(op, FORMATS[fmt], TECHNOLOGIES[tech], ftz, rows)


def _build(op: str, fmt: FpFormat, tech: Technology, ftz: bool, rows: int) -> Program:
    b = Builder(tech, rows=rows)
    g = Gates(b)
    xa, xb = g.load(fmt.bits), g.load(fmt.bits)
    body = fp_add_rows if op == "add" else fp_mul_rows
    out = body(g, fmt, xa, xb, ftz=ftz)
    b.store(out)
    return b.program()


def fp_run(
    op: str,
    a,
    b,
    fmt: str | FpFormat,
    *,
    tech: str | Technology = "sot-mram",
    ftz: bool = False,
) -> np.ndarray:
    """Run :func:`fp_program` in the golden executor, one element per column.

    ``a`` and ``b`` are raw bit patterns (unsigned integers below ``2^fmt.bits``), broadcast
    to one shape; the result is the bit patterns the program leaves, ``fmt.dtype``, that shape.
    """
    f = fp_format(fmt)
    xa, xb = (_patterns(v, f, name) for v, name in ((a, "a"), (b, "b")))
    xa, xb = np.broadcast_arrays(xa, xb)
    prog = fp_program(op, f, tech, ftz=ftz)
    rows_in = np.concatenate([to_rows(xa, f.bits), to_rows(xb, f.bits)])
    out = from_rows(execute(prog, rows_in))
    return out.astype(f.dtype).reshape(xa.shape)


def fp_add(
    a, b, fmt: str | FpFormat, *, tech: str | Technology = "sot-mram", ftz: bool = False
) -> np.ndarray:
    """``a + b`` on raw bit patterns, computed by the PIM program (see :func:`fp_run`)."""
    return fp_run("add", a, b, fmt, tech=tech, ftz=ftz)


def fp_mul(
    a, b, fmt: str | FpFormat, *, tech: str | Technology = "sot-mram", ftz: bool = False
) -> np.ndarray:
    """``a × b`` on raw bit patterns, computed by the PIM program (see :func:`fp_run`)."""
    return fp_run("mul", a, b, fmt, tech=tech, ftz=ftz)


def _patterns(values, fmt: FpFormat, name: str) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind not in "ui":
        raise TypeError(f"operand {name} must hold integer bit patterns, not dtype {v.dtype}")
    if v.size:
        lo, hi = int(v.min()), int(v.max())
        if lo < 0 or hi >> fmt.bits:
            bad = lo if lo < 0 else hi
            raise ValueError(f"operand {name} must hold {fmt.bits}-bit patterns, not {bad}")
    return v.astype(fmt.dtype)
