"""The binary-neuron family.

- :mod:`codesign.models.binary.xnor` — XNOR-popcount kernels and the binary layers of the IR
  (re-exported here);
- :mod:`codesign.models.binary.tln` — the threshold-logic neuron (TLN) cell;
- :mod:`codesign.models.binary.tulip` — the TULIP mapper: binary layers onto SIMD arrays of TLN
  processing elements, and the bit-exact executor of its schedules
  (:mod:`codesign.models.binary.tulip_schedule`: its list scheduler and register allocator);
- :mod:`codesign.models.binary.mst` — minimum-spanning-tree channel reuse (MST compression), and
  :mod:`codesign.models.binary.mst_hw`, the facts its hardware and cycle model share.

The submodules other than ``xnor`` import the IR's layer classes, so import them by name
(``from codesign.models.binary import tulip``); they are not loaded with this package.
"""

from .xnor import (
    BinaryConv2d,
    BinaryDense,
    Encoding,
    binary_conv2d,
    binary_dense,
    dot_from_popcount,
    xnor_popcount,
)

__all__ = [
    "BinaryConv2d",
    "BinaryDense",
    "Encoding",
    "binary_conv2d",
    "binary_dense",
    "dot_from_popcount",
    "xnor_popcount",
]
