"""The compression family: transforms of the Network IR whose value the hardware models show.

- :mod:`codesign.models.compress.decompose` — per-layer tensor decomposition (Mixed-TD's SVD
  of dense and 1x1 layers, CPD of KxK convolutions) into chains of ordinary layers;
- :mod:`codesign.models.compress.accuracy` — the accuracy proxy of a compressed network
  against its original (relative output error, top-1 agreement, per-layer errors).
"""

from .accuracy import CompressionAccuracy, compression_error, layer_errors
from .decompose import (
    INTERMEDIATE,
    Method,
    cp_als,
    cp_tensor,
    cpd,
    decompose,
    factor_type,
    full_rank,
    svd,
    svd_factors,
)

__all__ = [
    "INTERMEDIATE",
    "CompressionAccuracy",
    "Method",
    "compression_error",
    "cp_als",
    "cp_tensor",
    "cpd",
    "decompose",
    "factor_type",
    "full_rank",
    "layer_errors",
    "svd",
    "svd_factors",
]
