"""Tests of codesign.models.qtype: parsing, ranges, covering types and the name tables."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from codesign.models.qtype import (
    AP_OVERFLOW,
    AP_ROUNDING,
    QONNX_ROUNDING,
    Kind,
    Overflow,
    QType,
    Rounding,
    parse_overflow,
    parse_qtype,
    parse_rounding,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=300, deadline=None)

BAD_NAME = (
    r"^a type must be intN, uintN, fixed<N,I>, ufixed<N,I>, bipolar or binary "
    r"\(N bits, optional trailing 'n' for narrow\), not {}$"
)


def ref_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """Independent statement of the ranges: signed narrow drops the most negative value,
    unsigned narrow the largest."""
    if signed:
        return -(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1 - (1 if narrow else 0)


# --------------------------------------------------------------------------------------------
# parse_qtype
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("int8", QType(8, True)),
        ("uint6", QType(6, False)),
        ("int8n", QType(8, True, narrow=True)),
        ("uint8n", QType(8, False, narrow=True)),
        ("int32", QType(32, True)),
        ("int1", QType(1, True)),
        ("int64", QType(64, True)),
        ("fixed<16,6>", QType(16, True, kind=Kind.FIXED, frac=10)),
        ("fixed<16, 6>", QType(16, True, kind=Kind.FIXED, frac=10)),
        ("ufixed<8,2>", QType(8, False, kind=Kind.FIXED, frac=6)),
        ("fixed<8,8>", QType(8, True, kind=Kind.FIXED, frac=0)),
        ("fixed<8,10>", QType(8, True, kind=Kind.FIXED, frac=-2)),
        ("fixed<8,-2>", QType(8, True, kind=Kind.FIXED, frac=10)),
        ("fixed<8,2>n", QType(8, True, narrow=True, kind=Kind.FIXED, frac=6)),
        ("bipolar", QType(1, True, kind=Kind.BIPOLAR)),
        ("binary", QType(1, False)),
        ("  INT8 ", QType(8, True)),
        ("Bipolar", QType(1, True, kind=Kind.BIPOLAR)),
    ],
)
def test_parse_qtype(text, expected):
    got = parse_qtype(text)
    assert got == expected


def test_parse_qtype_details():
    t = parse_qtype("fixed<16,6>")
    assert (t.bits, t.signed, t.kind, t.frac) == (16, True, Kind.FIXED, 10)
    assert (t.min, t.max) == (-(2**15), 2**15 - 1)
    assert t.to_real(1) == Fraction(1, 1024)
    u = parse_qtype("ufixed<8,2>")
    assert (u.bits, u.signed, u.frac, u.min, u.max) == (8, False, 6, 0, 255)
    assert u.to_real(255) == Fraction(255, 64)
    assert parse_qtype("binary") == QType.int(1, signed=False)
    assert parse_qtype("bipolar") == QType.bipolar()
    assert parse_qtype("int8n") == QType.int(8, narrow=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "int",
        "uint",
        "float8",
        "int8x",
        "i8",
        "int-8",
        "fixed<8>",
        "fixed<8,2",
        "sint8",
        "int 8",
        "uintn",
        "bipolarn",
        "fixed<,2>",
    ],
)
def test_parse_qtype_bad_names(text):
    with pytest.raises(ValueError, match=BAD_NAME.format(re.escape(repr(text)))):
        parse_qtype(text)


@pytest.mark.parametrize(
    "text, bits",
    [
        ("int0", 0),
        ("uint0", 0),
        ("int65", 65),
        ("uint65", 65),
        ("fixed<0,0>", 0),
        ("fixed<65,1>", 65),
        ("int0n", 0),
    ],
)
def test_parse_qtype_bits_out_of_range(text, bits):
    with pytest.raises(ValueError, match=rf"^bits must be between 1 and 64, not {bits}$"):
        parse_qtype(text)


def test_parse_qtype_not_a_string():
    with pytest.raises(TypeError, match=r"^a type must be a string such as 'int8', not 8$"):
        parse_qtype(8)


def test_parse_qtype_one_bit_signed_narrow():
    with pytest.raises(ValueError, match=r"^a 1-bit type cannot be narrow"):
        parse_qtype("int1n")


@st.composite
def printable_types(draw) -> QType:
    kind = draw(st.sampled_from(["int", "fixed", "bipolar"]))
    if kind == "bipolar":
        return QType.bipolar()
    bits = draw(st.integers(1, 64))
    signed = draw(st.booleans())
    narrow = draw(st.booleans()) and bits > 1
    if kind == "int":
        return QType.int(bits, signed, narrow)
    return QType.fixed(bits, draw(st.integers(-8, 80)), signed, narrow)


@FAST
@given(t=printable_types())
def test_str_round_trips(t):
    assert parse_qtype(str(t)) == t


def test_str_examples():
    assert str(QType.int(8)) == "int8"
    assert str(QType.int(6, False)) == "uint6"
    assert str(QType.int(8, narrow=True)) == "int8n"
    assert str(QType.fixed(16, 10)) == "fixed<16,6>"
    assert str(QType.fixed(8, 6, signed=False)) == "ufixed<8,2>"
    assert str(QType.bipolar()) == "bipolar"
    assert str(QType.scaled(8, 0.5, 3)) == "int8*0.5@3"
    assert str(QType.scaled(4, 0.25, signed=False)) == "uint4*0.25"


# --------------------------------------------------------------------------------------------
# Ranges of every kind
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "t, lo, hi",
    [
        (QType.int(8), -128, 127),
        (QType.int(8, narrow=True), -127, 127),
        (QType.int(8, False), 0, 255),
        (QType.int(8, False, True), 0, 254),
        (QType.int(1), -1, 0),
        (QType.int(1, False), 0, 1),
        (QType.int(2, narrow=True), -1, 1),
        (QType.int(32), -(2**31), 2**31 - 1),
        (QType.int(64), -(2**63), 2**63 - 1),
        (QType.fixed(8, 4), -128, 127),
        (QType.fixed(8, -3, narrow=True), -127, 127),
        (QType.fixed(6, 2, signed=False), 0, 63),
        (QType.fixed(6, 2, signed=False, narrow=True), 0, 62),
        (QType.bipolar(), -1, 1),
        (QType.scaled(8, 0.1, zero_point=-5), -128, 127),
        (QType.scaled(8, 0.1, narrow=True), -127, 127),
        (QType.scaled(4, 3.0, zero_point=7, signed=False), 0, 15),
        (QType.scaled(4, 3.0, signed=False, narrow=True), 0, 14),
    ],
    ids=str,
)
def test_min_max(t, lo, hi):
    assert (t.min, t.max) == (lo, hi)
    assert t.contains(lo)
    assert t.contains(hi)
    assert not t.contains(lo - 1)
    assert not t.contains(hi + 1)


def test_bipolar_contains_only_plus_minus_one():
    t = QType.bipolar()
    assert [t.contains(v) for v in (-2, -1, 0, 1, 2)] == [False, True, False, True, False]
    assert t.real_scale == 1


@FAST
@given(
    bits=st.integers(1, 64),
    signed=st.booleans(),
    narrow=st.booleans(),
    kind=st.sampled_from([Kind.INT, Kind.FIXED, Kind.SCALED]),
)
def test_min_max_property(bits, signed, narrow, kind):
    if bits == 1 and narrow:
        with pytest.raises(ValueError):
            QType(bits, signed, narrow)
        return
    lo, hi = ref_range(bits, signed, narrow)
    if kind is Kind.INT:
        t = QType.int(bits, signed, narrow)
    elif kind is Kind.FIXED:
        t = QType.fixed(bits, 3, signed, narrow)
    else:
        t = QType.scaled(bits, 0.25, lo, signed, narrow)
    assert (t.min, t.max) == (lo, hi)


def test_to_real_and_real_scale():
    assert QType.fixed(8, 3).to_real(-12) == Fraction(-3, 2)
    assert QType.fixed(8, -2).to_real(3) == 12
    assert QType.fixed(8, 3).real_scale == Fraction(1, 8)
    s = QType.scaled(8, 0.1, zero_point=2)
    assert s.to_real(5) == Fraction(0.1) * 3
    assert s.real_scale == Fraction(0.1)
    assert QType.int(8).to_real(-7) == -7


# --------------------------------------------------------------------------------------------
# QType.covering
# --------------------------------------------------------------------------------------------


@FAST
@given(
    a=st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(-300, 300)),
    b=st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(-300, 300)),
)
@example(a=-128, b=-128)  # a negative hi was measured by its magnitude
def test_covering_is_narrowest(a, b):
    lo, hi = min(a, b), max(a, b)
    if lo < 0 and hi >= 2**63:  # a signed range this wide needs 65 bits
        with pytest.raises(OverflowError, match=r"needs 65 bits"):
            QType.covering(lo, hi)
        return
    t = QType.covering(lo, hi)
    assert t.kind is Kind.INT
    assert not t.narrow
    assert t.signed == (lo < 0)
    tlo, thi = ref_range(t.bits, t.signed, False)
    assert tlo <= lo <= hi <= thi
    if t.bits > 1:
        slo, shi = ref_range(t.bits - 1, t.signed, False)
        assert not (slo <= lo and hi <= shi)


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (0, 0, "uint1"),
        (0, 1, "uint1"),
        (0, 2, "uint2"),
        (0, 255, "uint8"),
        (0, 256, "uint9"),
        (-1, -1, "int1"),
        (-1, 0, "int1"),
        (-1, 1, "int2"),
        (-128, 127, "int8"),
        (-129, 0, "int9"),
        (-128, -128, "int8"),
        (-3, -2, "int3"),
        (0, 2**64 - 1, "uint64"),
        (-(2**63), 2**63 - 1, "int64"),
    ],
)
def test_covering_examples(lo, hi, expected):
    assert QType.covering(lo, hi) == parse_qtype(expected)


def test_covering_errors():
    with pytest.raises(ValueError, match=r"^lo must not exceed hi, not 2 > 1$"):
        QType.covering(2, 1)
    with pytest.raises(OverflowError, match=r"needs 65 bits"):
        QType.covering(0, 2**64)
    with pytest.raises(OverflowError, match=r"needs 65 bits"):
        QType.covering(-(2**63) - 1, 0)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def test_qtype_validation():
    with pytest.raises(TypeError, match=r"^bits must be an int, not True$"):
        QType(True, True)
    with pytest.raises(TypeError, match=r"^bits must be an int, not 8\.0$"):
        QType(8.0, True)
    for bits in (0, 65, -1):
        with pytest.raises(ValueError, match=rf"^bits must be between 1 and 64, not {bits}$"):
            QType.int(bits)
    with pytest.raises(ValueError, match=r"^a bipolar type must be QType\.bipolar\(\)$"):
        QType(2, True, kind=Kind.BIPOLAR)
    with pytest.raises(ValueError, match=r"^frac must be 0 for a int type, not 3$"):
        QType(8, True, frac=3)
    with pytest.raises(TypeError, match=r"^frac must be an int"):
        QType.fixed(8, 1.5)
    with pytest.raises(ValueError, match=r"^scale must be a positive finite float"):
        QType.scaled(8, 0.0)
    with pytest.raises(ValueError, match=r"^scale must be a positive finite float"):
        QType.scaled(8, float("inf"))
    with pytest.raises(ValueError, match=r"^zero_point must lie in \[0, 255\], not 256$"):
        QType.scaled(8, 0.5, 256, signed=False)
    with pytest.raises(ValueError, match=r"^scale and zero_point belong to scaled types only$"):
        QType(8, True, scale=0.5)
    with pytest.raises(TypeError, match=r"^kind must be a Kind"):
        QType(8, True, kind="int")


# --------------------------------------------------------------------------------------------
# parse_rounding / parse_overflow and the name tables
# --------------------------------------------------------------------------------------------


def test_parse_rounding_own_names():
    for mode in Rounding:
        assert parse_rounding(mode.value) is mode
        assert parse_rounding(mode.value.upper()) is mode
        assert parse_rounding(mode) is mode
        assert parse_rounding(mode, dialect="qonnx") is mode


def test_parse_rounding_ap_names():
    assert AP_ROUNDING == {
        "TRN": Rounding.FLOOR,
        "TRN_ZERO": Rounding.TOWARD_ZERO,
        "RND": Rounding.HALF_UP,
        "RND_ZERO": Rounding.HALF_TOWARD_ZERO,
        "RND_INF": Rounding.HALF_AWAY,
        "RND_MIN_INF": Rounding.HALF_DOWN,
        "RND_CONV": Rounding.HALF_EVEN,
    }
    for name, mode in AP_ROUNDING.items():
        assert parse_rounding(name) is mode
        assert parse_rounding(f" {name.lower()} ") is mode


def test_parse_rounding_qonnx_names():
    assert QONNX_ROUNDING == {
        "ROUND": Rounding.HALF_EVEN,
        "HALF_EVEN": Rounding.HALF_EVEN,
        "CEIL": Rounding.CEIL,
        "FLOOR": Rounding.FLOOR,
        "UP": Rounding.AWAY_FROM_ZERO,
        "DOWN": Rounding.TOWARD_ZERO,
        "HALF_UP": Rounding.HALF_AWAY,
        "HALF_DOWN": Rounding.HALF_TOWARD_ZERO,
    }
    assert parse_rounding("HALF_UP", dialect="qonnx") is Rounding.HALF_AWAY
    assert parse_rounding("half_up", dialect="qonnx") is Rounding.HALF_AWAY
    # the dialects disagree on HALF_UP / HALF_DOWN
    assert parse_rounding("HALF_UP") is Rounding.HALF_UP
    assert parse_rounding("HALF_DOWN") is Rounding.HALF_DOWN
    assert parse_rounding("HALF_DOWN", dialect="qonnx") is Rounding.HALF_TOWARD_ZERO


def test_parse_rounding_errors():
    qonnx_names = "CEIL, DOWN, FLOOR, HALF_DOWN, HALF_EVEN, HALF_UP, ROUND, UP"
    with pytest.raises(ValueError, match=rf"^rounding must be one of {qonnx_names}, not 'RND'$"):
        parse_rounding("RND", dialect="qonnx")
    with pytest.raises(ValueError, match=r"^rounding must be one of .*, not 'ROUND'$"):
        parse_rounding("ROUND")
    with pytest.raises(ValueError, match=r"^rounding must be one of .*, not 'nearest'$"):
        parse_rounding("nearest")
    with pytest.raises(ValueError, match=r"^dialect must be 'codesign' or 'qonnx', not 'onnx'$"):
        parse_rounding("FLOOR", dialect="onnx")
    with pytest.raises(TypeError, match=r"^rounding must be a string, not 3$"):
        parse_rounding(3)


def test_parse_overflow():
    assert AP_OVERFLOW == {
        "WRAP": Overflow.WRAP,
        "SAT": Overflow.SAT,
        "SAT_SYM": Overflow.SAT_SYM,
        "SAT_ZERO": Overflow.SAT_ZERO,
    }
    for mode in Overflow:
        assert parse_overflow(mode) is mode
        assert parse_overflow(mode.value) is mode
        assert parse_overflow(mode.value.upper()) is mode
        assert parse_overflow("AP_" + mode.value.upper()) is mode
        assert parse_overflow(" ap_" + mode.value + " ") is mode
    with pytest.raises(
        ValueError, match=r"^overflow must be one of SAT, SAT_SYM, SAT_ZERO, WRAP, not 'clamp'$"
    ):
        parse_overflow("clamp")
    with pytest.raises(TypeError, match=r"^overflow must be a string, not None$"):
        parse_overflow(None)
