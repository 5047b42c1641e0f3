"""Amaranth hardware of the processing-in-memory family (``docs/pim.md``).

- :mod:`codesign.hdl.pim.array` — :class:`PimArray`, a digital bit-serial subarray with its
  instruction memory and controller, running :mod:`codesign.models.pim` programs;
- :mod:`codesign.hdl.pim.harness` — :class:`PimUnits`, several arrays behind one top module
  for one simulation build;
- :mod:`codesign.hdl.pim.cocotb_pim` — the cocotb bench of :class:`PimUnits`.
"""

from .array import CYCLE_BITS, PimArray, instr_layout
from .harness import PimUnits

__all__ = ["CYCLE_BITS", "PimArray", "PimUnits", "instr_layout"]
