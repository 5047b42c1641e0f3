"""The digital PIM golden model: micro-op semantics, the builder's lowering for both
technologies, and the integer programs (models/pim/isa.py, program.py, integer.py, layer.py),
against numpy integer arithmetic and the IR's golden model."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.models.golden import random_inputs, trace
from codesign.models.loader import load
from codesign.models.pim.integer import dot_program, int_program, int_run
from codesign.models.pim.isa import NOR_ONLY, SOT_MRAM, Instr, Op, decode, encode, technology
from codesign.models.pim.layer import dense_mapping, signed_width
from codesign.models.pim.program import (
    Builder,
    RowsExhaustedError,
    execute,
    from_rows,
    to_rows,
)
from hypothesis import given, settings
from hypothesis import strategies as st

TECHS = ["sot-mram", "nor"]


def wrap(v, bits, signed):
    v = np.asarray(v, dtype=np.int64) & ((1 << bits) - 1)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v) if signed else v


@st.composite
def operands(draw, ops=1):
    bits = draw(st.integers(1, 12))
    signed = draw(st.booleans())
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # extremes always present: they carry the overflow and sign cases
    vals = [rng.integers(lo, hi + 1, n) for _ in range(ops)]
    edge = np.array([lo, hi, 0, lo + (hi > lo), hi - (hi > lo)])
    vals = [
        np.concatenate([v, np.repeat(edge, len(edge)) if i == 0 else np.tile(edge, len(edge))])
        for i, v in enumerate(vals)
    ]
    return bits, signed, vals


@pytest.mark.parametrize("tech", TECHS)
@settings(max_examples=25, deadline=None)
@given(case=operands(ops=2))
def test_integer_programs_equal_numpy(tech, case):
    bits, signed, (a, b) = case
    assert (int_run("add", a, b, bits=bits, tech=tech, signed=signed) == a + b).all()
    assert (
        int_run("sub", a, b, bits=bits, tech=tech, signed=signed) == wrap(a - b, bits, signed)
    ).all()
    assert (int_run("mul", a, b, bits=bits, tech=tech, signed=signed) == a * b).all()
    assert (int_run("lt", a, b, bits=bits, tech=tech, signed=signed) == (a < b)).all()
    if signed:
        assert (int_run("relu", a, bits=bits, tech=tech, signed=True) == np.maximum(a, 0)).all()


@pytest.mark.parametrize("tech", TECHS)
@settings(max_examples=15, deadline=None)
@given(case=operands(ops=2), k=st.integers(1, 6))
def test_dot_product_equals_numpy(tech, case, k):
    bits, signed, (a, b) = case
    rng = np.random.default_rng(k)
    a = np.stack([rng.permutation(a) for _ in range(k)])
    b = np.stack([rng.permutation(b) for _ in range(k)])
    assert (int_run("dot", a, b, bits=bits, tech=tech, signed=signed) == (a * b).sum(0)).all()


def test_nor_adder_costs_18n_plus_1_cycles_as_aritpim_counts():
    """AritPIM's MAGIC-NOR ripple adder: nine NORs per bit, each after an INIT1, and one INIT
    of the carry — 18N+1. Our builder lowers the full adder to the same nine NORs."""
    for n in (4, 8, 16, 32):
        assert int_program("add", n, "nor").compute_cycles == 18 * n + 1
        # the SOT-MRAM array adds in place: one 2-cycle FA per bit and one INIT
        assert int_program("add", n, "sot-mram").compute_cycles == 2 * n + 1


def test_sot_mram_programs_are_shorter_than_nor_ones():
    for op in ("add", "sub", "mul", "lt", "relu"):
        s = int_program(op, 8, "sot-mram", signed=True)
        n = int_program(op, 8, "nor", signed=True)
        assert s.compute_cycles < n.compute_cycles, op
        assert s.rows_used <= 256 and n.rows_used <= 256


def test_every_op_does_what_its_docstring_says():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (3, 64)).astype(bool)
    a, b, c = x
    cases = {
        Op.COPY: a,
        Op.NOT: ~a,
        Op.AND: a & b,
        Op.OR: a | b,
        Op.NOR: ~(a | b),
        Op.XOR: a ^ b,
        Op.XNOR: ~(a ^ b),
        Op.MAJ: (a & b) | (a & c) | (b & c),
    }
    for op, want in cases.items():
        b_ = Builder(SOT_MRAM, rows=8)
        r = b_.load(3)
        b_.emit(op, d=5, a=r[0], b=r[1], c=r[2])
        b_.store([5])
        assert (execute(b_.program(), x)[0] == want).all(), op
    # FA writes the sum to d and the carry to e, reading its sources before writing
    b_ = Builder(SOT_MRAM, rows=8)
    r = b_.load(3)
    b_.emit(Op.FA, d=r[0], e=r[1], a=r[0], b=r[1], c=r[2])
    b_.store(r[:2])
    s, carry = execute(b_.program(), x)
    assert (s == a ^ b ^ c).all() and (carry == cases[Op.MAJ]).all()


def test_magic_nor_without_init_keeps_the_old_value():
    """MNOR computes d AND NOR(a, b): a program that skips the INIT1 is wrong, as in MAGIC."""
    x = np.array([[0, 0, 1, 1], [0, 1, 0, 1]], dtype=bool)
    b = Builder(NOR_ONLY, rows=4)
    r = b.load(2)
    b.emit(Op.INIT0, d=2)
    b.emit(Op.MNOR, d=2, a=r[0], b=r[1])
    b.emit(Op.INIT1, d=3)
    b.emit(Op.MNOR, d=3, a=r[0], b=r[1])
    b.store([2, 3])
    stale, fresh = execute(b.program(), x)
    assert not stale.any()
    assert (fresh == [1, 0, 0, 0]).all()


def test_programs_never_read_uninitialised_cells():
    """The executor starts from random cells: every seed gives the same result."""
    a, b = np.arange(-8, 8), np.arange(7, -9, -1)
    for tech in TECHS:
        p = int_program("mul", 4, tech, signed=True)
        rows_in = np.concatenate([to_rows(a, 4), to_rows(b, 4)])
        outs = {execute(p, rows_in, seed=s).tobytes() for s in range(4)}
        assert len(outs) == 1


def test_instruction_words_round_trip():
    for rows in (8, 64, 256, 1024):
        for op in Op:
            i = Instr(op, d=rows - 1, a=1, b=rows // 2, c=2, e=3)
            assert decode(encode(i, rows), rows) == i
    with pytest.raises(ValueError, match=r"^row address must be < 8, not 8 in "):
        encode(Instr(Op.COPY, d=8), 8)


def test_bad_parameters_say_what_was_expected():
    with pytest.raises(ValueError, match=r"^technology must be one of sot-mram, nor, not 'sram'$"):
        technology("sram")
    with pytest.raises(ValueError, match=r"^micro-op must be one of the nor set, not AND$"):
        Builder("nor").emit(Op.AND)
    with pytest.raises(RowsExhaustedError, match=r"^program needs more than 8 rows$"):
        int_program("mul", 8, "sot-mram", rows=8)
    with pytest.raises(ValueError, match=r"^integer op must be one of add, sub, mul, lt"):
        int_program("div", 8, "nor")
    with pytest.raises(ValueError, match=r"^k must be an int >= 1, not 0$"):
        dot_program(0, 8, 16, "nor", signed=True)


def test_bit_transposition_round_trips():
    v = np.array([0, 1, 2**31, 2**40 + 5, 2**64 - 1], dtype=np.uint64)
    assert (from_rows(to_rows(v, 64)) == v).all()
    assert signed_width(-1, 0) == 1 and signed_width(0, 63) == 7 and signed_width(-32, 31) == 6


@pytest.mark.parametrize("tech", TECHS)
def test_a_zoo_dense_layer_on_one_subarray_equals_the_golden_model(tech):
    net = load("jet_tagger")
    x = random_inputs(net, 2, seed=5)
    t = trace(net, x)
    for layer, src in (("fc2", "act1"), ("fc4", "act3")):
        m = dense_mapping(net, layer, tech)
        assert m.program.rows_used <= 256
        for f in range(2):
            assert (m.run(t[src][f]) == t[layer][f]).all(), (layer, f)
