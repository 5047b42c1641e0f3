"""The binary-neuron family.

- :mod:`models.binary.xnor` — XNOR-popcount kernels and the binary layers of the IR
  (re-exported here);
- :mod:`models.binary.tln` — the threshold-logic neuron (TLN) cell;
- :mod:`models.binary.tulip` — the TULIP mapper: binary layers onto SIMD arrays of TLN
  processing elements, and the bit-exact executor of its schedules
  (:mod:`models.binary.tulip_schedule`: its list scheduler and register allocator);
- :mod:`models.binary.mst` — minimum-spanning-tree channel reuse (MST compression), and
  :mod:`models.binary.mst_hw`, the facts its hardware and cycle model share.

The submodules other than ``xnor`` import the IR's layer classes, so import them by name
(``from models.binary import tulip``); they are not loaded with this package.
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
