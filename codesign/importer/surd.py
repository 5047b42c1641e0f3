"""Exact real arithmetic for a BatchNormalization in a quantizer's chain.

``BatchNormalization`` divides by ``sqrt(var + eps)``, which is irrational in general, so its
output is not a :class:`~fractions.Fraction`. A chain with one BatchNormalization produces
values ``p + r * sqrt(v)`` with rationals ``p``, ``r`` and ``v > 0`` (:class:`Surd`); the
element-wise ops after it (constant ``Add``/``Sub``/``Mul``/``Div``, ``Relu``, ``Clip``) and
the quantizer's comparisons and rounding stay exact on that form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from codesign.models.arith import round_fraction
from codesign.models.qtype import Rounding


@dataclass(frozen=True)
class Surd:
    """The real number ``p + r * sqrt(v)`` (``v > 0``)."""

    p: Fraction
    r: Fraction
    v: Fraction

    def __add__(self, k: Fraction) -> Surd:
        return Surd(self.p + k, self.r, self.v)

    def __sub__(self, k: Fraction) -> Surd:
        return Surd(self.p - k, self.r, self.v)

    def __mul__(self, k: Fraction) -> Surd:
        return Surd(self.p * k, self.r * k, self.v)

    def __truediv__(self, k: Fraction) -> Surd:
        return Surd(self.p / k, self.r / k, self.v)

    def rational(self) -> Fraction | None:
        """The value as a Fraction when it is rational, else None."""
        if self.r == 0:
            return self.p
        root = _rational_sqrt(self.v)
        return None if root is None else self.p + self.r * root

    def cmp(self, c: Fraction) -> int:
        """Sign of ``self - c``, exactly."""
        a, b = self.p - c, self.r  # sign of a + b * sqrt(v)
        if a >= 0 and b >= 0:
            return 0 if a == 0 and b == 0 else 1
        if a <= 0 and b <= 0:
            return -1
        d = a * a - b * b * self.v  # a and b of opposite signs
        if d == 0:
            return 0
        return (1 if d > 0 else -1) * (1 if a > 0 else -1)

    def __float__(self) -> float:
        return float(self.p) + float(self.r) * math.sqrt(float(self.v))


def _rational_sqrt(v: Fraction) -> Fraction | None:
    n, d = math.isqrt(v.numerator), math.isqrt(v.denominator)
    if n * n == v.numerator and d * d == v.denominator:
        return Fraction(n, d)
    return None


def batchnorm(x: Fraction, mean: Fraction, var_eps: Fraction, gamma: Fraction, beta: Fraction):
    """``(x - mean) / sqrt(var_eps) * gamma + beta`` of a rational ``x``, exactly."""
    return Surd(beta, (x - mean) * gamma / var_eps, var_eps)


def cmp(x, c: Fraction) -> int:
    """Sign of ``x - c`` for a Fraction or a :class:`Surd` ``x``."""
    if isinstance(x, Surd):
        return x.cmp(c)
    return (x > c) - (x < c)


def clamp(x, lo: Fraction | None, hi: Fraction | None):
    """``min(max(x, lo), hi)`` (either bound may be None)."""
    if lo is not None and cmp(x, lo) < 0:
        x = lo
    if hi is not None and cmp(x, hi) > 0:
        x = hi
    return x


def round_exact(x, mode: Rounding) -> int:
    """``x`` rounded to an integer by ``mode``, exactly."""
    if isinstance(x, Surd):
        q = x.rational()
        if q is None:
            # irrational: never an integer nor a half-integer, so any rational strictly
            # inside the same quarter-free interval rounds alike under every mode
            f = math.floor(float(x))
            while x.cmp(Fraction(f)) < 0:
                f -= 1
            while x.cmp(Fraction(f + 1)) > 0:
                f += 1
            above_half = x.cmp(Fraction(2 * f + 1, 2)) > 0
            return round_fraction(Fraction(4 * f + (3 if above_half else 1), 4), mode)
        x = q
    return round_fraction(x, mode)
