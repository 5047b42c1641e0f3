"""Facts of the deformable gather engine that its cycle model (``sim/deform``) and its RTL
(``hdl/deform``) share, so that they cannot drift apart.

The engine keeps an input frame on chip in ``banks`` memories: image row ``y`` lives in bank
``y mod banks`` at word ``(y div banks)·W + x``, one word holding all channels of a pixel,
each bank with ``ports`` read ports. A tap's bilinear sample needs up to four corner words;
a corner is fetched only when it contributes (inside the image, non-zero bilinear weight),
so an integer position needs one fetch and a rounded variant never needs more. A *fetch
group* of taps is served together: it takes ``max over banks of ⌈distinct words in the bank
/ ports⌉`` cycles, at least 1 (a group whose samples are all 0 still takes its cycle). The
RTL serves one tap per group (``taps_per_group = 1``); the cycle model also serves whole
windows (``taps_per_group = kh·kw``, CoDeNet's parallel gather) for exploration.
"""

from __future__ import annotations

import numpy as np

from .fixed import corner_weights

__all__ = [
    "RUN_ISSUE_LATENCY",
    "RUN_OUTPUT_LATENCY",
    "bank_address",
    "corner_requests",
    "frame_cycles",
    "group_fetch_cycles",
    "load_cycles",
    "run_cycles",
    "sample_bits",
    "window_fetch_cycles",
]

#: The RTL's (``hdl/deform/window.py``) cycles from the cycle a RUN phase accepts its first
#: offset beat to the first fetch cycle of its first tap: the offset register, the tap
#: counter, the variant (expansion, clamp, rounding), the position, the corners and the
#: fetch schedule are one register stage each.
RUN_ISSUE_LATENCY = 8
#: The RTL's cycles from a tap's last fetch cycle to the cycle its output beat is valid: the
#: memory read, the read data's register, the corner registers, the products, the sum.
RUN_OUTPUT_LATENCY = 5


def sample_bits(element_bits: int, signed: bool, frac: int) -> int:
    """Width of a bilinear sample of ``element_bits``-bit elements (``signed`` or not) with
    ``frac`` offset fraction bits (0 for a rounded variant): the corner weights add up to
    ``2**(2·frac)``, so ``|sample| ≤ 2**(2·frac)·max|element|`` needs ``2·frac`` more bits, of
    the element's signedness."""
    return element_bits + 2 * frac


def bank_address(row: np.ndarray, col: np.ndarray, banks: int, width: int):
    """``(bank, word)`` of pixel ``(row, col)``."""
    return row % banks, (row // banks) * width + col


def corner_requests(y, x, frac: int, h: int, w: int):
    """The corner words a tap reads: arrays ``(rows, cols, used)`` of shape ``(4, *y.shape)``
    in the corner order (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1); ``used`` is False for
    a corner that contributes nothing and is not fetched."""
    corners = corner_weights(np.asarray(y), np.asarray(x), frac, h, w)
    rows = np.stack([c[0] for c in corners])
    cols = np.stack([c[1] for c in corners])
    used = np.stack([c[2] != 0 for c in corners])
    return rows, cols, used


def group_fetch_cycles(rows, cols, used, banks: int, ports: int, width: int) -> np.ndarray:
    """Cycles to fetch each group of requests: ``rows``, ``cols``, ``used`` have shape
    ``(R, *groups)`` (the ``R`` requests of a group along axis 0); the result has shape
    ``groups``: ``max(1, max over banks of ⌈distinct used words in the bank / ports⌉)``."""
    bank, word = bank_address(rows, cols, banks, width)
    r = rows.shape[0]
    flat_b = bank.reshape(r, -1)
    flat_w = word.reshape(r, -1)
    flat_u = used.reshape(r, -1)
    # a request is counted once per group: only if no earlier used request of the group
    # reads the same (bank, word)
    key = np.where(flat_u, flat_b * (np.int64(1) << 40) + flat_w, -1 - np.arange(r)[:, None])
    first = np.ones_like(flat_u)
    for a in range(1, r):
        first[a] = ~np.any(key[:a] == key[a][None, :], axis=0)
    counted = flat_u & first
    per_bank = np.zeros((banks, flat_b.shape[1]), dtype=np.int64)
    for a in range(r):
        np.add.at(per_bank, (flat_b[a], np.arange(flat_b.shape[1])), counted[a])
    cycles = np.maximum(1, -(-per_bank.max(axis=0) // ports))
    return cycles.reshape(rows.shape[1:])


def window_fetch_cycles(
    offset,
    *,
    height: int,
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    variant,
    frac: int,
    banks: int,
    ports: int,
) -> np.ndarray:
    """Fetch cycles of each tap, one tap per fetch group (the RTL's gather): ``offset`` is
    ``(N, channels, Ho, Wo)`` (one offset group); the result is ``(N, Ho, Wo, kh·kw)`` int64,
    in the order the RTL serves the taps (:func:`run_cycles` sums one frame of it)."""
    from .fixed import tap_positions

    y, x, fr = tap_positions(offset, kernel, stride, padding, dilation, variant, frac)
    rows, cols, used = corner_requests(y[:, 0], x[:, 0], fr, height, width)
    cycles = group_fetch_cycles(rows, cols, used, banks, ports, width)  # (N, K, Ho, Wo)
    return np.ascontiguousarray(cycles.transpose(0, 2, 3, 1))


def load_cycles(height: int, width: int) -> int:
    """Cycles of the RTL's LOAD phase, first input pixel accepted to last inclusive, input
    always valid: one pixel (all channels) per cycle. The RUN phase may accept its first
    offset beat in the next cycle."""
    return height * width


def run_cycles(fetch_cycles_per_tap) -> int:
    """Cycles of the RTL's RUN phase of one frame, from the cycle its first offset beat is
    accepted to the cycle its last output beat is taken, both inclusive, with offsets always
    valid and the output always ready: ``RUN_ISSUE_LATENCY + Σ fetch + RUN_OUTPUT_LATENCY``,
    where ``fetch_cycles_per_tap`` are the fetch cycles of every tap of the frame
    (:func:`window_fetch_cycles`, or :func:`group_fetch_cycles` with one tap per group). The
    taps' fetches run back to back: the offset beats, the variant and the corner arithmetic
    are pipelined ahead of them and never make the fetch wait."""
    total = int(np.sum(np.asarray(fetch_cycles_per_tap, dtype=np.int64)))
    return RUN_ISSUE_LATENCY + total + RUN_OUTPUT_LATENCY


def frame_cycles(height: int, width: int, fetch_cycles_per_tap) -> int:
    """Cycles between the first input pixels of consecutive frames in the RTL, input and
    offsets always valid and the output always ready: the LOAD phase, then the RUN phase up
    to its last fetch cycle (the next frame's LOAD starts in the cycle after it, while the
    last taps' samples are still in the output pipeline)."""
    total = int(np.sum(np.asarray(fetch_cycles_per_tap, dtype=np.int64)))
    return load_cycles(height, width) + RUN_ISSUE_LATENCY + total
