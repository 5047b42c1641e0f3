"""Several :class:`~codesign.hdl.deform.window.DeformWindow` units side by side, each fed and
drained through block buffers, so that one simulator build serves them all and a cocotb
bench (:mod:`codesign.hdl.deform.cocotb_variants`) touches the design once every ``block``
cycles instead of every cycle."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth import Array, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .window import DeformWindow

__all__ = ["WindowArray", "pack_words"]

#: Streams of a unit, in the order of the ``toggles`` and ``status`` bits.
STREAMS = ("i", "offs", "o")


def pack_words(values, bits: int) -> list[int]:
    """Beat words of an integer array: each row along the last axis is one word, element
    ``j`` in bits ``[j·bits, (j + 1)·bits)`` (two's complement), as an ``ArrayLayout``
    payload holds it; the words of the leading axes in C order."""
    v = np.asarray(values, dtype=np.int64)
    rows = v.reshape(-1, v.shape[-1]).astype(np.uint64) & np.uint64((1 << bits) - 1)
    limbs = np.zeros((len(rows), -(-rows.shape[1] * bits // 64)), dtype=np.uint64)
    for j in range(rows.shape[1]):
        q, s = divmod(j * bits, 64)
        limbs[:, q] |= rows[:, j] << np.uint64(s)
        if s + bits > 64:
            limbs[:, q + 1] |= rows[:, j] >> np.uint64(64 - s)
    words = limbs[:, -1].astype(object)
    for q in range(limbs.shape[1] - 2, -1, -1):
        words = (words << 64) | limbs[:, q].astype(object)
    return words.tolist()


class WindowArray(wiring.Component):
    """``n`` deformable windows, each with its own streams behind block buffers.

    Each stream of unit ``u`` has two slots of ``block`` beats. An input slot ``k`` is full
    while its ``toggles`` bit differs from its ``status`` bit: the bench writes
    ``{s}_data{u}_{k}`` (the block's words, beat ``j`` at bits ``[j·W, (j + 1)·W)``) and
    ``{s}_slow{u}_{k}`` and flips the toggle; the harness offers the slots' beats in turn
    and flips the status bit when the slot's last beat is taken. An output slot collects
    ``block`` beats of ``o`` into ``o_data{u}_{k}``, then flips its status bit; the bench
    reads it and flips the toggle to free it (``o`` is not ready while the slot to write is
    full). A beat whose ``slow`` bit is set is offered (taken) only in cycles where a
    pseudo-random draw passes ``valid_prob`` (``ready_prob``); once offered it stays valid
    until taken. ``{s}_stamp{u}_{k}`` holds the cycle counter at the slot's first transfer
    (bits 0-31) and at its last (bits 32-63).

    Parameters
    ----------
    windows
        The units (any configurations).
    block
        Beats per slot.
    valid_prob, ready_prob
        Probabilities in sixteenths (1 to 16) of offering a slow input beat and of taking a
        slow output beat in a cycle.
    seed
        Non-zero seed of the units' pseudo-random generators.
    """

    def __init__(
        self,
        *,
        windows: Sequence[DeformWindow],
        block: int,
        valid_prob: int = 10,
        ready_prob: int = 10,
        seed: int = 1,
    ) -> None:
        windows = list(windows)
        if not windows or not all(isinstance(w, DeformWindow) for w in windows):
            raise TypeError(f"windows must be a non-empty list of DeformWindow, not {windows!r}")
        for name, value, lo, hi in (
            ("block", block, 1, 1 << 16),
            ("valid_prob", valid_prob, 1, 16),
            ("ready_prob", ready_prob, 1, 16),
            ("seed", seed, 1, (1 << 32) - 1),
        ):
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an int from {lo} to {hi}, not {value!r}")
        self._windows = windows
        self._block, self._vp, self._rp, self._seed = block, valid_prob, ready_prob, seed
        n = len(windows)
        members = {"toggles": In(6 * n), "status": Out(6 * n)}
        for u, win in enumerate(windows):
            for s in STREAMS:
                width = Shape.cast(getattr(win, s).payload.shape()).width
                for k in range(2):
                    members[f"{s}_data{u}_{k}"] = (Out if s == "o" else In)(block * width)
                    members[f"{s}_slow{u}_{k}"] = In(block)
                    members[f"{s}_stamp{u}_{k}"] = Out(64)
        super().__init__(members)

    @property
    def windows(self) -> list[DeformWindow]:
        return list(self._windows)

    @property
    def block(self) -> int:
        return self._block

    def elaborate(self, platform):
        m = Module()
        b = self._block
        now = Signal(32)
        m.d.sync += now.eq(now + 1)
        for u, win in enumerate(self._windows):
            m.submodules[f"unit{u}"] = win
            rnd = Signal(32, init=(self._seed * (2 * u + 1)) & 0xFFFFFFFF or 1, name=f"rnd{u}")
            x1 = rnd ^ (rnd << 13)[:32]
            x2 = x1 ^ (x1 >> 17)
            m.d.sync += rnd.eq(x2 ^ (x2 << 5)[:32])
            for si, s in enumerate(STREAMS):
                port = getattr(win, s)
                width = Shape.cast(port.payload.shape()).width
                base = 6 * u + 2 * si
                slot = Signal(name=f"{s}_slot{u}")
                index = Signal(range(b), name=f"{s}_index{u}")
                done = Signal(2, name=f"{s}_done{u}")
                m.d.comb += self.status[base : base + 2].eq(done)
                full = self.toggles[base : base + 2] ^ done
                slow = Array(getattr(self, f"{s}_slow{u}_{k}") for k in range(2))[slot]
                draw = rnd[8 * si : 8 * si + 4] < (self._rp if s == "o" else self._vp)
                fire = port.valid & port.ready
                stamps = [getattr(self, f"{s}_stamp{u}_{k}") for k in range(2)]
                if s == "o":
                    data = [getattr(self, f"o_data{u}_{k}") for k in range(2)]
                    m.d.comb += port.ready.eq(
                        ~full.bit_select(slot, 1) & (~slow.bit_select(index, 1) | draw)
                    )
                    for k in range(2):
                        with m.If(fire & (slot == k)):
                            m.d.sync += data[k].word_select(index, width).eq(port.payload)
                else:
                    data = Array(getattr(self, f"{s}_data{u}_{k}") for k in range(2))
                    held = Signal(name=f"{s}_held{u}")
                    offer = full.bit_select(slot, 1) & (held | ~slow.bit_select(index, 1) | draw)
                    m.d.comb += [
                        port.valid.eq(offer),
                        port.payload.eq(data[slot].word_select(index, width)),
                    ]
                    m.d.sync += held.eq(offer & ~port.ready)
                with m.If(fire):
                    for k in range(2):
                        with m.If(slot == k):
                            m.d.sync += stamps[k][32:].eq(now)
                            with m.If(index == 0):
                                m.d.sync += stamps[k][:32].eq(now)
                    with m.If(index == b - 1):
                        m.d.sync += [index.eq(0), slot.eq(~slot)]
                        m.d.sync += done.bit_select(slot, 1).eq(~done.bit_select(slot, 1))
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
        return m
