"""Cycle model of the deformable-convolution family's gather engine, driven by real offsets.

- :mod:`codesign.sim.deform.config` — the engine's parameters (:class:`GatherConfig`) and the
  RTL's and a CoDeNet-style parameter set;
- :mod:`codesign.sim.deform.gather` — one layer's cycles per window and frame, fetch-group
  (bank-conflict) histogram and external traffic, vectorised over windows and frames;
- :mod:`codesign.sim.deform.network` — every deformable layer of a network on the golden
  trace of seeded frames, per offset variant.
"""

from .config import CODENET_ROWS, GatherConfig, Overlap, codenet_config, rtl_config
from .gather import (
    DeformShape,
    DeformTiming,
    is_rtl,
    layer_timing,
    mac_cycles,
    positions_timing,
)
from .network import NetworkTiming, network_timing

__all__ = [
    "CODENET_ROWS",
    "DeformShape",
    "DeformTiming",
    "GatherConfig",
    "NetworkTiming",
    "Overlap",
    "codenet_config",
    "is_rtl",
    "layer_timing",
    "mac_cycles",
    "network_timing",
    "positions_timing",
    "rtl_config",
]
