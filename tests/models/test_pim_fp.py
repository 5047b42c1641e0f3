"""IEEE 754 add and multiply as PIM micro-op programs (codesign.models.pim.fp), bit for bit.

References, independent of the code under test:

- fp32: numpy float32 arithmetic (correctly rounded, gradual underflow) on the bit patterns;
- bf16: an exact emulation with ``fractions.Fraction``: the exact sum or product of the two
  decoded values, rounded once to bf16 (nearest, ties to even; subnormals; overflow to inf;
  IEEE's signed-zero rules) — never through a float32 result (that would round twice).

NaN results are compared as "is a NaN" against the references, and separately checked to be
the documented canonical quiet NaN (0x7FC00000 / 0x7FC0).

Flush-to-zero (``ftz=True``), as the module documents it: a subnormal operand is a zero of its
sign; a result whose exact value is nonzero and below the smallest normal in magnitude (before
rounding) is a zero of the exact value's sign.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest
from codesign.models.pim.fp import canonical_nan, fp_add, fp_mul, fp_program, fp_run
from codesign.models.pim.program import RowsExhaustedError, execute, from_rows, to_rows

OPS = ("add", "mul")
FMTS = ("fp32", "bf16")
MAN = {"fp32": 23, "bf16": 7}  # fraction bits; both formats have 8 exponent bits, bias 127
WIDTH = {"fp32": 32, "bf16": 16}
DTYPE = {"fp32": np.uint32, "bf16": np.uint16}
BIAS = 127
EMIN = 1 - BIAS

#: NaN patterns among the operands: quiet, signalling (payload in low bits and high bits),
#: negative, all-ones payload.
NANS = {
    "fp32": [0x7FC00000, 0x7F800001, 0x7FA00000, 0xFFC00000, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF],
    "bf16": [0x7FC0, 0x7F81, 0x7FA0, 0xFFC0, 0xFF81, 0x7FFF, 0xFFFF],
}


# --------------------------------------------------------------------------------------------
# The exact bf16 reference (Fraction) and the fp32 reference (numpy float32)
# --------------------------------------------------------------------------------------------


def decode(x: int, fmt: str):
    """("nan", sign) | ("inf", sign) | ("num", sign, |value| as a Fraction)."""
    m = MAN[fmt]
    sign = x >> (WIDTH[fmt] - 1)
    e = (x >> m) & 0xFF
    f = x & ((1 << m) - 1)
    if e == 0xFF:
        return ("nan" if f else "inf", sign)
    if e == 0:
        return ("num", sign, Fraction(f) * Fraction(2) ** (EMIN - m))
    return ("num", sign, Fraction(f | (1 << m)) * Fraction(2) ** (e - BIAS - m))


def encode(sign: int, v: Fraction, fmt: str, ftz: bool) -> tuple[int, int]:
    """Round ``(−1)^sign · v`` (v ≥ 0 exact) to the format; also 0 (no tie), 1 (a tie kept
    toward zero) or 2 (a tie rounded away from zero)."""
    m = MAN[fmt]
    sbit = sign << (WIDTH[fmt] - 1)
    if v == 0 or (ftz and v < Fraction(2) ** EMIN):
        return sbit, 0
    e = v.numerator.bit_length() - v.denominator.bit_length()  # 2^e ≤ v < 2^(e+2)
    if Fraction(2) ** e > v:
        e -= 1
    e = max(e, EMIN)  # below: subnormal, the quantum stays 2^(EMIN − m)
    q = v / Fraction(2) ** (e - m)
    i = q.numerator // q.denominator
    rem = q - i
    tie = rem == Fraction(1, 2)
    away = tie and i & 1
    if rem > Fraction(1, 2) or away:
        i += 1
    bits = ((e - EMIN) << m) + i  # a carry out of the significand bumps the exponent
    inf = 0xFF << m
    return sbit | min(bits, inf), (2 if away else 1) if tie else 0


def ref_bf16(op: str, x: int, y: int, ftz: bool = False, fmt: str = "bf16"):
    """The exact result bits of ``x op y`` (None for NaN), and the tie code of :func:`encode`."""
    dx, dy = decode(x, fmt), decode(y, fmt)
    if ftz:
        dx, dy = (
            ("num", d[1], Fraction(0)) if d[0] == "num" and d[2] < Fraction(2) ** EMIN else d
            for d in (dx, dy)
        )
    if dx[0] == "nan" or dy[0] == "nan":
        return None, False
    inf = 0xFF << MAN[fmt]
    top = WIDTH[fmt] - 1
    if op == "mul":
        sign = dx[1] ^ dy[1]
        if dx[0] == "inf" or dy[0] == "inf":
            if (dx[0] == "num" and dx[2] == 0) or (dy[0] == "num" and dy[2] == 0):
                return None, False
            return sign << top | inf, False
        return encode(sign, dx[2] * dy[2], fmt, ftz)
    if dx[0] == "inf" and dy[0] == "inf":
        return (None, False) if dx[1] != dy[1] else (dx[1] << top | inf, False)
    if dx[0] == "inf" or dy[0] == "inf":
        d = dx if dx[0] == "inf" else dy
        return d[1] << top | inf, False
    s = (-dx[2] if dx[1] else dx[2]) + (-dy[2] if dy[1] else dy[2])
    if s == 0:  # x + (−x) = +0; (−0) + (−0) = −0
        return (dx[1] & dy[1]) << top, False
    return encode(int(s < 0), abs(s), fmt, ftz)


def reference_exact(op: str, a, b, fmt: str, ftz: bool = False):
    """Vector of exact results (NaN as the canonical NaN) and of tie codes."""
    out = np.empty(len(a), dtype=np.int64)
    ties = np.zeros(len(a), dtype=np.int8)
    nan = 0x7FC00000 if fmt == "fp32" else 0x7FC0
    for k, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        r, ties[k] = ref_bf16(op, x, y, ftz, fmt)
        out[k] = nan if r is None else r
    return out.astype(DTYPE[fmt]), ties


def reference_fp32(op: str, a, b, ftz: bool = False):
    """numpy float32 ``a op b`` on bit patterns (with the flush-to-zero rules if ``ftz``)."""
    if ftz:
        a, b = _flush(a), _flush(b)
    fa, fb = a.view(np.float32), b.view(np.float32)
    with np.errstate(all="ignore"):
        r = (fa + fb if op == "add" else fa * fb).view(np.uint32)
        if ftz:
            # tiny before rounding: a product is exact in float64; a sum whose result is
            # below the smallest normal is exact (its float32 result is already subnormal)
            if op == "mul":
                exact = fa.astype(np.float64) * fb.astype(np.float64)
                tiny = (np.abs(exact) < 2.0**EMIN) & (exact != 0)
            else:
                tiny = ((r >> 23) & 0xFF) == 0
            r = np.where(tiny, r & np.uint32(0x80000000), r)
    return r


def _flush(x):
    sub = ((x >> 23) & 0xFF) == 0
    return np.where(sub, x & np.uint32(0x80000000), x).astype(np.uint32)


def fp32_ties(op: str, a, b):
    """Tie codes (as :func:`encode`'s) of the fp32 results; float64 is exact where it counts."""
    with np.errstate(all="ignore"):
        fa, fb = a.view(np.float32).astype(np.float64), b.view(np.float32).astype(np.float64)
        if op == "mul":
            exact, ok = fa * fb, np.isfinite(fa * fb)
        else:  # TwoSum: the float64 sum is exact iff its error term is 0
            s = fa + fb
            bb = s - fa
            err = (fa - (s - bb)) + (fb - bb)
            exact, ok = s, np.isfinite(s) & (err == 0)
        r = exact.astype(np.float32).astype(np.float64)
        away = np.where(exact > r, np.float32(np.inf), np.float32(-np.inf))
        other = np.nextafter(r.astype(np.float32), away).astype(np.float64)
        tie = ok & (r != exact) & (np.abs(exact - r) == np.abs(other - exact))
        return np.where(tie, np.where(np.abs(r) > np.abs(exact), 2, 1), 0).astype(np.int8)


def is_nan(x, fmt: str):
    m = MAN[fmt]
    return (((x >> m) & 0xFF) == 0xFF) & ((x & ((1 << m) - 1)) != 0)


def assert_bit_exact(got, ref, fmt: str, a, b):
    """Equal bit patterns; a NaN reference matches any NaN (the canonical one is tested)."""
    nan_ref, nan_got = is_nan(ref, fmt), is_nan(got, fmt)
    bad = np.nonzero((got != ref) & ~(nan_ref & nan_got))[0]
    if len(bad):
        rows = [f"{a[k]:#x} {b[k]:#x} -> {got[k]:#x}, want {ref[k]:#x}" for k in bad[:10]]
        pytest.fail(f"{len(bad)} of {len(got)} results differ:\n" + "\n".join(rows))
    assert np.all(got[nan_got] == canonical_nan(fmt))


def test_reference_bf16_agrees_with_numpy_on_fp32():
    """The Fraction reference, run at fp32 width, equals numpy float32 (a check of it)."""
    a, b = sample("add", "fp32", np.random.default_rng(7), scale=0.03)
    for op in OPS:
        ref_np = reference_fp32(op, a, b)
        ref_fr, _ = reference_exact(op, a, b, "fp32")
        both_nan = is_nan(ref_np, "fp32") & is_nan(ref_fr, "fp32")
        assert np.all((ref_np == ref_fr) | both_nan)
        ref_np = reference_fp32(op, a, b, ftz=True)
        ref_fr, _ = reference_exact(op, a, b, "fp32", ftz=True)
        both_nan = is_nan(ref_np, "fp32") & is_nan(ref_fr, "fp32")
        assert np.all((ref_np == ref_fr) | both_nan)


# --------------------------------------------------------------------------------------------
# Operand sets
# --------------------------------------------------------------------------------------------


def _pack(sign, exp, frac, fmt: str):
    m = MAN[fmt]
    v = (sign.astype(np.uint64) << np.uint64(WIDTH[fmt] - 1)) | (
        exp.astype(np.uint64) << np.uint64(m)
    )
    return (v | frac.astype(np.uint64)).astype(DTYPE[fmt])


def _fields(rng, n, fmt: str, lo, hi):
    sign = rng.integers(0, 2, n)
    exp = rng.integers(lo, hi + 1, n)
    frac = rng.integers(0, 1 << MAN[fmt], n)
    return sign, exp, frac


def _from_float(v, fmt: str):
    """Bit patterns of float64 values that are exactly representable in the format."""
    f32 = v.astype(np.float32)
    assert np.all(f32.astype(np.float64) == v)
    bits = f32.view(np.uint32)
    if fmt == "bf16":
        assert np.all(bits & 0xFFFF == 0)
        return (bits >> 16).astype(np.uint16)
    return bits


def _ties(rng, op: str, fmt: str, n: int):
    """Operand pairs whose exact result lies halfway between two neighbours of the format."""
    p = MAN[fmt] + 1
    if op == "add":  # x + y = S, an odd integer of p + 1 bits (x even of ≤ p+1 bits: exact)
        s = rng.integers(1 << (p - 1), 1 << p, n) * 2 + 1
        diff = rng.random(n) < 0.5
        y = np.where(diff, rng.integers(0, (2 << p) - s) // 2 * 2 + 1, 0)
        y = np.where(diff, y, rng.integers(0, 1 << (p - 1), n) * 2 + 1)
        x = np.where(diff, s + y, s - y)
        y = np.where(diff, -y, y)
        k = rng.integers(EMIN - MAN[fmt], 127 - p - 1, n).astype(np.float64)
        swap = rng.random(n) < 0.5
        neg = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        x, y = x * neg * 2.0**k, y * neg * 2.0**k
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        return _from_float(x, fmt), _from_float(y, fmt)
    # mul: odd a · odd b with p + 1 bits (normal range) or ≤ p bits at half the subnormal
    # quantum (subnormal range)
    la = rng.integers(2, p + 1, n)
    a = rng.integers(0, 1 << 62, n) % (1 << la) | (1 << (la - 1)) | 1
    sub = rng.random(n) < 0.3
    lo = np.where(sub, 1, -(-(1 << p) // a))
    hi = np.where(sub, ((1 << p) - 1) // a, ((2 << p) - 1) // a)
    ok = hi >= lo
    b = lo + rng.integers(0, 1 << 62, n) % np.maximum(hi - lo + 1, 1)
    b = np.where(b % 2 == 1, b, np.where(b + 1 <= hi, b + 1, b - 1))
    ok &= (b >= lo) & (b <= hi) & (b % 2 == 1)
    a, b, sub = a[ok], b[ok], sub[ok]
    m = len(a)
    ka = np.where(sub, rng.integers(-60, 0, m), rng.integers(-60, 60, m))
    kb = np.where(sub, EMIN - MAN[fmt] - 1 - ka, rng.integers(-60, 60, m))
    sa, sb = (np.where(rng.random(m) < 0.5, -1.0, 1.0) for _ in range(2))
    return (
        _from_float(sa * a * 2.0 ** ka.astype(np.float64), fmt),
        _from_float(sb * b * 2.0 ** kb.astype(np.float64), fmt),
    )


def _near_ties_mul(rng, fmt: str, n: int):
    """Products just above a tie by a far bit: (2^(p−1) + 1)·b = b·2^(p−1) + b, scaled so that
    b·2^(p−1) is an odd number of half-quanta (subnormal results: the sticky bit comes through
    the right shifter) or lands on the round bit of a normal result."""
    p = MAN[fmt] + 1
    b = rng.integers(0, 1 << (p - 1), n) * 2 + 1
    sub = rng.random(n) < 0.6
    k = np.where(sub, EMIN - MAN[fmt] - p, rng.integers(-80, 40, n) - p)
    kb = np.where(sub, EMIN - MAN[fmt] + rng.integers(0, 40, n), rng.integers(-40, 20, n))
    ka = k - kb
    sa, sb = (np.where(rng.random(n) < 0.5, -1.0, 1.0) for _ in range(2))
    a = float((1 << (p - 1)) + 1)
    return (
        _from_float(sa * a * 2.0 ** ka.astype(np.float64), fmt),
        _from_float(sb * b * 2.0 ** kb.astype(np.float64), fmt),
    )


def sample(op: str, fmt: str, rng, scale: float = 1.0):
    """About ``120,000 · scale`` operand pairs of every class (see the docstrings inline)."""
    m, w = MAN[fmt], WIDTH[fmt]
    n = lambda k: max(int(k * scale), 10)  # noqa: E731
    parts = []
    # uniformly random bit patterns
    k = n(30000)
    parts.append(tuple(rng.integers(0, 1 << w, k).astype(DTYPE[fmt]) for _ in range(2)))
    # nearby exponents (cancellation, ties by chance), any sign
    k = n(25000)
    s, e, f = _fields(rng, k, fmt, 0, 254)
    e2 = np.clip(e + rng.integers(-3, 4, k), 0, 254)
    s2, _, f2 = _fields(rng, k, fmt, 0, 0)
    near = rng.random(k) < 0.3  # fractions one or two ulps apart
    f2 = np.where(near, (f + rng.integers(-2, 3, k)) % (1 << m), f2)
    parts.append((_pack(s, e, f, fmt), _pack(s2, e2, f2, fmt)))
    # exact ties
    parts.append(_ties(rng, op, fmt, n(12000)))
    if op == "mul":
        parts.append(_near_ties_mul(rng, fmt, n(4000)))
        # x · ±2^k into the subnormal range: the product's low half is 0, every sticky bit
        # comes through the right shifter
        k = n(4000)
        s, e, f = _fields(rng, k, fmt, 1, 254)
        s2, _, _ = _fields(rng, k, fmt, 0, 0)
        k2 = EMIN - 1 - (e - BIAS) - rng.integers(0, m + 3, k)  # 2^k2, maybe subnormal
        e2 = np.maximum(k2 + BIAS, 0)
        f2 = np.where(k2 + BIAS > 0, 0, 1 << np.clip(k2 + BIAS - 1 + m, 0, m - 1))
        ok = k2 >= EMIN - m
        parts.append((_pack(s, e, f, fmt)[ok], _pack(s2, e2, f2, fmt)[ok]))
    # subnormal operands (against subnormal, small normal and arbitrary operands)
    k = n(12000)
    s, e, f = _fields(rng, k, fmt, 0, 0)
    which = rng.integers(0, 3, k)
    s2, e2, f2 = _fields(rng, k, fmt, 0, 254)
    e2 = np.where(which == 0, 0, np.where(which == 1, e2 % 4, e2))
    parts.append((_pack(s, e, f, fmt), _pack(s2, e2, f2, fmt)))
    # subnormal results: tiny operands with cancellation (add); exponents summing below emin
    k = n(12000)
    if op == "add":
        s, e, f = _fields(rng, k, fmt, 0, 3)
        s2, e2, f2 = _fields(rng, k, fmt, 0, 3)
        s2 = 1 - s
    else:
        s, e, f = _fields(rng, k, fmt, 1, 254)
        s2, _, f2 = _fields(rng, k, fmt, 0, 0)
        e2 = np.clip(BIAS - e - rng.integers(-2, m + 4, k), 0, 254)
    parts.append((_pack(s, e, f, fmt), _pack(s2, e2, f2, fmt)))
    # overflow
    k = n(6000)
    if op == "add":
        s, e, f = _fields(rng, k, fmt, 252, 254)
        s2, e2, f2 = _fields(rng, k, fmt, 250, 254)
        s2 = s
    else:
        s, e, f = _fields(rng, k, fmt, 128, 254)
        s2, _, f2 = _fields(rng, k, fmt, 0, 0)
        e2 = np.clip(254 + BIAS - e + rng.integers(-2, 3, k), 1, 254)
    parts.append((_pack(s, e, f, fmt), _pack(s2, e2, f2, fmt)))
    # x + (−x): exact cancellation, and zeros of both signs against each other
    k = n(6000)
    x = rng.integers(0, 1 << w, k).astype(DTYPE[fmt])
    parts.append((x, x ^ DTYPE[fmt](1 << (w - 1))))
    # zeros of both signs against each other and against anything
    k = n(4000)
    x = (rng.integers(0, 2, k) << (w - 1)).astype(DTYPE[fmt])
    y = np.where(
        rng.random(k) < 0.5, x ^ (rng.integers(0, 2, k) << (w - 1)), rng.integers(0, 1 << w, k)
    )
    parts.append((x, y.astype(DTYPE[fmt])))
    # specials: ±0, ±inf, NaNs against random values and against each other
    k = n(12000)
    top = 1 << (w - 1)
    specials = np.array([0, top, 0xFF << m, top | 0xFF << m, *NANS[fmt]], dtype=DTYPE[fmt])
    x = specials[rng.integers(0, len(specials), k)]
    y = np.where(
        rng.random(k) < 0.5,
        specials[rng.integers(0, len(specials), k)],
        rng.integers(0, 1 << w, k),
    ).astype(DTYPE[fmt])
    swap = rng.random(k) < 0.5
    parts.append((np.where(swap, y, x), np.where(swap, x, y)))
    a = np.concatenate([p[0] for p in parts]).astype(DTYPE[fmt])
    b = np.concatenate([p[1] for p in parts]).astype(DTYPE[fmt])
    return a, b


def classes(op: str, fmt: str, a, b, ref, ties):
    """How many pairs of each class the set holds."""
    m = MAN[fmt]
    mask = (1 << m) - 1

    def exp(x):
        return (x >> m) & 0xFF

    def sub(x):
        return (exp(x) == 0) & ((x & mask) != 0)

    def zero(x):
        return (x & ((1 << (WIDTH[fmt] - 1)) - 1)) == 0

    def inf(x):
        return (exp(x) == 0xFF) & ((x & mask) == 0)

    finite = (exp(a) != 0xFF) & (exp(b) != 0xFF)
    inf_ref = inf(ref)
    sign = ref >> (WIDTH[fmt] - 1)
    return {
        "tie": int((ties > 0).sum()),
        "tie rounded away from zero": int((ties == 2).sum()),
        "tie at the subnormal quantum": int(((ties > 0) & (exp(ref) <= 1)).sum()),
        "subnormal operand": int((sub(a) | sub(b)).sum()),
        "subnormal result": int(sub(ref).sum()),
        "overflow": int((finite & inf_ref).sum()),
        "exact zero from nonzeros": int((finite & ~zero(a) & ~zero(b) & zero(ref)).sum()),
        "-0 result": int((zero(ref) & (sign == 1)).sum()),
        "+0 result": int((zero(ref) & (sign == 0)).sum()),
        "zero operand": int((zero(a) | zero(b)).sum()),
        "inf operand": int((inf(a) | inf(b)).sum()),
        "nan operand": int((is_nan(a, fmt) | is_nan(b, fmt)).sum()),
        "nan result from non-nans": int(
            (is_nan(ref, fmt) & ~is_nan(a, fmt) & ~is_nan(b, fmt)).sum()
        ),
    }


# --------------------------------------------------------------------------------------------
# Bit-exact tests
# --------------------------------------------------------------------------------------------


def _run(op, a, b, fmt, **kw):
    return (fp_add if op == "add" else fp_mul)(a, b, fmt, **kw)


def _reference(op, a, b, fmt, ftz=False):
    if fmt == "fp32":
        return reference_fp32(op, a, b, ftz), fp32_ties(op, a, b)
    return reference_exact(op, a, b, fmt, ftz)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("op", OPS)
def test_random_pairs_bit_exact(op, fmt):
    """≥ 10^5 pairs of every class on the SOT-MRAM program, against the reference."""
    rng = np.random.default_rng(2024 + OPS.index(op) + 2 * FMTS.index(fmt))
    a, b = sample(op, fmt, rng)
    assert len(a) >= 100_000
    t0 = time.perf_counter()
    got = _run(op, a, b, fmt)
    t1 = time.perf_counter()
    ref, ties = _reference(op, a, b, fmt)
    t2 = time.perf_counter()
    print(f"{op} {fmt}: {len(a)} pairs, program {t1 - t0:.2f} s, reference {t2 - t1:.2f} s")
    assert_bit_exact(got, ref, fmt, a, b)
    counts = classes(op, fmt, a, b, ref, ties)
    print(counts)
    needed = {
        "tie": 2000,
        "tie rounded away from zero": 500,
        "subnormal operand": 10000,
        "subnormal result": 2000,
        "overflow": 1000,
        "-0 result": 100,
        "+0 result": 100,
        "zero operand": 1000,
        "inf operand": 3000,
        "nan operand": 3000,
        "nan result from non-nans": 50,
    }
    if op == "add":
        needed["exact zero from nonzeros"] = 3000
    else:
        needed["tie at the subnormal quantum"] = 1000
    for name, least in needed.items():
        assert counts[name] >= least, (name, counts)


def _edge_values(fmt: str):
    """About 300 special and boundary values of the format."""
    m = MAN[fmt]
    mants = sorted({0, 1, 2, 3, (1 << (m - 1)) - 1, 1 << (m - 1), (1 << (m - 1)) + 1, (1 << m) - 2,
                    (1 << m) - 1, 0x55 & ((1 << m) - 1)})  # fmt: skip
    exps = [0, 1, 2, 3, 60, 63, 64, 120, 126, 127, 128, 134, 190, 250, 253, 254]
    vals = [(s << (WIDTH[fmt] - 1)) | (e << m) | f for s in (0, 1) for e in exps for f in mants]
    vals += [(s << (WIDTH[fmt] - 1)) | (0xFF << m) for s in (0, 1)] + NANS[fmt]
    return np.array(sorted(set(vals)), dtype=DTYPE[fmt])


@pytest.mark.parametrize("op", OPS)
def test_bf16_all_pairs_of_edge_values(op):
    """Every pair of ~300 bf16 edge values (zeros, subnormals, the normal range's ends,
    fractions 0/1/half/all-ones, infinities, NaNs) — about 90,000 pairs."""
    vals = _edge_values("bf16")
    assert len(vals) >= 290
    a, b = (x.ravel() for x in np.meshgrid(vals, vals, indexing="ij"))
    got = _run(op, a, b, "bf16")
    ref, _ = reference_exact(op, a, b, "bf16")
    assert_bit_exact(got, ref, "bf16", a, b)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("op", OPS)
def test_nor_technology_bit_exact(op, fmt):
    """The NOR-only (MAGIC) lowering on 2,000 pairs of every class."""
    rng = np.random.default_rng(99 + OPS.index(op) + 2 * FMTS.index(fmt))
    a, b = sample(op, fmt, rng, scale=2000 / 115000)
    got = _run(op, a, b, fmt, tech="nor")
    ref, _ = _reference(op, a, b, fmt)
    assert_bit_exact(got, ref, fmt, a, b)


@pytest.mark.parametrize("tech", ["sot-mram", "nor"])
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("op", OPS)
def test_ftz_bit_exact(op, fmt, tech):
    """``ftz=True`` equals the reference with subnormal operands and tiny results flushed."""
    scale = (0.3 if fmt == "fp32" else 0.1) if tech == "sot-mram" else 0.01
    rng = np.random.default_rng(5 + OPS.index(op) + 2 * FMTS.index(fmt))
    a, b = sample(op, fmt, rng, scale=scale)
    got = _run(op, a, b, fmt, tech=tech, ftz=True)
    ref, _ = _reference(op, a, b, fmt, ftz=True)
    assert_bit_exact(got, ref, fmt, a, b)
    m = MAN[fmt]
    assert not np.any((((got >> m) & 0xFF) == 0) & ((got & ((1 << m) - 1)) != 0))
    # the flush matters: the full-IEEE reference differs on this set
    full, _ = _reference(op, a, b, fmt)
    assert np.sum(full != ref) > 10


def test_signed_zero_and_special_rules():
    """The IEEE rules, named one by one (fp32 and bf16)."""
    for fmt, one, inf, top in (("fp32", 0x3F800000, 0x7F800000, 1 << 31),
                               ("bf16", 0x3F80, 0x7F80, 1 << 15)):  # fmt: skip
        dt = DTYPE[fmt]
        nan = canonical_nan(fmt)
        cases = [  # (op, a, b, result)
            ("add", one, one | top, 0),  # x + (−x) = +0
            ("add", top, top, top),  # (−0) + (−0) = −0
            ("add", 0, top, 0),  # (+0) + (−0) = +0
            ("add", inf, inf | top, nan),  # inf − inf
            ("add", inf | top, one, inf | top),
            ("mul", top, one, top),  # −0 · 1 = −0
            ("mul", 0, inf, nan),  # 0 · inf
            ("mul", inf | top, one | top, inf),
            ("mul", NANS[fmt][1], one, nan),  # a signalling NaN gives the quiet canonical NaN
        ]
        for op, x, y, want in cases:
            for xa, xb in ((x, y), (y, x)):
                got = _run(op, np.array([xa], dt), np.array([xb], dt), fmt)
                assert int(got[0]) == want, (op, fmt, hex(xa), hex(xb), hex(int(got[0])))


# --------------------------------------------------------------------------------------------
# The programs
# --------------------------------------------------------------------------------------------


def test_cycle_table():
    """Cycles of every program: SOT-MRAM below NOR-only, flush-to-zero below full IEEE,
    every program inside a 256-row subarray. (No cycle count is pinned.)"""
    print()
    print(f"{'op':4} {'fmt':5} {'tech':9} {'ftz':5} {'compute cycles':>14} {'rows':>5}")
    for op in OPS:
        for fmt in FMTS:
            cyc = {}
            for tech in ("sot-mram", "nor"):
                for ftz in (False, True):
                    prog = fp_program(op, fmt, tech, ftz=ftz)
                    cyc[tech, ftz] = prog.compute_cycles
                    assert prog.rows_used <= 256
                    assert prog.loads == prog.stores * 2 == 2 * WIDTH[fmt]
                    print(f"{op:4} {fmt:5} {tech:9} {ftz!s:5} {cyc[tech, ftz]:14} "
                          f"{prog.rows_used:5}")  # fmt: skip
            for ftz in (False, True):
                assert cyc["sot-mram", ftz] < cyc["nor", ftz]
            for tech in ("sot-mram", "nor"):
                assert cyc[tech, True] < cyc[tech, False]
    assert fp_program("mul", "fp32") is fp_program("mul", "fp32", "sot-mram")  # cached


def test_program_reads_no_uninitialised_row():
    """The result does not depend on the array's initial contents (random per seed)."""
    rng = np.random.default_rng(3)
    for op in OPS:
        for fmt in FMTS:
            a, b = sample(op, fmt, rng, scale=0.01)
            prog = fp_program(op, fmt)
            rows_in = np.concatenate([to_rows(a, WIDTH[fmt]), to_rows(b, WIDTH[fmt])])
            outs = [from_rows(execute(prog, rows_in, seed=s)) for s in (1, 2, 3)]
            assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def test_too_few_rows():
    with pytest.raises(RowsExhaustedError):
        fp_program("mul", "fp32", rows=64)


def test_broadcast_and_dtype():
    a = np.array([[0x3F80], [0x4000]], dtype=np.uint16)  # 1, 2
    b = np.array([0x3F80, 0x4040, 0xBF80], dtype=np.uint16)  # 1, 3, −1
    got = fp_add(a, b, "bf16")
    assert got.shape == (2, 3) and got.dtype == np.uint16
    assert got.tolist() == [[0x4000, 0x4080, 0x0000], [0x4040, 0x40A0, 0x3F80]]
    got = fp_run("mul", np.uint32(0x40000000), np.array([0x40400000], np.uint32), "fp32")
    assert got.tolist() == [0x40C00000]


def test_errors():
    with pytest.raises(ValueError, match=r"^floating-point op must be one of add, mul, not 'div'$"):
        fp_program("div", "fp32")
    with pytest.raises(ValueError, match=r"^format must be one of fp32, bf16, not 'fp16'$"):
        fp_program("add", "fp16")
    with pytest.raises(ValueError, match=r"^technology must be one of"):
        fp_program("add", "fp32", "sram")
    with pytest.raises(TypeError, match=r"^operand a must hold integer bit patterns"):
        fp_add(np.array([1.0]), np.array([1], np.uint16), "bf16")
    with pytest.raises(ValueError, match=r"^operand b must hold 16-bit patterns, not 65536$"):
        fp_add(np.array([1], np.uint16), np.array([1 << 16]), "bf16")
