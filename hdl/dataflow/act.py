"""Element-wise activation unit: clip, then requantization or multi-threshold, per channel.

It follows an MVAU inside a stage, or stands alone as a threshold stage. Lanes of a beat are
consecutive channels: beat ``g`` of a pixel carries channels ``g*n .. g*n + n - 1``, and the
channel group ``g`` cycles through ``channels // n`` values, as in the stream conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from codesign.models.layers import Clip, MultiThreshold, Requant
from codesign.models.pipelining import PipelineMode, activation_stages, tree_groups
from codesign.models.qtype import Kind, Overflow, QType, Rounding

from .compare import at_least, merge_at_least, split_at_least
from .credit import pipe_signature
from .dsp import RegisteredProduct
from .stream import beat_layout
from .sums import pipelined_tree_sum

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
    def layers(self) -> tuple:
        """The layers present, in order: clip, requant, threshold."""
        return tuple(la for la in (self.clip, self.requant, self.threshold) if la is not None)

    @property
    def empty(self) -> bool:
        return self.clip is None and self.requant is None and self.threshold is None


class Activation(wiring.Component):
    """Applies an :class:`ActivationSpec` to ``n`` channels per beat, as the register
    stages of a credit pipeline (:func:`codesign.models.pipelining.activation_stages`): every
    beat at ``i`` comes out at ``o`` exactly :attr:`latency` cycles later; no back-pressure.

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
    pipeline
        How deeply it is pipelined (:class:`~codesign.models.pipelining.PipelineMode`).
    """

    def __init__(
        self,
        *,
        spec: ActivationSpec,
        in_type: QType,
        out_type: QType,
        n: int,
        channels: int,
        pipeline: PipelineMode = PipelineMode.AUTO,
        target: str | None = None,
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
        self._mode = PipelineMode(pipeline)
        self._target = target
        self._stages = activation_stages(spec.layers, self._mode)
        super().__init__(
            {
                "i": In(pipe_signature(beat_layout(in_type, n))),
                "o": Out(pipe_signature(beat_layout(out_type, n))),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from a beat at ``i`` to its result at ``o``."""
        return len(self._stages)

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

    def _group_step(self, m: Module, take, name: str):
        """``(take, next_group)`` of a channel-group counter that advances with ``take``."""
        groups = self._channels // self._n
        group = Signal(range(max(groups, 2)), name=f"{name}_group")
        next_group = Mux(group == groups - 1, 0, group + 1)[: len(group)]
        if groups > 1:
            with m.If(take):
                m.d.sync += group.eq(next_group)
        return take, next_group

    def _clip(self, v):
        clip = self._spec.clip
        if clip is not None:
            # both bounds compared on the value itself (in parallel, each against a
            # constant: compare.at_least), then one select (the bounds compared in series
            # were two carry chains, resnet_tiny's stem at 7.2 ns at speed 6)
            lo, hi = clip.min, clip.max
            if lo is not None and hi is not None and lo > hi:
                return Const(hi)  # max(min) as numpy's clip: hi everywhere
            under = Const(0) if lo is None else ~at_least(v, lo)
            over = Const(0) if hi is None else at_least(v, hi + 1)
            if hi is not None:
                v = Mux(over, hi, v)
            if lo is not None:
                v = Mux(under, lo, v)
        return v

    def _thresholds(self) -> np.ndarray:
        th = self._spec.threshold
        if th.thresholds.shape[0] > 1:
            return th.thresholds
        return np.broadcast_to(th.thresholds, (self._channels, th.thresholds.shape[1]))

    def _hits(
        self, m: Module, v, step, lane: int, v_range: tuple[int, int], *, split: bool = False
    ) -> list:
        """Whether ``v`` reaches each threshold that some input can pass and some fail
        (one passed by every input is a constant 1). ``split``: each hit as the bits of
        :func:`split_at_least` (a constant threshold's as ``(hit,)``), for
        :func:`merge_at_least` in the next stage."""
        rows = self._thresholds()
        hits = []
        for k in range(rows.shape[1]):
            t = self._per_channel(m, rows[:, k], step, lane)
            if isinstance(t, Const) and t.value <= v_range[0]:
                hit = Const(1)  # passed by every input: no comparator
            elif isinstance(t, Const) and t.value > v_range[1]:
                continue
            elif split:  # (a constant threshold too: its chain as long as the sum's, in
                # pieces; a lane with one channel has constant thresholds, resnet_tiny's
                # stem compared its 12 low bits with one in one chain, 7.1 ns at speed 6)
                hits.append(split_at_least(v, t))
                continue
            elif isinstance(t, Const):
                hit = at_least(v, t.value)
            else:
                hit = v >= t
            hits.append((hit,) if split else hit)
        return hits

    def _count(self, m: Module, hits, lane: int):
        """The output level of a lane from its threshold hits: a combinational sum of up
        to 8 (the chain the cost model was fitted on), a registered tree of more."""
        th = self._spec.threshold
        n = int(th.thresholds.shape[1])
        if n > 8:
            # many thresholds (an 8-bit quantizer has 255): a balanced popcount; a chain
            # would widen by a bit per threshold (a 256-bit adder at the end, and an
            # elaboration quadratic in the count)
            groups = tree_groups(n, self._mode)
            count = pipelined_tree_sum(m, hits, groups, name=f"count{lane}", keep=False)
        else:
            count = 0
            for h in hits:
                count = count + h
        out = count * int(th.out_scale) + int(th.out_bias)
        if self._out_type.kind is Kind.BIPOLAR:
            return out > 0
        return out

    def _lane(self, m: Module, x, step, lane: int):
        """The whole activation of one lane in one cycle (``off`` mode)."""
        spec = self._spec
        v = self._clip(value_of(x, self._in_type))
        if spec.requant is not None:
            prod = v * self._per_channel(m, spec.requant.multiplier, step, lane)
            return _requant_round(prod, int(spec.requant.shift.reshape(-1)[0]), spec.requant)
        if spec.threshold is not None:
            hits = self._hits(m, v, step, lane, (self._in_type.min, self._in_type.max))
            return self._count(m, hits, lane)
        return v

    def elaborate(self, platform):
        m = Module()
        n, spec = self._n, self._spec
        valid = self.i.valid
        lanes = [self.i.payload[k] for k in range(n)]
        v_range = (self._in_type.min, self._in_type.max)
        if self._in_type.kind is Kind.BIPOLAR:
            v_range = (-1, 1)
        first, counted = True, False
        for st in self._stages:
            if st == "all":
                step = self._group_step(m, valid, st)
                lanes = [self._lane(m, x, step, k) for k, x in enumerate(lanes)]
            elif st == "clip":
                lanes = [self._clip(value_of(x, self._in_type)) for x in lanes]
                c = spec.clip
                v_range = (
                    v_range[0] if c.min is None else max(v_range[0], c.min),
                    v_range[1] if c.max is None else min(v_range[1], c.max),
                )
            elif st == "multiply":  # registered multipliers: "multiply" and "product"
                step = self._group_step(m, valid, st)
                vals = [value_of(x, self._in_type) if first else x for x in lanes]
                prods = []
                for k, v in enumerate(vals):
                    mul = self._per_channel(m, spec.requant.multiplier, step, k)
                    if isinstance(mul, Const):
                        # a constant multiplier is shifts and adds in fabric, not a DSP
                        # block: the same two registers, the constant left visible to Yosys
                        v_r = Signal(Value.cast(v).shape(), name=f"mul{k}_a")
                        p_r = Signal((v_r * mul).shape(), name=f"mul{k}_p")
                        m.d.sync += [v_r.eq(v), p_r.eq(v_r * mul)]
                        prods.append(p_r)
                        continue
                    unit = RegisteredProduct(
                        a=Value.cast(v).shape(), b=Value.cast(mul).shape(), target=self._target
                    )
                    m.submodules[f"mul{k}"] = unit
                    m.d.comb += [unit.a.eq(v), unit.b.eq(mul)]
                    prods.append(unit.p)
                lanes = prods
                for j in range(2):
                    v_out = Signal(name=f"product_valid{j}")
                    m.d.sync += v_out.eq(valid)
                    valid = v_out
                first = False
                continue
            elif st == "product":  # inside the registered multipliers
                continue
            elif st == "land":  # the product landed
                pass
            elif st == "round":
                # the floor, the rounding bit and whether floor + 0 and floor + 1 leave the
                # type's range (compared on the floor, in parallel), registered apart; the
                # next stage only adds the bit and selects
                shift = int(spec.requant.shift.reshape(-1)[0])
                parts = []
                for k, p in enumerate(lanes):
                    q, up = _round_parts(p, shift, spec.requant)
                    # the range flags for both values of the rounding bit, each compared on
                    # the floor alone: the bit selects between them in the next stage
                    flags = [*_range_flags(q, Const(0), spec.requant)]
                    flags += [*_range_flags(q, Const(1), spec.requant)]
                    # within range, floor + bit has the type's width: keep the floor's low
                    # bits only, so that the next stage's add is no wider than the output
                    if Value.cast(q).shape().width > spec.requant.qtype.bits:
                        q = Value.cast(q)[: spec.requant.qtype.bits]
                    values = (q, up, *flags)
                    regs = [Signal(Value.cast(q).shape(), name=f"round{k}_q")]
                    regs += [
                        Signal(name=f"round{k}_{f}")
                        for f in ("up", "under0", "over0", "under1", "over1")
                    ]
                    m.d.sync += [r.eq(v) for r, v in zip(regs, values, strict=True)]
                    parts.append(regs)
                lanes = parts
                v_out = Signal(name="round_valid")
                m.d.sync += v_out.eq(valid)
                valid = v_out
                continue
            elif st == "saturate":
                lanes = [
                    _select(_wrap_add(q, up, spec.requant.qtype), Mux(up, u1, u0),
                            Mux(up, o1, o0), spec.requant)
                    for q, up, u0, o0, u1, o1 in lanes
                ]  # fmt: skip
            elif st == "compare":
                step = self._group_step(m, valid, st)
                vals = [value_of(x, self._in_type) if first else x for x in lanes]
                # each hit as the bits of short compares (compare.split_at_least), merged
                # by the count stage: a full-width compare's carry chain, broken by nextpnr
                # into feed-out cells, was tfc_w2a2's longest path (8.0 ns at speed 6)
                lanes, sizes = [], []
                for k, v in enumerate(vals):
                    hits = self._hits(m, v, step, k, v_range, split=True)
                    lanes.append(Cat(*[b for hit in hits for b in hit]))
                    sizes.append([len(hit) for hit in hits])
            elif st == "count":
                if counted:  # the registered tree counted every "count" stage
                    continue
                hits = []
                for x, lane_sizes in zip(lanes, sizes, strict=True):
                    cuts = np.cumsum([0, *lane_sizes])
                    hits.append([merge_at_least(*x[a:b]) for a, b in pairwise(cuts.tolist())])
                lanes = [self._count(m, hs, k) for k, hs in enumerate(hits)]
                if spec.threshold.thresholds.shape[1] > 8:
                    counted = True
                    for j in range(self._stages.count("count")):
                        v_out = Signal(name=f"count_valid{j}")
                        m.d.sync += v_out.eq(valid)
                        valid = v_out
                    continue
            first = False
            regs = []
            for k, v in enumerate(lanes):
                r = Signal(Value.cast(v).shape(), name=f"{st}{k}")
                m.d.sync += r.eq(v)
                regs.append(r)
            lanes = regs
            v_out = Signal(name=f"{st}_valid")
            m.d.sync += v_out.eq(valid)
            valid = v_out
        for k in range(n):
            m.d.comb += self.o.payload[k].eq(lanes[k])
        m.d.comb += self.o.valid.eq(valid)
        return m


def _requant_round(prod, shift: int, layer: Requant):
    """``prod * 2**-shift`` (``prod`` = value · multiplier) rounded and brought into the
    layer's type, exactly as :func:`codesign.models.arith.requantize` does."""
    q, up = _round_parts(prod, shift, layer)
    return _saturate(q + up, layer)


def _round_parts(prod, shift: int, layer: Requant):
    """``(q, up)``: ``prod * 2**-shift`` rounded is ``q + up`` (``q`` the floor, ``up`` a
    bit), by the layer's rounding mode."""
    if shift <= 0:
        return prod << -shift, Const(0)
    q = prod >> shift  # arithmetic shift: floor
    r = prod.as_unsigned()[:shift]
    # the remainder against half of 2**shift, as reductions rather than carry chains
    rest = r[: shift - 1].any() if shift > 1 else Const(0)
    inexact = r.any()
    above, tie = r[-1] & rest, r[-1] & ~rest
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
    return q, up


def _range_flags(q, up, layer: Requant):
    """``(under, over)``: whether ``q + up`` is below or above the range the layer's
    overflow mode keeps (``q`` compared with the bounds less ``up``, not after the add)."""
    t = layer.qtype
    lo, hi = t.min, t.max
    if layer.overflow is Overflow.SAT_SYM and t.signed:
        lo = -hi
    if layer.overflow is Overflow.WRAP:
        return Const(0), Const(0)
    under = [~at_least(q, lo - u) for u in (0, 1)]  # q + u < lo
    over = [at_least(q, hi + 1 - u) for u in (0, 1)]  # q + u > hi
    if isinstance(up, Const):
        return under[up.value], over[up.value]
    return Mux(up, under[1], under[0]), Mux(up, over[1], over[0])


def _wrap_add(q, up, t: QType):
    """``q + up`` where ``q`` may be the floor's low ``t.bits`` bits alone (an unsigned
    slice): the sum modulo ``2**t.bits`` in the type's signedness, right whenever it is in
    the type's range (the only case :func:`_select` keeps it)."""
    if q.shape().signed or q.shape().width < t.bits:
        return q + up
    y = (q + up)[: t.bits]
    return y.as_signed() if t.signed else y


def _select(y, under, over, layer: Requant):
    """``y`` brought into the layer's type given :func:`_range_flags`: as :func:`_saturate`."""
    t = layer.qtype
    lo, hi = t.min, t.max
    if layer.overflow is Overflow.WRAP:
        return y[: t.bits]
    if layer.overflow is Overflow.SAT_SYM and t.signed:
        lo = -hi
    if layer.overflow is Overflow.SAT_ZERO:
        return Mux(under | over, 0, y)
    return Mux(under, lo, Mux(over, hi, y))


def _saturate(y, layer: Requant):
    """``y`` brought into the layer's type by its overflow mode."""
    return _select(y, *_range_flags(y, Const(0), layer), layer)
