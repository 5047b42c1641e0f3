"""Line-buffer facts of the sliding-window generator, shared by the RTL
(:class:`codesign.hdl.dataflow.swg.SlidingWindow`) and the simulator
(:mod:`codesign.sim.dataflow`): how many
image rows the buffer holds, and when the reader releases them."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import numpy as np

from .dataflow import conv_out_size
from .device import range_width

__all__ = [
    "READ_LATENCY",
    "WINDOW_CREDITS",
    "WindowGeometry",
    "line_buffer_rows",
    "released_rows",
    "window_geometry",
]

#: Cycles from a tap's read (the reader's step, its address into the buffer) to its beat on
#: the window's output: the buffer's read register (the address, in block RAM) and an output
#: register (a block RAM's own, such as the ECP5 DP16KD's ``OUTREG``), so that no path runs
#: from a block RAM's slow clock-to-output into the logic behind the window. The stages
#: advance every cycle: a tap read in cycle ``t`` is valid from ``t + READ_LATENCY``
#: (what holds a tap the reader does not take at once: :data:`WINDOW_CREDITS`).
READ_LATENCY = 2

#: Taps a window generator feeding a ready/valid reader (a convolution's) may have read and
#: not yet delivered: its read stages never stall, and a tap the reader does not take at
#: once waits in a queue of ``WINDOW_CREDITS`` slots behind them. The window reads tap
#: ``j`` only in a cycle after tap ``j - WINDOW_CREDITS`` left its output (a registered
#: count, so no ``ready`` reaches the reader's step); a tap read in cycle ``t`` is valid
#: from ``t + READ_LATENCY``. One more than ``READ_LATENCY``: a reader taking every beat at
#: once never holds the window back.
WINDOW_CREDITS = READ_LATENCY + 1


def released_rows(
    *, height: int, kernel_h: int, stride_h: int, padding_h: int, dilation_h: int
) -> list[int]:
    """Rows of a frame released (cumulatively) once output row ``o`` has been emitted, for
    every output row: those above the next output row's window; all of them after the last."""
    oh_n = conv_out_size(height, kernel_h, stride_h, padding_h, dilation_h)
    return [
        height if o == oh_n - 1 else min(height, max(0, (o + 1) * stride_h - padding_h))
        for o in range(oh_n)
    ]


def line_buffer_rows(
    *,
    height: int,
    width: int,
    groups: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    channel_major: bool = False,
) -> int:
    """Image rows the line buffer of a :class:`SlidingWindow` needs to run frames back to
    back at ``max(input beats, output beats)`` cycles per frame.

    ``groups`` is the number of beats per pixel (channels // simd). ``channel_major`` selects
    the (channel group, kh, kw) tap order that :class:`~codesign.hdl.dataflow.pool.Pool2d` uses.

    The answer comes from the block's own schedule, row by row, in steady state:

    - when input beats ≥ output beats the writer must never wait. With the writer taking one
      beat per cycle, the reader (one beat per cycle, each tap only once it is written)
      finishes output row ``oh`` at a known cycle; the rows it releases then must be free
      before the writer starts the row that reuses their slots.
    - otherwise the reader must never wait. With the reader emitting one beat per cycle, the
      writer starts each row as soon as the row ``rows`` earlier has been released; every
      tap must be written before the reader emits it.

    The smallest count meeting the condition is returned. It counts the rows the current
    windows span (``(kh - 1) * dh + 1``), the rows between two window rows (stride), and the
    rows of the next frame that arrive while the last windows of a frame are still emitted.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    h, w, g = height, width, groups
    oh_n = conv_out_size(h, kh, sh, ph, dh)
    ow_n = conv_out_size(w, kw, sw, pw, dw)
    wg = w * g
    n_row = ow_n * kh * kw * g  # output beats per output row
    n_out, n_in = oh_n * n_row, h * wg
    neg = -(1 << 62)
    # For every tap the reader emits, (input beat index - output beat index) is largest, per
    # (pixel, kh), at the last in-image kw (and channel group 0 in channel-major order).
    ow = np.arange(ow_n, dtype=np.int64)
    x0 = ow * sw - pw
    kw_last = np.minimum(kw - 1, (w - 1 - x0) // dw)
    kw_first = np.maximum(0, -(x0 // dw))
    inside = (kw_first <= kw_last) & (kw_last >= 0)
    by_out_row = [neg] * oh_n  # max (input index - output index within the row's frame)
    by_in_row = [neg] * h  # the same per input row, column part only
    if inside.any():
        for o in range(oh_n):
            pix = o * ow_n + ow
            for k in range(kh):
                y = o * sh + k * dh - ph
                if not 0 <= y < h:
                    continue
                if channel_major:
                    v = (x0 + kw_last * dw) * g - k * kw - kw_last - pix * g * kh * kw
                else:
                    v = x0 * g + kw_last * (dw - 1) * g - pix * kh * kw * g - k * kw * g
                top = int(v[inside].max())
                by_out_row[o] = max(by_out_row[o], y * wg + top)
                by_in_row[y] = max(by_in_row[y], top)
    # rows of a frame released once output row o is done
    released = released_rows(height=h, kernel_h=kh, stride_h=sh, padding_h=ph, dilation_h=dh)
    release_at = []  # output index (within a frame) after which input row y is released
    o = 0
    for y in range(h):
        while released[o] <= y:
            o += 1
        release_at.append((o + 1) * n_row - 1)
    frames = 4
    if n_in >= n_out:
        need, done = 1, -1
        for f in range(frames):
            for o in range(oh_n):
                ready = max(
                    neg if by_out_row[o] == neg else f * n_in + (o + 1) * n_row + by_out_row[o],
                    (f - 1) * n_in + n_row - 1,  # padding: the writer is in frame f - 1
                )
                done = max(done + n_row, ready)
                before = released[o - 1] if o else 0
                if f >= frames - 2 and released[o] > before:
                    need = max(need, -(-(done + 1) // wg) - (f * h + before))
        return need
    for rows in count(1):
        start, prev = [], neg
        for n in range(frames * h):
            free = n - rows
            at = neg if free < 0 else (free // h) * n_out + release_at[free % h] + 1
            prev = max(prev + wg if prev > neg else neg, at)
            start.append(prev)
        if all(
            by_in_row[y] == neg or start[f * h + y] + by_in_row[y] + 1 <= f * n_out
            for f in (frames - 2, frames - 1)
            for y in range(h)
        ):
            return rows
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class WindowGeometry:
    """Sizes of a sliding-window generator's line buffer and address arithmetic."""

    kernel: tuple[int, int]
    groups: int  #: beats per pixel (channels / elements per beat)
    rows: int  #: image rows held (:func:`line_buffer_rows`)
    oh: int
    ow: int
    depth: int  #: line-buffer words (rows · width · groups)
    yb: int  #: bits of the window's row coordinate (signed, from -padding)
    xb: int  #: bits of its column coordinate
    slot_b: int  #: bits of a row slot index
    #: MULT18X18D of the address arithmetic: none, the generator steps its addresses by
    #: constant strides (a field kept for the cost model's interface)
    dsp: int


def window_geometry(stage, simd: int, channel_major: bool) -> WindowGeometry:
    """The line-buffer geometry of a convolution's or a pool's window generator reading
    ``simd`` channels per beat (``stage``: a :class:`codesign.models.hwconfig.Stage` whose main
    layer
    is a convolution or a pooling layer)."""
    c, h, w = stage.input.shape
    la = stage.main
    conv = hasattr(la, "weight")
    kernel = tuple(la.weight.shape[2:]) if conv else tuple(la.kernel)
    stride = tuple(la.stride) if la.stride is not None else kernel
    padding = tuple(getattr(la, "padding", (0, 0)))
    dilation = tuple(getattr(la, "dilation", (1, 1))) if conv else (1, 1)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    g = c // simd
    rows = line_buffer_rows(
        height=h,
        width=w,
        groups=g,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        channel_major=channel_major,
    )
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    yb = range_width(min(-ph, -1), (oh - 1) * sh + (kh - 1) * dh - ph)
    xb = range_width(min(-pw, -1), (ow - 1) * sw + (kw - 1) * dw - pw)
    slot_b = range_width(0, rows - 1)
    return WindowGeometry((kh, kw), g, rows, oh, ow, rows * w * g, yb, xb, slot_b, 0)
