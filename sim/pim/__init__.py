"""Cycle, energy and area model of the processing-in-memory family (``docs/pim.md``).

- :mod:`codesign.sim.pim.params` — the parameter table (``params.csv``): every device and
  circuit figure with its unit and source, and the unit costs derived from it;
- :mod:`codesign.sim.pim.model` — :class:`PimConfig`, :func:`evaluate` (per-layer and total
  cycles, latency, energy, area of a network's dense layers, inference or a floating-point
  training step) and :func:`sweep` (the same, vectorised over a grid of knobs);
- :mod:`codesign.sim.pim.compare` — SOT-MRAM against the NOR baseline with each ratio's
  parameter elasticities, and our programs' cycles against AritPIM's.
"""

from .compare import (
    ARITPIM,
    SEED_RATIOS,
    AritPimRow,
    Sensitivity,
    TechnologyRatios,
    aritpim_comparison,
    technology_ratios,
)
from .model import (
    Fmt,
    LayerCost,
    Mode,
    PimConfig,
    PimReport,
    ProgramProfile,
    dot_profile,
    evaluate,
    fp_mac_profile,
    fp_profile,
    sweep,
)
from .params import Param, PimParams, default_params, load_params, parameter_table

__all__ = [
    "ARITPIM",
    "SEED_RATIOS",
    "AritPimRow",
    "Fmt",
    "LayerCost",
    "Mode",
    "Param",
    "PimConfig",
    "PimParams",
    "PimReport",
    "ProgramProfile",
    "Sensitivity",
    "TechnologyRatios",
    "aritpim_comparison",
    "default_params",
    "dot_profile",
    "evaluate",
    "fp_mac_profile",
    "fp_profile",
    "load_params",
    "parameter_table",
    "sweep",
    "technology_ratios",
]
