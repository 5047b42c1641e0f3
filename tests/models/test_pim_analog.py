"""The analog PIM crossbar (models/pim/analog.py): exact at sufficient ADC resolution, equal bit
for bit to an independent scalar reference (Fraction arithmetic) at low resolution, within its
error bound, the zoo MLPs' dense layers against the golden trace, and the config errors."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from codesign.models.errors import ConfigError
from codesign.models.golden import random_inputs, trace
from codesign.models.loader import load
from codesign.models.pim.analog import (
    CrossbarConfig,
    adc_bits_exact,
    adc_codes,
    crossbar_mapping,
    crossbar_matmul,
    error_bound,
    error_table,
    layer_error,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

PROP = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- an independent reference: one output at a time, tile by tile, cycle by cycle, slice by
# slice, written from the documented contract with Fraction arithmetic


def _step(full_scale: int, adc_bits: int) -> Fraction:
    """The smallest power of two ``step >= 1`` with ``full_scale <= (2^A - 1) · step``."""
    step = Fraction(1)
    while full_scale > (2**adc_bits - 1) * step:
        step *= 2
    return step


def _convert(column_sum: int, step: Fraction, adc_bits: int) -> Fraction:
    code = round(Fraction(column_sum) / step)  # Fraction rounds half to even
    code = min(max(code, 0), 2**adc_bits - 1)
    return code * step


def _bit(value: int, i: int, width: int) -> int:
    """Bit ``i`` of ``value`` in ``width``-bit two's complement."""
    return (value % 2**width) // 2**i % 2


def reference(x, w, *, x_bits, x_signed, w_bits, w_signed, rows, c, d, adc_bits, adc_range):
    """``crossbar_matmul`` as a scalar loop: (batch, N) Python ints."""
    largest = rows * (2**c - 1) * (2**d - 1)
    step = _step(largest if adc_range is None else adc_range, adc_bits)
    # input cycles: (bit positions, digital weight); the sign bit alone, last, negative
    magnitude = x_bits - 1 if x_signed else x_bits
    cycles = [
        (list(range(lo, min(lo + d, magnitude))), Fraction(2**lo)) for lo in range(0, magnitude, d)
    ]
    if x_signed:
        cycles.append(([x_bits - 1], Fraction(-(2 ** (x_bits - 1)))))
    offset = 2 ** (w_bits - 1) if w_signed else 0
    n_slices = -(-w_bits // c)
    batch, k = len(x), len(x[0])
    n = len(w[0])
    out = [[0] * n for _ in range(batch)]
    for b in range(batch):
        for j in range(n):
            acc = Fraction(0)
            for start in range(0, k, rows):
                tile = range(start, min(start + rows, k))
                for positions, cycle_weight in cycles:
                    levels = [
                        sum(
                            _bit(int(x[b][i]), p, x_bits) * 2 ** (p - positions[0])
                            for p in positions
                        )
                        for i in tile
                    ]
                    for t in range(n_slices):
                        cells = [(int(w[i][j]) + offset) // 2 ** (t * c) % 2**c for i in tile]
                        column_sum = sum(u * g for u, g in zip(levels, cells, strict=True))
                        acc += cycle_weight * 2 ** (t * c) * _convert(column_sum, step, adc_bits)
            acc -= offset * sum(int(v) for v in x[b])
            assert acc.denominator == 1
            out[b][j] = int(acc)
    return out


def _bounds(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


@st.composite
def cases(draw, *, max_k=40, max_n=5, max_batch=4, max_bits=10, max_rows=20, max_cell=8):
    """A product with its operand types and a crossbar (adc_bits still to choose)."""
    x_bits = draw(st.integers(1, max_bits))
    w_bits = draw(st.integers(1, max_bits))
    x_signed, w_signed = draw(st.booleans()), draw(st.booleans())
    k = draw(st.integers(1, max_k))
    n = draw(st.integers(1, max_n))
    batch = draw(st.integers(1, max_batch))
    xlo, xhi = _bounds(x_bits, x_signed)
    wlo, whi = _bounds(w_bits, w_signed)
    x = draw(hnp.arrays(np.int64, (batch, k), elements=st.integers(xlo, xhi)))
    w = draw(hnp.arrays(np.int64, (k, n), elements=st.integers(wlo, whi)))
    base = CrossbarConfig(
        rows=draw(st.integers(1, max_rows)),
        cols=draw(st.integers(1, 8)),
        cell_bits=draw(st.integers(1, max_cell)),
        dac_bits=draw(st.integers(1, max_bits + 2)),
    )
    types = dict(x_bits=x_bits, x_signed=x_signed, w_bits=w_bits, w_signed=w_signed)
    return x, w, types, base


def _with(config: CrossbarConfig, **changes) -> CrossbarConfig:
    fields = dict(
        rows=config.rows,
        cols=config.cols,
        cell_bits=config.cell_bits,
        dac_bits=config.dac_bits,
        adc_bits=config.adc_bits,
        adc_range=config.adc_range,
    )
    return CrossbarConfig(**(fields | changes))


# -- exactness -----------------------------------------------------------------------------


@PROP
@given(cases(), st.integers(0, 3))
def test_exact_at_and_above_adc_bits_exact(case, extra):
    x, w, types, base = case
    config = _with(base, adc_bits=adc_bits_exact(base) + extra)
    assert config.step == 1
    y = crossbar_matmul(x, w, config=config, **types)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, x @ w)
    assert (
        error_bound(
            x.shape[1],
            x_bits=types["x_bits"],
            x_signed=types["x_signed"],
            w_bits=types["w_bits"],
            config=config,
        )
        == 0
    )


def _worst_cases(config: CrossbarConfig):
    """A column sum of 1 (one input bit on one cell holding 1) and the largest column sum
    (every row at the DAC's top level on cells at their top level)."""
    one = (
        np.array([[1]]),
        np.array([[1]]),
        dict(x_bits=1, x_signed=False, w_bits=1, w_signed=False),
    )
    d, c, rows = config.dac_bits, config.cell_bits, config.rows
    full = (
        np.full((1, rows), 2**d - 1),
        np.full((rows, 1), 2**c - 1),
        dict(x_bits=d, x_signed=False, w_bits=c, w_signed=False),
    )
    return [one, full]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 8),
    st.integers(1, 6),
    st.one_of(st.none(), st.floats(0.05, 1.0)),
)
def test_adc_bits_exact_is_the_smallest_exact_width(rows, c, d, range_fraction):
    base = CrossbarConfig(rows=rows, cell_bits=c, dac_bits=d)
    adc_range = (
        None if range_fraction is None else max(1, int(base.max_column_sum * range_fraction))
    )
    bits = adc_bits_exact(base)
    assert bits == base.max_column_sum.bit_length()
    at = _with(base, adc_bits=bits, adc_range=adc_range)
    for x, w, types in _worst_cases(at):
        np.testing.assert_array_equal(crossbar_matmul(x, w, config=at, **types), x @ w)
    if bits > 1:
        below = _with(base, adc_bits=bits - 1, adc_range=adc_range)
        errs = [
            not np.array_equal(crossbar_matmul(x, w, config=below, **types), x @ w)
            for x, w, types in _worst_cases(below)
        ]
        assert any(errs)


def test_the_transfer_function_code_by_code():
    for config in (
        CrossbarConfig(rows=3, cell_bits=2, dac_bits=2, adc_bits=3),
        CrossbarConfig(rows=5, cell_bits=1, dac_bits=1, adc_bits=2),
        CrossbarConfig(rows=16, cell_bits=3, dac_bits=1, adc_bits=4, adc_range=40),
        CrossbarConfig(rows=7, cell_bits=2, dac_bits=3, adc_bits=7),
    ):
        sums = np.arange(config.max_column_sum + 1)
        step = _step(config.full_scale, config.adc_bits)
        assert config.step == step
        want = [_convert(int(s), step, config.adc_bits) / step for s in sums]
        assert adc_codes(sums, config).tolist() == want


# -- low resolution: the independent reference ----------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases(max_k=10, max_n=3, max_batch=2, max_bits=6, max_rows=6, max_cell=4),
    st.integers(1, 12),
    st.one_of(st.none(), st.floats(0.05, 1.0)),
)
def test_equals_the_scalar_reference_bit_for_bit(case, adc_bits, range_fraction):
    x, w, types, base = case
    adc_range = (
        None if range_fraction is None else max(1, int(base.max_column_sum * range_fraction))
    )
    config = _with(base, adc_bits=adc_bits, adc_range=adc_range)
    y = crossbar_matmul(x, w, config=config, **types)
    ref = reference(
        x.tolist(),
        w.tolist(),
        rows=config.rows,
        c=config.cell_bits,
        d=config.dac_bits,
        adc_bits=adc_bits,
        adc_range=adc_range,
        **types,
    )
    assert y.tolist() == ref
    bound = error_bound(
        x.shape[1],
        x_bits=types["x_bits"],
        x_signed=types["x_signed"],
        w_bits=types["w_bits"],
        config=config,
    )
    assert int(np.max(np.abs(y - x @ w))) <= bound


def test_the_worked_example_by_hand():
    # docs: x = [5, -3] (int4), w = [2, -1] (int3), 2-bit cells, 1-bit DAC, 2 rows, A = 2
    x, w = np.array([[5, -3]]), np.array([[2], [-1]])
    types = dict(x_bits=4, x_signed=True, w_bits=3, w_signed=True)
    config = CrossbarConfig(rows=2, cell_bits=2, dac_bits=1, adc_bits=2)
    ref = reference(x.tolist(), w.tolist(), rows=2, c=2, d=1, adc_bits=2, adc_range=None, **types)
    assert crossbar_matmul(x, w, config=config, **types).tolist() == ref == [[-20]]


# -- the zoo MLPs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jet():
    net = load("jet_tagger")
    return net, random_inputs(net, 64, seed=3)


def _dense(net):
    return [la.name for la in net.layers if la.op == "dense"]


@pytest.mark.parametrize(("c", "d"), [(1, 1), (2, 1), (4, 3)])
def test_jet_tagger_layers_at_exact_bits_equal_the_trace(jet, c, d):
    net, x = jet
    values = trace(net, x)
    for name in _dense(net):
        base = CrossbarConfig(cell_bits=c, dac_bits=d)
        config = _with(base, adc_bits=adc_bits_exact(base))
        e = layer_error(net, name, config, x)
        assert (e.max_abs, e.rel_rms, e.exact_fraction, e.bound) == (0, 0.0, 1.0, 0)
        assert e.outputs == values[name].size
        # by hand: the layer's input and weights through the crossbar, the bias added
        layer = net[name]
        y = crossbar_matmul(
            values[layer.inputs[0]],
            layer.weight.T,
            x_bits=e.x_bits,
            x_signed=e.x_signed,
            w_bits=e.w_bits,
            w_signed=e.w_signed,
            config=config,
        )
        np.testing.assert_array_equal(y + layer.bias, values[name])
    assert not layer_error(net, "fc1", _with(config, adc_bits=4), x).exact


def test_tfc_w2a2_tiles_784_rows_exactly():
    net = load("tfc_w2a2")
    x = random_inputs(net, 8, seed=0)
    base = CrossbarConfig(rows=256, cell_bits=2, dac_bits=2)
    config = _with(base, adc_bits=adc_bits_exact(base))
    for name in ("fc0", "fc1"):
        e = layer_error(net, name, config, x)
        assert e.exact and (e.x_bits, e.x_signed) == ((8, False) if name == "fc0" else (2, False))
    mapping = crossbar_mapping(784, 64, x_bits=8, x_signed=False, w_bits=e.w_bits, config=config)
    assert mapping.row_tiles == -(-784 // 256)
    assert mapping.input_cycles == 8 // 2


def test_jet_tagger_error_shrinks_with_adc_bits(jet):
    net, _ = jet
    table = error_table(net, adc_bits=range(1, 13), cell_bits=(1, 2, 4), frames=64, seed=3)
    assert set(table.layer) == set(_dense(net))
    assert len(table) == 4 * 3 * 12
    for _, rows in table.groupby(["layer", "cell_bits"]):
        rows = rows.sort_values("adc_bits")
        exact = rows[rows.adc_bits >= rows.exact_adc_bits]
        assert (exact.max_abs == 0).all() and (exact.exact_fraction == 1).all()
        assert ((rows.adc_bits < rows.exact_adc_bits) == (rows.max_abs > 0)).all()
        # the worst-case bound halves with each bit, and holds
        assert (rows.max_abs <= rows.bound).all()
        assert (np.diff(rows.bound) <= 0).all()
        # once the output carries information (relative RMS error below 1), more bits never
        # make it worse; below that, a coarse ADC zeroing most sums can do better by luck
        useful = rows[rows.adc_bits >= rows[rows.rel_rms < 1].adc_bits.min()]
        assert len(useful) >= 3
        assert (np.diff(useful.rel_rms) <= 0).all()


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rows": 0}, r"rows must be an int in \[1, 65536\], not 0"),
        ({"rows": 2**16 + 1}, r"rows must be an int in \[1, 65536\], not 65537"),
        ({"cols": 0}, r"cols must be an int in \[1, 65536\], not 0"),
        ({"cell_bits": 9}, r"cell_bits must be an int in \[1, 8\], not 9"),
        ({"cell_bits": 2.0}, r"cell_bits must be an int in \[1, 8\], not 2\.0"),
        ({"cell_bits": True}, r"cell_bits must be an int in \[1, 8\], not True"),
        ({"dac_bits": 0}, r"dac_bits must be an int in \[1, 16\], not 0"),
        ({"adc_bits": 65}, r"adc_bits must be an int in \[1, 64\], not 65"),
        ({"adc_bits": "8"}, r"adc_bits must be an int in \[1, 64\], not '8'"),
        ({"adc_range": 0}, r"adc_range must be an int in \[1, 768\], not 0"),
        ({"adc_range": 769}, r"adc_range must be an int in \[1, 768\], not 769"),
    ],
)
def test_bad_config_raises(fields, message):
    with pytest.raises(ConfigError, match=f"^{message}$") as info:
        CrossbarConfig(**({"rows": 256, "cell_bits": 2} | fields))
    assert isinstance(info.value, ValueError)


def test_bad_operands_raise():
    config = CrossbarConfig()
    types = dict(x_bits=4, x_signed=True, w_bits=3, w_signed=False)
    w = np.ones((2, 1), dtype=np.int64)
    with pytest.raises(ValueError, match=r"^x must hold int4 values in \[-8, 7\], not 8$"):
        crossbar_matmul(np.array([[8, 0]]), w, config=config, **types)
    with pytest.raises(ValueError, match=r"^w must hold uint3 values in \[0, 7\], not -1$"):
        crossbar_matmul(np.array([[1, 0]]), -w, config=config, **types)
    with pytest.raises(
        ValueError, match=re.escape("w must have shape (3, N) to match x, not (2, 1)")
    ):
        crossbar_matmul(np.zeros((1, 3), dtype=np.int64), w, config=config, **types)
    with pytest.raises(TypeError, match=r"^x must be an integer array, not float64$"):
        crossbar_matmul(np.zeros((1, 2)), w, config=config, **types)
    with pytest.raises(ValueError, match=r"^x_bits must be an int in \[1, 32\], not 0$"):
        crossbar_matmul(
            np.zeros((1, 2), dtype=np.int64), w, config=config, **(types | {"x_bits": 0})
        )
    with pytest.raises(TypeError, match=r"^config must be a CrossbarConfig, not None$"):
        crossbar_matmul(np.zeros((1, 2), dtype=np.int64), w, config=None, **types)


def test_layer_error_needs_a_dense_layer(jet):
    net, x = jet
    config = CrossbarConfig()
    with pytest.raises(ValueError, match=r"^layer must be a dense layer, not clip layer 'relu1'$"):
        layer_error(net, "relu1", config, x)
    with pytest.raises(ValueError, match=r"^layer must name a layer of 'jet_tagger', not 'fc9'$"):
        layer_error(net, "fc9", config, x)
