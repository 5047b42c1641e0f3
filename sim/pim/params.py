"""The parameter table of the PIM cost model (``sim/pim/params.csv``): every device and circuit
figure with its unit and its source — a publication (with the table or section and a URL where
one was found) or "assumed: <reason>".

Rows belong to one of four groups (the ``tech`` column):

- ``digital``: shared by both digital technologies (node, sense amplifier, row drivers,
  leakage);
- ``sot-mram``: the SOT-MRAM-style array of the ISCAS 2020 seed (2T1R cells, multi-row
  sensing, write-back in the same cycle);
- ``nor``: the NOR-only MAGIC baseline (FloatPIM-style ReRAM);
- ``analog``: the crossbar, its converters and the digital shift-and-add (ISAAC-derived).

:class:`PimParams` turns the rows into the unit costs the model needs: the energy of every
micro-op per column (:meth:`PimParams.op_energy_pj`), the array cycle time, the area and
leakage of a subarray, and the analog converters' energy, latency and area as functions of
their resolution. Every function of a resolution or a size also takes numpy arrays, so the
vectorised sweep and the single-design model share one formula.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

import numpy as np
from codesign.models.pim.isa import TECHNOLOGIES, Op, technology

__all__ = [
    "ADC_TABLE_BITS",
    "GROUPS",
    "Param",
    "PimParams",
    "default_params",
    "load_params",
    "parameter_table",
]

#: The groups of the ``tech`` column.
GROUPS = ("digital", "sot-mram", "nor", "analog")
#: Resolutions tabulated for the ADC (``adc_energy_pj_<b>b``, ``adc_area_um2_<b>b``).
ADC_TABLE_BITS = tuple(range(4, 11))

_REQUIRED = {
    "digital": (
        "feature_nm",
        "t_sense_ns",
        "e_sa_pj",
        "sa_area_f2",
        "row_driver_area_f2",
        "leak_column_nw",
    ),
    "sot-mram": (
        "t_write_ns",
        "e_write_pj",
        "read_voltage_v",
        "r_parallel_ohm",
        "cell_area_f2",
        "sense_amps_per_column",
        "write_driver_area_f2",
    ),
    "nor": (
        "t_switch_ns",
        "e_write_pj",
        "e_gate_pj",
        "read_power_uw",
        "cell_area_f2",
        "sense_amps_per_column",
        "write_driver_area_f2",
    ),
    "analog": (
        "xbar_cell_read_pj",
        "xbar_cell_area_um2",
        "xbar_read_ns",
        "dac_energy_pj_1b",
        "dac_area_um2_1b",
        "dac_bit_factor",
        "sh_energy_pj",
        "sh_area_um2",
        "shift_add_pj",
        "shift_add_area_um2",
        "shift_adds_per_adc",
        "adc_ns_8b",
        "adc_ns_per_bit_factor",
        "adc_energy_bit_factor",
        "adc_area_bit_factor",
        *(f"adc_energy_pj_{b}b" for b in ADC_TABLE_BITS),
        *(f"adc_area_um2_{b}b" for b in ADC_TABLE_BITS),
    ),
}


@dataclass(frozen=True)
class Param:
    """One row of the table."""

    tech: str  #: the group: ``digital``, ``sot-mram``, ``nor`` or ``analog``
    name: str
    value: float
    unit: str
    source: str  #: a citation, or "assumed: <reason>"

    def as_dict(self) -> dict:
        return {
            "tech": self.tech,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
        }


def _digital_tech(tech) -> str:
    name = technology(tech).name
    if name not in TECHNOLOGIES:  # pragma: no cover - technology() already checks
        raise ValueError(f"tech must be one of {', '.join(TECHNOLOGIES)}, not {tech!r}")
    return name


@dataclass(frozen=True, eq=False)
class PimParams:
    """The parameter table and the unit costs derived from it.

    Parameters
    ----------
    rows
        The table's rows; every group of :data:`GROUPS` must define its required names, every
        value must be a finite non-negative number and every source non-empty.
    where
        Where the rows came from, for error messages.
    """

    rows: tuple[Param, ...]
    where: str = "sim/pim/params.csv"
    _index: MappingProxyType = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], Param] = {}
        for p in self.rows:
            if not isinstance(p, Param):
                raise TypeError(f"rows must be Param objects, not {p!r}")
            if p.tech not in GROUPS:
                raise ValueError(
                    f"{self.where}: parameter {p.name!r}: tech must be one of "
                    f"{', '.join(GROUPS)}, not {p.tech!r}"
                )
            if not (isinstance(p.value, float | int) and math.isfinite(p.value) and p.value >= 0):
                raise ValueError(
                    f"{self.where}: parameter {p.tech}.{p.name}: value must be a finite "
                    f"number >= 0, not {p.value!r}"
                )
            if not p.source.strip():
                raise ValueError(f"{self.where}: parameter {p.tech}.{p.name}: source must be given")
            if (p.tech, p.name) in index:
                raise ValueError(f"{self.where}: parameter {p.tech}.{p.name} must be unique")
            index[(p.tech, p.name)] = p
        missing = [
            f"{t}.{n}" for t, names in _REQUIRED.items() for n in names if (t, n) not in index
        ]
        if missing:
            raise ValueError(f"{self.where}: must define {', '.join(missing)}")
        object.__setattr__(self, "_index", MappingProxyType(index))

    # -- access -------------------------------------------------------------------------------

    def __getitem__(self, key: tuple[str, str]) -> float:
        return float(self._index[key].value)

    def param(self, tech: str, name: str) -> Param:
        """The row ``tech.name``."""
        try:
            return self._index[(tech, name)]
        except KeyError:
            raise KeyError(f"no parameter {tech}.{name} in {self.where}") from None

    def keys(self) -> list[tuple[str, str]]:
        """Every ``(tech, name)``, in table order."""
        return [(p.tech, p.name) for p in self.rows]

    def replace(self, tech: str, name: str, value: float) -> PimParams:
        """A copy with ``tech.name`` set to ``value`` (its unit and source kept)."""
        old = self.param(tech, name)
        rows = tuple(
            Param(p.tech, p.name, float(value), p.unit, p.source) if p is old else p
            for p in self.rows
        )
        return PimParams(rows, self.where)

    def table(self) -> list[dict]:
        """All rows as dicts (``tech``, ``name``, ``value``, ``unit``, ``source``)."""
        return [p.as_dict() for p in self.rows]

    # -- digital ------------------------------------------------------------------------------

    def f2_um2(self) -> float:
        """The area of one F² in µm² at ``digital.feature_nm``."""
        f_um = self["digital", "feature_nm"] * 1e-3
        return f_um * f_um

    def cycle_ns(self, tech) -> float:
        """One array cycle of ``tech``: SOT-MRAM senses and writes back in the same cycle
        (``t_sense + t_write``); a MAGIC gate, an INIT and a LOAD each switch a cell
        (``max(t_switch, t_sense)``, the sense for a STORE)."""
        t = _digital_tech(tech)
        sense = self["digital", "t_sense_ns"]
        if t == "sot-mram":
            return sense + self["sot-mram", "t_write_ns"]
        return max(self["nor", "t_switch_ns"], sense)

    def op_energy_pj(self, tech) -> dict[Op, float]:
        """Energy of each micro-op of ``tech`` on one column, in pJ.

        SOT-MRAM: a sense of ``n`` rows against ``r`` references costs ``r · e_sa + n ·
        V²/R_p · t_sense`` (every activated cell conducts); a written row costs ``e_write``.
        INIT and LOAD write; STORE senses one row; COPY/NOT sense one row and write; AND, OR,
        NOR two rows against one reference; XOR, XNOR two rows against two references; MAJ three
        rows; FA senses the carry (MAJ, one reference) and the sum (XOR3, two references) and
        writes both. NOR: INIT and LOAD write (``e_write``), MNOR/MNOT switch the output
        (``e_gate``), STORE senses one cell (``e_sa + read_power · t_sense``).
        """
        t = _digital_tech(tech)
        e_sa = self["digital", "e_sa_pj"]
        t_sense = self["digital", "t_sense_ns"]
        if t == "nor":
            w = self["nor", "e_write_pj"]
            gate = self["nor", "e_gate_pj"]
            read = e_sa + self["nor", "read_power_uw"] * t_sense * 1e-3  # µW·ns = 1e-3 pJ
            return {
                Op.INIT0: w,
                Op.INIT1: w,
                Op.LOAD: w,
                Op.MNOR: gate,
                Op.MNOT: gate,
                Op.STORE: read,
            }
        v, r = self["sot-mram", "read_voltage_v"], self["sot-mram", "r_parallel_ohm"]
        cell = v * v / r * t_sense * 1e3  # W·ns = 1e3 pJ
        w = self["sot-mram", "e_write_pj"]

        def sense(n: int, refs: int) -> float:
            return refs * e_sa + n * cell

        return {
            Op.INIT0: w,
            Op.INIT1: w,
            Op.LOAD: w,
            Op.STORE: sense(1, 1),
            Op.COPY: sense(1, 1) + w,
            Op.NOT: sense(1, 1) + w,
            Op.AND: sense(2, 1) + w,
            Op.OR: sense(2, 1) + w,
            Op.NOR: sense(2, 1) + w,
            Op.XOR: sense(2, 2) + w,
            Op.XNOR: sense(2, 2) + w,
            Op.MAJ: sense(3, 1) + w,
            Op.FA: sense(3, 1) + sense(3, 2) + 2 * w,
        }

    def subarray_area_um2(self, tech, rows, cols):
        """Area of one ``rows`` × ``cols`` subarray of ``tech`` in µm²: the cells, per column
        the sense amplifiers and a write driver, per row a decoder/driver (arrays accepted)."""
        t = _digital_tech(tech)
        per_col = (
            self[t, "sense_amps_per_column"] * self["digital", "sa_area_f2"]
            + self[t, "write_driver_area_f2"]
        )
        f2 = (
            np.multiply(rows, cols) * self[t, "cell_area_f2"]
            + np.multiply(cols, per_col)
            + np.multiply(rows, self["digital", "row_driver_area_f2"])
        )
        return f2 * self.f2_um2()

    def leak_nw(self, cols):
        """Static power of one subarray's periphery in nW (the cells do not leak)."""
        return np.multiply(cols, self["digital", "leak_column_nw"])

    # -- analog -------------------------------------------------------------------------------

    def _adc_table(self, kind: str, factor: str, bits):
        b = np.asarray(bits)
        lo, hi = ADC_TABLE_BITS[0], ADC_TABLE_BITS[-1]
        table = np.array([self["analog", f"{kind}_{k}b"] for k in ADC_TABLE_BITS])
        inside = np.clip(b, lo, hi)
        return table[inside - lo] * self["analog", factor] ** (b - inside).astype(float)

    def adc_energy_pj(self, bits):
        """Energy of one conversion at ``bits`` of resolution: the table (4–10 bits), doubling
        per bit outside it (Walden)."""
        return self._adc_table("adc_energy_pj", "adc_energy_bit_factor", bits)

    def adc_area_um2(self, bits):
        """Area of one ADC of ``bits`` of resolution."""
        return self._adc_table("adc_area_um2", "adc_area_bit_factor", bits)

    def adc_ns(self, bits):
        """Conversion time: ``adc_ns_8b · (bits / 8) ** adc_ns_per_bit_factor`` (SAR: one
        comparison per bit)."""
        b = np.asarray(bits, dtype=float)
        return self["analog", "adc_ns_8b"] * (b / 8.0) ** self["analog", "adc_ns_per_bit_factor"]

    def dac_energy_pj(self, bits):
        """One drive of one row at ``bits`` of input resolution."""
        b = np.asarray(bits, dtype=float)
        return self["analog", "dac_energy_pj_1b"] * self["analog", "dac_bit_factor"] ** (b - 1)

    def dac_area_um2(self, bits):
        """One row's DAC of ``bits`` of resolution."""
        b = np.asarray(bits, dtype=float)
        return self["analog", "dac_area_um2_1b"] * self["analog", "dac_bit_factor"] ** (b - 1)

    def tile_area_um2(self, rows, cols, adcs, adc_bits, dac_bits):
        """One crossbar tile: cells, a DAC per row, a sample-and-hold per column, ``adcs``
        ADCs each with its shift-and-add units (arrays accepted)."""
        a = self["analog", "xbar_cell_area_um2"] * np.multiply(rows, cols)
        a = a + np.multiply(rows, self.dac_area_um2(dac_bits))
        a = a + np.multiply(cols, self["analog", "sh_area_um2"])
        per_adc = self.adc_area_um2(adc_bits) + (
            self["analog", "shift_adds_per_adc"] * self["analog", "shift_add_area_um2"]
        )
        return a + np.multiply(adcs, per_adc)


def load_params(path=None) -> PimParams:
    """Read a parameter table (``tech,name,value,unit,source``); ``path`` defaults to the
    packaged ``sim/pim/params.csv``.

    Raises ``ValueError`` naming the file and the parameter for a non-numeric value, an empty
    source or a missing required parameter.
    """
    if path is None:
        text = resources.files("codesign.sim.pim").joinpath("params.csv").read_text()
        where = "sim/pim/params.csv"
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        where = str(path)
    rows = []
    for row in csv.DictReader(text.splitlines()):
        tech, name = row.get("tech") or "", row.get("name") or ""
        try:
            value = float(row.get("value") or "")
        except ValueError:
            raise ValueError(
                f"{where}: parameter {tech}.{name}: value must be a number, "
                f"not {row.get('value')!r}"
            ) from None
        rows.append(Param(tech, name, value, row.get("unit") or "", (row.get("source") or "")))
    return PimParams(tuple(rows), where)


_DEFAULT: list[PimParams] = []


def default_params() -> PimParams:
    """The packaged table, read once."""
    if not _DEFAULT:
        _DEFAULT.append(load_params())
    return _DEFAULT[0]


def parameter_table(params: PimParams | None = None) -> list[dict]:
    """Every row of the (default) table, for the docs: ``tech``, ``name``, ``value``,
    ``unit``, ``source``."""
    return (params or default_params()).table()
