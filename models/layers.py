"""The layers of the Network IR.

Each layer validates its parameters at construction, infers its output :class:`Tensor`
(shape, type, exact range) from its inputs' tensors, and evaluates a batch exactly.
Ranges are exact: a layer's output bound is attained by some choice of its inputs within
their ranges, and never exceeded (accumulator widths follow from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import dataflow
from .activations import Clip, MultiThreshold, Requant
from .binary import BinaryConv2d, BinaryDense
from .deform.layer import DeformConv2d
from .ir import (
    LAYER_OPTIONS,
    Layer,
    Tensor,
    abs_max_of,
    cache,
    check_bound,
    int_pair,
    retype,
    signed_sums,
    weight_and_bias,
)
from .qtype import Kind, QType, Rounding

__all__ = [
    "LAYER_TYPES",
    "Add",
    "AvgPool2d",
    "BinaryConv2d",
    "BinaryDense",
    "Clip",
    "Conv2d",
    "DeformConv2d",
    "Dense",
    "Flatten",
    "Input",
    "MaxPool2d",
    "MultiThreshold",
    "Requant",
    "Reshape",
    "SumPool2d",
]


@dataclass(**LAYER_OPTIONS)
class Input(Layer):
    """The network input: per-sample ``shape`` and type."""

    op: ClassVar[str] = "input"
    arity: ClassVar[int] = 0
    shape: tuple[int, ...]
    qtype: QType

    def __post_init__(self) -> None:
        super().__post_init__()
        shape = tuple(self.shape) if isinstance(self.shape, list | tuple) else None
        if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise self.error(f"must be a list of positive ints, not {self.shape!r}", "shape")
        object.__setattr__(self, "shape", shape)
        if not isinstance(self.qtype, QType):
            raise self.error(f"must be a QType, not {self.qtype!r}", "type")

    def infer(self, ins):
        return Tensor(self.shape, self.qtype, self.qtype.min, self.qtype.max)

    def attributes(self):
        return {"shape": list(self.shape), "type": str(self.qtype)}


@dataclass(**LAYER_OPTIONS)
class Dense(Layer):
    """Fully connected: ``y = W x + b`` with ``weight`` of shape (out, in)."""

    op: ClassVar[str] = "dense"
    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        w = weight_and_bias(self, ndim=2)
        pos, neg, abs_max = signed_sums(w)
        object.__setattr__(self, "_sums", (pos, neg, abs_max))
        cache(
            self,
            _bmax=abs_max_of(self.bias),
            _wt_i=np.ascontiguousarray(w.T),
            _wt_f=np.ascontiguousarray(w.T, dtype=np.float64),
        )

    def infer(self, ins):
        (x,) = ins
        if x.shape != (self.weight.shape[1],):
            raise self.error(
                f"must have shape (out, {x.size}) to match its input of shape {x.shape}, "
                f"not {self.weight.shape}"
                + ("; add a flatten layer before it" if len(x.shape) > 1 else ""),
                "weight",
            )
        pos, neg, abs_max = self._sums
        b = self.bias.astype(object) if self.bias is not None else 0
        lo = x.lo * pos + x.hi * neg + b
        hi = x.hi * pos + x.lo * neg + b
        bmax = int(np.max(np.abs(self.bias))) if self.bias is not None else 0
        check_bound(self, abs_max * x.magnitude + bmax)
        return Tensor.of_range((self.weight.shape[0],), min(lo), max(hi))

    def partial_bound(self, x: Tensor) -> int:
        """Bound on every partial sum of the product, the bias included."""
        return self._sums[2] * x.magnitude + self._bmax

    def evaluate(self, xs, ins, reuse=False, work=None):
        bound = self.partial_bound(ins[0])
        wt = self._wt_f if dataflow.float_path_ok(bound) else self._wt_i
        return dataflow.dense(xs[0], wt, self.bias, bound)

    def arrays(self):
        return {"weight": self.weight} | ({"bias": self.bias} if self.bias is not None else {})

    def macs(self, ins, out):
        return int(self.weight.size)


@dataclass(**LAYER_OPTIONS)
class Conv2d(Layer):
    """2-D convolution (cross-correlation) on (C, H, W); ``weight`` is (OC, C/groups, KH, KW).

    ``groups == C == OC`` is a depthwise convolution. Padding inserts zeros.
    """

    op: ClassVar[str] = "conv2d"
    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        w = weight_and_bias(self, ndim=4)
        for name, minimum in (("stride", 1), ("padding", 0), ("dilation", 1)):
            object.__setattr__(self, name, int_pair(getattr(self, name), self.name, name, minimum))
        g = self.groups
        if not isinstance(g, int) or isinstance(g, bool) or g < 1 or w.shape[0] % g:
            raise self.error(
                f"must be a positive int dividing the {w.shape[0]} output channels, not {g!r}",
                "groups",
            )
        _, _, abs_max = signed_sums(w.reshape(w.shape[0], -1))
        wmat = dataflow.conv_weight_matrix(w, g)
        cache(
            self,
            _abs_max=abs_max,
            _bmax=abs_max_of(self.bias),
            _wmat_i=wmat,
            _wmat_f=wmat.astype(np.float64),
        )

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    def infer(self, ins):
        (x,) = ins
        if len(x.shape) != 3:
            raise self.error(f"needs a (C, H, W) input, not shape {x.shape}", "inputs")
        c, h, wd = x.shape
        oc, cg = self.weight.shape[:2]
        if c % self.groups or cg * self.groups != c:
            raise self.error(
                f"must have shape ({oc}, {c // self.groups if c % self.groups == 0 else '?'}, "
                f"KH, KW) for {c} input channels in {self.groups} groups, not "
                f"{self.weight.shape}",
                "weight",
            )
        oh = dataflow.conv_out_size(
            h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]
        )
        ow = dataflow.conv_out_size(
            wd, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]
        )
        if oh < 1 or ow < 1:
            raise self.error(f"kernel {self.kernel} does not fit the {h}x{wd} input", "weight")
        bmax = int(np.max(np.abs(self.bias))) if self.bias is not None else 0
        check_bound(self, self._abs_max * x.magnitude + bmax)
        # Exact range, position by position: convolve an all-valid mask (zeros where padding
        # is) with each tap's largest/smallest possible product.
        w = self.weight
        wmax = np.where(w > 0, w * x.hi, w * x.lo)
        wmin = np.where(w > 0, w * x.lo, w * x.hi)
        mask = np.ones((1, c, h, wd), dtype=np.int64)
        args = (self.kernel, self.stride, self.padding, self.dilation, self.partial_bound(x))
        hi = dataflow.conv2d(mask, dataflow.conv_weight_matrix(wmax, self.groups), self.bias, *args)
        lo = dataflow.conv2d(mask, dataflow.conv_weight_matrix(wmin, self.groups), self.bias, *args)
        return Tensor.of_range((oc, oh, ow), int(lo.min()), int(hi.max()))

    def partial_bound(self, x: Tensor) -> int:
        """Bound on every partial sum of the product, the bias included."""
        return self._abs_max * x.magnitude + self._bmax

    def evaluate(self, xs, ins, reuse=False, work=None):
        bound = self.partial_bound(ins[0])
        wmat = self._wmat_f if dataflow.float_path_ok(bound) else self._wmat_i
        return dataflow.conv2d(
            xs[0],
            wmat,
            self.bias,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            bound,
            work=work,
        )

    def arrays(self):
        return {"weight": self.weight} | ({"bias": self.bias} if self.bias is not None else {})

    def attributes(self):
        return {
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
        }

    def macs(self, ins, out):
        return int(out.size * self.weight[0].size)


@dataclass(**LAYER_OPTIONS)
class _Pool(Layer):
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "kernel", int_pair(self.kernel, self.name, "kernel", 1))
        stride = self.kernel if self.stride is None else self.stride
        object.__setattr__(self, "stride", int_pair(stride, self.name, "stride", 1))

    def _out_shape(self, x: Tensor, padding=(0, 0)) -> tuple[int, int, int]:
        if len(x.shape) != 3:
            raise self.error(f"needs a (C, H, W) input, not shape {x.shape}", "inputs")
        c, h, w = x.shape
        oh = dataflow.conv_out_size(h, self.kernel[0], self.stride[0], padding[0], 1)
        ow = dataflow.conv_out_size(w, self.kernel[1], self.stride[1], padding[1], 1)
        if oh < 1 or ow < 1:
            raise self.error(f"{self.kernel} does not fit the {h}x{w} input", "kernel")
        return (c, oh, ow)


@dataclass(**LAYER_OPTIONS)
class MaxPool2d(_Pool):
    """Max over windows (floor mode); padding, at most half the kernel, never wins."""

    op: ClassVar[str] = "maxpool2d"
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        pad = int_pair(self.padding, self.name, "padding", 0)
        if pad[0] > self.kernel[0] // 2 or pad[1] > self.kernel[1] // 2:
            raise self.error(f"must be at most half the kernel {self.kernel}, not {pad}", "padding")
        object.__setattr__(self, "padding", pad)

    def infer(self, ins):
        (x,) = ins
        return Tensor(self._out_shape(x, self.padding), x.qtype, x.lo, x.hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return dataflow.maxpool2d(xs[0], self.kernel, self.stride, self.padding)

    def attributes(self):
        return {
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
        }


@dataclass(**LAYER_OPTIONS)
class AvgPool2d(_Pool):
    """Window sum divided by the window size, rounded by ``rounding`` (no padding)."""

    op: ClassVar[str] = "avgpool2d"
    rounding: Rounding = Rounding.HALF_EVEN

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.rounding, Rounding):
            raise self.error(f"must be a Rounding, not {self.rounding!r}", "rounding")

    def infer(self, ins):
        (x,) = ins
        if x.qtype.kind is Kind.BIPOLAR:
            raise self.error("cannot average a bipolar tensor", "inputs")
        area = self.kernel[0] * self.kernel[1]
        check_bound(self, x.magnitude * area, "window sum")
        return Tensor(self._out_shape(x), x.qtype, x.lo, x.hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return dataflow.avgpool2d(xs[0], self.kernel, self.stride, self.rounding)

    def attributes(self):
        return {
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "rounding": self.rounding.value,
        }


@dataclass(**LAYER_OPTIONS)
class SumPool2d(_Pool):
    """Window sum, exact, with no division (no padding): an average pool whose division by
    the window area is left to the next layer (a quantizer's thresholds or multiplier).

    The output range is the area times the input range; a kernel of the whole H x W is a
    global pool."""

    op: ClassVar[str] = "sumpool2d"

    def infer(self, ins):
        (x,) = ins
        if x.qtype.kind is Kind.BIPOLAR:
            raise self.error("cannot sum a bipolar tensor", "inputs")
        area = self.kernel[0] * self.kernel[1]
        lo, hi = x.lo * area, x.hi * area
        check_bound(self, max(abs(lo), abs(hi)), "window sum")
        shape = self._out_shape(x)
        return Tensor(shape, retype(x.qtype, lo, hi), lo, hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        x = ins[0]
        area = self.kernel[0] * self.kernel[1]
        bound = max(abs(x.lo), abs(x.hi)) * area
        return dataflow.sumpool2d(dataflow.as_exact(xs[0], bound), self.kernel, self.stride)

    def attributes(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride)}


@dataclass(**LAYER_OPTIONS)
class Flatten(Layer):
    """(C, H, W) → (C·H·W,), in C-major order (as PyTorch and ONNX flatten NCHW)."""

    op: ClassVar[str] = "flatten"

    def infer(self, ins):
        (x,) = ins
        return Tensor((x.size,), x.qtype, x.lo, x.hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return xs[0].reshape(xs[0].shape[0], -1)


@dataclass(**LAYER_OPTIONS)
class Reshape(Layer):
    """Reshape each sample (C order); one entry of ``shape`` may be -1."""

    op: ClassVar[str] = "reshape"
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        s = self.shape
        if (
            not isinstance(s, list | tuple)
            or not s
            or not all(isinstance(v, int) and (v >= 1 or v == -1) for v in s)
            or list(s).count(-1) > 1
        ):
            raise self.error(
                f"must be a list of positive ints with at most one -1, not {s!r}", "shape"
            )
        object.__setattr__(self, "shape", tuple(s))

    def infer(self, ins):
        (x,) = ins
        known = int(np.prod([v for v in self.shape if v != -1]))
        shape = tuple(x.size // known if v == -1 else v for v in self.shape)
        if int(np.prod(shape)) != x.size:
            raise self.error(
                f"must hold {x.size} elements like its input {x.shape}, not {list(self.shape)}",
                "shape",
            )
        return Tensor(shape, x.qtype, x.lo, x.hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return xs[0].reshape((xs[0].shape[0], *self.tensor_shape(ins[0])))

    def tensor_shape(self, x: Tensor) -> tuple[int, ...]:
        return self.infer([x]).shape

    def attributes(self):
        return {"shape": list(self.shape)}


@dataclass(**LAYER_OPTIONS)
class Add(Layer):
    """Element-wise sum of two tensors of one shape and one real scale (residual)."""

    op: ClassVar[str] = "add"
    arity: ClassVar[int] = 2

    def infer(self, ins):
        a, b = ins
        if a.shape != b.shape:
            raise self.error(f"needs inputs of one shape, not {a.shape} and {b.shape}", "inputs")
        if a.qtype.real_scale != b.qtype.real_scale:
            raise self.error(
                f"needs inputs of one scale, not {a.qtype} and {b.qtype}; requantize one",
                "inputs",
            )
        lo, hi = a.lo + b.lo, a.hi + b.hi
        check_bound(self, max(abs(lo), abs(hi)), "sum")
        base = a.qtype if a.qtype.kind is not Kind.BIPOLAR else QType.int(2)
        return Tensor(a.shape, retype(base, lo, hi), lo, hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        a, b = ins
        bound = max(abs(a.lo + b.lo), abs(a.hi + b.hi), a.magnitude, b.magnitude)
        return dataflow.as_exact(xs[0], bound) + dataflow.as_exact(xs[1], bound)


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        Input,
        Dense,
        Conv2d,
        MaxPool2d,
        AvgPool2d,
        SumPool2d,
        Clip,
        Requant,
        MultiThreshold,
        Flatten,
        Reshape,
        Add,
        BinaryDense,
        BinaryConv2d,
        DeformConv2d,
    )
}
