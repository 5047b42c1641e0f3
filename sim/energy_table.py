"""The energy parameter table of the whole project (``sim/energy.csv``): every value with
its unit and source (a publication, or an explicit "assumption:"), read by the dataflow
energy model (:mod:`codesign.sim.energy`) and the binary family's
(:mod:`codesign.sim.binary.energy`)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources

__all__ = ["REQUIRED", "EnergyParams", "Param", "default_params", "load_params"]


# -- the parameter table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One row of the parameter table."""

    name: str
    value: float
    unit: str
    source: str  #: a publication, or "assumption: ..." stating the assumption


@dataclass(frozen=True, eq=False)
class EnergyParams:
    """The parameter table (``sim/energy.csv`` unless given) and the unit energies derived
    from it, at the reference node (45 nm) and supply."""

    params: dict[str, Param]

    def __getitem__(self, name: str) -> float:
        return self.params[name].value

    def scale_at(self, node_nm: float) -> float:
        """Factor on a dynamic energy at ``node_nm`` and ``target_vdd``: ``(node / ref_node)
        * (target_vdd / ref_vdd)²``."""
        return (node_nm / self["ref_node_nm"]) * (self["target_vdd"] / self["ref_vdd"]) ** 2

    def static_scale_at(self, node_nm: float) -> float:
        """Factor on a static power at ``node_nm`` and ``target_vdd``: ``(node / ref_node)
        * (target_vdd / ref_vdd)``."""
        return (node_nm / self["ref_node_nm"]) * (self["target_vdd"] / self["ref_vdd"])

    def add_pj(self, bits: int) -> float:
        """An integer add of ``bits`` bits at the reference node."""
        a8, a32 = self["add8_pj"], self["add32_pj"]
        return a8 + (bits - 8) * (a32 - a8) / 24

    def mul_pj(self, a: int, b: int) -> float:
        """An ``a x b``-bit integer multiply at the reference node (linear in ``a * b``)."""
        m8, m32 = self["mul8_pj"], self["mul32_pj"]
        return m8 + (a * b - 64) * (m32 - m8) / (1024 - 64)

    def read_pj(self, bits: float, capacity_bits: float) -> float:
        """Reading ``bits`` bits from a memory of ``capacity_bits``, at the reference node."""
        pts = [(8192, self["sram_8kb_pj"]), (32768, self["sram_32kb_pj"])]
        pts.append((1 << 20, self["sram_1mb_pj"]))
        c = max(capacity_bits / 8, 1e-3)
        (c0, e0), (c1, e1) = pts[:2] if c <= pts[1][0] else pts[1:]
        slope = math.log(e1 / e0) / math.log(c1 / c0)
        return e0 * (c / c0) ** slope * bits / 64

    def sources(self) -> list[dict]:
        return [vars(p) for p in self.params.values()]


#: Parameters the table must define (both families read it).
REQUIRED = (
    "ref_node_nm",
    "ref_vdd",
    "target_vdd",
    "tulip_node_nm",
    "dataflow_node_nm",
    "add8_pj",
    "add32_pj",
    "mul8_pj",
    "mul32_pj",
    "sram_8kb_pj",
    "sram_32kb_pj",
    "sram_1mb_pj",
    "sram_write_factor",
    "tln_eval_pj",
    "xnor_pj",
    "gate_pj",
    "reg_bit_pj",
    "leak_ff_nw",
    "leak_sram_bit_nw",
    "leak_gate_nw",
)


def load_params(path=None, required: tuple[str, ...] = REQUIRED) -> EnergyParams:
    """Read the parameter table; ``path`` defaults to the packaged ``sim/energy.csv``.

    Raises ``ValueError`` naming the file and the row for a non-numeric or unsourced value,
    and the parameters of ``required`` the table does not define.
    """
    if path is None:
        text = resources.files("codesign.sim").joinpath("energy.csv").read_text()
        where = "sim/energy.csv"
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        where = str(path)
    params: dict[str, Param] = {}
    for row in csv.DictReader(text.splitlines()):
        name = row.get("name") or ""
        try:
            value = float(row.get("value") or "")
        except ValueError:
            raise ValueError(
                f"{where}: parameter {name!r}: value must be a number, not {row.get('value')!r}"
            ) from None
        if not (row.get("source") or "").strip():
            raise ValueError(f"{where}: parameter {name!r}: source must be given")
        params[name] = Param(name, value, row.get("unit") or "", row["source"].strip())
    missing = [n for n in required if n not in params]
    if missing:
        raise ValueError(f"{where}: must define {', '.join(missing)}")
    return EnergyParams(params)


_DEFAULT: list[EnergyParams] = []


def default_params() -> EnergyParams:
    """The packaged table, read once."""
    if not _DEFAULT:
        _DEFAULT.append(load_params())
    return _DEFAULT[0]
