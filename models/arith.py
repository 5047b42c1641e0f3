"""The one source of arithmetic truth: rounding, overflow, quantization, requantization and
multi-thresholding, exact for every mode.

Integer tensors are numpy ``int64``. No function here wraps silently: a result that would not
fit int64 raises ``OverflowError``, and a value leaves its type's range only as the
:class:`~codesign.models.qtype.Overflow` mode says.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .qtype import Kind, Overflow, QType, Rounding

__all__ = [
    "INT64_MAX",
    "Multiplier",
    "apply_overflow",
    "check_int64",
    "choose_multiplier",
    "multithreshold",
    "quantize",
    "requantize",
    "round_div",
    "round_fraction",
    "round_real",
    "search_thresholds",
]

INT64_MAX = (1 << 63) - 1


def check_int64(bound: int, what: str) -> None:
    """Raise ``OverflowError`` unless every value of magnitude ``bound`` fits int64."""
    if bound > INT64_MAX:
        raise OverflowError(f"{what}: exact values reach {bound}, which does not fit int64")


def _round_up(mode: Rounding, inexact, cmp_half, negative, floor_odd):
    """Whether to add one to the floor of a value.

    ``inexact``: the value is not an integer; ``cmp_half``: sign of (fraction − ½);
    ``negative``: the value is below zero; ``floor_odd``: its floor is odd.
    """
    if mode is Rounding.FLOOR:
        return np.zeros_like(inexact)
    if mode is Rounding.CEIL:
        return inexact
    if mode is Rounding.TOWARD_ZERO:
        return inexact & negative
    if mode is Rounding.AWAY_FROM_ZERO:
        return inexact & ~negative
    tie = {
        Rounding.HALF_UP: np.ones_like(inexact),
        Rounding.HALF_DOWN: np.zeros_like(inexact),
        Rounding.HALF_EVEN: floor_odd,
        Rounding.HALF_AWAY: ~negative,
        Rounding.HALF_TOWARD_ZERO: negative,
    }[mode]
    # an exact integer never moves, even where its float "midpoint" f + 1/2 rounds onto it
    return inexact & ((cmp_half > 0) | ((cmp_half == 0) & tie))


#: Modes with an exact numpy ufunc (IEEE round-to-integral operations).
_ROUND_UFUNCS = {
    Rounding.HALF_EVEN: np.rint,
    Rounding.FLOOR: np.floor,
    Rounding.CEIL: np.ceil,
    Rounding.TOWARD_ZERO: np.trunc,
}


def round_real(x, mode: Rounding, out: np.ndarray | None = None) -> np.ndarray:
    """Round float64 values to integers (returned as float64), exactly.

    Infinities pass through unchanged; callers reject or saturate them. ``out`` may be
    ``x`` itself to round in place.
    """
    x = np.asarray(x, dtype=np.float64)
    if mode in _ROUND_UFUNCS:
        return _ROUND_UFUNCS[mode](x, out=out)
    f = np.floor(x)
    # No subtraction: x - floor(x) is inexact for x in (-1/2, 0). f + 1/2 is exact while
    # |f| < 2**52, and beyond that every float64 is an integer (then x == f and the
    # comparison with the midpoint is never consulted).
    mid = f + 0.5
    cmp_half = (x > mid).astype(np.int8) - (x < mid).astype(np.int8)
    with np.errstate(invalid="ignore"):
        odd = np.fmod(f, 2) != 0
    up = _round_up(mode, x != f, cmp_half, x < 0, odd)
    return np.add(f, up, out=out)


def round_shift(n, shift, mode: Rounding) -> np.ndarray:
    """``n / 2**shift`` rounded, exactly, for int64 ``n`` and ``shift`` in [0, 62]
    (a scalar or an array broadcasting against ``n``)."""
    n = np.asarray(n, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if shift.ndim == 0 and int(shift) == 0:
        return n.copy()
    q = n >> shift
    if mode is Rounding.FLOOR:
        return q
    r = n - (q << shift)  # 0 <= r < 2**shift
    half = np.where(shift > 0, np.int64(1) << np.maximum(shift - 1, 0), 0)
    cmp_half = np.sign(r - half) if shift.ndim == 0 else np.where(shift > 0, np.sign(r - half), -1)
    return q + _round_up(mode, r != 0, cmp_half, n < 0, (q & 1) == 1)


def round_div(n, d, mode: Rounding) -> np.ndarray:
    """``n / d`` rounded to an integer, exactly, for int64 ``n`` and positive integer ``d``."""
    n = np.asarray(n, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    if np.any(d <= 0):
        raise ValueError(f"divisor must be positive, not {d!r}")
    q = np.floor_divide(n, d)
    r = n - q * d  # 0 <= r < d, no overflow
    # compare 2r with d without forming 2r (which may overflow): r - (d - r)
    cmp_half = np.sign(r - (d - r))
    return q + _round_up(mode, r != 0, cmp_half, n < 0, (q & 1) == 1)


def round_fraction(value: Fraction, mode: Rounding) -> int:
    """Exact rounding of one rational: the slow reference the vector paths agree with."""
    n, d = value.numerator, value.denominator
    q, r = divmod(n, d)
    up = _round_up(
        mode,
        np.bool_(r != 0),
        np.sign(2 * r - d),
        np.bool_(n < 0),
        np.bool_(q % 2 == 1),
    )
    return q + int(up)


def apply_overflow(v, qtype: QType, overflow: Overflow) -> np.ndarray:
    """Bring int64 values into ``qtype``'s range as ``overflow`` says."""
    v = np.asarray(v, dtype=np.int64)
    if qtype.kind is Kind.BIPOLAR:
        raise ValueError("overflow modes do not apply to a bipolar type; quantize to it instead")
    lo, hi = qtype.min, qtype.max
    if overflow is Overflow.SAT:
        return np.clip(v, lo, hi)
    if overflow is Overflow.SAT_SYM:
        return np.clip(v, -hi if qtype.signed else lo, hi)
    if overflow is Overflow.SAT_ZERO:
        return np.where((v < lo) | (v > hi), 0, v)
    if overflow is Overflow.WRAP:
        if qtype.narrow:
            raise ValueError(
                f"overflow WRAP needs a type without narrow range, not {qtype}: the wrapped "
                "value could be the excluded one"
            )
        if qtype.bits >= 64:
            return v
        mask = np.int64((1 << qtype.bits) - 1)
        low = v & mask
        if qtype.signed:
            sign = np.int64(1 << (qtype.bits - 1))
            low = (low ^ sign) - sign
        return low
    raise TypeError(f"overflow must be an Overflow, not {overflow!r}")


def _saturate_float(y: np.ndarray, qtype: QType, overflow: Overflow) -> np.ndarray:
    """Overflow handling of rounded float64 integers (possibly huge or infinite), exactly.

    Every comparison is against a power of two (exact in float64); values that fit int64
    are converted and handled by :func:`apply_overflow` in integer arithmetic."""
    if overflow is Overflow.WRAP:
        if np.any(np.isinf(y)):
            raise OverflowError(
                f"cannot wrap a value beyond float64's range into {qtype}; use a saturating mode"
            )
        y = np.fmod(y, 2.0 ** min(qtype.bits, 64))  # exact; now |y| < 2**bits
        if qtype.bits == 64:  # into [-2**63, 2**63) before converting
            y = np.where(y >= 2.0**63, y - 2.0**64, np.where(y < -(2.0**63), y + 2.0**64, y))
        return apply_overflow(y.astype(np.int64), qtype, overflow)
    big = np.abs(y) >= 2.0**63  # beyond int64, so beyond every type's range
    out = apply_overflow(np.where(big, 0.0, y).astype(np.int64), qtype, overflow)
    if np.any(big):
        lo, hi = qtype.min, qtype.max
        if overflow is Overflow.SAT_SYM and qtype.signed:
            lo = -hi
        if overflow is Overflow.SAT_ZERO:
            lo = hi = 0
        out = np.where(big, np.where(y > 0, np.int64(hi), np.int64(lo)), out)
    return out


def _exact_int_overflow(v: int, qtype: QType, overflow: Overflow) -> int:
    """:func:`apply_overflow` for one Python int of any size."""
    lo, hi = qtype.min, qtype.max
    if overflow is Overflow.WRAP:
        v &= (1 << qtype.bits) - 1
        return v - (1 << qtype.bits) if qtype.signed and v >> (qtype.bits - 1) else v
    if overflow is Overflow.SAT_SYM and qtype.signed:
        lo = -hi
    if lo <= v <= hi:
        return v
    return 0 if overflow is Overflow.SAT_ZERO else min(max(v, lo), hi)


def quantize(
    x,
    qtype: QType,
    rounding: Rounding = Rounding.HALF_EVEN,
    overflow: Overflow = Overflow.SAT,
) -> np.ndarray:
    """Integer representation of real values in ``qtype``, exactly.

    Parameters
    ----------
    x
        Real values, taken as float64. Every float64 is handled exactly (the scaled-int
        division is checked against exact rational arithmetic where it could be ambiguous).
    qtype
        Target type. For a bipolar type the result is +1 where ``x >= 0`` and -1 elsewhere
        (QONNX ``BipolarQuant``); rounding and overflow are then unused.
    rounding, overflow
        How the scaled value becomes an integer, and what happens outside the range.

    Returns
    -------
    numpy.ndarray of int64, the same shape as ``x``.

    Examples
    --------
    >>> from codesign.models.qtype import parse_qtype
    >>> quantize([0.3, -1.26, 9.0], parse_qtype("fixed<4,2>")).tolist()
    [1, -5, 7]
    """
    x = np.asarray(x)
    if x.dtype.kind in "iu" and x.size and int(np.max(np.abs(x.astype(object)))) > 2**53:
        raise ValueError("integers beyond 2**53 lose bits as real values; use requantize()")
    shape = x.shape
    x = np.atleast_1d(x.astype(np.float64))
    if np.any(np.isnan(x)):
        raise ValueError("cannot quantize NaN")
    if qtype.kind is Kind.BIPOLAR:
        return np.where(x >= 0, 1, -1).astype(np.int64).reshape(shape)
    if qtype.kind is Kind.SCALED:
        with np.errstate(over="ignore", under="ignore"):
            t = x / qtype.scale
        exact = _needs_exact(x, t)
        y = round_real(np.where(exact, 0.0, t), rounding) + qtype.zero_point
        out = _saturate_float(y, qtype, overflow)
        scale = Fraction(qtype.scale)
        for i in np.flatnonzero(exact):
            v = round_fraction(Fraction(float(x[i])) / scale, rounding) + qtype.zero_point
            out[i] = _exact_int_overflow(v, qtype, overflow)
        return out.reshape(shape)
    with np.errstate(over="ignore", under="ignore"):
        t = np.ldexp(x, qtype.frac)  # exact, barring overflow to inf and underflow
    # an underflow to zero would lose the sign the rounding needs: keep a tiny stand-in
    t = np.where((t == 0) & (x != 0), np.copysign(5e-324, x), t)
    return _saturate_float(round_real(t, rounding), qtype, overflow).reshape(shape)


def _needs_exact(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Elements whose float64 quotient ``t = x / scale`` may round otherwise than the exact
    rational: within its rounding error of an integer or a half, too large for every integer
    to be representable, or overflowed although ``x`` is finite."""
    finite = np.isfinite(t)
    tf = np.where(finite, t, 0.0)
    f = np.floor(tf)
    err = np.maximum(np.abs(tf) * 2.0**-51, 2.0**-1070)
    near = (tf - f <= err) | (f + 1 - tf <= err) | (np.abs(tf - (f + 0.5)) <= err)
    return (finite & (near | (np.abs(tf) >= 2.0**52))) | (~finite & np.isfinite(x))


@dataclass(frozen=True)
class Multiplier:
    """An integer approximation ``multiplier * 2**-shift`` of a real scale."""

    multiplier: int
    shift: int
    scale: float  #: the real scale that was approximated
    error: float  #: relative error ``(multiplier * 2**-shift - scale) / scale``

    @property
    def value(self) -> Fraction:
        """The exact value ``multiplier * 2**-shift``."""
        return Fraction(self.multiplier) / (Fraction(2) ** self.shift)


def choose_multiplier(scale: float, bits: int = 16, max_shift: int = 62) -> Multiplier:
    """Best ``multiplier * 2**-shift`` for a positive real ``scale``, with an unsigned
    ``bits``-bit multiplier (nearest, ties to even), and its relative error."""
    scale = float(scale)
    if not (scale > 0 and np.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, not {scale!r}")
    if not 1 <= bits <= 62:
        raise ValueError(f"bits must be between 1 and 62, not {bits!r}")
    exact = Fraction(scale)
    _, e = np.frexp(scale)  # scale = m * 2**e with 0.5 <= m < 1
    shift = min(bits - int(e), max_shift)
    while True:
        m = round(exact * (Fraction(2) ** shift))  # Python's round: ties to even
        if m < (1 << bits) or shift <= -max_shift:
            break
        shift -= 1
    if m == 0:
        raise ValueError(f"scale {scale!r} is below the smallest step 2**-{max_shift}")
    if m >= (1 << bits) or shift < -max_shift:
        raise ValueError(
            f"scale {scale!r} needs a shift below -{max_shift} with a {bits}-bit multiplier"
        )
    approx = Fraction(m) / (Fraction(2) ** shift)
    return Multiplier(int(m), int(shift), scale, float((approx - exact) / exact))


def requantize(
    acc,
    multiplier,
    shift,
    qtype: QType,
    rounding: Rounding = Rounding.HALF_EVEN,
    overflow: Overflow = Overflow.SAT,
) -> np.ndarray:
    """Integer-only rescaling: ``acc * multiplier * 2**-shift`` rounded, then brought into
    ``qtype``.

    ``multiplier`` and ``shift`` are integers or integer arrays broadcasting against ``acc``
    (per-channel rescaling); a negative shift multiplies. Raises ``OverflowError`` when the
    exact intermediate would not fit int64.

    Examples
    --------
    >>> from codesign.models.qtype import parse_qtype
    >>> requantize([5, -5, 300], 3, 2, parse_qtype("int8")).tolist()  # 15/4, -15/4, 900/4
    [4, -4, 127]
    """
    if qtype.kind is Kind.BIPOLAR:
        raise ValueError("requantize cannot target a bipolar type; use a multithreshold")
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"acc must be an integer array, not {acc.dtype}")
    acc = acc.astype(np.int64)
    mult = np.asarray(multiplier)
    shift = np.asarray(shift)
    if mult.dtype.kind not in "iu" or shift.dtype.kind not in "iu":
        raise TypeError("multiplier and shift must be integers")
    mult = mult.astype(np.int64)
    shift = shift.astype(np.int64)
    if np.any(np.abs(shift) > 62):
        raise ValueError(f"shift must lie in [-62, 62], not {shift!r}")
    left = np.where(shift < 0, -shift, 0)
    right = np.where(shift > 0, shift, 0)
    _check_products(acc, mult, left)
    prod = acc * (mult << left)
    out = round_shift(prod, right, rounding)
    return apply_overflow(out, qtype, overflow)


def _check_products(acc: np.ndarray, mult: np.ndarray, left: np.ndarray) -> None:
    """Raise ``OverflowError`` if some ``acc * mult * 2**left`` does not fit int64: a float
    estimate clears almost every element; the rest are checked with Python ints."""
    est = np.abs(acc.astype(np.float64)) * np.abs(mult.astype(np.float64)) * np.exp2(left)
    if est.size == 0 or est.max() < 2.0**62:
        return
    a, m, sh = np.broadcast_arrays(acc, mult, left)
    for i in zip(*np.nonzero(est >= 2.0**62), strict=True):
        check_int64(abs(int(a[i]) * int(m[i])) << int(sh[i]), "requantize")


def multithreshold(x, thresholds, out_scale: int = 1, out_bias: int = 0, axis: int = 1):
    """QONNX/FINN ``MultiThreshold``: the number of thresholds ``t`` with ``x >= t``, then
    ``out_scale * count + out_bias``.

    Parameters
    ----------
    x
        Integer array; ``axis`` is its channel axis (1 for NC and NCHW).
    thresholds
        Integer array of shape ``(C, T)``, or ``(1, T)`` shared by every channel. Their
        order does not matter.
    out_scale, out_bias
        Integers (``2, -1`` gives bipolar outputs from one threshold).

    Examples
    --------
    >>> multithreshold([[0, 5, 9]], [[1, 5, 8]], axis=0).tolist()
    [[0, 2, 3]]
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"x must be an integer array, not {x.dtype}")
    thr = np.asarray(thresholds)
    if thr.dtype.kind not in "iu" or thr.ndim != 2:
        raise TypeError("thresholds must be a 2-D integer array (channels, thresholds)")
    for name, v in (("out_scale", out_scale), ("out_bias", out_bias)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, not {v!r}")
    channels = x.shape[axis]
    if thr.shape[0] not in (1, channels):
        raise ValueError(
            f"thresholds must have 1 or {channels} rows (channels), not {thr.shape[0]}"
        )
    check_int64(abs(int(out_scale)) * thr.shape[1] + abs(int(out_bias)), "multithreshold output")
    return count_thresholds(x, thr, int(out_scale), int(out_bias), axis)


def count_thresholds(x, thr, out_scale: int, out_bias: int, axis: int = 1) -> np.ndarray:
    """:func:`multithreshold` without its argument checks, for callers that validated them.

    ``x`` may also be integer-valued float64 (values below 2**53, as the golden model
    carries them); the result then is float64 too.
    """
    channels = x.shape[axis]
    # integer-valued float64 inputs (values below 2**53, see codesign.models.dataflow) stay float64;
    # thresholds beyond +-2**53 are then clipped there, which changes no comparison
    dtype = np.float64 if x.dtype.kind == "f" else np.int64
    thr = np.sort(thr.astype(np.int64), axis=1)
    if dtype is np.float64:
        thr = np.clip(thr, -(2**53), 2**53).astype(np.float64)
    xm = np.moveaxis(x.astype(dtype, copy=False), axis, -1)  # (..., C)
    if thr.shape[1] <= 8:
        count = np.zeros(xm.shape, dtype=dtype)
        for k in range(thr.shape[1]):
            count += xm >= thr[:, k]
    else:
        count = np.empty(xm.shape, dtype=dtype)
        for c in range(channels):
            row = thr[c if thr.shape[0] > 1 else 0]
            count[..., c] = np.searchsorted(row, xm[..., c], side="right")
    out = np.moveaxis(count, -1, axis)
    if out_scale != 1:
        out *= out_scale
    if out_bias != 0:
        out += out_bias
    return out


def search_thresholds(level_of, levels, lo: int, hi: int, channels: int) -> np.ndarray:
    """Per channel and level, the smallest integer accumulator in [lo, hi + 1] whose
    (monotone non-decreasing) output ``level_of`` reaches the level; hi + 1 means never.

    A vectorised bisection over every (channel, level) pair at once, evaluating the
    function itself (on integer candidates given as float64), so the integer comparison and
    the function agree at every integer in [lo, hi]. Used to fold BatchNorm-like float
    computations into exact integer thresholds (the description loader, the QONNX
    importer)."""
    n_levels = len(levels)
    left = np.full((channels, n_levels), lo, dtype=np.int64)  # candidate answer >= left
    right = np.full((channels, n_levels), hi + 1, dtype=np.int64)  # answer <= right
    target = np.broadcast_to(levels, (channels, n_levels))
    while np.any(left < right):
        mid = left + (right - left) // 2
        ok = level_of(mid.astype(np.float64)) >= target
        right = np.where(ok, mid, right)
        left = np.where(ok, left, mid + 1)
    return left
