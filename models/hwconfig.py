"""Hardware configuration of a dataflow pipeline, and its closed-form facts.

A :class:`~models.ir.Network` becomes a pipeline of *stages*, one per compute layer (as in
FINN and fpgaConvNet): a dense or binary-dense layer with the activation layers that follow
it (clip, requant or multithreshold) is one matrix-vector-activation unit (MVAU); a
convolution is a sliding-window generator feeding an MVAU; a pooling layer is a pool unit;
an activation on its own is a threshold unit; flatten and reshape need no hardware.

:class:`HardwareConfig` sets each stage's parallelism (PE output channels and SIMD input
elements per cycle), weight memory style and input FIFO depth. It never changes what the
network computes. The cycle counts here are what the simulator predicts and the RTL is
measured against; both read them from this module so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .errors import DescriptionError, UserError
from .ir import Layer, Network, Tensor
from .layers import (
    AvgPool2d,
    BinaryConv2d,
    BinaryDense,
    Clip,
    Conv2d,
    Dense,
    Flatten,
    Input,
    MaxPool2d,
    MultiThreshold,
    Requant,
    Reshape,
)
from .qtype import Kind

__all__ = [
    "LOGIC_ROM_MAX_DEPTH",
    "ConfigError",
    "Design",
    "HardwareConfig",
    "MemStyle",
    "Stage",
    "StageConfig",
    "accumulator_range",
    "plan",
    "resolve_mem_style",
    "stage_io",
]


class ConfigError(UserError, ValueError):
    """A hardware configuration that the network cannot take (impossible folding, ...)."""


class MemStyle(enum.Enum):
    """Where an MVAU keeps its weights (a ROM read one word per cycle, synchronously)."""

    #: :data:`BLOCK` when the weight ROM is deeper than :data:`LOGIC_ROM_MAX_DEPTH` words,
    #: else :data:`DISTRIBUTED` (see :func:`resolve_mem_style`)
    AUTO = "auto"
    DISTRIBUTED = "distributed"  #: a ROM in logic (LUTs)
    BLOCK = "block"  #: block RAM


#: Deepest weight ROM that :data:`MemStyle.AUTO` keeps in logic: 2**7 words, where each
#: output bit of the ROM is one 7-input function (on ECP5: eight LUT4s joined by the slices'
#: PFUMX/L6MUX21 muxes). A deeper ROM needs LUTs as multiplexers too; its logic grows
#: faster than one LUT4 per 16 bits, while one DP16KD holds 18 Kbit. It is also where a
#: logic ROM's cost becomes unpredictable: ABC's mapping of the same truth tables varies
#: by 15-25% with the order of their columns alone (sim/cost.py).
LOGIC_ROM_MAX_DEPTH = 128


def resolve_mem_style(style: MemStyle, depth: int) -> MemStyle:
    """The concrete style of a ``depth``-word weight ROM: ``style`` unless it is AUTO."""
    if style is not MemStyle.AUTO:
        return style
    return MemStyle.BLOCK if depth > LOGIC_ROM_MAX_DEPTH else MemStyle.DISTRIBUTED


class StageKind(enum.Enum):
    MVAU = "mvau"  #: dense / binary dense (+ activation)
    CONV = "conv"  #: sliding-window generator + MVAU (+ activation)
    POOL = "pool"  #: max or average pooling
    ACT = "act"  #: standalone clip / requant / multithreshold


@dataclass(frozen=True, eq=False)
class Stage:
    """One hardware stage: the IR layers it computes and its shape facts."""

    name: str
    kind: StageKind
    layers: tuple[Layer, ...]  #: the main layer first, then fused activations
    input: Tensor  #: what the stage reads (IR tensor)
    output: Tensor  #: what it writes (IR tensor of its last layer)
    acc: Tensor  #: the main layer's output (an MVAU's accumulators, before activation)
    #: for an MVAU after a flatten: stream position j holds the flattened (C·H·W) element
    #: ``in_order[j]``; the weight columns are permuted to match. None when identity.
    in_order: np.ndarray | None = None

    @property
    def main(self) -> Layer:
        return self.layers[0]

    @property
    def tap(self) -> str:
        """The IR layer whose output this stage's output equals (compare with trace)."""
        return self.layers[-1].name

    @property
    def mh(self) -> int:
        """Output channels (MVAU rows)."""
        return int(self.main.weight.shape[0]) if self.kind in _MATRIX else self.channels

    @property
    def mw(self) -> int:
        """Elements of one input vector (MVAU columns)."""
        return int(self.main.weight[0].size) if self.kind in _MATRIX else self.channels

    @property
    def channels(self) -> int:
        return int(self.input.shape[0]) if len(self.input.shape) == 3 else self.input.size

    @property
    def depthwise(self) -> bool:
        """A depthwise convolution (a vector-vector unit instead of an MVAU)."""
        m = self.main
        return (
            self.kind is StageKind.CONV
            and isinstance(m, Conv2d)
            and m.groups > 1
            and m.groups == self.channels == m.weight.shape[0]
        )

    @property
    def vectors(self) -> int:
        """Input vectors per frame: output pixels of a convolution, 1 for a dense layer."""
        if self.kind is StageKind.CONV:
            return int(self.output.shape[1] * self.output.shape[2])
        return 1

    def pe_choices(self) -> list[int]:
        """Valid PE values (divisors of the output channels)."""
        return _divisors(self.mh) if self.kind in _MATRIX else _divisors(self.channels)

    def simd_choices(self) -> list[int]:
        """Valid SIMD values: divisors of the vector length; for a convolution also of the
        input channels (each beat carries channels of one window position). A depthwise
        convolution reads PE channels per beat, so its SIMD is 1."""
        if self.depthwise:
            return [1]
        if self.kind is StageKind.CONV:
            return _divisors(int(self.input.shape[0]))
        if self.kind is StageKind.MVAU:
            return _divisors(self.mw)
        return [1]


_MATRIX = (StageKind.MVAU, StageKind.CONV)


def _is_depthwise(layer: Layer, net: Network) -> bool:
    """A convolution with one filter per input channel (groups = C = OC)."""
    if not isinstance(layer, Conv2d):
        return False
    c = net.tensors[layer.inputs[0]].shape[0]
    return layer.groups == c == layer.weight.shape[0] and c > 1


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def plan(net: Network) -> list[Stage]:
    """The pipeline's stages for ``net``, in order. Raises :class:`ConfigError` for a layer
    the dataflow hardware cannot build, naming it."""
    readers: dict[str, list[str]] = {la.name: [] for la in net.layers}
    for la in net.layers:
        for s in la.inputs:
            readers[s].append(la.name)
    stages: list[Stage] = []
    order: np.ndarray | None = None  # pending flatten permutation
    i = 0
    layers = list(net.layers)
    while i < len(layers):
        la = layers[i]
        if isinstance(la, Input):
            i += 1
            continue
        if len(la.inputs) != 1:
            raise ConfigError(
                f"layer {la.name!r}: {la.op} joins two branches; the residual fork/add blocks "
                "exist (hdl/dataflow/residual.py) but the compiler routes linear pipelines only"
            )
        if isinstance(la, Flatten | Reshape):
            src = net.tensors[la.inputs[0]]
            if len(src.shape) == 3 and isinstance(la, Flatten):
                c, h, w = src.shape
                # stream position (h, w, c) holds flattened index c*H*W + h*W + w
                order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
            elif len(src.shape) != 1 or isinstance(la, Reshape):
                raise ConfigError(
                    f"layer {la.name!r}: {la.op} of shape {src.shape} has no dataflow "
                    "hardware; only flatten of (C, H, W) or of a vector is supported"
                )
            i += 1
            continue
        group = [la]
        if isinstance(la, Dense | BinaryDense | Conv2d | BinaryConv2d):
            kind = StageKind.CONV if isinstance(la, Conv2d | BinaryConv2d) else StageKind.MVAU
            if isinstance(la, Conv2d) and la.groups != 1 and not _is_depthwise(la, net):
                raise ConfigError(
                    f"layer {la.name!r}: grouped conv2d (groups={la.groups}) has no dataflow "
                    "hardware yet; plain and depthwise (groups = channels) convolutions do"
                )
            # fuse the activation chain: [clip] [requant | multithreshold]
            j = i + 1
            for wanted in ((Clip,), (Requant, MultiThreshold)):
                if (
                    j < len(layers)
                    and isinstance(layers[j], wanted)
                    and layers[j].inputs == (group[-1].name,)
                    and readers[group[-1].name] == [layers[j].name]
                ):
                    group.append(layers[j])
                    j += 1
            src = net.tensors[la.inputs[0]]
            if isinstance(la, Conv2d) and any(la.padding) and src.qtype.kind is Kind.BIPOLAR:
                raise ConfigError(
                    f"layer {la.name!r}: a padded convolution of a bipolar input has no "
                    "hardware: bipolar streams cannot carry the zero padding"
                )
        elif isinstance(la, MaxPool2d | AvgPool2d):
            kind = StageKind.POOL
        elif isinstance(la, Clip | Requant | MultiThreshold):
            kind = StageKind.ACT
        else:
            raise ConfigError(f"layer {la.name!r}: {la.op} has no dataflow hardware yet")
        if order is not None and kind is not StageKind.MVAU:
            raise ConfigError(
                f"layer {la.name!r}: after a flatten of a (C, H, W) tensor only a dense "
                "layer is supported"
            )
        stages.append(
            Stage(
                name=la.name,
                kind=kind,
                layers=tuple(group),
                input=net.tensors[la.inputs[0]],
                output=net.tensors[group[-1].name],
                acc=net.tensors[la.name],
                in_order=order,
            )
        )
        order = None
        i += len(group)
    if not stages:
        raise ConfigError("the network has no layer that needs hardware")
    if order is not None:
        raise ConfigError("a flatten of a (C, H, W) tensor must be followed by a dense layer")
    return stages


@dataclass(frozen=True)
class StageConfig:
    """Parallelism and memories of one stage."""

    pe: int = 1  #: output channels computed per cycle
    simd: int = 1  #: input elements consumed per cycle
    mem_style: MemStyle = MemStyle.AUTO
    #: beats buffered in front of the stage; None: one frame of its input (at most
    #: :data:`AUTO_FIFO_MAX`), which decouples neighbouring stages completely
    fifo_depth: int | None = None

    def __post_init__(self) -> None:
        for name in ("pe", "simd", "fifo_depth"):
            v = getattr(self, name)
            if name == "fifo_depth" and v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive int, not {v!r}")
        if not isinstance(self.mem_style, MemStyle):
            try:
                object.__setattr__(self, "mem_style", MemStyle(self.mem_style))
            except ValueError:
                raise ConfigError(
                    f"mem_style must be one of {[m.value for m in MemStyle]}, not "
                    f"{self.mem_style!r}"
                ) from None


@dataclass(frozen=True)
class HardwareConfig:
    """Per-stage configuration (keyed by stage name) and the target clock."""

    stages: Mapping[str, StageConfig] = field(default_factory=dict)
    clock_mhz: float = 100.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", dict(self.stages))
        if not (isinstance(self.clock_mhz, int | float) and self.clock_mhz > 0):
            raise ConfigError(f"clock_mhz must be a positive number, not {self.clock_mhz!r}")

    def __getitem__(self, name: str) -> StageConfig:
        return self.stages.get(name, StageConfig())

    @classmethod
    def from_dict(cls, doc: Mapping, source: str = "config") -> HardwareConfig:
        """From a mapping such as a YAML file's: ``{clock_mhz: 100, stages: {fc1: {pe: 4,
        simd: 8, mem_style: block, fifo_depth: 16}}}``."""
        if not isinstance(doc, Mapping):
            raise DescriptionError("must be a mapping with 'stages'", file=source)
        unknown = sorted(set(doc) - {"stages", "clock_mhz"})
        if unknown:
            raise DescriptionError(
                "is not a config field; expected 'stages' or 'clock_mhz'",
                file=source,
                field=str(unknown[0]),
            )
        stages = {}
        for name, entry in (doc.get("stages") or {}).items():
            if not isinstance(entry, Mapping):
                raise DescriptionError("must be a mapping", file=source, layer=str(name))
            bad = sorted(set(entry) - {"pe", "simd", "mem_style", "fifo_depth"})
            if bad:
                raise DescriptionError(
                    "is not a stage field; expected one of fifo_depth, mem_style, pe, simd",
                    file=source,
                    layer=str(name),
                    field=str(bad[0]),
                )
            try:
                stages[str(name)] = StageConfig(**entry)
            except ConfigError as e:
                raise DescriptionError(str(e), file=source, layer=str(name)) from None
        try:
            return cls(stages, doc.get("clock_mhz", 100.0))
        except ConfigError as e:
            raise DescriptionError(str(e), file=source, field="clock_mhz") from None

    def to_dict(self) -> dict:
        """The mapping :meth:`from_dict` reads (stage fields at their defaults left out), for
        a YAML file."""
        default = StageConfig()
        stages = {}
        for name, c in self.stages.items():
            entry = {
                k: getattr(c, k)
                for k in ("pe", "simd", "fifo_depth")
                if getattr(c, k) != getattr(default, k)
            }
            if c.mem_style is not default.mem_style:
                entry["mem_style"] = c.mem_style.value
            stages[name] = entry
        return {"clock_mhz": self.clock_mhz, "stages": stages}


#: Largest FIFO depth chosen automatically (beats).
AUTO_FIFO_MAX = 256


def stage_io(stage: Stage, cfg: StageConfig) -> tuple[int, int]:
    """Elements per beat at a stage's input and output."""
    if stage.kind in (StageKind.MVAU, StageKind.CONV) and not stage.depthwise:
        return cfg.simd, cfg.pe
    return cfg.pe, cfg.pe


def accumulator_range(
    weights: np.ndarray, bias, lo: int, hi: int, simd: int, xnor: bool
) -> tuple[int, int]:
    """Exact range of every partial sum the accumulator holds, in fold order (bias first,
    then SIMD columns at a time). With inputs whose range excludes 0, a prefix can exceed
    the complete sum, so this can be wider than the layer's output range."""
    if xnor:
        return 0, int(weights.shape[1])
    w = weights.astype(object)
    tmax = np.where(weights > 0, w * hi, w * lo)
    tmin = np.where(weights > 0, w * lo, w * hi)
    sf = weights.shape[1] // simd
    b = np.zeros(weights.shape[0], dtype=object) if bias is None else bias.astype(object)
    hi_p = np.cumsum(tmax.reshape(-1, sf, simd).sum(axis=2), axis=1) + b[:, None]
    lo_p = np.cumsum(tmin.reshape(-1, sf, simd).sum(axis=2), axis=1) + b[:, None]
    return int(min(lo_p.min(), b.min())), int(max(hi_p.max(), b.max()))


def stage_cycles(stage: Stage, cfg: StageConfig) -> int:
    """Cycles one frame occupies the stage at full throughput (its initiation interval)."""
    if stage.kind is StageKind.CONV:
        # the window generator reads the image (H·W·C/n beats) while the MVAU/VVAU computes;
        # the slower side sets the pace
        c, h, w = stage.input.shape
        if stage.depthwise:  # a VVAU: each tap of PE channels per cycle, then C/PE results
            kh, kw = stage.main.kernel
            return max(h * w * c // cfg.pe, stage.vectors * (kh * kw + 1) * (c // cfg.pe))
        return max(
            h * w * c // cfg.simd, stage.vectors * (stage.mw // cfg.simd) * (stage.mh // cfg.pe)
        )
    if stage.kind is StageKind.MVAU:
        return (stage.mw // cfg.simd) * (stage.mh // cfg.pe)
    # pool and act units take cfg.pe channels per beat and move one beat per cycle
    if stage.kind is StageKind.POOL:
        c, h, w = stage.input.shape
        _, oh, ow = stage.output.shape
        kh, kw = stage.main.kernel
        return max(h * w, oh * ow * kh * kw) * (c // cfg.pe)
    return stage.output.size // cfg.pe


class Design:
    """A :class:`~models.ir.Network` with a :class:`HardwareConfig`: the stages, their
    validated configuration and their closed-form cycle counts.

    Raises :class:`ConfigError` naming the stage and listing the valid values when a
    folding is impossible.
    """

    def __init__(self, net: Network, config: HardwareConfig | None = None) -> None:
        self.network = net
        self.stages = plan(net)
        names = {s.name for s in self.stages}
        if config is None:
            config = default_config(net, self.stages)
        for name in config.stages:
            if name not in names:
                raise ConfigError(
                    f"config names stage {name!r}, which {net.name} does not have; stages: "
                    f"{', '.join(s.name for s in self.stages)}"
                )
        for s in self.stages:
            cfg = config[s.name]
            if cfg.pe not in s.pe_choices():
                raise ConfigError(
                    f"stage {s.name!r}: pe must divide {s.mh if s.kind in _MATRIX else s.channels}"
                    f" (valid: {s.pe_choices()}), not {cfg.pe}"
                )
            if cfg.simd not in s.simd_choices():
                raise ConfigError(
                    f"stage {s.name!r}: simd must be one of {s.simd_choices()}, not {cfg.simd}"
                )
        # AUTO weight memories become concrete, so everything downstream (RTL, cost model,
        # manifests, written configs) sees the style that is built
        stages = dict(config.stages)
        for s in self.stages:
            cfg = config[s.name]
            if s.kind in _MATRIX and not s.depthwise and cfg.mem_style is MemStyle.AUTO:
                depth = (s.mw // cfg.simd) * (s.mh // cfg.pe)
                style = resolve_mem_style(cfg.mem_style, depth)
                stages[s.name] = dataclasses.replace(cfg, mem_style=style)
        self.config = HardwareConfig(stages, config.clock_mhz)

    def cycles(self, stage: Stage | str) -> int:
        s = stage if isinstance(stage, Stage) else next(x for x in self.stages if x.name == stage)
        return stage_cycles(s, self.config[s.name])

    def fifo_depth(self, stage: Stage | str) -> int:
        """Depth of the FIFO in front of ``stage`` (the configured one, or automatic)."""
        s = stage if isinstance(stage, Stage) else next(x for x in self.stages if x.name == stage)
        cfg = self.config[s.name]
        if cfg.fifo_depth is not None:
            return cfg.fifo_depth
        n_in = cfg.simd if s.kind in _MATRIX and not s.depthwise else cfg.pe
        return max(2, min(s.input.size // n_in, AUTO_FIFO_MAX))

    @property
    def ideal_ii(self) -> int:
        """Cycles per frame of the slowest stage: the pipeline's ideal initiation interval."""
        return max(self.cycles(s) for s in self.stages)


def default_config(net: Network, stages: list[Stage] | None = None, budget=None) -> HardwareConfig:
    """The automatic folding: the pipeline balanced within ``budget`` (a
    :class:`models.folding.Budget`; default :data:`models.folding.DEFAULT_BUDGET`, the
    LFE5U-85F less what the rest of the design needs), see :func:`models.folding.balance`."""
    from .folding import DEFAULT_BUDGET, balance

    return balance(net, stages, DEFAULT_BUDGET if budget is None else budget)
