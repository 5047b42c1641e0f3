"""One network, every offset variant: :func:`with_variant` rebuilds a network's deformable
layers with another :class:`~codesign.models.deform.fixed.Variant`.

Free, bounded and rounded variants read the same offsets, so only the layer changes. A square
variant reads one scalar per offset group, so its offset convolution changes too: it becomes
the least-squares projection of the free offsets onto the square family. For offset group
``g`` with taps at ``(sy_k, sx_k) = ((i − ci)·dh, (j − cj)·dw)`` from the kernel's centre, the
square offset ``d`` that best fits free offsets ``(Δy_k, Δx_k)`` is
``Σ_k (sy_k·Δy_k + sx_k·Δx_k) / D`` with ``D = Σ_k (sy_k² + sx_k²)``. The offsets are the
offset convolution's accumulators requantised, so ``d``'s convolution has the integer weights
``Σ_k (sy_k·W[Δy_k] + sx_k·W[Δx_k])`` (and bias likewise), and its requantisation divides by
``D`` through a multiplier with ``EXTRA_SHIFT`` more bits.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..activations import Requant
from ..ir import Network
from ..layers import Conv2d
from .fixed import OffsetShape, Variant
from .layer import DeformConv2d

__all__ = ["EXTRA_SHIFT", "deform_layers", "with_variant"]

#: Bits of precision the square projection's requant multiplier gains beyond the division.
EXTRA_SHIFT = 8


def deform_layers(net: Network) -> list[DeformConv2d]:
    """The network's deformable layers, in order."""
    return [la for la in net.layers if isinstance(la, DeformConv2d)]


def _replace(layer, **changes):
    fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
    return type(layer)(**(fields | changes))


def _square_chain(net: Network, layer: DeformConv2d) -> tuple[Conv2d, Requant]:
    req = net[layer.inputs[1]]
    conv = net[req.inputs[0]] if isinstance(req, Requant) else None
    if not isinstance(conv, Conv2d) or conv.groups != 1:
        raise ValueError(
            f"layer {layer.name!r}: a square variant needs the offsets to come from a conv2d "
            "followed by a requant, to project them"
        )
    if sum(src == conv.name for la in net.layers for src in la.inputs) != 1:
        raise ValueError(f"layer {conv.name!r}: its offsets feed more than the requant")
    if np.ndim(req.multiplier) or np.ndim(req.shift):
        if len(set(np.ravel(req.multiplier))) > 1 or len(set(np.ravel(req.shift))) > 1:
            raise ValueError(
                f"layer {req.name!r}: a square projection needs one multiplier and shift"
            )
    return conv, req


def _project(layer: DeformConv2d, conv: Conv2d, req: Requant) -> tuple[Conv2d, Requant]:
    kh, kw = layer.kernel
    dh, dw = layer.dilation
    k = kh * kw
    ii, jj = np.divmod(np.arange(k), kw)
    sy = (ii - kh // 2) * dh
    sx = (jj - kw // 2) * dw
    denom = int(np.sum(sy * sy + sx * sx))
    groups = conv.weight.shape[0] // (2 * k)
    w = conv.weight.reshape(groups, k, 2, *conv.weight.shape[1:])
    coef_y = sy.reshape(1, k, *([1] * (conv.weight.ndim - 1)))
    coef_x = sx.reshape(1, k, *([1] * (conv.weight.ndim - 1)))
    weight = (coef_y * w[:, :, 0] + coef_x * w[:, :, 1]).sum(axis=1)
    bias = None
    if conv.bias is not None:
        b = conv.bias.reshape(groups, k, 2)
        bias = (sy * b[:, :, 0] + sx * b[:, :, 1]).sum(axis=1)
    mult = int(np.ravel(req.multiplier)[0])
    shift = int(np.ravel(req.shift)[0])
    extra = EXTRA_SHIFT + math.ceil(math.log2(denom)) if denom > 1 else 0
    new_mult = round(mult * (1 << extra) / denom) if denom else mult
    return (
        _replace(conv, weight=weight, bias=bias),
        _replace(req, multiplier=new_mult, shift=shift + extra),
    )


def with_variant(net: Network, variant: Variant, name: str | None = None) -> Network:
    """``net`` with every deformable layer computing ``variant`` (see the module)."""
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must be a Variant, not {variant!r}")
    layers = {la.name: la for la in net.layers}
    for la in deform_layers(net):
        if la.variant.shape is not OffsetShape.FREE and variant.shape is OffsetShape.FREE:
            raise ValueError(f"layer {la.name!r}: a square variant cannot be made free again")
        if variant.shape is OffsetShape.SQUARE and la.variant.shape is OffsetShape.FREE:
            conv, req = _square_chain(net, la)
            layers[conv.name], layers[req.name] = _project(la, conv, req)
        layers[la.name] = _replace(la, variant=variant)
    out = Network(name or net.name, list(layers.values()), output=net.output)
    out.folded = dict(net.folded)
    return out
