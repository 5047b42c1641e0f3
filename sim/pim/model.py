"""Cycles, latency, energy and area of a network's dense layers on a PIM accelerator.

Digital mode (``docs/pim.md``, the cost model)
    A subarray of ``rows`` × ``cols`` one-bit cells runs one column program per output: the
    column computes one dot product of length ``k`` bit-serially, every column in lock step.
    Inference with integers runs the layer's dot-product program
    (:func:`codesign.models.pim.layer.dense_mapping`: the layer's operand and accumulator
    widths); a floating-point MAC is the ``fp_mul`` then the ``fp_add`` program of
    :mod:`codesign.models.pim.fp`, ``k`` of them per column. A layer's ``jobs`` outputs
    (``outputs × batch``) need ``ceil(jobs / cols)`` subarrays; with ``arrays`` subarrays
    available they run in ``passes = ceil(jobs / (cols · arrays_used))`` passes one after
    another. Then, with the program's op counts ``c[op]`` (per column) and cycles ``C``:

    - cycles = ``passes · C``, latency = cycles × the technology's cycle time;
    - dynamic energy = ``Σ_op c[op] · e[op] · jobs`` (every active column runs every
      micro-op; columns not in use are gated);
    - static energy = the provisioned subarrays' periphery leakage × latency;
    - area = provisioned subarrays × the subarray area; the subarrays are reused layer after
      layer (the operands stream in), so the provision is the largest layer's need.

    A training step of a dense layer ``y = x W`` (``x``: batch × K, ``W``: K × N) is three
    products in floating point: forward (``B·N`` outputs of length ``K``), input gradient
    ``dx = dy Wᵀ`` (``B·K`` outputs of length ``N``; not for the first layer, whose input
    needs no gradient) and weight gradient ``dW = xᵀ dy`` (``K·N`` outputs of length ``B``).

Analog mode
    A dense layer's weights stay in crossbar tiles (:func:`codesign.models.pim.analog.
    crossbar_mapping`: ``ceil(K/rows)`` row tiles × ``ceil(N·slices/cols)`` column tiles); an
    input vector is applied in ``input_cycles`` DAC steps; each step reads the crossbar
    (``xbar_read_ns``) and converts every used column (``ceil(cols/adc_share)`` ADCs per tile,
    pipelined with the next read). Energy: every weight cell read per step, a DAC drive per
    row per column tile per step, and per conversion a sample-and-hold, an ADC conversion and a
    shift-and-add. Every layer keeps its own tiles.

:func:`evaluate` gives one design; :func:`sweep` evaluates a grid of knobs in numpy, equal to
:func:`evaluate` point by point.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from types import MappingProxyType

import numpy as np
from codesign.models.errors import ConfigError
from codesign.models.pim.isa import TECHNOLOGIES, Op, technology
from codesign.models.pim.program import Program, RowsExhaustedError

from .params import PimParams, default_params

__all__ = [
    "MAX_SIZE",
    "Fmt",
    "LayerCost",
    "Mode",
    "PimConfig",
    "PimReport",
    "ProgramProfile",
    "dot_profile",
    "evaluate",
    "fp_mac_profile",
    "fp_profile",
    "sweep",
]

#: Largest ``rows`` or ``cols`` of a subarray or crossbar.
MAX_SIZE = 1 << 16
#: Rows the profiling builds programs with (any program using more does not fit anyway).
_PROFILE_ROWS = 4096


class Mode(enum.Enum):
    """Digital bit-serial subarrays or analog crossbars."""

    DIGITAL = "digital"
    ANALOG = "analog"


class Fmt(enum.Enum):
    """The arithmetic of the digital path: the layer's integers, or floating point."""

    INT = "int"
    BF16 = "bf16"
    FP32 = "fp32"


def _enum(cls, name: str, value):
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        known = ", ".join(m.value for m in cls)
        raise ConfigError(f"{name} must be one of {known}, not {value!r}") from None


def _int_in(name: str, value, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rule = f"an int >= {lo}" if hi is None else f"an int in [{lo}, {hi}]"
        raise ConfigError(f"{name} must be {rule}, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class PimConfig:
    """One PIM accelerator.

    Parameters
    ----------
    mode
        :class:`Mode` (or its value ``"digital"``/``"analog"``).
    tech
        Digital technology, ``"sot-mram"`` or ``"nor"`` (ignored in analog mode).
    rows, cols
        Subarray or crossbar size, rows 2 to :data:`MAX_SIZE`, cols 1 to :data:`MAX_SIZE`.
    arrays
        Subarrays (digital) or crossbar tiles (analog) available; ``None``: as many as the
        network needs (digital: its largest layer; analog: every layer's weights).
    fmt
        :class:`Fmt` of the digital path: ``"int"`` (the layers' integers; inference only),
        ``"bf16"`` or ``"fp32"`` (each MAC an fp multiply and an fp add).
    adc_bits, cell_bits, dac_bits
        Analog converters and cells: ADC resolution 1–64, bits per cell 1–8, DAC bits 1–16.
    adc_share
        Analog: columns sharing one ADC, 1 to ``cols`` (digital mode ignores it).
    """

    mode: Mode = Mode.DIGITAL
    tech: str = "sot-mram"
    rows: int = 256
    cols: int = 256
    arrays: int | None = None
    fmt: Fmt = Fmt.INT
    adc_bits: int = 8
    cell_bits: int = 2
    dac_bits: int = 1
    adc_share: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _enum(Mode, "mode", self.mode))
        object.__setattr__(self, "fmt", _enum(Fmt, "fmt", self.fmt))
        if not isinstance(self.tech, str) or self.tech not in TECHNOLOGIES:
            known = ", ".join(TECHNOLOGIES)
            raise ConfigError(f"tech must be one of {known}, not {self.tech!r}")
        for name, lo, hi in (
            ("rows", 2, MAX_SIZE),
            ("cols", 1, MAX_SIZE),
            ("adc_bits", 1, 64),
            ("cell_bits", 1, 8),
            ("dac_bits", 1, 16),
        ):
            object.__setattr__(self, name, _int_in(name, getattr(self, name), lo, hi))
        cap = self.cols if self.mode is Mode.ANALOG else None  # digital mode ignores it
        object.__setattr__(self, "adc_share", _int_in("adc_share", self.adc_share, 1, cap))
        if self.arrays is not None:
            object.__setattr__(self, "arrays", _int_in("arrays", self.arrays, 1))
        if self.mode is Mode.ANALOG and self.fmt is not Fmt.INT:
            raise ConfigError(f"fmt must be int in analog mode, not {self.fmt.value!r}")

    def with_(self, **changes) -> PimConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)

    @property
    def crossbar(self):
        """The analog golden's :class:`~codesign.models.pim.analog.CrossbarConfig`."""
        from codesign.models.pim.analog import CrossbarConfig

        return CrossbarConfig(
            rows=self.rows,
            cols=self.cols,
            cell_bits=self.cell_bits,
            dac_bits=self.dac_bits,
            adc_bits=self.adc_bits,
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d["mode"], d["fmt"] = self.mode.value, self.fmt.value
        return d


# -- program profiles -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramProfile:
    """What the cost model reads of a column program: micro-op counts, cycles, rows."""

    counts: Mapping[Op, int]
    cycles: int
    compute_cycles: int
    rows_used: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    @classmethod
    def of(cls, program: Program) -> ProgramProfile:
        return cls(dict(program.counts()), program.cycles, program.compute_cycles,
                   program.rows_used)  # fmt: skip

    def __add__(self, other: ProgramProfile) -> ProgramProfile:
        """Two programs run one after the other in the same column."""
        return ProgramProfile(
            Counter(self.counts) + Counter(other.counts),
            self.cycles + other.cycles,
            self.compute_cycles + other.compute_cycles,
            max(self.rows_used, other.rows_used),
        )

    def times(self, k: int) -> ProgramProfile:
        """The program run ``k`` times in the same column."""
        return ProgramProfile(
            {op: n * k for op, n in self.counts.items()},
            self.cycles * k,
            self.compute_cycles * k,
            self.rows_used,
        )

    def energy_pj(self, op_energy: Mapping[Op, float]) -> float:
        """``Σ_op counts[op] · op_energy[op]``: one column's dynamic energy."""
        return float(sum(n * op_energy[op] for op, n in sorted(self.counts.items())))


def _too_tall(what: str) -> ConfigError:
    return ConfigError(f"rows must be at least what {what} uses, more than {_PROFILE_ROWS}")


@cache
def dot_profile(
    k: int, bits: int, acc_bits: int, tech: str, *, signed: bool = True, bias: bool = False
) -> ProgramProfile:
    """The profile of :func:`~codesign.models.pim.integer.dot_program` for ``k`` pairs.

    The program is built for ``k`` = 1, 2 and 3: every pair after the first adds the same
    micro-ops and no rows, so the profile for any ``k`` is exact by extrapolation (checked on
    the three; if a future program breaks the pattern the whole program is built).
    """
    from codesign.models.pim.integer import dot_program

    def build(kk: int) -> ProgramProfile:
        try:
            prog = dot_program(
                kk, bits, acc_bits, tech, signed=signed, bias=bias, rows=_PROFILE_ROWS
            )
        except RowsExhaustedError:
            raise _too_tall(f"a {bits}-bit dot product on {tech}") from None
        return ProgramProfile.of(prog)

    if k <= 3:
        return build(k)
    p1, p2, p3 = build(1), build(2), build(3)
    ops = set(p1.counts) | set(p2.counts) | set(p3.counts)
    step = {op: p2.counts.get(op, 0) - p1.counts.get(op, 0) for op in ops}
    linear = (
        all(p3.counts.get(op, 0) - p2.counts.get(op, 0) == step[op] for op in ops)
        and p3.rows_used == p2.rows_used
        and p3.cycles - p2.cycles == p2.cycles - p1.cycles
        and p3.compute_cycles - p2.compute_cycles == p2.compute_cycles - p1.compute_cycles
    )
    if not linear:  # pragma: no cover - today's dot_program is linear from k = 1
        return build(k)
    return ProgramProfile(
        {op: p1.counts.get(op, 0) + (k - 1) * step[op] for op in ops},
        p1.cycles + (k - 1) * (p2.cycles - p1.cycles),
        p1.compute_cycles + (k - 1) * (p2.compute_cycles - p1.compute_cycles),
        p2.rows_used,
    )


def _fp_module():
    try:
        from codesign.models.pim import fp
    except ImportError as e:  # pragma: no cover - depends on models/pim/fp.py having landed
        raise ConfigError(
            "fmt must be int until the floating-point programs (models/pim/fp.py) exist, "
            f"not floating point ({e})"
        ) from None
    return fp


@cache
def fp_profile(op: str, fmt: str, tech: str) -> ProgramProfile:
    """The profile of :func:`codesign.models.pim.fp.fp_program` (``op`` ``add``/``mul``)."""
    fp = _fp_module()
    try:
        prog = fp.fp_program(op, fmt, tech, rows=_PROFILE_ROWS)
    except RowsExhaustedError:
        raise _too_tall(f"the {fmt} {op} program on {tech}") from None
    return ProgramProfile.of(prog)


def fp_mac_profile(fmt: str, tech: str) -> ProgramProfile:
    """One floating-point MAC: the ``mul`` program, then the ``add`` program."""
    return fp_profile("mul", fmt, tech) + fp_profile("add", fmt, tech)


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCost:
    """One layer (one phase of it, in a training step) on the accelerator.

    Attributes
    ----------
    layer, phase
        The dense layer and ``forward``, ``input_grad`` or ``weight_grad``.
    k
        MACs per output (the dot-product length).
    jobs
        Outputs computed: columns run (digital), output vectors' elements (analog).
    arrays
        Subarrays or crossbar tiles this layer uses.
    passes
        Digital: rounds of ``arrays`` subarrays one after another (analog: 1).
    utilisation
        Digital: active columns over the columns of the subarrays used, averaged over the
        passes; analog: weight cells over the cells of its tiles. In (0, 1].
    cycles
        Digital: array cycles; analog: DAC steps (``batch × input_cycles``).
    latency_ns, energy_pj
        Time, and energy (dynamic and static).
    rows_used
        Digital: rows the column program touches; analog: rows of the fullest tile.
    energy_breakdown
        Energy by component (micro-op names, ``static``; analog: ``crossbar``, ``dac``,
        ``sample_hold``, ``adc``, ``shift_add``), in pJ.
    """

    layer: str
    phase: str
    k: int
    jobs: int
    arrays: int
    passes: int
    utilisation: float
    cycles: int
    latency_ns: float
    energy_pj: float
    rows_used: int
    energy_breakdown: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_breakdown", MappingProxyType(dict(self.energy_breakdown)))

    def as_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["energy_breakdown"] = dict(self.energy_breakdown)
        return d


@dataclass(frozen=True)
class PimReport:
    """A network on a :class:`PimConfig`: per-layer rows and the totals.

    Layers run one after another: latency, cycles and energy add up; the area is that of the
    provisioned subarrays or tiles (:attr:`arrays`).
    """

    network: str
    config: PimConfig
    training: bool
    batch: int
    layers: tuple[LayerCost, ...]
    arrays: int
    area_mm2: float

    @property
    def latency_ns(self) -> float:
        return float(sum(la.latency_ns for la in self.layers))

    @property
    def energy_pj(self) -> float:
        return float(sum(la.energy_pj for la in self.layers))

    @property
    def cycles(self) -> int:
        return int(sum(la.cycles for la in self.layers))

    @property
    def utilisation(self) -> float:
        """The layers' utilisation weighted by their latency."""
        total = self.latency_ns
        return float(sum(la.utilisation * la.latency_ns for la in self.layers) / total)

    def totals(self) -> dict:
        return {
            "cycles": self.cycles,
            "latency_ns": self.latency_ns,
            "energy_pj": self.energy_pj,
            "area_mm2": self.area_mm2,
            "arrays": self.arrays,
            "utilisation": self.utilisation,
        }

    def as_dict(self) -> dict:
        """Plain data for ``--json``: the config, every layer row and the totals."""
        return {
            "network": self.network,
            "config": self.config.as_dict(),
            "training": self.training,
            "batch": self.batch,
            "layers": [la.as_dict() for la in self.layers],
            "totals": self.totals(),
        }

    def to_frame(self):
        """The layer rows as a pandas DataFrame (breakdown columns prefixed ``e_``)."""
        import pandas as pd

        rows = []
        for la in self.layers:
            d = la.as_dict()
            for part, e in d.pop("energy_breakdown").items():
                d[f"e_{part}"] = e
            rows.append(d)
        return pd.DataFrame.from_records(rows)


# -- the network's work -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Work:
    """One matrix product of one layer: ``jobs`` outputs of length ``k``."""

    layer: str
    phase: str
    k: int
    jobs: int
    profile: ProgramProfile | None = None  # digital
    n: int = 0  # analog: outputs per vector
    x_bits: int = 0
    x_signed: bool = False
    w_bits: int = 0


def _dense_layers(net) -> list:
    from codesign.models.ir import Network
    from codesign.models.layers import Dense

    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network, not {net!r}")
    out = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            out.append(layer)
        elif getattr(layer, "weight", None) is not None:
            raise ConfigError(
                f"layers must be dense (the PIM model maps only those), not {layer.op} "
                f"layer {layer.name!r}"
            )
    if not out:
        raise ConfigError(f"net must have a dense layer, not none in {net.name!r}")
    return out


def _digital_work(net, config: PimConfig, training: bool, batch: int) -> list[_Work]:
    from codesign.models.pim.layer import dense_mapping

    dense = _dense_layers(net)
    tech = config.tech
    if config.fmt is Fmt.INT:
        if training:
            raise ConfigError("fmt must be bf16 or fp32 for a training step, not 'int'")
        work = []
        for layer in dense:
            m = dense_mapping(net, layer.name, tech)
            prof = dot_profile(m.k, m.bits, m.acc_bits, tech, bias=m.bias is not None)
            work.append(_Work(layer.name, "forward", m.k, m.n * batch, prof))
        return work
    mac = fp_mac_profile(config.fmt.value, tech)
    work = []
    for layer in dense:
        n, k = (int(s) for s in layer.weight.shape)
        work.append(_Work(layer.name, "forward", k, n * batch, mac.times(k)))
    if training:
        for i, layer in reversed(list(enumerate(dense))):
            n, k = (int(s) for s in layer.weight.shape)
            work.append(_Work(layer.name, "weight_grad", batch, k * n, mac.times(batch)))
            if i:
                work.append(_Work(layer.name, "input_grad", n, k * batch, mac.times(n)))
    return work


def _analog_work(net, batch: int) -> list[_Work]:
    from codesign.models.pim.analog import operand_types

    work = []
    for layer in _dense_layers(net):
        n, k = (int(s) for s in layer.weight.shape)
        x_bits, x_signed, w_bits, _ = operand_types(net, layer)
        work.append(_Work(layer.name, "forward", k, n * batch, None, n, x_bits, x_signed, w_bits))
    return work


def _check_batch(batch) -> int:
    return _int_in("batch", batch, 1)


# -- single design ----------------------------------------------------------------------------


def evaluate(
    net, config: PimConfig | None = None, *, training: bool = False, batch: int = 1,
    params: PimParams | None = None,
) -> PimReport:  # fmt: skip
    """Cycles, latency, energy and area of ``net``'s dense layers on ``config``.

    Parameters
    ----------
    net
        A :class:`~codesign.models.ir.Network` whose weighted layers are all dense.
    config
        The accelerator (default :class:`PimConfig()`: digital SOT-MRAM, 256 × 256, int).
    training
        A training step (digital, ``fmt`` bf16/fp32): forward, input and weight gradients.
    batch
        Input vectors per inference or training step.
    params
        The parameter table (default: the packaged ``sim/pim/params.csv``).

    Raises
    ------
    ConfigError
        A program taller than ``rows``, too few ``arrays`` for the analog weights, training
        in analog mode or with integers, a network with weighted layers that are not dense.
    """
    config = PimConfig() if config is None else config
    if not isinstance(config, PimConfig):
        raise TypeError(f"config must be a PimConfig, not {config!r}")
    batch = _check_batch(batch)
    p = params or default_params()
    if config.mode is Mode.ANALOG:
        if training:
            raise ConfigError("mode must be digital for a training step, not 'analog'")
        layers, arrays, area = _evaluate_analog(_analog_work(net, batch), config, batch, p)
    else:
        layers, arrays, area = _evaluate_digital(
            _digital_work(net, config, training, batch), config, p
        )
    return PimReport(net.name, config, bool(training), batch, tuple(layers), arrays, area)


def _evaluate_digital(work: list[_Work], config: PimConfig, p: PimParams):
    tech = technology(config.tech).name
    cycle_ns = p.cycle_ns(tech)
    e_op = p.op_energy_pj(tech)
    cols = config.cols
    for w in work:
        if w.profile.rows_used > config.rows:
            raise ConfigError(
                f"rows must be at least {w.profile.rows_used} (the rows layer {w.layer!r}'s "
                f"{w.phase} program uses on {tech}), not {config.rows}"
            )
    need = [math.ceil(w.jobs / cols) for w in work]
    used = [n if config.arrays is None else min(n, config.arrays) for n in need]
    provisioned = max(need) if config.arrays is None else config.arrays
    leak_nw = float(p.leak_nw(cols)) * provisioned
    layers = []
    for w, u in zip(work, used, strict=True):
        passes = math.ceil(w.jobs / (cols * u))
        cycles = passes * w.profile.cycles
        latency = cycles * cycle_ns
        breakdown = {op.name: n * e_op[op] * w.jobs for op, n in sorted(w.profile.counts.items())}
        breakdown["static"] = leak_nw * latency * 1e-6  # nW·ns = 1e-6 pJ
        layers.append(
            LayerCost(
                w.layer,
                w.phase,
                w.k,
                w.jobs,
                u,
                passes,
                w.jobs / (passes * u * cols),
                cycles,
                latency,
                float(sum(breakdown.values())),
                w.profile.rows_used,
                breakdown,
            )
        )
    area = float(p.subarray_area_um2(tech, config.rows, cols)) * provisioned * 1e-6
    return layers, provisioned, area


def _analog_mapping(w: _Work, config: PimConfig):
    from codesign.models.pim.analog import crossbar_mapping

    return crossbar_mapping(
        w.k, w.n, x_bits=w.x_bits, x_signed=w.x_signed, w_bits=w.w_bits, config=config.crossbar
    )


def _evaluate_analog(work: list[_Work], config: PimConfig, batch: int, p: PimParams):
    rows, cols = config.rows, config.cols
    adcs = math.ceil(cols / config.adc_share)
    t_adc = float(p.adc_ns(config.adc_bits))
    t_xbar = p["analog", "xbar_read_ns"]
    maps = [_analog_mapping(w, config) for w in work]
    tiles = sum(m.arrays for m in maps)
    if config.arrays is not None and config.arrays < tiles:
        raise ConfigError(
            f"arrays must be at least {tiles} (the crossbars holding every layer's weights) "
            f"in analog mode, not {config.arrays}"
        )
    provisioned = tiles if config.arrays is None else config.arrays
    e_adc = float(p.adc_energy_pj(config.adc_bits))
    e_dac = float(p.dac_energy_pj(config.dac_bits))
    layers = []
    for w, m in zip(work, maps, strict=True):
        used_cols = w.n * m.weight_slices
        convert = m.input_cycles * m.row_tiles * used_cols * batch
        per_adc = math.ceil(min(cols, used_cols) / adcs)
        stage = max(t_xbar, per_adc * t_adc)
        fill = min(t_xbar, per_adc * t_adc)
        steps = batch * m.input_cycles
        breakdown = {
            "crossbar": steps * w.k * used_cols * p["analog", "xbar_cell_read_pj"],
            "dac": steps * w.k * m.col_tiles * e_dac,
            "sample_hold": convert * p["analog", "sh_energy_pj"],
            "adc": convert * e_adc,
            "shift_add": convert * p["analog", "shift_add_pj"],
        }
        layers.append(
            LayerCost(
                w.layer,
                w.phase,
                w.k,
                w.jobs,
                m.arrays,
                1,
                w.k * used_cols / (m.arrays * rows * cols),
                steps,
                steps * stage + fill,
                float(sum(breakdown.values())),
                min(rows, w.k),
                breakdown,
            )
        )
    tile = float(p.tile_area_um2(rows, cols, adcs, config.adc_bits, config.dac_bits))
    return layers, provisioned, tile * provisioned * 1e-6


# -- vectorised sweep -------------------------------------------------------------------------


def _knobs(name: str, values) -> list:
    if isinstance(values, str) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name} must list at least one value, not {values!r}")
    return values


def sweep(
    net,
    *,
    modes: Sequence[str] = ("digital",),
    techs: Sequence[str] = ("sot-mram", "nor"),
    rows: Sequence[int] = (256,),
    cols: Sequence[int] = (256,),
    arrays: Sequence[int | None] = (None,),
    adc_bits: Sequence[int] = (8,),
    cell_bits: Sequence[int] = (2,),
    dac_bits: Sequence[int] = (1,),
    adc_share: Sequence[int] = (128,),
    fmt: str = "int",
    training: bool = False,
    batch: int = 1,
    params: PimParams | None = None,
):
    """Every combination of the knobs, evaluated in numpy: a pandas DataFrame, one row each.

    Digital points take every ``techs × rows × cols × arrays``; analog points every ``rows ×
    cols × arrays × adc_bits × cell_bits × dac_bits × adc_share`` (``adc_share`` above
    ``cols`` is skipped). The column programs and crossbar mappings are computed once; the
    knobs enter in closed form. Columns: the :class:`PimConfig` fields, ``feasible`` (the
    programs fit ``rows``; analog: ``arrays`` hold the weights), ``arrays_used`` (provisioned),
    ``cycles``, ``latency_ns``, ``energy_pj``, ``area_mm2``, ``utilisation``. Where
    ``feasible`` holds, each row equals :func:`evaluate` of its config.
    """
    import pandas as pd

    p = params or default_params()
    batch = _check_batch(batch)
    frames = []
    for mode in (_enum(Mode, "mode", m) for m in _knobs("modes", modes)):
        if mode is Mode.DIGITAL:
            for tech in _knobs("techs", techs):
                base = PimConfig(mode=mode, tech=tech, fmt=fmt)
                grid = list(itertools.product(_knobs("rows", rows), _knobs("cols", cols),
                                              _knobs("arrays", arrays)))  # fmt: skip
                for r, c, a in grid:  # validate every point's knobs as a config would
                    base.with_(rows=r, cols=c, arrays=a)
                work = _digital_work(net, base, training, batch)
                frames.append(_sweep_digital(work, base, grid, p))
        else:
            base = PimConfig(mode=mode)
            grid = []
            for r, c, a, ab, cb, db, s in itertools.product(
                _knobs("rows", rows), _knobs("cols", cols), _knobs("arrays", arrays),
                _knobs("adc_bits", adc_bits), _knobs("cell_bits", cell_bits),
                _knobs("dac_bits", dac_bits), _knobs("adc_share", adc_share),
            ):  # fmt: skip
                if s <= c:
                    grid.append(base.with_(rows=r, cols=c, arrays=a, adc_bits=ab,
                                           cell_bits=cb, dac_bits=db, adc_share=s))  # fmt: skip
            frames.append(_sweep_analog(_analog_work(net, batch), grid, batch, p))
    return pd.concat(frames, ignore_index=True)


def _config_columns(configs: list[PimConfig]) -> dict:
    import pandas as pd

    cols = {}
    for name in PimConfig.__dataclass_fields__:
        values = [getattr(c, name) for c in configs]
        if name in ("mode", "fmt"):
            values = [v.value for v in values]
        cols[name] = pd.array(values, dtype="Int64") if name == "arrays" else values
    return cols


def _sweep_digital(work: list[_Work], base: PimConfig, grid, p: PimParams):
    import pandas as pd

    tech = base.tech
    r = np.array([g[0] for g in grid], dtype=np.int64)
    c = np.array([g[1] for g in grid], dtype=np.int64)
    cap = np.array([np.inf if g[2] is None else g[2] for g in grid], dtype=float)
    jobs = np.array([w.jobs for w in work], dtype=np.int64)[:, None]  # (layers, 1)
    prog_cycles = np.array([w.profile.cycles for w in work], dtype=np.int64)[:, None]
    e_op = p.op_energy_pj(tech)
    dyn = np.array([w.profile.energy_pj(e_op) * w.jobs for w in work])[:, None]
    rows_used = max(w.profile.rows_used for w in work)

    need = -(-jobs // c)  # (layers, points)
    used = np.minimum(need, cap)
    passes = np.ceil(jobs / (c * used))
    cycles = passes * prog_cycles
    latency = cycles * p.cycle_ns(tech)
    provisioned = np.where(np.isinf(cap), need.max(axis=0), cap)
    static = p.leak_nw(c) * provisioned * latency * 1e-6
    util = jobs / (passes * used * c)
    configs = [base.with_(rows=g[0], cols=g[1], arrays=g[2]) for g in grid]
    total_latency = latency.sum(axis=0)
    return pd.DataFrame(
        {
            **_config_columns(configs),
            "feasible": r >= rows_used,
            "arrays_used": provisioned.astype(np.int64),
            "cycles": cycles.sum(axis=0).astype(np.int64),
            "latency_ns": total_latency,
            "energy_pj": (dyn + static).sum(axis=0),
            "area_mm2": p.subarray_area_um2(tech, r, c) * provisioned * 1e-6,
            "utilisation": (util * latency).sum(axis=0) / total_latency,
        }
    )


def _sweep_analog(work: list[_Work], grid: list[PimConfig], batch: int, p: PimParams):
    import pandas as pd

    # the mapping of every (layer, rows, cols, cell_bits, dac_bits) once, from the golden
    maps = {}
    for cfg in grid:
        key = (cfg.rows, cfg.cols, cfg.cell_bits, cfg.dac_bits)
        if key not in maps:
            maps[key] = [_analog_mapping(w, cfg) for w in work]

    def field_of(attr: str) -> np.ndarray:  # (layers, points)
        return np.array(
            [[getattr(m, attr) for m in maps[(g.rows, g.cols, g.cell_bits, g.dac_bits)]]
             for g in grid], dtype=np.int64,
        ).T  # fmt: skip

    tiles, row_tiles, col_tiles = field_of("arrays"), field_of("row_tiles"), field_of("col_tiles")
    slices, cycles_in = field_of("weight_slices"), field_of("input_cycles")
    rows = np.array([g.rows for g in grid], dtype=np.int64)
    cols = np.array([g.cols for g in grid], dtype=np.int64)
    a_bits = np.array([g.adc_bits for g in grid], dtype=np.int64)
    d_bits = np.array([g.dac_bits for g in grid], dtype=np.int64)
    share = np.array([g.adc_share for g in grid], dtype=np.int64)
    cap = np.array([np.inf if g.arrays is None else g.arrays for g in grid], dtype=float)
    k = np.array([w.k for w in work], dtype=np.int64)[:, None]
    n = np.array([w.n for w in work], dtype=np.int64)[:, None]

    adcs = -(-cols // share)
    used_cols = n * slices
    convert = cycles_in * row_tiles * used_cols * batch
    per_adc = -(-np.minimum(cols, used_cols) // adcs)
    t_adc = p.adc_ns(a_bits)
    t_xbar = p["analog", "xbar_read_ns"]
    stage = np.maximum(t_xbar, per_adc * t_adc)
    fill = np.minimum(t_xbar, per_adc * t_adc)
    steps = batch * cycles_in
    latency = steps * stage + fill
    energy = (
        steps * k * used_cols * p["analog", "xbar_cell_read_pj"]
        + steps * k * col_tiles * p.dac_energy_pj(d_bits)
        + convert * p["analog", "sh_energy_pj"]
        + convert * p.adc_energy_pj(a_bits)
        + convert * p["analog", "shift_add_pj"]
    )
    total_tiles = tiles.sum(axis=0)
    provisioned = np.where(np.isinf(cap), total_tiles, cap)
    util = k * used_cols / (tiles * rows * cols)
    total_latency = latency.sum(axis=0)
    tile_area = p.tile_area_um2(rows, cols, adcs, a_bits, d_bits)
    return pd.DataFrame(
        {
            **_config_columns(grid),
            "feasible": provisioned >= total_tiles,
            "arrays_used": provisioned.astype(np.int64),
            "cycles": steps.sum(axis=0).astype(np.int64),
            "latency_ns": total_latency,
            "energy_pj": energy.sum(axis=0),
            "area_mm2": tile_area * provisioned * 1e-6,
            "utilisation": (util * latency).sum(axis=0) / total_latency,
        }
    )
