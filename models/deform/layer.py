"""The deformable convolution layer of the IR: two inputs, the image and its offsets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..dataflow import conv_out_size
from ..ir import (
    LAYER_OPTIONS,
    Layer,
    Tensor,
    abs_max_of,
    cache,
    check_bound,
    int_pair,
    signed_sums,
    weight_and_bias,
)
from ..qtype import Kind
from .fixed import OffsetShape, Variant, deform_conv2d_fixed, offset_channels

__all__ = ["MAX_OFFSET_FRAC", "DeformConv2d"]

_FREE = Variant()

#: Most fraction bits an offset may carry (the samples grow by twice as many bits).
MAX_OFFSET_FRAC = 8


@dataclass(**LAYER_OPTIONS)
class DeformConv2d(Layer):
    """Deformable 2-D convolution of a (C, H, W) input at positions moved by an offset
    tensor, in exact integers (:mod:`codesign.models.deform.fixed`).

    ``inputs`` are ``(image, offset)``. The offset tensor is ``(2·G·kh·kw, Ho, Wo)`` (or
    ``(G, Ho, Wo)`` for a square variant), its type ``fixed<b,F>`` (F fraction bits) or a
    plain integer type (F = 0); it comes from a regular convolution in the network. ``weight``
    is ``(OC, C / groups, kh, kw)``: ``groups = 1`` is the full form, ``groups = C = OC`` the
    depthwise one. The output is the exact accumulator in units of ``2**-(2F)`` (for every
    variant, so that variants of one layer share its bias and requantisation) times the
    input's and weights' units; the next layer requantises it.
    """

    op: ClassVar[str] = "deform_conv2d"
    arity: ClassVar[int] = 2
    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    variant: Variant = _FREE

    def __post_init__(self) -> None:
        super().__post_init__()
        w = weight_and_bias(self, ndim=4)
        for name, minimum in (("stride", 1), ("padding", 0), ("dilation", 1)):
            object.__setattr__(self, name, int_pair(getattr(self, name), self.name, name, minimum))
        if not isinstance(self.variant, Variant):
            raise self.error(f"must be a Variant, not {self.variant!r}", "variant")
        if self.variant.shape is OffsetShape.SQUARE and (
            w.shape[2] % 2 == 0 or w.shape[3] % 2 == 0
        ):
            raise self.error(
                f"a square variant needs an odd kernel, not {w.shape[2]}x{w.shape[3]}", "variant"
            )
        _, _, abs_max = signed_sums(w.reshape(w.shape[0], -1))
        cache(self, _abs_max=abs_max, _bmax=abs_max_of(self.bias))

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    def groups_for(self, x: Tensor) -> int:
        """Convolution groups, inferred from the input's channels as torchvision does."""
        return int(x.shape[0]) // int(self.weight.shape[1])

    def offset_frac(self, offset: Tensor) -> int:
        """Fraction bits of the offsets as they arrive (before a rounded variant)."""
        return offset.qtype.frac if offset.qtype.kind is Kind.FIXED else 0

    def sample_frac(self, offset: Tensor) -> int:
        """Fraction bits of a sample (and of the accumulator): ``2F`` (a rounded variant's
        whole-pixel sample is shifted by ``2F``)."""
        return 2 * self.offset_frac(offset)

    def offset_groups(self, offset: Tensor) -> int:
        return int(offset.shape[0]) // offset_channels(self.variant, 1, self.kernel)

    def out_size(self, x: Tensor) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
        )
        return (
            conv_out_size(int(x.shape[1]), kh, sh, ph, dh),
            conv_out_size(int(x.shape[2]), kw, sw, pw, dw),
        )

    def infer(self, ins):
        x, off = ins
        if len(x.shape) != 3:
            raise self.error(f"needs a (C, H, W) input, not shape {x.shape}", "inputs")
        if x.qtype.kind is Kind.BIPOLAR:
            raise self.error("cannot sample a bipolar tensor (its samples need 0)", "inputs")
        c = int(x.shape[0])
        oc, cg = (int(v) for v in self.weight.shape[:2])
        if c % cg or oc % (c // cg):
            raise self.error(
                f"must have shape (OC, C / groups, KH, KW) with C / groups dividing the {c} input "
                f"channels and groups dividing OC, not {self.weight.shape}",
                "weight",
            )
        ho, wo = self.out_size(x)
        if ho < 1 or wo < 1:
            raise self.error(f"kernel {self.kernel} does not fit the {x.shape[1:]} input", "weight")
        per = offset_channels(self.variant, 1, self.kernel)
        what = "G" if per == 1 else f"2·G·kh·kw = 2·G·{self.kernel[0]}·{self.kernel[1]}"
        g = int(off.shape[0]) // per if len(off.shape) == 3 else 0
        if len(off.shape) != 3 or off.shape[0] % per or g < 1 or c % g or off.shape[1:] != (ho, wo):
            raise self.error(
                f"must be a ({what}, {ho}, {wo}) tensor for a {self.variant.name} variant with G "
                f"offset groups dividing the {c} input channels, not shape {off.shape}",
                "offset",
            )
        if off.qtype.kind not in (Kind.INT, Kind.FIXED):
            raise self.error(f"must be an integer or fixed<b,F> tensor, not {off.qtype}", "offset")
        if not 0 <= self.offset_frac(off) <= MAX_OFFSET_FRAC:
            raise self.error(
                f"must have 0 to {MAX_OFFSET_FRAC} fraction bits, not {off.qtype}", "offset"
            )
        s = self.sample_frac(off)
        vlo, vhi = min(x.lo, 0) << s, max(x.hi, 0) << s
        check_bound(self, self._abs_max * max(-vlo, vhi) + self._bmax)
        # exact: every tap may sample any pixel (or 0 outside the image) independently
        w = self.weight.reshape(oc, -1).astype(object)
        b = self.bias.astype(object) if self.bias is not None else 0
        hi = np.where(w > 0, w * vhi, w * vlo).sum(axis=1) + b
        lo = np.where(w > 0, w * vlo, w * vhi).sum(axis=1) + b
        return Tensor.of_range((oc, ho, wo), min(lo), max(hi))

    def evaluate(self, xs, ins, reuse=False, work=None):
        off = ins[1]
        return deform_conv2d_fixed(
            np.asarray(xs[0]).astype(np.int64),
            np.asarray(xs[1]).astype(np.int64),
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            offset_frac=self.offset_frac(off),
            variant=self.variant,
        )

    def arrays(self):
        return {"weight": self.weight} | ({"bias": self.bias} if self.bias is not None else {})

    def attributes(self):
        out = {
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "variant": self.variant.name,
        }
        if self.variant.bound is not None:
            out["bound"] = int(self.variant.bound)
        return out

    def macs(self, ins, out):
        return int(out.size * self.weight[0].size)
