"""The deformable-convolution family (``docs/deformable.md``).

- :mod:`codesign.models.deform.reference` — float64 ``deform_conv2d`` with torchvision's
  semantics;
- :mod:`codesign.models.deform.fixed` — the fixed-point arithmetic and the offset variants
  (full/depthwise; free, bounded, square, rounded offsets).
"""

from .fixed import (
    VARIANT_NAMES,
    OffsetShape,
    Variant,
    deform_conv2d_fixed,
    offset_channels,
    sample_fixed,
    tap_offsets,
    tap_positions,
)
from .reference import deform_conv2d

__all__ = [
    "VARIANT_NAMES",
    "OffsetShape",
    "Variant",
    "deform_conv2d",
    "deform_conv2d_fixed",
    "offset_channels",
    "sample_fixed",
    "tap_offsets",
    "tap_positions",
]
