"""The analog PIM crossbar as an integer-exact golden model (``docs/pim.md``, analog crossbar).

A crossbar of ``rows`` word lines by ``cols`` bit lines computes, in one analog step, the
column sums ``Σ_k u[k] · g[k, n]`` of the input levels ``u`` a DAC drives onto its rows and the
levels ``g`` programmed into its cells; an ADC per column turns each sum into a code. A matrix
product ``x @ w`` of integers is mapped onto it as follows (:func:`crossbar_matmul`):

1. **Weights**: offset-encoded to unsigned, ``w_u = w + 2^(w_bits-1)`` when signed (else
   ``w_u = w``), then cut into ``S = ceil(w_bits / c)`` slices of ``c = cell_bits`` bits,
   slice ``t`` holding bits ``[t·c, t·c + c)`` of ``w_u``; each slice is one column.
2. **Inputs**: applied ``d = dac_bits`` bits per cycle, each cycle's level unsigned in
   ``[0, 2^d - 1]``. An unsigned input's ``x_bits`` bits are cut from the LSB into cycles of
   at most ``d`` bits, cycle ``j`` weighted ``+2^(j·d)``. A signed (two's complement) input's
   ``x_bits - 1`` low bits are cut likewise, and its sign bit is the MSB slice: a cycle of its
   own, 1 bit wide, weighted ``-2^(x_bits-1)`` (``x = Σ_i<b-1 2^i x_i - 2^(b-1) x_(b-1)``). So
   the DAC never drives a negative level and every column sum is non-negative.
3. **Row tiles**: the ``K`` inputs are split into ``ceil(K / rows)`` tiles of at most
   ``rows`` consecutive rows; every (tile, cycle, slice, output) column sum is converted
   separately.
4. **ADC** (:func:`adc_codes`), for a column sum ``s`` (an integer in ``[0, max_column_sum]``,
   ``max_column_sum = rows · (2^c - 1) · (2^d - 1)``): the full scale ``F`` is ``adc_range``
   (default ``max_column_sum``); the step is the power of two ``Δ = 2^σ``, ``σ >= 0`` the
   smallest with ``F <= (2^A - 1) · 2^σ`` (``A = adc_bits``);
   ``code = clip(round_half_even(s / Δ), 0, 2^A - 1)``; the reconstructed value is
   ``code · Δ``.
5. **Digital shift-and-add**: ``acc = Σ (cycle weight) · 2^(t·c) · code · Δ`` over tiles,
   cycles and slices, in int64 (exact: every term is an integer).
6. **Offset correction**: ``y = acc - 2^(w_bits-1) · Σ_k x[k]`` when the weights are signed
   (``Σ_k x[k]`` computed exactly, digitally).

The result is an integer array; it equals ``x @ w`` exactly whenever
``adc_bits >= adc_bits_exact(config)`` (the step is then 1 and no sum clips).

Worked example: ``x = [5, -3]`` (int4), ``w = [[2], [-1]]`` (int3), 2-bit cells, a 1-bit DAC,
2 rows (one tile). ``max_column_sum = 2 · 3 · 1 = 6`` needs ``A = 3``; with ``A = 2`` the step
is 2 and the sums 5, 5, 3 of slice 0 and 1, 1 of slice 1 round to 4, 4, 4 and 0, 0:

>>> import numpy as np
>>> from codesign.models.pim.analog import CrossbarConfig, adc_bits_exact, crossbar_matmul
>>> x, w = np.array([[5, -3]]), np.array([[2], [-1]])
>>> types = dict(x_bits=4, x_signed=True, w_bits=3, w_signed=True)
>>> exact = CrossbarConfig(rows=2, cell_bits=2, dac_bits=1, adc_bits=3)
>>> adc_bits_exact(exact), exact.step
(3, 1)
>>> crossbar_matmul(x, w, config=exact, **types), x @ w
(array([[13]]), array([[13]]))
>>> coarse = CrossbarConfig(rows=2, cell_bits=2, dac_bits=1, adc_bits=2)
>>> coarse.step, crossbar_matmul(x, w, config=coarse, **types)
(2, array([[-20]]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = [
    "MAX_OPERAND_BITS",
    "MAX_ROWS",
    "CrossbarConfig",
    "CrossbarMapping",
    "LayerError",
    "adc_bits_exact",
    "adc_codes",
    "crossbar_mapping",
    "crossbar_matmul",
    "error_bound",
    "error_table",
    "layer_error",
    "operand_types",
]

#: Largest number of rows (and columns) of one crossbar; real arrays have 64 to 1024.
MAX_ROWS = 1 << 16
#: Widest input or weight operand :func:`crossbar_matmul` takes (descriptions stop at 32 bits).
MAX_OPERAND_BITS = 32
_INT64_MAX = (1 << 63) - 1


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class CrossbarConfig:
    """One analog crossbar with its converters.

    Parameters
    ----------
    rows
        Word lines: inputs summed per column in one conversion, 1 to :data:`MAX_ROWS`.
    cols
        Bit lines of one array, 1 to :data:`MAX_ROWS`. Columns convert independently, so it
        sets the number of arrays (:func:`crossbar_mapping`), never a value.
    cell_bits
        ``c``: bits stored per cell, 1 to 8 (levels ``0 .. 2^c - 1``).
    dac_bits
        ``d``: input bits applied per cycle, 1 (bit-serial) to 16. An input narrower than
        ``d`` takes one cycle and uses the DAC's low levels.
    adc_bits
        ``A``: the ADC's resolution, 1 to 64.
    adc_range
        The full scale ``F`` the ADC must cover without clipping, 1 to
        :attr:`max_column_sum`; ``None`` (default) is :attr:`max_column_sum`. A smaller range
        buys a finer step at the price of clipping the largest sums.

    The transfer function of a column sum ``s`` is ``code = clip(round_half_even(s / step),
    0, 2^A - 1)``, reconstructed as ``code · step``, with ``step`` the smallest power of two
    ``2^σ`` (``σ >= 0``) such that ``F <= (2^A - 1) · step`` (:attr:`step`).

    Raises :class:`~codesign.models.errors.ConfigError` (a ``ValueError``) naming the field.
    """

    rows: int = 256
    cols: int = 256
    cell_bits: int = 2
    dac_bits: int = 1
    adc_bits: int = 8
    adc_range: int | None = None

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("rows", 1, MAX_ROWS),
            ("cols", 1, MAX_ROWS),
            ("cell_bits", 1, 8),
            ("dac_bits", 1, 16),
            ("adc_bits", 1, 64),
        ):
            _check_field(self, name, lo, hi)
        if self.adc_range is not None:
            _check_field(self, "adc_range", 1, self.max_column_sum)

    @property
    def max_column_sum(self) -> int:
        """The largest column sum of one conversion: ``rows · (2^c - 1) · (2^d - 1)``."""
        return self.rows * ((1 << self.cell_bits) - 1) * ((1 << self.dac_bits) - 1)

    @property
    def full_scale(self) -> int:
        """``F``: :attr:`adc_range`, or :attr:`max_column_sum` when that is ``None``."""
        return self.max_column_sum if self.adc_range is None else self.adc_range

    @property
    def top_code(self) -> int:
        """The largest ADC code, ``2^A - 1``."""
        return (1 << self.adc_bits) - 1

    @property
    def step_shift(self) -> int:
        """``σ``: the smallest ``σ >= 0`` with ``full_scale <= (2^A - 1) · 2^σ``."""
        sigma = 0
        while self.full_scale > self.top_code << sigma:
            sigma += 1
        return sigma

    @property
    def step(self) -> int:
        """The ADC step ``2^σ`` (1 makes every conversion of an in-range sum exact)."""
        return 1 << self.step_shift


def _check_field(config: CrossbarConfig, name: str, lo: int, hi: int) -> None:
    value = getattr(config, name)
    if not _is_int(value) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    object.__setattr__(config, name, int(value))


def adc_bits_exact(config: CrossbarConfig) -> int:
    """The smallest ``adc_bits`` at which ``config``'s crossbar is exact for every operand.

    That is ``bit_length(max_column_sum)``: from there on the step is 1 and the top code
    covers every column sum. One bit less and either the step is at least 2 (a column sum of
    1 — a single input bit on a single cell holding 1 — converts to 0) or, with a reduced
    ``adc_range``, the largest column sum clips. Depends on ``rows``, ``cell_bits`` and
    ``dac_bits`` only.
    """
    if not isinstance(config, CrossbarConfig):
        raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
    return config.max_column_sum.bit_length()


def adc_codes(sums, config: CrossbarConfig) -> np.ndarray:
    """ADC codes of column sums (integers in ``[0, config.max_column_sum]``), int64.

    ``clip(round_half_even(sums / step), 0, 2^A - 1)``; the reconstructed values are
    ``codes * config.step``.
    """
    s = np.asarray(sums, dtype=np.int64)
    sigma = config.step_shift
    if sigma == 0:
        codes = s.copy()
    else:
        codes = s >> sigma
        rest = s & ((1 << sigma) - 1)
        half = 1 << (sigma - 1)
        codes += (rest > half) | ((rest == half) & ((codes & 1) == 1))
    if config.top_code < (config.max_column_sum >> sigma) + 1:  # else no code can reach it
        np.clip(codes, 0, config.top_code, out=codes)
    return codes


def error_bound(k: int, *, x_bits: int, x_signed: bool, w_bits: int, config: CrossbarConfig) -> int:
    """The largest ``|crossbar_matmul(x, w) - x @ w|`` the ADC can cause, for ``K = k``.

    Each conversion is off by at most ``e = max(step // 2, max_column_sum - (2^A - 1) · step)``
    (rounding; the second term is the clipping a reduced ``adc_range`` allows, else
    negative); the digital shift-and-add multiplies that by ``Σ |cycle weight|`` and
    ``Σ_t 2^(t·c)`` and the row tiles add up. 0 exactly when ``adc_bits >=
    adc_bits_exact(config)``; non-increasing in ``adc_bits``. A bound, not always attained.
    """
    if not isinstance(config, CrossbarConfig):
        raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
    if not _is_int(k) or k < 1:
        raise ValueError(f"k must be a positive int, not {k!r}")
    _check_operand("x", x_bits, x_signed)
    _check_operand("w", w_bits, True)
    per_conversion = max(config.step // 2, config.max_column_sum - config.top_code * config.step)
    cycles = _input_cycles(x_bits, bool(x_signed), config.dac_bits)
    slices = -(-w_bits // config.cell_bits)
    return (
        -(-k // config.rows)
        * per_conversion
        * sum(abs(wt) for *_, wt in cycles)
        * sum(1 << (t * config.cell_bits) for t in range(slices))
    )


@dataclass(frozen=True)
class CrossbarMapping:
    """How one ``(K, N)`` product maps onto crossbars of a :class:`CrossbarConfig`."""

    #: ``ceil(K / rows)``: groups of rows converted separately
    row_tiles: int
    #: ``ceil(w_bits / cell_bits)``: columns per weight
    weight_slices: int
    #: input cycles per vector (DAC applications, the sign cycle included)
    input_cycles: int
    #: ``ceil(N · weight_slices / cols)``: arrays side by side per row tile
    col_tiles: int

    @property
    def arrays(self) -> int:
        """Crossbars holding the weights: ``row_tiles · col_tiles``."""
        return self.row_tiles * self.col_tiles


def _input_cycles(x_bits: int, x_signed: bool, dac_bits: int) -> list[tuple[int, int, int]]:
    """(first bit, width, weight) of each input cycle, the sign cycle last."""
    magnitude = x_bits - 1 if x_signed else x_bits
    cycles = [(lo, min(dac_bits, magnitude - lo), 1 << lo) for lo in range(0, magnitude, dac_bits)]
    if x_signed:
        cycles.append((x_bits - 1, 1, -(1 << (x_bits - 1))))
    return cycles


def crossbar_mapping(
    k: int, n: int, *, x_bits: int, x_signed: bool, w_bits: int, config: CrossbarConfig
) -> CrossbarMapping:
    """The tiling of a ``(K, N)`` weight matrix with ``x_bits``/``w_bits`` operands."""
    for name, value in (("k", k), ("n", n)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int, not {value!r}")
    _check_operand("x", x_bits, x_signed)
    _check_operand("w", w_bits, True)
    slices = -(-w_bits // config.cell_bits)
    return CrossbarMapping(
        row_tiles=-(-k // config.rows),
        weight_slices=slices,
        input_cycles=len(_input_cycles(x_bits, x_signed, config.dac_bits)),
        col_tiles=-(-(n * slices) // config.cols),
    )


def _check_operand(name: str, bits, signed) -> None:
    if not _is_int(bits):
        raise TypeError(f"{name}_bits must be an int, not {bits!r}")
    if not 1 <= bits <= MAX_OPERAND_BITS:
        raise ValueError(f"{name}_bits must be an int in [1, {MAX_OPERAND_BITS}], not {bits!r}")
    if not isinstance(signed, bool | np.bool_):
        raise TypeError(f"{name}_signed must be a bool, not {signed!r}")


def _int_matrix(name: str, value, bits: int, signed: bool) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, not {arr.dtype}")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, not shape {arr.shape}")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not (lo <= arr.min() and arr.max() <= hi):  # numpy compares with Python ints exactly
        bad = (arr.min() if arr.min() < lo else arr.max()).item()
        kind = "int" if signed else "uint"
        raise ValueError(f"{name} must hold {kind}{bits} values in [{lo}, {hi}], not {bad!r}")
    return arr.astype(np.int64)


def crossbar_matmul(
    x,
    w,
    *,
    x_bits: int,
    x_signed: bool,
    w_bits: int,
    w_signed: bool,
    config: CrossbarConfig,
) -> np.ndarray:
    """``x @ w`` as the crossbar computes it: exact integers, ADC error included.

    Parameters
    ----------
    x
        Integer inputs, shape ``(batch, K)``, each an ``x_bits``-bit integer (two's
        complement when ``x_signed``).
    w
        Integer weights, shape ``(K, N)``, each a ``w_bits``-bit integer.
    x_bits, x_signed, w_bits, w_signed
        The operand types, 1 to :data:`MAX_OPERAND_BITS` bits.
    config
        The crossbar and its converters.

    Returns
    -------
    numpy.ndarray
        int64 of shape ``(batch, N)``, computed as the module docstring states step by step;
        equal to ``x @ w`` when ``config.adc_bits >= adc_bits_exact(config)``.

    Raises
    ------
    TypeError
        Non-integer arrays, a non-int width or non-bool signedness, a config of another type.
    ValueError
        A value outside its type, mismatched shapes, or an accumulation that could leave int64.
    """
    if not isinstance(config, CrossbarConfig):
        raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
    _check_operand("x", x_bits, x_signed)
    _check_operand("w", w_bits, w_signed)
    x = _int_matrix("x", x, x_bits, bool(x_signed))
    w = _int_matrix("w", w, w_bits, bool(w_signed))
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"w must have shape ({x.shape[1]}, N) to match x, not {w.shape}")
    (batch, k), n = x.shape, w.shape[1]
    c, rows = config.cell_bits, config.rows
    cycles = _input_cycles(x_bits, bool(x_signed), config.dac_bits)
    n_slices = -(-w_bits // c)
    sigma = config.step_shift

    # bound of the shift-and-add: every reconstructed value is at most `recon`
    recon = min(config.top_code, (config.max_column_sum >> sigma) + 1) << sigma
    bound = -(-k // rows) * recon * sum(abs(wt) for *_, wt in cycles) * (
        (1 << (n_slices * c)) - 1
    ) + (1 << w_bits) * k * (1 << x_bits)
    if bound > _INT64_MAX:
        raise ValueError(
            f"the accumulation bound must fit int64, not {bound} (K={k}, x_bits={x_bits}, "
            f"w_bits={w_bits}); narrow the operands"
        )

    pattern = x & ((1 << x_bits) - 1)  # two's complement bits
    planes = np.stack([(pattern >> lo) & ((1 << width) - 1) for lo, width, _ in cycles])
    w_u = w + (1 << (w_bits - 1)) if w_signed else w
    slices = np.stack([(w_u >> (t * c)) & ((1 << c) - 1) for t in range(n_slices)], axis=1)
    # digital weight of (cycle j, slice t): cycle weight · 2^(t·c)
    digital = np.array([[wt << (t * c) for t in range(n_slices)] for *_, wt in cycles])
    # every partial sum of the shift-and-add is an integer of magnitude <= bound: below 2^53
    # float64 (BLAS) adds them exactly, else int64 does
    dtype = np.float64 if bound < 1 << 53 else np.int64
    digital = digital.astype(dtype)

    planes_f = planes.astype(np.float64)  # sums < 2^53: float64 BLAS products are exact
    slices_f = slices.reshape(k, n_slices * n).astype(np.float64)
    acc = np.zeros((batch, n), dtype=np.int64)
    for r0 in range(0, k, rows):
        sums = planes_f[:, :, r0 : r0 + rows] @ slices_f[r0 : r0 + rows]  # (J, batch, S·N)
        values = adc_codes(sums.astype(np.int64), config) << sigma
        values = values.reshape(len(cycles), batch, n_slices, n).astype(dtype, copy=False)
        acc += np.tensordot(values, digital, axes=([0, 2], [0, 1])).astype(np.int64)
    if w_signed:
        acc -= (1 << (w_bits - 1)) * x.sum(axis=1, keepdims=True)
    return acc


# -- a network's dense layers on the crossbar ----------------------------------------------


@dataclass(frozen=True)
class LayerError:
    """A dense layer computed on the crossbar against its exact accumulator.

    The reference is the layer's output in :func:`codesign.models.golden.trace` (``x @ W.T +
    bias``, exact); the crossbar adds the bias digitally.
    """

    layer: str
    config: CrossbarConfig
    #: the operand types the crossbar streamed and stored
    x_bits: int
    x_signed: bool
    w_bits: int
    w_signed: bool
    #: compared values: frames · outputs
    outputs: int
    #: ``sqrt(Σ (y - ref)^2 / Σ ref^2)`` (0 when both are 0, inf when only ``ref`` is)
    rel_rms: float
    #: ``max |y - ref|``
    max_abs: int
    #: :func:`error_bound` of the layer: ``max_abs`` never exceeds it
    bound: int
    #: fraction of the values with ``y == ref``
    exact_fraction: float

    @property
    def exact(self) -> bool:
        """Every value equal to the exact accumulator."""
        return self.max_abs == 0


def operand_types(net, layer) -> tuple[int, bool, int, bool]:
    """``(x_bits, x_signed, w_bits, w_signed)`` of a dense layer on the crossbar: its input
    tensor's type (a bipolar one as int2: −1 and +1 are streamed as themselves) and the
    narrowest type covering its weights (unsigned when none is negative)."""
    from ..qtype import Kind, QType

    qt = net.tensors[layer.inputs[0]].qtype
    if qt.kind is Kind.BIPOLAR:  # -1 and +1 are stored as themselves: int2
        qt = QType.covering(-1, 1)
    wt = QType.covering(min(int(layer.weight.min()), 0), int(layer.weight.max()))
    return qt.bits, qt.signed, wt.bits, wt.signed


def _dense_layer(net, name: str):
    from ..ir import Network
    from ..layers import Dense

    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network, not {net!r}")
    try:
        layer = net[name]
    except KeyError:
        raise ValueError(f"layer must name a layer of {net.name!r}, not {name!r}") from None
    if not isinstance(layer, Dense):
        raise ValueError(f"layer must be a dense layer, not {layer.op} layer {name!r}")
    return layer


def _error_of(net, layer, config: CrossbarConfig, values: dict) -> LayerError:
    x_bits, x_signed, w_bits, w_signed = operand_types(net, layer)
    ref = values[layer.name]
    y = crossbar_matmul(
        values[layer.inputs[0]],
        layer.weight.T,
        x_bits=x_bits,
        x_signed=x_signed,
        w_bits=w_bits,
        w_signed=w_signed,
        config=config,
    )
    if layer.bias is not None:
        y += layer.bias
    diff = y - ref
    err2 = float(np.sum(np.square(diff.astype(np.float64))))
    ref2 = float(np.sum(np.square(ref.astype(np.float64))))
    rel = 0.0 if err2 == 0 else (math.sqrt(err2 / ref2) if ref2 else math.inf)
    return LayerError(
        layer=layer.name,
        config=config,
        x_bits=x_bits,
        x_signed=x_signed,
        w_bits=w_bits,
        w_signed=w_signed,
        outputs=int(ref.size),
        rel_rms=rel,
        max_abs=int(np.max(np.abs(diff))),
        bound=error_bound(
            int(layer.weight.shape[1]),
            x_bits=x_bits,
            x_signed=x_signed,
            w_bits=w_bits,
            config=config,
        ),
        exact_fraction=float(np.mean(diff == 0)),
    )


def layer_error(net, layer: str, config: CrossbarConfig, x) -> LayerError:
    """Dense layer ``layer`` of ``net`` on the crossbar, for the network inputs ``x``.

    The layer's integer input comes from :func:`codesign.models.golden.trace` of ``x``; the
    crossbar streams it with the width and signedness of its tensor's type (a bipolar tensor
    as int2) and stores the weights in the narrowest two's complement (unsigned when no weight
    is negative) type covering them; the bias is added digitally.
    """
    from ..golden import trace

    dense = _dense_layer(net, layer)
    if not isinstance(config, CrossbarConfig):
        raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
    return _error_of(net, dense, config, trace(net, x))


def error_table(
    net,
    adc_bits: Sequence[int | None] = (4, 6, 8, 10, 12, None),
    cell_bits: Sequence[int] = (1, 2, 4),
    dac_bits: int = 1,
    seed: int = 0,
    frames: int = 256,
    *,
    rows: int = 256,
    cols: int = 256,
    layers: Sequence[str] | None = None,
):
    """The crossbar's error on every dense layer of ``net`` (or ``layers``), as a DataFrame.

    One row per layer, ``cell_bits`` and ``adc_bits`` (``None``: :func:`adc_bits_exact` of
    that config), in that order, over ``frames`` inputs from
    :func:`codesign.models.golden.random_inputs` with ``seed``. Columns: ``layer``, ``k``,
    ``n``, ``x_type``, ``w_type``, ``rows``, ``cell_bits``, ``dac_bits``, ``adc_bits``,
    ``exact_adc_bits``, ``step``, ``rel_rms``, ``max_abs``, ``bound`` (:func:`error_bound`),
    ``exact_fraction``.
    """
    import pandas as pd

    from ..golden import random_inputs, trace
    from ..layers import Dense

    if layers is None:
        if not hasattr(net, "layers"):
            raise TypeError(f"net must be a Network, not {net!r}")
        layers = [la.name for la in net.layers if isinstance(la, Dense)]
    dense = [_dense_layer(net, name) for name in layers]
    values = trace(net, random_inputs(net, frames, seed))
    records = []
    for layer in dense:
        for c in cell_bits:
            for a in adc_bits:
                base = CrossbarConfig(rows=rows, cols=cols, cell_bits=c, dac_bits=dac_bits)
                exact_bits = adc_bits_exact(base)
                config = CrossbarConfig(
                    rows=rows,
                    cols=cols,
                    cell_bits=c,
                    dac_bits=dac_bits,
                    adc_bits=exact_bits if a is None else a,
                )
                e = _error_of(net, layer, config, values)
                records.append(
                    {
                        "layer": layer.name,
                        "k": int(layer.weight.shape[1]),
                        "n": int(layer.weight.shape[0]),
                        "x_type": f"{'int' if e.x_signed else 'uint'}{e.x_bits}",
                        "w_type": f"{'int' if e.w_signed else 'uint'}{e.w_bits}",
                        "rows": rows,
                        "cell_bits": c,
                        "dac_bits": dac_bits,
                        "adc_bits": config.adc_bits,
                        "exact_adc_bits": exact_bits,
                        "step": config.step,
                        "rel_rms": e.rel_rms,
                        "max_abs": e.max_abs,
                        "bound": e.bound,
                        "exact_fraction": e.exact_fraction,
                    }
                )
    return pd.DataFrame.from_records(records)
