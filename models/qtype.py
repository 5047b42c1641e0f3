"""Quantized number types, rounding and overflow modes.

Every tensor in a :class:`~codesign.models.ir.Network` carries a :class:`QType`. The integer
representation is what the hardware stores; the real value it stands for is given by
:meth:`QType.to_real`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "AP_OVERFLOW",
    "AP_ROUNDING",
    "QONNX_ROUNDING",
    "Kind",
    "Overflow",
    "QType",
    "Rounding",
    "parse_overflow",
    "parse_qtype",
    "parse_rounding",
]

#: Widest integer type the IR accepts. Descriptions are limited to 32 bits (see the loader);
#: derived accumulators may be wider, as long as they fit numpy's int64.
MAX_BITS = 64


class Rounding(enum.Enum):
    """How a value between two integers becomes one of them.

    Examples (value → result), as in :func:`codesign.models.arith.round_real`:

    >>> from codesign.models.arith import round_real
    >>> [int(round_real(v, Rounding.HALF_EVEN)) for v in (2.5, 3.5, -2.5)]
    [2, 4, -2]
    >>> [int(round_real(v, Rounding.HALF_UP)) for v in (2.5, -2.5)]
    [3, -2]
    >>> [int(round_real(v, Rounding.HALF_DOWN)) for v in (2.5, -2.5)]
    [2, -3]
    >>> [int(round_real(v, Rounding.HALF_AWAY)) for v in (2.5, -2.5)]
    [3, -3]
    >>> [int(round_real(v, Rounding.HALF_TOWARD_ZERO)) for v in (2.5, -2.5)]
    [2, -2]
    >>> [int(round_real(v, Rounding.FLOOR)) for v in (2.7, -2.2)]
    [2, -3]
    >>> [int(round_real(v, Rounding.CEIL)) for v in (2.2, -2.7)]
    [3, -2]
    >>> [int(round_real(v, Rounding.TOWARD_ZERO)) for v in (2.7, -2.7)]
    [2, -2]
    >>> [int(round_real(v, Rounding.AWAY_FROM_ZERO)) for v in (2.2, -2.2)]
    [3, -3]
    """

    HALF_EVEN = "half_even"  #: nearest; ties to the even neighbour (banker's rounding)
    HALF_UP = "half_up"  #: nearest; ties toward +inf
    HALF_DOWN = "half_down"  #: nearest; ties toward -inf
    HALF_AWAY = "half_away"  #: nearest; ties away from zero
    HALF_TOWARD_ZERO = "half_toward_zero"  #: nearest; ties toward zero
    FLOOR = "floor"  #: toward -inf (truncation of two's complement bits)
    CEIL = "ceil"  #: toward +inf
    TOWARD_ZERO = "toward_zero"  #: drop the fraction of the magnitude
    AWAY_FROM_ZERO = "away_from_zero"  #: any fraction bumps the magnitude up


class Overflow(enum.Enum):
    """What happens to an integer outside a type's range.

    - ``WRAP``: keep the low ``bits`` bits (two's complement for signed types).
    - ``SAT``: clamp to the type's range (narrow range respected).
    - ``SAT_SYM``: clamp to the symmetric range ``[-(2^(b-1)-1), 2^(b-1)-1]`` for signed
      types (``ap_fixed``'s ``AP_SAT_SYM``); same as ``SAT`` for unsigned types.
    - ``SAT_ZERO``: a value outside the range becomes 0 (``AP_SAT_ZERO``).
    """

    WRAP = "wrap"
    SAT = "sat"
    SAT_SYM = "sat_sym"
    SAT_ZERO = "sat_zero"


#: QONNX ``Quant``/``IntQuant``/``Trunc`` rounding_mode names (see the QONNX custom-op
#: documentation's rounding table: HALF_UP rounds 2.5→3 and −2.5→−3, i.e. ties away from
#: zero; HALF_DOWN ties toward zero; UP/DOWN are away from/toward zero).
QONNX_ROUNDING: dict[str, Rounding] = {
    "ROUND": Rounding.HALF_EVEN,
    "HALF_EVEN": Rounding.HALF_EVEN,
    "CEIL": Rounding.CEIL,
    "FLOOR": Rounding.FLOOR,
    "UP": Rounding.AWAY_FROM_ZERO,
    "DOWN": Rounding.TOWARD_ZERO,
    "HALF_UP": Rounding.HALF_AWAY,
    "HALF_DOWN": Rounding.HALF_TOWARD_ZERO,
}

#: Vivado/Vitis HLS ``ap_fixed`` quantization modes.
AP_ROUNDING: dict[str, Rounding] = {
    "TRN": Rounding.FLOOR,
    "TRN_ZERO": Rounding.TOWARD_ZERO,
    "RND": Rounding.HALF_UP,
    "RND_ZERO": Rounding.HALF_TOWARD_ZERO,
    "RND_INF": Rounding.HALF_AWAY,
    "RND_MIN_INF": Rounding.HALF_DOWN,
    "RND_CONV": Rounding.HALF_EVEN,
}

#: ``ap_fixed`` overflow modes.
AP_OVERFLOW: dict[str, Overflow] = {
    "WRAP": Overflow.WRAP,
    "SAT": Overflow.SAT,
    "SAT_SYM": Overflow.SAT_SYM,
    "SAT_ZERO": Overflow.SAT_ZERO,
}


class Kind(enum.Enum):
    """Family of a :class:`QType`."""

    INT = "int"  #: plain integer
    FIXED = "fixed"  #: integer scaled by 2^-frac
    BIPOLAR = "bipolar"  #: the values -1 and +1, stored as themselves
    SCALED = "scaled"  #: integer with a float scale and zero point (importers only)


@dataclass(frozen=True)
class QType:
    """An integer number type.

    Parameters
    ----------
    bits
        Width in bits, 1 to 64 (descriptions are limited to 32).
    signed
        Two's complement when true.
    narrow
        Drop the most negative value of a signed type (``[-127, 127]`` for 8 bits) or the
        largest value of an unsigned one (``[0, 254]``), as QONNX's ``narrow`` does.
    kind
        :class:`Kind` of the type.
    frac
        Fractional bits of a fixed-point type; ``real = int * 2**-frac``.
    scale, zero_point
        Of a scaled-int type; ``real = scale * (int - zero_point)``.

    Use the constructors :meth:`int`, :meth:`fixed`, :meth:`bipolar` and :meth:`scaled`.
    """

    bits: int
    signed: bool
    narrow: bool = False
    kind: Kind = Kind.INT
    frac: int = 0
    scale: float = 1.0
    zero_point: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or isinstance(self.bits, bool):
            raise TypeError(f"bits must be an int, not {self.bits!r}")
        if not 1 <= self.bits <= MAX_BITS:
            raise ValueError(f"bits must be between 1 and {MAX_BITS}, not {self.bits!r}")
        if not isinstance(self.kind, Kind):
            raise TypeError(f"kind must be a Kind, not {self.kind!r}")
        if self.kind is Kind.BIPOLAR:
            if (self.bits, self.signed, self.narrow) != (1, True, False):
                raise ValueError("a bipolar type must be QType.bipolar()")
        elif self.bits == 1 and self.narrow:
            raise ValueError("a 1-bit type cannot be narrow (it would hold a single value)")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool):
            raise TypeError(f"frac must be an int, not {self.frac!r}")
        if self.kind is not Kind.FIXED and self.frac != 0:
            raise ValueError(f"frac must be 0 for a {self.kind.value} type, not {self.frac!r}")
        if self.kind is Kind.SCALED:
            if not (
                isinstance(self.scale, float) and self.scale > 0 and self.scale != float("inf")
            ):
                raise ValueError(f"scale must be a positive finite float, not {self.scale!r}")
            if not self.min <= self.zero_point <= self.max:
                raise ValueError(
                    f"zero_point must lie in [{self.min}, {self.max}], not {self.zero_point!r}"
                )
        elif self.scale != 1.0 or self.zero_point != 0:
            raise ValueError("scale and zero_point belong to scaled types only")

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def int(cls, bits: int, signed: bool = True, narrow: bool = False) -> QType:
        """Plain integer type: ``QType.int(8)`` is int8, ``QType.int(4, False)`` is uint4."""
        return cls(bits, signed, narrow)

    @classmethod
    def fixed(cls, bits: int, frac: int, signed: bool = True, narrow: bool = False) -> QType:
        """Fixed point with ``frac`` fractional bits (``ap_fixed<bits, bits-frac>``)."""
        return cls(bits, signed, narrow, Kind.FIXED, frac)

    @classmethod
    def bipolar(cls) -> QType:
        """The values {-1, +1} (one bit in hardware: 0 stands for -1)."""
        return cls(1, True, False, Kind.BIPOLAR)

    @classmethod
    def scaled(
        cls,
        bits: int,
        scale: float,
        zero_point: int = 0,
        signed: bool = True,
        narrow: bool = False,
    ) -> QType:
        """Integer with a float scale and zero point (QONNX ``Quant``)."""
        return cls(bits, signed, narrow, Kind.SCALED, 0, float(scale), zero_point)

    @classmethod
    def covering(cls, lo: int, hi: int) -> QType:
        """The narrowest plain integer type holding every integer in ``[lo, hi]``.

        Unsigned when ``lo >= 0``. Raises ``OverflowError`` past 64 bits.
        """
        lo, hi = int(lo), int(hi)
        if lo > hi:
            raise ValueError(f"lo must not exceed hi, not {lo!r} > {hi!r}")
        if lo >= 0:
            bits = max(1, hi.bit_length())
            signed = False
        else:
            hi_bits = hi.bit_length() + 1 if hi >= 0 else 1
            bits = max(hi_bits, (-lo - 1).bit_length() + 1)
            signed = True
        if bits > MAX_BITS:
            raise OverflowError(f"range [{lo}, {hi}] needs {bits} bits, more than {MAX_BITS}")
        return cls(bits, signed)

    # -- range --------------------------------------------------------------------------------

    @property
    def min(self) -> int:
        """Smallest representable integer."""
        if self.kind is Kind.BIPOLAR:
            return -1
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def max(self) -> int:
        """Largest representable integer."""
        if self.kind is Kind.BIPOLAR:
            return 1
        if not self.signed:
            return (1 << self.bits) - 1 - (1 if self.narrow else 0)
        return (1 << (self.bits - 1)) - 1

    def contains(self, value: int) -> bool:
        """Whether the integer ``value`` is representable."""
        if self.kind is Kind.BIPOLAR:
            return value in (-1, 1)
        return self.min <= value <= self.max

    def to_real(self, value: int) -> Fraction:
        """Exact real value an integer representation stands for."""
        if self.kind is Kind.FIXED:
            return Fraction(value) / (Fraction(2) ** self.frac)
        if self.kind is Kind.SCALED:
            return Fraction(self.scale) * (value - self.zero_point)
        return Fraction(value)

    @property
    def real_scale(self) -> Fraction:
        """Real value of one integer step (1 for plain ints and bipolar)."""
        return self.to_real(1) - self.to_real(0) if self.kind is not Kind.BIPOLAR else Fraction(1)

    def __repr__(self) -> str:
        return f"QType({str(self)!r})"

    def __str__(self) -> str:
        if self.kind is Kind.BIPOLAR:
            return "bipolar"
        base = f"{'' if self.signed else 'u'}int{self.bits}"
        if self.kind is Kind.FIXED:
            # ap_fixed's convention: <total bits, integer bits>
            base = f"{'' if self.signed else 'u'}fixed<{self.bits},{self.bits - self.frac}>"
        elif self.kind is Kind.SCALED:
            base = f"{base}*{self.scale!r}"
            if self.zero_point:
                base += f"@{self.zero_point}"
        return base + ("n" if self.narrow else "")


_QTYPE_RE = re.compile(
    r"^(?P<u>u?)(?:int(?P<bits>\d+)|fixed<(?P<fbits>\d+),\s*(?P<ibits>-?\d+)>)(?P<n>n?)$"
)


def parse_qtype(text: str) -> QType:
    """Parse a type name: ``int8``, ``uint6``, ``int8n`` (narrow), ``fixed<16,6>``,
    ``ufixed<8,2>`` (``ap_fixed``-style: total bits, integer bits), ``bipolar``,
    ``binary`` (= ``uint1``).

    Raises ``ValueError`` naming what was expected.
    """
    if not isinstance(text, str):
        raise TypeError(f"a type must be a string such as 'int8', not {text!r}")
    t = text.strip().lower()
    if t == "bipolar":
        return QType.bipolar()
    if t == "binary":
        return QType.int(1, signed=False)
    m = _QTYPE_RE.match(t)
    if m is None:
        raise ValueError(
            "a type must be intN, uintN, fixed<N,I>, ufixed<N,I>, bipolar or binary "
            f"(N bits, optional trailing 'n' for narrow), not {text!r}"
        )
    signed = not m["u"]
    narrow = bool(m["n"])
    if m["bits"] is not None:
        return QType.int(int(m["bits"]), signed, narrow)
    bits = int(m["fbits"])
    return QType.fixed(bits, bits - int(m["ibits"]), signed, narrow)


def _parse_enum(enum_cls, aliases: dict, what: str, text):
    if isinstance(text, enum_cls):
        return text
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, not {text!r}")
    key = text.strip()
    if key.upper() in aliases:
        return aliases[key.upper()]
    names = sorted(aliases)
    raise ValueError(f"{what} must be one of {', '.join(names)}, not {text!r}")


_OWN_ROUNDING = {m.value.upper(): m for m in Rounding}
_OWN_OVERFLOW = {m.value.upper(): m for m in Overflow}


def parse_rounding(text: str | Rounding, dialect: str = "codesign") -> Rounding:
    """A :class:`Rounding` from a name, case-insensitive.

    ``dialect="codesign"`` (descriptions) accepts our names (``half_up`` = ties toward +inf)
    and the ``ap_fixed`` names (``RND``, ``TRN``, ...), which do not collide with them.
    ``dialect="qonnx"`` accepts QONNX's names only, where ``HALF_UP`` means ties away
    from zero: the two dialects disagree on that name, so it is never guessed.
    """
    if dialect == "codesign":
        aliases = {**_OWN_ROUNDING, **AP_ROUNDING}
    elif dialect == "qonnx":
        aliases = QONNX_ROUNDING
    else:
        raise ValueError(f"dialect must be 'codesign' or 'qonnx', not {dialect!r}")
    return _parse_enum(Rounding, aliases, "rounding", text)


def parse_overflow(text: str | Overflow) -> Overflow:
    """An :class:`Overflow` from its name or an ``ap_fixed`` name (``AP_`` prefix allowed)."""
    if isinstance(text, str) and text.strip().upper().startswith("AP_"):
        text = text.strip()[3:]
    return _parse_enum(Overflow, _OWN_OVERFLOW, "overflow", text)
