"""The SOT-MRAM-style array against the NOR-only baseline, and our programs against AritPIM.

:func:`technology_ratios` evaluates one network on both digital technologies with the same
mapping and the same parameter table (:mod:`codesign.sim.pim.params`) and reports the
NOR / SOT-MRAM ratios of energy, latency, area and array cycles next to the seed paper's
(Wang et al., ISCAS 2020, against FloatPIM: 3.3× energy, 1.8× latency, 2.5× area), with the
elasticity of each ratio to each parameter, ``d log(ratio) / d log(parameter)``, so that the
statement of what drives a ratio is computed, not asserted.

:func:`aritpim_comparison` counts the compute cycles of our integer and floating-point
programs on both technologies against the cycle counts AritPIM publishes for MAGIC NOR,
bit-serial and element-parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.models.pim.integer import int_program

from .model import Fmt, PimConfig, PimReport, evaluate, fp_profile
from .params import PimParams, default_params

__all__ = [
    "ARITPIM",
    "ARITPIM_BIT_PARALLEL",
    "SEED_RATIOS",
    "AritPimRow",
    "Sensitivity",
    "TechnologyRatios",
    "aritpim_comparison",
    "technology_ratios",
]

#: The seed's improvements of its SOT-MRAM PIM training accelerator over FloatPIM (Wang et
#: al., "A New MRAM-based Process In-Memory Accelerator for Efficient Neural Network Training
#: with Floating Point Precision", ISCAS 2020, arXiv 2003.01551, abstract).
SEED_RATIOS = {"energy": 3.3, "latency": 1.8, "area": 2.5}

#: AritPIM's cycle counts for MAGIC NOR, bit-serial element-parallel (Leitersdorf, Ronen,
#: Kvatinsky, "AritPIM: High-Throughput In-Memory Arithmetic"): (op, fmt, variant) -> cycles;
#: a fixed-point add of N bits takes 18N + 1.
ARITPIM = {
    ("add", "fp32", "unsigned"): 2306,
    ("add", "fp32", "signed"): 3997,
    ("mul", "fp32", ""): 11586,
    ("add", "bf16", ""): 1075,
    ("mul", "bf16", ""): 1742,
}
#: AritPIM's bit-parallel fp32 figures (context only: our programs are bit-serial).
ARITPIM_BIT_PARALLEL = {("add", "fp32"): 817, ("mul", "fp32"): 1407}

_METRICS = ("energy", "latency", "area", "cycles")
_TECHS = ("sot-mram", "nor")


@dataclass(frozen=True)
class Sensitivity:
    """``d log(ratio) / d log(value)`` of one metric's NOR/SOT-MRAM ratio to one parameter."""

    metric: str
    tech: str
    name: str
    value: float
    unit: str
    elasticity: float

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _ratios(sot: PimReport, nor: PimReport) -> dict[str, float]:
    return {
        "energy": nor.energy_pj / sot.energy_pj,
        "latency": nor.latency_ns / sot.latency_ns,
        "area": nor.area_mm2 / sot.area_mm2,
        "cycles": nor.cycles / sot.cycles,
    }


@dataclass(frozen=True)
class TechnologyRatios:
    """One network on both digital technologies: the two reports, the ratios NOR / SOT-MRAM
    (above 1: SOT-MRAM is better by that factor), and every parameter's elasticity."""

    network: str
    training: bool
    fmt: str
    batch: int
    sot: PimReport
    nor: PimReport
    sensitivities: tuple[Sensitivity, ...]

    @property
    def ratios(self) -> dict[str, float]:
        """``energy``, ``latency``, ``area``, ``cycles``: NOR's over SOT-MRAM's."""
        return _ratios(self.sot, self.nor)

    def drivers(self, metric: str, top: int = 3) -> list[Sensitivity]:
        """The ``top`` parameters with the largest ``|elasticity|`` for ``metric``."""
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {', '.join(_METRICS)}, not {metric!r}")
        rows = [s for s in self.sensitivities if s.metric == metric and abs(s.elasticity) > 1e-9]
        return sorted(rows, key=lambda s: (-abs(s.elasticity), s.tech, s.name))[:top]

    def statement(self, top: int = 3) -> str:
        """One line per metric: the ratio and the parameters that drive it."""
        lines = []
        for metric in _METRICS:
            drv = self.drivers(metric, top)
            parts = ", ".join(f"{s.tech}.{s.name} ({s.elasticity:+.2f})" for s in drv)
            lines.append(
                f"{metric} ratio {self.ratios[metric]:.3g}x: "
                + (f"driven by {parts}" if parts else "no parameter moves it (program counts)")
            )
        return "\n".join(lines)

    def to_frame(self):
        """One row per metric: SOT-MRAM's and NOR's totals, our ratio, the seed's."""
        import pandas as pd

        unit = {"energy": "energy_pj", "latency": "latency_ns", "area": "area_mm2"}
        rows = []
        for metric in _METRICS:
            key = unit.get(metric, "cycles")
            rows.append(
                {
                    "metric": metric,
                    "unit": key.partition("_")[2] or "cycles",
                    "sot_mram": getattr(self.sot, key),
                    "nor": getattr(self.nor, key),
                    "ratio": self.ratios[metric],
                    "seed": SEED_RATIOS.get(metric, math.nan),
                }
            )
        return pd.DataFrame.from_records(rows)

    def as_dict(self) -> dict:
        return {
            "network": self.network,
            "training": self.training,
            "fmt": self.fmt,
            "batch": self.batch,
            "ratios": self.ratios,
            "seed": dict(SEED_RATIOS),
            "sot_mram": self.sot.as_dict(),
            "nor": self.nor.as_dict(),
            "sensitivities": [s.as_dict() for s in self.sensitivities],
        }


def technology_ratios(
    net,
    *,
    training: bool = True,
    fmt: str = "fp32",
    batch: int = 8,
    rows: int = 256,
    cols: int = 256,
    params: PimParams | None = None,
    step: float = 0.01,
) -> TechnologyRatios:
    """``net`` on SOT-MRAM and on the NOR baseline, same mapping, same table.

    Each parameter of the ``digital``, ``sot-mram`` and ``nor`` groups is scaled by
    ``1 ± step`` in turn; the elasticity is the central difference of ``log(ratio)`` over
    ``log(1 ± step)`` (exact for a ratio that is a power law in the parameter).
    """
    p = params or default_params()
    fmt = Fmt(fmt).value

    def both(pp: PimParams) -> tuple[PimReport, PimReport]:
        return tuple(
            evaluate(
                net,
                PimConfig(tech=t, rows=rows, cols=cols, fmt=fmt),
                training=training,
                batch=batch,
                params=pp,
            )
            for t in _TECHS
        )

    sot, nor = both(p)
    sens = []
    for tech, name in p.keys():
        if tech == "analog":
            continue
        row = p.param(tech, name)
        if row.value == 0:
            continue
        up = _ratios(*both(p.replace(tech, name, row.value * (1 + step))))
        down = _ratios(*both(p.replace(tech, name, row.value * (1 - step))))
        span = math.log1p(step) - math.log1p(-step)
        for metric in _METRICS:
            e = (math.log(up[metric]) - math.log(down[metric])) / span
            sens.append(Sensitivity(metric, tech, name, row.value, row.unit, e))
    return TechnologyRatios(net.name, bool(training), fmt, batch, sot, nor, tuple(sens))


@dataclass(frozen=True)
class AritPimRow:
    """One operation: our programs' compute cycles (LOAD/STORE beats excluded, as AritPIM
    counts with the operands in the array) on both technologies and AritPIM's MAGIC count."""

    op: str
    fmt: str
    variant: str
    sot_mram_cycles: int
    nor_cycles: int
    aritpim_cycles: int

    @property
    def nor_over_aritpim(self) -> float:
        """Our NOR program's cycles over AritPIM's (1: the same algorithm cost)."""
        return self.nor_cycles / self.aritpim_cycles

    @property
    def nor_over_sot(self) -> float:
        """How many times fewer cycles the SOT-MRAM array needs."""
        return self.nor_cycles / self.sot_mram_cycles

    def as_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["nor_over_aritpim"] = self.nor_over_aritpim
        d["nor_over_sot"] = self.nor_over_sot
        return d


def aritpim_comparison(*, int_bits=(8, 16, 32), fp: bool = True) -> list[AritPimRow]:
    """Rows for unsigned integer add of ``int_bits`` (AritPIM: ``18N + 1``) and, with ``fp``,
    bf16 and fp32 add and multiply from :mod:`codesign.models.pim.fp`."""
    rows = []
    for n in int_bits:
        sot, nor = (int_program("add", n, t).compute_cycles for t in _TECHS)
        rows.append(AritPimRow("add", f"uint{n}", "fixed point", sot, nor, 18 * n + 1))
    if fp:
        for (op, fmt, variant), ref in ARITPIM.items():
            sot, nor = (fp_profile(op, fmt, t).compute_cycles for t in _TECHS)
            rows.append(AritPimRow(op, fmt, variant, sot, nor, ref))
    return rows
