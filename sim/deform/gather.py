"""Cycle model of one deformable layer on the gather engine, driven by its actual offsets.

For every output window (one output pixel, all offset groups) of every frame:

1. each tap's bilinear sample reads up to four corner words
   (:func:`codesign.models.deform.engine.corner_requests`: a corner is read only where it
   contributes, so an integer or rounded position reads one);
2. with a sliding line buffer (``config.rows`` an int) the buffer holds rows
   ``top − ⌊(rows − span)/2⌋ …`` (``rows`` of them) around the window's nominal rows
   ``top = oy·sh − ph`` … ``top + span − 1`` (``span = (kh − 1)·dh + 1``); a corner outside
   them is an external-memory *burst* instead of an on-chip read;
3. the taps are served ``T = taps_per_group`` at a time, per offset group, in tap order: a
   fetch group costs :func:`codesign.models.deform.engine.group_fetch_cycles`
   (``max(1, max over banks of ⌈distinct on-chip words / P⌉)``);
4. a window with bursts waits ``burst_latency + bursts·⌈max(word bytes, min_burst_bytes) /
   bytes_per_cycle⌉`` cycles more (issued back to back, one latency per window);
5. the window's gather (steps 3-4) and its MAC-array cycles (:func:`mac_cycles`) overlap
   (``max``) or follow each other (``+``), and a frame costs the sum over its windows — except
   in the RTL's configuration (:func:`is_rtl`), where a frame costs the RTL's exact RUN phase,
   :func:`codesign.models.deform.engine.run_cycles` of the same per-tap fetch cycles.

Everything is vectorised with numpy over windows, groups and frames (frames in chunks to
bound memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from codesign.models.deform import Variant, engine, tap_positions
from codesign.models.ir import Tensor

from .config import GatherConfig, Overlap

__all__ = [
    "DeformShape",
    "DeformTiming",
    "is_rtl",
    "layer_timing",
    "mac_cycles",
    "positions_timing",
]

#: Most tap positions (frames × groups × taps × windows) handled in one vectorised chunk.
CHUNK_POSITIONS = 1 << 20


@dataclass(frozen=True)
class DeformShape:
    """The geometry of a deformable layer that its timing depends on."""

    name: str
    channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1  #: convolution groups
    offset_groups: int = 1
    element_bits: int = 8

    def __post_init__(self) -> None:
        for f in ("channels", "height", "width", "out_channels", "groups", "offset_groups"):
            v = getattr(self, f)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{f} of layer {self.name} must be a positive int, not {v!r}")
        if self.channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups of layer {self.name} must divide {self.channels} input and "
                f"{self.out_channels} output channels, not {self.groups!r}"
            )
        if self.channels % self.offset_groups:
            raise ValueError(
                f"offset_groups of layer {self.name} must divide its {self.channels} channels, "
                f"not {self.offset_groups!r}"
            )

    @property
    def depthwise(self) -> bool:
        return self.groups == self.channels == self.out_channels

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def span(self) -> int:
        """Image rows a window's nominal taps cover."""
        return (self.kernel[0] - 1) * self.dilation[0] + 1

    @property
    def word_bits(self) -> int:
        """Bits of one pixel word of an offset group (what a corner fetch returns)."""
        return self.channels // self.offset_groups * self.element_bits

    @classmethod
    def of_layer(cls, layer, x: Tensor, offset: Tensor) -> DeformShape:
        """The geometry of a :class:`~codesign.models.deform.layer.DeformConv2d` reading the
        image ``x`` and the offsets ``offset``."""
        c, h, w = (int(v) for v in x.shape)
        return cls(
            name=layer.name,
            channels=c,
            height=h,
            width=w,
            out_channels=int(layer.weight.shape[0]),
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups_for(x),
            offset_groups=layer.offset_groups(offset),
            element_bits=int(x.qtype.bits),
        )


def is_rtl(shape: DeformShape, config: GatherConfig) -> bool:
    """Whether ``config`` on a layer of ``shape`` is what the RTL gather unit builds: one tap
    per fetch group, the whole frame on chip, no MAC array, one offset group."""
    return (
        config.taps_per_group == 1
        and config.rows is None
        and config.pe is None
        and shape.offset_groups == 1
    )


def mac_cycles(shape: DeformShape, config: GatherConfig) -> int:
    """MAC-array cycles per output window (see :class:`GatherConfig`'s ``pe``, ``simd``)."""
    k = shape.taps
    if config.pe is None:
        return 0
    if shape.depthwise:
        return -(-shape.channels // config.pe) * -(-k // config.simd)
    cg, og = shape.channels // shape.groups, shape.out_channels // shape.groups
    return shape.groups * -(-og // config.pe) * -(-(k * cg) // config.simd)


@dataclass(frozen=True, eq=False)
class DeformTiming:
    """The cycle model's prediction for one layer over a batch of frames."""

    layer: str
    variant: str
    config: GatherConfig
    shape: DeformShape
    window_cycles: np.ndarray  #: (N, Ho, Wo) cycles of each window
    gather_cycles: np.ndarray  #: (N, Ho, Wo) on-chip fetch plus external cycles
    external_cycles: np.ndarray  #: (N, Ho, Wo) the external part of ``gather_cycles``
    mac_cycles: int  #: MAC-array cycles of every window
    fetch_histogram: np.ndarray  #: [c] = fetch groups that took c cycles (all frames)
    bursts: np.ndarray  #: (N,) external bursts per frame
    burst_bytes: int  #: bytes one burst moves
    #: (N,) the RTL's RUN phase per frame (:func:`codesign.models.deform.engine.run_cycles`)
    #: when the configuration is the RTL's (:func:`is_rtl`), else None
    rtl_run_cycles: np.ndarray | None = None
    #: (N,) likewise, cycles between consecutive frames' first input pixels (LOAD, then RUN to
    #: its last fetch: :func:`codesign.models.deform.engine.frame_cycles`)
    rtl_frame_interval: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.window_cycles.shape[0])

    @property
    def frame_cycles(self) -> np.ndarray:
        """(N,) cycles of each frame: the RTL's RUN phase (first offset beat accepted to last
        output beat taken, :func:`codesign.models.deform.engine.run_cycles`) for the RTL's
        configuration, else the sum of the frame's window cycles."""
        if self.rtl_run_cycles is not None:
            return self.rtl_run_cycles
        return self.window_cycles.sum(axis=(1, 2))

    @property
    def external_bytes(self) -> np.ndarray:
        """(N,) bytes read from external memory per frame."""
        return self.bursts * self.burst_bytes

    @property
    def fetch_groups(self) -> int:
        """Fetch groups per frame."""
        return int(self.fetch_histogram.sum()) // self.frames

    @property
    def gather_bound(self) -> float:
        """Share of windows whose gather takes longer than their MACs."""
        return float(np.mean(self.gather_cycles > self.mac_cycles))

    def to_dict(self) -> dict:
        fc = self.frame_cycles
        return {
            "layer": self.layer,
            "variant": self.variant,
            "depthwise": self.shape.depthwise,
            "frames": self.frames,
            "frame_cycles": [int(v) for v in fc],
            "mean_frame_cycles": float(fc.mean()),
            "windows_per_frame": int(self.window_cycles[0].size),
            "mean_window_cycles": float(self.window_cycles.mean()),
            "mean_gather_cycles": float(self.gather_cycles.mean()),
            "mean_external_cycles": float(self.external_cycles.mean()),
            "mac_cycles_per_window": int(self.mac_cycles),
            "gather_bound_windows": self.gather_bound,
            "fetch_groups_per_frame": self.fetch_groups,
            "fetch_cycles_histogram": {
                str(c): int(n) for c, n in enumerate(self.fetch_histogram) if n
            },
            "bursts_per_frame": float(self.bursts.mean()),
            "burst_bytes": int(self.burst_bytes),
            "external_bytes_per_frame": float(self.external_bytes.mean()),
            "config": self.config.to_dict(),
            "rtl_frame_interval": None
            if self.rtl_run_cycles is None
            else [int(v) for v in self.rtl_frame_interval],
        }


def _chunk_timing(y, x, frac, shape: DeformShape, config: GatherConfig):
    """Per-window on-chip cycles, bursts and fetch-group cycles of frames ``y``, ``x``
    (n, G, K, Ho, Wo)."""
    n, g, k, ho, wo = y.shape
    rows, cols, used = engine.corner_requests(y, x, frac, shape.height, shape.width)
    if config.rows is None:
        onchip, ext = used, None
    else:
        start = (
            np.arange(ho, dtype=np.int64) * shape.stride[0]
            - shape.padding[0]
            - (config.rows - shape.span) // 2
        )[:, None]  # (Ho, 1), broadcast over the window's column
        inside = (rows >= start) & (rows < start + config.rows)
        onchip, ext = used & inside, used & ~inside
    t = min(config.taps_per_group, k)
    ng = -(-k // t)
    if ng * t != k:  # pad the last group with taps that read nothing
        pad = ((0, 0), (0, 0), (0, 0), (0, ng * t - k), (0, 0), (0, 0))
        rows, cols, onchip = (np.pad(a, pad) for a in (rows, cols, onchip))

    def grouped(a):  # (4, n, G, ng·T, Ho, Wo) -> (4·T, n, G, ng, Ho, Wo)
        a = a.reshape(4, n, g, ng, t, ho, wo).transpose(0, 4, 1, 2, 3, 5, 6)
        return a.reshape(4 * t, n, g, ng, ho, wo)

    cyc = engine.group_fetch_cycles(
        grouped(rows), grouped(cols), grouped(onchip), config.banks, config.ports, shape.width
    )  # (n, G, ng, Ho, Wo)
    onchip_cycles = cyc.sum(axis=(1, 2))
    bursts = np.zeros((n, ho, wo), dtype=np.int64) if ext is None else ext.sum(axis=(0, 2, 3))
    rtl = None
    if is_rtl(shape, config):  # the RTL's RUN phase and frame interval from per-tap fetches
        rtl = np.array(
            [
                (engine.run_cycles(c), engine.frame_cycles(shape.height, shape.width, c))
                for c in cyc
            ],
            dtype=np.int64,
        ).reshape(-1, 2)
    return onchip_cycles, bursts, np.bincount(cyc.ravel()), rtl


def positions_timing(
    y: np.ndarray,
    x: np.ndarray,
    frac: int,
    shape: DeformShape,
    config: GatherConfig,
    variant: str = "",
) -> DeformTiming:
    """The timing of a layer of geometry ``shape`` sampling at positions ``y``, ``x``.

    Parameters
    ----------
    y, x
        ``(N, G, kh·kw, Ho, Wo)`` integer positions in units of ``2**-frac`` pixel, as
        :func:`codesign.models.deform.tap_positions` returns them (the variant applied).
    frac
        Fraction bits of the positions.
    shape
        The layer's geometry.
    config
        The engine.
    variant
        The variant's name, for the report.

    Raises
    ------
    ValueError
        When the positions do not match ``shape`` or the line buffer is shorter than a window.
    """
    if not isinstance(config, GatherConfig):
        raise TypeError(f"config must be a GatherConfig, not {config!r}")
    y = np.asarray(y, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    if y.ndim != 5 or y.shape != x.shape or y.shape[1:3] != (shape.offset_groups, shape.taps):
        raise ValueError(
            f"positions of layer {shape.name} must both have shape (N, {shape.offset_groups}, "
            f"{shape.taps}, Ho, Wo), not {y.shape} and {x.shape}"
        )
    if config.rows is not None and config.rows < shape.span:
        raise ValueError(
            f"rows must be at least the {shape.span} rows a window of layer {shape.name} "
            f"spans, not {config.rows!r}"
        )
    n = y.shape[0]
    per_frame = max(1, y[0].size)
    step = max(1, CHUNK_POSITIONS // per_frame)
    parts = [
        _chunk_timing(y[i : i + step], x[i : i + step], frac, shape, config)
        for i in range(0, n, step)
    ]
    onchip = np.concatenate([p[0] for p in parts])
    rtl = None if parts[0][3] is None else np.concatenate([p[3] for p in parts])
    bursts = np.concatenate([p[1] for p in parts])
    hist = np.zeros(max(len(p[2]) for p in parts), dtype=np.int64)
    for p in parts:
        hist[: len(p[2])] += p[2]
    burst_bytes = max(-(-shape.word_bits // 8), config.min_burst_bytes)
    per_burst = -(-burst_bytes // config.bytes_per_cycle)
    external = np.where(bursts > 0, config.burst_latency + bursts * per_burst, 0)
    gather = onchip + external
    mac = mac_cycles(shape, config)
    if config.overlap is Overlap.PIPELINED:
        window = np.maximum(gather, mac)
    else:
        window = gather + mac
    return DeformTiming(
        layer=shape.name,
        variant=variant,
        config=config,
        shape=shape,
        window_cycles=window,
        gather_cycles=gather,
        external_cycles=external,
        mac_cycles=mac,
        fetch_histogram=hist,
        bursts=bursts.sum(axis=(1, 2)),
        burst_bytes=burst_bytes,
        rtl_run_cycles=None if rtl is None else rtl[:, 0],
        rtl_frame_interval=None if rtl is None else rtl[:, 1],
    )


def layer_timing(
    layer, x: Tensor, offset: Tensor, offsets: np.ndarray, config: GatherConfig
) -> DeformTiming:
    """The timing of a :class:`~codesign.models.deform.layer.DeformConv2d` on a batch.

    Parameters
    ----------
    layer
        The deformable layer (its variant is applied to the offsets).
    x, offset
        The layer's input tensors (image, offsets) as the network types them.
    offsets
        ``(N, *offset.shape)`` integer offset values (the golden trace's).
    config
        The engine.
    """
    variant: Variant = layer.variant
    y, xx, frac = tap_positions(
        np.asarray(offsets, dtype=np.int64),
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.dilation,
        variant,
        layer.offset_frac(offset),
    )
    return positions_timing(
        y, xx, frac, DeformShape.of_layer(layer, x, offset), config, variant.name
    )
