"""Activation layers of the Network IR: clip (ReLU), requantization, multi-threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import dataflow
from .arith import count_thresholds, requantize, round_real
from .ir import LAYER_OPTIONS, Layer, Tensor, check_bound, frozen_array, retype
from .qtype import Kind, Overflow, QType, Rounding

__all__ = ["Clip", "MultiThreshold", "Requant"]


@dataclass(**LAYER_OPTIONS)
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
        return Tensor(x.shape, retype(x.qtype, lo, hi), lo, hi)

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


@dataclass(**LAYER_OPTIONS)
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
        check_bound(self, (x.magnitude * mmax) << max(left, 0), "rescaled value")
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


@dataclass(**LAYER_OPTIONS)
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
