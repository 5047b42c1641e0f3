"""Several :class:`~codesign.hdl.deform.window.DeformWindow` units side by side behind flat
ports, so that one simulator build serves them all and a cocotb bench drives them with a few
handle accesses per cycle (:mod:`codesign.hdl.deform.cocotb_variants`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth import Cat, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .window import DeformWindow

__all__ = ["WindowArray", "pack_words"]


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
    """``n`` deformable windows, each with its own streams, driven through flat ports.

    The units are independent; only the ports are shared vectors. The handshakes and the
    output payloads are registered, so a bench reading them half a cycle after a rising
    clock edge sees what happened at that edge (no combinational read-back of ``ready``).

    Parameters
    ----------
    windows
        The units (any configurations).

    Ports
    -----
    valid
        ``In(2·n)``: bit ``u`` is unit ``u``'s ``i.valid``, bit ``n + u`` its ``offs.valid``.
    ready
        ``In(n)``: bit ``u`` is unit ``u``'s ``o.ready``.
    i_data{u}, offs_data{u}
        Unit ``u``'s ``i`` and ``offs`` payloads.
    fired
        ``Out(3·n)``, registered: bit ``u`` (``n + u``, ``2·n + u``) is set in the cycle
        after unit ``u``'s ``i`` (``offs``, ``o``) took a beat at the clock edge.
    o_data{u}
        Unit ``u``'s ``o`` payload registered at the edge of its last ``o`` transfer.
    """

    def __init__(self, *, windows: Sequence[DeformWindow]) -> None:
        windows = list(windows)
        if not windows or not all(isinstance(w, DeformWindow) for w in windows):
            raise TypeError(f"windows must be a non-empty list of DeformWindow, not {windows!r}")
        self._windows = windows
        n = len(windows)
        members = {"valid": In(2 * n), "ready": In(n), "fired": Out(3 * n)}
        for u, win in enumerate(windows):
            members[f"i_data{u}"] = In(Shape.cast(win.i.payload.shape()).width)
            members[f"offs_data{u}"] = In(Shape.cast(win.offs.payload.shape()).width)
            members[f"o_data{u}"] = Out(Shape.cast(win.o.payload.shape()).width)
        super().__init__(members)

    @property
    def windows(self) -> list[DeformWindow]:
        return list(self._windows)

    def elaborate(self, platform):
        m = Module()
        n = len(self._windows)
        fires = [Signal(name=f"fire{k}") for k in range(3 * n)]
        for u, win in enumerate(self._windows):
            m.submodules[f"unit{u}"] = win
            o_data = getattr(self, f"o_data{u}")
            m.d.comb += [
                win.i.valid.eq(self.valid[u]),
                win.i.payload.eq(getattr(self, f"i_data{u}")),
                win.offs.valid.eq(self.valid[n + u]),
                win.offs.payload.eq(getattr(self, f"offs_data{u}")),
                win.o.ready.eq(self.ready[u]),
                fires[u].eq(win.i.valid & win.i.ready),
                fires[n + u].eq(win.offs.valid & win.offs.ready),
                fires[2 * n + u].eq(win.o.valid & win.o.ready),
            ]
            with m.If(fires[2 * n + u]):
                m.d.sync += o_data.eq(win.o.payload)
        m.d.sync += self.fired.eq(Cat(*fires))
        return m
