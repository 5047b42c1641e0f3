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

from . import binary, dataflow
from .arith import INT64_MAX, count_thresholds, requantize, round_real
from .binary import Encoding
from .errors import DescriptionError
from .ir import Layer, Tensor, frozen_array
from .qtype import Kind, Overflow, QType, Rounding

__all__ = [
    "LAYER_TYPES",
    "Add",
    "AvgPool2d",
    "BinaryConv2d",
    "BinaryDense",
    "Clip",
    "Conv2d",
    "Dense",
    "Flatten",
    "Input",
    "MaxPool2d",
    "MultiThreshold",
    "Requant",
    "Reshape",
]

_LAYER = dict(frozen=True, eq=False, kw_only=True)


def _pair(value, layer: str, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    ):
        raise DescriptionError(
            f"must be an int or a pair of ints, not {value!r}", layer=layer, field=name
        )
    if min(value) < minimum:
        raise DescriptionError(
            f"must be at least {minimum}, not {value!r}", layer=layer, field=name
        )
    return (int(value[0]), int(value[1]))


def _retype(qtype: QType, lo: int, hi: int) -> QType:
    """A type of ``qtype``'s kind and scale, as narrow as ``[lo, hi]`` allows."""
    if qtype.kind is Kind.BIPOLAR and lo >= -1 and hi <= 1 and (lo, hi) != (0, 0):
        return qtype
    base = QType.covering(lo, hi)
    if qtype.kind is Kind.FIXED:
        return QType.fixed(base.bits, qtype.frac, base.signed)
    if qtype.kind is Kind.SCALED and qtype.zero_point == 0:
        return QType.scaled(base.bits, qtype.scale, 0, base.signed)
    return base


def _weight_and_bias(layer: Layer, ndim: int) -> np.ndarray:
    """Validate and freeze ``layer.weight`` (``ndim`` dimensions, output channels first) and
    ``layer.bias`` (one per output channel, or None); returns the weight."""
    w = frozen_array(layer.weight, layer=layer.name, field="weight", ndim=ndim)
    object.__setattr__(layer, "weight", w)
    if layer.bias is not None:
        b = frozen_array(layer.bias, layer=layer.name, field="bias", ndim=1)
        if b.shape != (w.shape[0],):
            raise layer.error(f"must have shape ({w.shape[0]},), not {b.shape}", "bias")
        object.__setattr__(layer, "bias", b)
    return w


def _cache(layer: Layer, **values) -> None:
    """Derived, read-only evaluation data kept on a frozen layer."""
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
        object.__setattr__(layer, name, value)


def _abs_max_of(arr: np.ndarray | None) -> int:
    return int(np.max(np.abs(arr))) if arr is not None and arr.size else 0


def _check_bound(layer: Layer, bound: int, what: str = "accumulator") -> None:
    if bound > INT64_MAX:
        raise layer.error(f"{what} bound {bound} does not fit int64; narrow the types")


def _signed_sums(w2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per row: sum of positive weights, sum of negative weights (object ints), max Σ|w|."""
    wo = w2d.astype(object)
    pos = np.where(w2d > 0, wo, 0).sum(axis=1)
    neg = np.where(w2d < 0, wo, 0).sum(axis=1)
    return pos, neg, int(max((p - n for p, n in zip(pos, neg, strict=True)), default=0))


@dataclass(**_LAYER)
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


@dataclass(**_LAYER)
class Dense(Layer):
    """Fully connected: ``y = W x + b`` with ``weight`` of shape (out, in)."""

    op: ClassVar[str] = "dense"
    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        w = _weight_and_bias(self, ndim=2)
        pos, neg, abs_max = _signed_sums(w)
        object.__setattr__(self, "_sums", (pos, neg, abs_max))
        _cache(
            self,
            _bmax=_abs_max_of(self.bias),
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
        _check_bound(self, abs_max * x.magnitude + bmax)
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


@dataclass(**_LAYER)
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
        w = _weight_and_bias(self, ndim=4)
        for name, minimum in (("stride", 1), ("padding", 0), ("dilation", 1)):
            object.__setattr__(self, name, _pair(getattr(self, name), self.name, name, minimum))
        g = self.groups
        if not isinstance(g, int) or isinstance(g, bool) or g < 1 or w.shape[0] % g:
            raise self.error(
                f"must be a positive int dividing the {w.shape[0]} output channels, not {g!r}",
                "groups",
            )
        _, _, abs_max = _signed_sums(w.reshape(w.shape[0], -1))
        wmat = dataflow.conv_weight_matrix(w, g)
        _cache(
            self,
            _abs_max=abs_max,
            _bmax=_abs_max_of(self.bias),
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
        _check_bound(self, self._abs_max * x.magnitude + bmax)
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


@dataclass(**_LAYER)
class _Pool(Layer):
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "kernel", _pair(self.kernel, self.name, "kernel", 1))
        stride = self.kernel if self.stride is None else self.stride
        object.__setattr__(self, "stride", _pair(stride, self.name, "stride", 1))

    def _out_shape(self, x: Tensor, padding=(0, 0)) -> tuple[int, int, int]:
        if len(x.shape) != 3:
            raise self.error(f"needs a (C, H, W) input, not shape {x.shape}", "inputs")
        c, h, w = x.shape
        oh = dataflow.conv_out_size(h, self.kernel[0], self.stride[0], padding[0], 1)
        ow = dataflow.conv_out_size(w, self.kernel[1], self.stride[1], padding[1], 1)
        if oh < 1 or ow < 1:
            raise self.error(f"{self.kernel} does not fit the {h}x{w} input", "kernel")
        return (c, oh, ow)


@dataclass(**_LAYER)
class MaxPool2d(_Pool):
    """Max over windows (floor mode); padding, at most half the kernel, never wins."""

    op: ClassVar[str] = "maxpool2d"
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        pad = _pair(self.padding, self.name, "padding", 0)
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


@dataclass(**_LAYER)
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
        _check_bound(self, x.magnitude * area, "window sum")
        return Tensor(self._out_shape(x), x.qtype, x.lo, x.hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return dataflow.avgpool2d(xs[0], self.kernel, self.stride, self.rounding)

    def attributes(self):
        return {
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "rounding": self.rounding.value,
        }


@dataclass(**_LAYER)
class Clip(Layer):
    """Clamp to ``[min, max]`` (either may be None). ReLU is ``Clip(min=0)``."""

    op: ClassVar[str] = "clip"
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | np.integer) or isinstance(v, bool)):
                raise self.error(f"must be an int or absent, not {v!r}", name)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise self.error(f"must not exceed max {self.max}, not {self.min}", "min")

    def _clamp(self, v: int) -> int:
        if self.min is not None:
            v = max(v, self.min)
        if self.max is not None:
            v = min(v, self.max)
        return int(v)

    def infer(self, ins):
        (x,) = ins
        lo, hi = self._clamp(x.lo), self._clamp(x.hi)
        return Tensor(x.shape, _retype(x.qtype, lo, hi), lo, hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        x = xs[0]
        out = x if reuse else None
        if self.max is None:
            return np.maximum(x, self.min, out=out) if self.min is not None else x
        if self.min is None:
            return np.minimum(x, self.max, out=out)
        return np.clip(x, self.min, self.max, out=out)

    def attributes(self):
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


def _channel_param(arr: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a per-channel (C,) array to broadcast on axis 1 of an ``ndim``-D batch."""
    return arr.reshape((1, -1) + (1,) * (ndim - 2)) if arr.ndim == 1 else arr


@dataclass(**_LAYER)
class Requant(Layer):
    """Integer rescaling ``x * multiplier * 2**-shift`` into ``qtype`` (per tensor, or per
    channel with arrays of shape (C,))."""

    op: ClassVar[str] = "requant"
    multiplier: np.ndarray
    shift: np.ndarray
    qtype: QType
    rounding: Rounding = Rounding.HALF_EVEN
    overflow: Overflow = Overflow.SAT

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("multiplier", "shift"):
            object.__setattr__(
                self,
                name,
                frozen_array(getattr(self, name), layer=self.name, field=name, ndim=(0, 1)),
            )
        if np.any(np.abs(self.shift) > 62):
            raise self.error(f"must lie in [-62, 62], not {self.shift.tolist()!r}", "shift")
        if not isinstance(self.qtype, QType) or self.qtype.kind is Kind.BIPOLAR:
            raise self.error(f"must be an integer or fixed-point type, not {self.qtype}", "type")
        if not isinstance(self.rounding, Rounding):
            raise self.error(f"must be a Rounding, not {self.rounding!r}", "rounding")
        if not isinstance(self.overflow, Overflow):
            raise self.error(f"must be an Overflow, not {self.overflow!r}", "overflow")
        if self.overflow is Overflow.WRAP and self.qtype.narrow:
            raise self.error(f"cannot WRAP into the narrow type {self.qtype}", "overflow")

    def infer(self, ins):
        (x,) = ins
        c = x.shape[0]
        for name in ("multiplier", "shift"):
            a = getattr(self, name)
            if a.ndim == 1 and a.shape != (c,):
                raise self.error(f"must be a scalar or have shape ({c},), not {a.shape}", name)
        left = int(np.max(-self.shift, initial=0))
        mmax = int(np.max(np.abs(self.multiplier)))
        _check_bound(self, (x.magnitude * mmax) << max(left, 0), "rescaled value")
        q = self.qtype
        if self.overflow in (Overflow.SAT, Overflow.SAT_SYM):
            ends = np.array([[x.lo], [x.hi]], dtype=np.int64)
            out = requantize(
                ends,
                self.multiplier.reshape(1, -1),
                self.shift.reshape(1, -1),
                q,
                self.rounding,
                self.overflow,
            )
            lo, hi = int(out.min()), int(out.max())
        else:
            lo, hi = min(q.min, 0), max(q.max, 0)
        return Tensor(x.shape, q, lo, hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        x = xs[0]
        mmax = int(np.max(np.abs(self.multiplier)))
        if (
            x.dtype.kind == "f"
            and dataflow.float_path_ok(ins[0].magnitude * mmax)
            and self.overflow is not Overflow.WRAP
            and self.qtype.bits <= 53
        ):
            # x * m * 2**-s is exact in float64: |x * m| < 2**53 and 2**-s only moves the
            # exponent; the rounding ufuncs and the clip are exact too
            scale = np.ldexp(self.multiplier.astype(np.float64), -self.shift)
            y = np.multiply(x, _channel_param(scale, x.ndim), out=x if reuse else None)
            y = round_real(y, self.rounding, out=y)
            lo, hi = self.qtype.min, self.qtype.max
            if self.overflow is Overflow.SAT_SYM and self.qtype.signed:
                lo = -hi
            if self.overflow is Overflow.SAT_ZERO:
                y[(y < lo) | (y > hi)] = 0
            else:
                np.clip(y, lo, hi, out=y)
            return y
        return requantize(
            x.astype(np.int64, copy=False),
            _channel_param(self.multiplier, x.ndim),
            _channel_param(self.shift, x.ndim),
            self.qtype,
            self.rounding,
            self.overflow,
        )

    def arrays(self):
        return {"multiplier": self.multiplier, "shift": self.shift}

    def attributes(self):
        return {
            "type": str(self.qtype),
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }


@dataclass(**_LAYER)
class MultiThreshold(Layer):
    """QONNX/FINN multi-threshold on the channel axis: ``out_scale * #{t : x >= t} +
    out_bias``; ``thresholds`` is (C, T) or (1, T). ``out_type`` defaults to the narrowest
    type of the output range (give ``bipolar`` for scale 2, bias -1 and one threshold)."""

    op: ClassVar[str] = "multithreshold"
    thresholds: np.ndarray
    out_scale: int = 1
    out_bias: int = 0
    out_type: QType | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        t = frozen_array(self.thresholds, layer=self.name, field="thresholds", ndim=2)
        if t.shape[1] < 1:
            raise self.error("must hold at least one threshold per channel", "thresholds")
        object.__setattr__(self, "thresholds", np.sort(t, axis=1))
        self.thresholds.setflags(write=False)
        for name in ("out_scale", "out_bias"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool):
                raise self.error(f"must be an int, not {v!r}", name)
        if self.out_scale == 0:
            raise self.error("must not be 0", "out_scale")

    def infer(self, ins):
        (x,) = ins
        c = x.shape[0]
        t = self.thresholds
        if t.shape[0] not in (1, c):
            raise self.error(
                f"must have 1 or {c} rows (one per channel), not {t.shape[0]}", "thresholds"
            )
        cmin = int((t <= x.lo).sum(axis=1).min())
        cmax = int((t <= x.hi).sum(axis=1).max())
        ends = sorted(
            (self.out_scale * cmin + self.out_bias, self.out_scale * cmax + self.out_bias)
        )
        qtype = self.out_type or QType.covering(*ends)
        if not (qtype.contains(ends[0]) and qtype.contains(ends[1])):
            raise self.error(f"cannot hold the output range {ends}", "out_type")
        return Tensor(x.shape, qtype, ends[0], ends[1])

    def evaluate(self, xs, ins, reuse=False, work=None):
        return count_thresholds(xs[0], self.thresholds, int(self.out_scale), int(self.out_bias))

    def arrays(self):
        return {"thresholds": self.thresholds}

    def attributes(self):
        attrs = {"out_scale": int(self.out_scale), "out_bias": int(self.out_bias)}
        return attrs | ({"out_type": str(self.out_type)} if self.out_type else {})


@dataclass(**_LAYER)
class Flatten(Layer):
    """(C, H, W) → (C·H·W,), in C-major order (as PyTorch and ONNX flatten NCHW)."""

    op: ClassVar[str] = "flatten"

    def infer(self, ins):
        (x,) = ins
        return Tensor((x.size,), x.qtype, x.lo, x.hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return xs[0].reshape(xs[0].shape[0], -1)


@dataclass(**_LAYER)
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


@dataclass(**_LAYER)
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
        _check_bound(self, max(abs(lo), abs(hi)), "sum")
        base = a.qtype if a.qtype.kind is not Kind.BIPOLAR else QType.int(2)
        return Tensor(a.shape, _retype(base, lo, hi), lo, hi)

    def evaluate(self, xs, ins, reuse=False, work=None):
        a, b = ins
        bound = max(abs(a.lo + b.lo), abs(a.hi + b.hi), a.magnitude, b.magnitude)
        return dataflow.as_exact(xs[0], bound) + dataflow.as_exact(xs[1], bound)


def _check_binary_input(layer: Layer, x: Tensor) -> None:
    if layer.encoding is Encoding.BIPOLAR and x.qtype.kind is not Kind.BIPOLAR:
        raise layer.error(
            f"needs a bipolar input for the bipolar encoding, not {x.qtype}", "inputs"
        )
    if layer.encoding is Encoding.BINARY and not (x.lo >= 0 and x.hi <= 1):
        raise layer.error(
            f"needs a binary (uint1) input for the binary encoding, not "
            f"{x.qtype} with range [{x.lo}, {x.hi}]",
            "inputs",
        )


def _binary_weight(layer: Layer, ndim: int) -> np.ndarray:
    w = frozen_array(layer.weight, layer=layer.name, field="weight", ndim=ndim)
    allowed = (-1, 1) if layer.encoding is Encoding.BIPOLAR else (0, 1)
    if not np.all(np.isin(w, allowed)):
        bad = w[~np.isin(w, allowed)].ravel()[0]
        raise layer.error(
            f"must hold only {allowed} for the {layer.encoding.value} encoding, not {int(bad)}",
            "weight",
        )
    return w


def _encoding(layer: Layer) -> None:
    try:
        object.__setattr__(
            layer,
            "encoding",
            Encoding(layer.encoding)
            if not isinstance(layer.encoding, Encoding)
            else layer.encoding,
        )
    except ValueError:
        raise layer.error(
            f"must be 'bipolar' or 'binary', not {layer.encoding!r}", "encoding"
        ) from None


@dataclass(**_LAYER)
class BinaryDense(Layer):
    """XNOR-popcount fully connected layer; see :mod:`models.binary` for the encodings.

    Outputs the dot product in [-K, K] (bipolar) or the popcount in [0, K] (binary)."""

    op: ClassVar[str] = "binary_dense"
    weight: np.ndarray
    encoding: Encoding = Encoding.BINARY

    def __post_init__(self) -> None:
        super().__post_init__()
        _encoding(self)
        object.__setattr__(self, "weight", _binary_weight(self, 2))
        _cache(self, _w_f=self.weight.astype(np.float64))

    def infer(self, ins):
        (x,) = ins
        _check_binary_input(self, x)
        m, k = self.weight.shape
        if x.shape != (k,):
            raise self.error(
                f"must have shape (out, {x.size}) to match its input, not {self.weight.shape}",
                "weight",
            )
        lo = -k if self.encoding is Encoding.BIPOLAR else 0
        return Tensor.of_range((m,), lo, k)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return binary.binary_dense(xs[0], self._w_f, self.encoding)

    def arrays(self):
        return {"weight": self.weight}

    def attributes(self):
        return {"encoding": self.encoding.value}

    def macs(self, ins, out):
        return int(self.weight.size)


@dataclass(**_LAYER)
class BinaryConv2d(Layer):
    """XNOR-popcount convolution, no padding; ``weight`` is (OC, C, KH, KW)."""

    op: ClassVar[str] = "binary_conv2d"
    weight: np.ndarray
    encoding: Encoding = Encoding.BINARY
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        _encoding(self)
        object.__setattr__(self, "weight", _binary_weight(self, 4))
        _cache(self, _w_f=self.weight.astype(np.float64))
        for name in ("stride", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name), self.name, name, 1))

    def infer(self, ins):
        (x,) = ins
        _check_binary_input(self, x)
        if len(x.shape) != 3 or x.shape[0] != self.weight.shape[1]:
            raise self.error(
                f"must have shape (OC, {x.shape[0]}, KH, KW) for the input "
                f"{x.shape}, not {self.weight.shape}",
                "weight",
            )
        oc, c, kh, kw = self.weight.shape
        oh = dataflow.conv_out_size(x.shape[1], kh, self.stride[0], 0, self.dilation[0])
        ow = dataflow.conv_out_size(x.shape[2], kw, self.stride[1], 0, self.dilation[1])
        if oh < 1 or ow < 1:
            raise self.error(f"kernel {(kh, kw)} does not fit the input {x.shape}", "weight")
        k = c * kh * kw
        lo = -k if self.encoding is Encoding.BIPOLAR else 0
        return Tensor.of_range((oc, oh, ow), lo, k)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return binary.binary_conv2d(xs[0], self._w_f, self.stride, self.dilation, self.encoding)

    def arrays(self):
        return {"weight": self.weight}

    def attributes(self):
        return {
            "encoding": self.encoding.value,
            "stride": list(self.stride),
            "dilation": list(self.dilation),
        }

    def macs(self, ins, out):
        return int(out.size * self.weight[0].size)


#: Every layer class by its description name.
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        Input,
        Dense,
        Conv2d,
        MaxPool2d,
        AvgPool2d,
        Clip,
        Requant,
        MultiThreshold,
        Flatten,
        Reshape,
        Add,
        BinaryDense,
        BinaryConv2d,
    )
}
