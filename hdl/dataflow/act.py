"""Element-wise activation unit: clip, then requantization or multi-threshold, per channel.

It follows an MVAU inside a stage, or stands alone as a threshold stage. Lanes of a beat are
consecutive channels: beat ``g`` of a pixel carries channels ``g*n .. g*n + n - 1``, and the
channel group ``g`` cycles through ``channels // n`` values, as in the stream conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.layers import Clip, MultiThreshold, Requant
from codesign.models.qtype import Kind, Overflow, QType, Rounding

from .stream import beat_layout
from .sums import tree_sum

__all__ = ["Activation", "ActivationSpec", "value_of"]


def value_of(raw, qtype: QType):
    """The signed/unsigned integer value of one stream element (bipolar 1 → +1, 0 → -1)."""
    if qtype.kind is Kind.BIPOLAR:
        return Mux(raw, Const(1, signed(2)), Const(-1, signed(2)))
    return raw


@dataclass(frozen=True, eq=False)
class ActivationSpec:
    """What an activation unit computes, taken from IR layers (any may be absent)."""

    clip: Clip | None = None
    requant: Requant | None = None
    threshold: MultiThreshold | None = None

    @classmethod
    def of(cls, layers) -> ActivationSpec:
        clip = next((la for la in layers if isinstance(la, Clip)), None)
        rq = next((la for la in layers if isinstance(la, Requant)), None)
        th = next((la for la in layers if isinstance(la, MultiThreshold)), None)
        return cls(clip, rq, th)

    @property
    def empty(self) -> bool:
        return self.clip is None and self.requant is None and self.threshold is None


class Activation(wiring.Component):
    """Applies an :class:`ActivationSpec` to ``n`` channels per beat.

    Parameters
    ----------
    spec
        The activation.
    in_type, out_type
        Element types of the input (accumulators) and output streams.
    n
        Elements per beat.
    channels
        Channel count (a multiple of ``n``); per-channel parameters follow the channel
        group of each beat.

    One register stage: ``o`` holds a beat until it is taken, and ``i`` is ready when the
    register is free or being emptied, so the unit moves one beat per cycle.
    """

    def __init__(
        self, *, spec: ActivationSpec, in_type: QType, out_type: QType, n: int, channels: int
    ) -> None:
        if channels % n:
            raise ValueError(f"n must divide channels ({channels}), not {n!r}")
        if (
            spec.requant is not None
            and spec.requant.shift.ndim == 1
            and len(set(spec.requant.shift.tolist())) > 1
        ):
            raise ValueError(
                f"layer {spec.requant.name!r}: a per-channel shift has no hardware yet; "
                "use one shift and per-channel multipliers"
            )
        self._spec, self._in_type, self._out_type = spec, in_type, out_type
        self._n, self._channels = n, channels
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(in_type, n))),
                "o": Out(stream.Signature(beat_layout(out_type, n))),
            }
        )

    def _per_channel(self, m: Module, values: np.ndarray, step, lane: int):
        """The parameter of channel ``group * n + lane`` (constant when all are equal).

        A per-channel parameter is a register that always holds the current group's value:
        it starts at group 0's and loads the next group's as a beat is taken (``step`` is
        ``(take, next_group)``). Its table is then logic of the group counter alone, off the
        path through the comparator or multiplier it feeds (on ECP5 this halves the LUTs of
        a 16-group, three-threshold unit, for one flip-flop per parameter bit)."""
        values = np.broadcast_to(np.asarray(values, dtype=np.int64).reshape(-1), (self._channels,))
        column = values[lane :: self._n]
        if np.all(column == column[0]):
            return Const(int(column[0]))
        advance, next_group = step
        lo, hi = int(column.min()), int(column.max())
        reg = Signal(range(lo, hi + 1), init=int(column[0]))
        with m.If(advance):
            m.d.sync += reg.eq(Array(Const(int(v)) for v in column)[next_group])
        return reg

    def _lane(self, m: Module, x, step, lane: int):
        spec = self._spec
        v = value_of(x, self._in_type)
        if spec.clip is not None:
            lo, hi = spec.clip.min, spec.clip.max
            if lo is not None:
                v = Mux(v < lo, lo, v)
            if hi is not None:
                v = Mux(v > hi, hi, v)
        if spec.requant is not None:
            return _requant(
                m,
                v,
                self._per_channel(m, spec.requant.multiplier, step, lane),
                int(spec.requant.shift.reshape(-1)[0]),
                spec.requant,
            )
        if spec.threshold is not None:
            th = spec.threshold
            rows = (
                th.thresholds
                if th.thresholds.shape[0] > 1
                else np.broadcast_to(th.thresholds, (self._channels, th.thresholds.shape[1]))
            )
            hits = []
            for k in range(rows.shape[1]):
                t = self._per_channel(m, rows[:, k], step, lane)
                if isinstance(t, Const) and t.value <= self._in_type.min:
                    hits.append(Const(1))  # passed by every input: no comparator
                elif not (isinstance(t, Const) and t.value > self._in_type.max):
                    hits.append(v >= t)
            if len(hits) > 8:
                # many thresholds (an 8-bit quantizer has 255): a balanced popcount; a chain
                # would widen by a bit per threshold (a 256-bit adder at the end, and an
                # elaboration quadratic in the count). Up to 8 keep the chain the cost
                # model was fitted on.
                count = tree_sum(hits)
            else:
                count = 0
                for h in hits:
                    count = count + h
            out = count * int(th.out_scale) + int(th.out_bias)
            if self._out_type.kind is Kind.BIPOLAR:
                return out > 0
            return out
        return v

    def elaborate(self, platform):
        m = Module()
        n = self._n
        groups = self._channels // n
        group = Signal(range(max(groups, 2)))
        full = self.o.valid  # the output registers are the ports themselves (stable names)
        out = self.o.payload
        m.d.comb += self.i.ready.eq(~full | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        take = self.i.valid & self.i.ready
        next_group = Mux(group == groups - 1, 0, group + 1)[: len(group)]
        ys = [self._lane(m, self.i.payload[lane], (take, next_group), lane) for lane in range(n)]
        with m.If(take):
            for lane in range(n):
                m.d.sync += out[lane].eq(ys[lane])
            m.d.sync += full.eq(1)
            if groups > 1:
                m.d.sync += group.eq(next_group)
        return m


def _requant(m: Module, v, multiplier, shift: int, layer: Requant):
    """``v * multiplier * 2**-shift`` rounded and brought into the layer's type, exactly as
    :func:`codesign.models.arith.requantize` does (shift >= 0 here)."""
    prod = v * multiplier
    if shift < 0:
        prod = prod << -shift
        shift = 0
    if shift == 0:
        y = prod
    else:
        q = prod >> shift  # arithmetic shift: floor
        r = prod.as_unsigned()[:shift]
        half = 1 << (shift - 1)
        inexact = r != 0
        above, tie = r > half, r == half
        negative = prod < 0
        mode = layer.rounding
        if mode is Rounding.FLOOR:
            up = Const(0)
        elif mode is Rounding.CEIL:
            up = inexact
        elif mode is Rounding.TOWARD_ZERO:
            up = inexact & negative
        elif mode is Rounding.AWAY_FROM_ZERO:
            up = inexact & ~negative
        else:
            tie_up = {
                Rounding.HALF_UP: Const(1),
                Rounding.HALF_DOWN: Const(0),
                Rounding.HALF_EVEN: q[0],
                Rounding.HALF_AWAY: ~negative,
                Rounding.HALF_TOWARD_ZERO: negative,
            }[mode]
            up = above | (tie & tie_up)
        y = q + up
    t = layer.qtype
    lo, hi = t.min, t.max
    if layer.overflow is Overflow.WRAP:
        return y[: t.bits]
    if layer.overflow is Overflow.SAT_SYM and t.signed:
        lo = -hi
    if layer.overflow is Overflow.SAT_ZERO:
        return Mux((y < lo) | (y > hi), 0, y)
    return Mux(y < lo, lo, Mux(y > hi, hi, y))
