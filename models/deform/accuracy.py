"""The accuracy cost of an offset variant: how far a variant network's deformable layer and
output move from the float64 mode on the same inputs.

The reference is the network's deformable layer in float64 (:func:`.reference.deform_conv2d`,
torchvision's semantics) on the same input image, with the offsets the offset convolution
computes *before* they are rounded to ``F`` fraction bits: its accumulators times the
``requant``'s real factor (multiplier·2^-shift), neither rounded nor saturated. So the error
of the free variant is the fixed-point mode's own (offset rounding and saturation), and every
other variant adds its own approximation (clamp, square projection, whole pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import Requant
from ..golden import random_inputs, trace
from ..ir import Network
from .fixed import Variant
from .reference import deform_conv2d
from .variants import deform_layers, with_variant

__all__ = ["VariantError", "real_offsets", "variant_error"]


def real_offsets(net: Network, layer, values: dict[str, np.ndarray]) -> np.ndarray:
    """The offsets of ``layer`` in pixels before their rounding to fixed point (float64):
    the offset ``requant``'s input times its real factor; the integer offsets over
    ``2**F`` when they do not come from a ``requant``."""
    src = net[layer.inputs[1]]
    off_t = net.tensors[layer.inputs[1]]
    frac = layer.offset_frac(off_t)
    if isinstance(src, Requant):
        acc = values[src.inputs[0]].astype(np.float64)
        mult = np.asarray(src.multiplier, dtype=np.float64)
        shift = np.asarray(src.shift, dtype=np.float64)
        if mult.ndim:  # per channel
            mult, shift = mult[None, :, None, None], shift[None, :, None, None]
        return acc * mult * 2.0**-shift / 2.0**frac
    return values[layer.inputs[1]] / 2.0**frac


@dataclass(frozen=True)
class VariantError:
    """A variant's error against the float64 mode (see the module)."""

    variant: str
    #: RMS of (variant layer output − float64 output) over the RMS of the float64 output
    layer_rel_rms: float
    #: largest |variant − float64| of the layer output, in the layer's real units
    layer_max_abs: float
    #: share of frames whose network output's argmax equals the free variant network's
    top1_agreement: float

    def to_dict(self) -> dict:
        return {
            "variant": self.variant,
            "layer_rel_rms": self.layer_rel_rms,
            "layer_max_abs": self.layer_max_abs,
            "top1_agreement": self.top1_agreement,
        }


def variant_error(net: Network, variant: Variant, *, frames: int = 8, seed: int = 0):
    """The error of ``net`` switched to ``variant`` (:func:`.variants.with_variant`) against
    the float64 mode of ``net``'s own (free) offsets, over ``frames`` seeded random inputs,
    for its first deformable layer; and the agreement of its outputs' argmax with ``net``'s.
    """
    layers = deform_layers(net)
    if not layers:
        raise ValueError(f"network {net.name!r} must have a deformable layer, and has none")
    base = layers[0]
    x = random_inputs(net, frames, seed)
    ref_values = trace(net, x)
    image = ref_values[base.inputs[0]].astype(np.float64)
    s = base.sample_frac(net.tensors[base.inputs[1]])
    bias = None if base.bias is None else base.bias / 2.0**s
    ref = deform_conv2d(
        image,
        real_offsets(net, base, ref_values),
        base.weight,
        bias,
        base.stride,
        base.padding,
        base.dilation,
    )
    other = with_variant(net, variant)
    values = trace(other, x)
    got = values[base.name] / 2.0**s
    err = got - ref
    rms = float(np.sqrt(np.mean(ref**2))) or 1.0
    out, base_out = values[other.output], ref_values[net.output]
    agree = np.argmax(out.reshape(frames, -1), 1) == np.argmax(base_out.reshape(frames, -1), 1)
    label = variant.name if variant.bound is None else f"{variant.name} (B={variant.bound})"
    return VariantError(
        variant=label,
        layer_rel_rms=float(np.sqrt(np.mean(err**2))) / rms,
        layer_max_abs=float(np.abs(err).max()),
        top1_agreement=float(np.mean(agree)),
    )
