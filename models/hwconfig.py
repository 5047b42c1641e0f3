"""Hardware configuration of a dataflow pipeline, and its closed-form facts.

:func:`~codesign.models.plan.plan` turns a :class:`~codesign.models.ir.Network` into a graph of
*stages* (one
per compute layer; forks where two stages read a stream, add stages where two streams
join). :class:`HardwareConfig` sets each stage's parallelism (PE output channels and SIMD
input elements per cycle), weight memory style and input FIFO depths. It never changes what
the network computes. The cycle counts, beat widths and FIFO depths here (the skip FIFO's
deadlock-free bound among them, :meth:`Design.join_bound`) are what the simulator predicts
and the RTL is measured against; both read them from this module so they cannot drift
apart.

Planning lives beside it: stage fusion in :mod:`codesign.models.plan`, the folding balancer
and device budgets in :mod:`codesign.models.folding`, the deadlock-free FIFO depths at joins
in :mod:`codesign.models.joins`.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, DescriptionError
from .ir import Network
from .pipelining import PipelineMode, StagePipeline, stage_pipeline
from .plan import MATRIX as _MATRIX
from .plan import Stage, StageKind, plan, readers

__all__ = [
    "DEFORM_BANKS",
    "DEFORM_PORTS",
    "LOGIC_ROM_MAX_DEPTH",
    "ConfigError",
    "Design",
    "HardwareConfig",
    "MemStyle",
    "Origin",
    "Stage",
    "StageConfig",
    "StageKind",
    "StageOrigin",
    "accumulator_range",
    "fifo_depth",
    "plan",
    "port_width",
    "resolve_mem_style",
    "stage_io",
]


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


@dataclass(frozen=True)
class StageConfig:
    """Parallelism and memories of one stage.

    A field left at None is chosen automatically by :class:`Design`: PE and SIMD by the
    folding balancer (:func:`codesign.models.folding.balance`, around the fields a config
    gives), FIFO depths by :meth:`Design.fifo_depth`; ``mem_style`` AUTO by
    :func:`resolve_mem_style`. A :class:`Design`'s own config has every PE and SIMD set.
    """

    pe: int | None = None  #: output channels computed per cycle; None: automatic
    simd: int | None = None  #: input elements consumed per cycle; None: automatic
    mem_style: MemStyle = MemStyle.AUTO
    #: beats buffered in front of the stage; None: one frame of its input (at most
    #: :data:`AUTO_FIFO_MAX`), which decouples neighbouring stages completely
    fifo_depth: int | None = None
    #: beats buffered in front of an add stage's second input (its skip FIFO when the
    #: second input is the short branch); None: see :meth:`Design.fifo_depth`
    fifo_depth_b: int | None = None
    #: a deformable stage's frame store: memories (image row y in bank y mod banks, a power
    #: of two) and read ports per memory (1 or 2); None: :data:`DEFORM_BANKS`,
    #: :data:`DEFORM_PORTS`
    banks: int | None = None
    ports: int | None = None
    #: N:M structured sparsity ``(N, M)`` of a dense or convolution stage's weights (``"N:M"``
    #: in a config file): its MVAU keeps N of every M consecutive weights and their indices,
    #: with PE·SIMD·N/M multipliers and the dense cycles
    #: (:mod:`codesign.models.compress.sparsity`); M must divide SIMD and the weights must
    #: be N:M sparse (checked by :class:`Design`). None: a dense MVAU
    sparsity: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("pe", "simd", "fifo_depth", "fifo_depth_b", "banks", "ports"):
            v = getattr(self, name)
            if v is None:
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
        if self.banks is not None and self.banks & (self.banks - 1):
            raise ConfigError(f"banks must be a power of two, not {self.banks!r}")
        if self.ports is not None and self.ports not in (1, 2):
            raise ConfigError(f"ports must be 1 or 2, not {self.ports!r}")
        if self.sparsity is not None:
            from .compress.sparsity import parse_sparsity

            try:
                object.__setattr__(self, "sparsity", parse_sparsity(self.sparsity))
            except ValueError as e:
                raise ConfigError(str(e)) from None

    @property
    def deform_banks(self) -> int:
        """The frame store's memories (a deformable stage's; the default when unset)."""
        return DEFORM_BANKS if self.banks is None else self.banks

    @property
    def deform_ports(self) -> int:
        """Read ports per frame-store memory (a deformable stage's; the default when unset)."""
        return DEFORM_PORTS if self.ports is None else self.ports


#: A deformable stage's default frame-store memories: two banks put a bilinear tap's two
#: rows in different memories.
DEFORM_BANKS = 2
#: A deformable stage's default read ports per memory: two read a tap's two columns of one
#: row in one cycle (a block RAM's two ports).
DEFORM_PORTS = 2


#: The fields a hardware config may give a stage.
_STAGE_FIELDS = (
    "pe",
    "simd",
    "mem_style",
    "fifo_depth",
    "fifo_depth_b",
    "banks",
    "ports",
    "sparsity",
)

#: A stage's config when a hardware config does not list it (every field automatic).
_UNSET = StageConfig()


@dataclass(frozen=True)
class HardwareConfig:
    """Per-stage configuration (keyed by stage name) and the target clock.

    A config may list only some stages, and a stage only some fields: :class:`Design`
    folds every PE and SIMD the config leaves out automatically, balanced around the ones
    it gives (a config with only ``clock_mhz`` gives exactly the automatic folding).
    """

    stages: Mapping[str, StageConfig] = field(default_factory=dict)
    #: the clock target (MHz): what ``codesign synth`` checks the achieved Fmax against, and
    #: the clock at which cycles are reported in ns and frames/s
    clock_mhz: float = 150.0
    #: pipeline depth of the datapaths (:class:`~codesign.models.pipelining.PipelineMode`)
    pipeline: PipelineMode = PipelineMode.AUTO

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", dict(self.stages))
        if not isinstance(self.pipeline, PipelineMode):
            try:
                object.__setattr__(self, "pipeline", PipelineMode(self.pipeline))
            except ValueError:
                raise ConfigError(
                    f"pipeline must be one of {[m.value for m in PipelineMode]}, not "
                    f"{self.pipeline!r}"
                ) from None
        c = self.clock_mhz
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < math.inf:
            raise ConfigError(f"clock_mhz must be a finite positive number (MHz), not {c!r}")

    def __getitem__(self, name: str) -> StageConfig:
        got = self.stages.get(name)
        return _UNSET if got is None else got

    @classmethod
    def from_dict(cls, doc: Mapping, source: str = "config") -> HardwareConfig:
        """From a mapping such as a YAML file's: ``{clock_mhz: 100, stages: {fc1: {pe: 4,
        simd: 8, mem_style: block, fifo_depth: 16, sparsity: "2:8"}}}``."""
        if not isinstance(doc, Mapping):
            raise DescriptionError("must be a mapping with 'stages'", file=source)
        unknown = sorted(set(doc) - {"stages", "clock_mhz", "pipeline"})
        if unknown:
            raise DescriptionError(
                "is not a config field; expected 'stages', 'clock_mhz' or 'pipeline'",
                file=source,
                field=str(unknown[0]),
            )
        given = doc.get("stages") or {}
        if not isinstance(given, Mapping):
            raise DescriptionError(
                f"must be a mapping of stage name to stage fields, not {given!r}",
                file=source,
                field="stages",
            )
        stages = {}
        for name, entry in given.items():
            if not isinstance(entry, Mapping):
                raise DescriptionError("must be a mapping", file=source, layer=str(name))
            bad = sorted(set(entry) - set(_STAGE_FIELDS))
            if bad:
                raise DescriptionError(
                    f"is not a stage field; expected one of {', '.join(sorted(_STAGE_FIELDS))}",
                    file=source,
                    layer=str(name),
                    field=str(bad[0]),
                )
            try:
                stages[str(name)] = StageConfig(**entry)
            except ConfigError as e:
                raise DescriptionError(str(e), file=source, layer=str(name)) from None
        try:
            pipeline = PipelineMode(doc.get("pipeline", "auto"))
        except (ValueError, TypeError):
            raise DescriptionError(
                f"must be one of {', '.join(m.value for m in PipelineMode)}, not "
                f"{doc.get('pipeline')!r}",
                file=source,
                field="pipeline",
            ) from None
        try:
            return cls(stages, doc.get("clock_mhz", 150.0), pipeline)
        except ConfigError as e:
            msg = str(e).removeprefix("clock_mhz ")
            raise DescriptionError(msg, file=source, field="clock_mhz") from None

    def to_dict(self) -> dict:
        """The mapping :meth:`from_dict` reads (stage fields at their defaults left out), for
        a YAML file."""
        default = StageConfig()
        stages = {}
        for name, c in self.stages.items():
            entry = {
                k: getattr(c, k)
                for k in ("pe", "simd", "fifo_depth", "fifo_depth_b", "banks", "ports")
                if getattr(c, k) != getattr(default, k)
            }
            if c.mem_style is not default.mem_style:
                entry["mem_style"] = c.mem_style.value
            if c.sparsity is not None:
                entry["sparsity"] = f"{c.sparsity[0]}:{c.sparsity[1]}"
            stages[name] = entry
        doc = {"clock_mhz": self.clock_mhz, "stages": stages}
        if self.pipeline is not PipelineMode.AUTO:
            doc["pipeline"] = self.pipeline.value
        return doc


#: Largest FIFO depth chosen automatically (beats).
AUTO_FIFO_MAX = 256


def stage_io(stage: Stage, cfg: StageConfig) -> tuple[int, int]:
    """Elements per beat at a stage's input and output."""
    if stage.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM) and not stage.depthwise:
        return cfg.simd, cfg.pe
    return cfg.pe, cfg.pe


def fifo_depth(stage: Stage, cfg: StageConfig, port: int) -> int:
    """Depth of the FIFO in front of input ``port`` of ``stage`` under ``cfg``: the configured
    one, else one frame of that input (at most :data:`AUTO_FIFO_MAX` beats); an add stage's
    automatic depth is at least its join bound besides (:meth:`Design.fifo_depth`)."""
    given = cfg.fifo_depth if port == 0 else cfg.fifo_depth_b
    if given is not None:
        return given
    n_in = port_width(stage, cfg, port)
    depth = max(2, min(stage.inputs[port].size // n_in, AUTO_FIFO_MAX))
    if stage.kind is StageKind.DEFORM:
        # port 1: the gather takes no offset until it holds its whole frame, while the offset
        # convolution, fed by the same fork, computes them: a frame of offsets must fit.
        # Port 0: the gather takes no pixel while it computes a frame, and the producer (which
        # also feeds the offset convolution) must not stall meanwhile: a frame of the image
        # must fit (a 256-beat FIFO made dcn_tiny's II 32,230 cycles instead of 27,648, in the
        # event simulator and on Verilator alike)
        depth = max(depth, stage.inputs[port].size // n_in + 2)
    return depth


def port_width(stage: Stage, cfg: StageConfig, port: int) -> int:
    """Elements per beat at input ``port`` of ``stage``: :func:`stage_io`'s input width, but
    a deformable stage's offsets (port 1) arrive one output pixel's offsets per beat."""
    if stage.kind is StageKind.DEFORM and port == 1:
        return int(stage.inputs[1].shape[0])
    return stage_io(stage, cfg)[0]


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
    """Cycles one frame occupies the stage at full throughput (its initiation interval).

    An N:M sparse MVAU (``cfg.sparsity``) consumes SIMD input elements per cycle as the
    dense one does: its cycles are the dense MVAU's of the same PE and SIMD (its saving is
    multipliers and weight memory, :mod:`codesign.models.compress.sparsity`).

    A deformable stage's frame time depends on its offsets (:mod:`codesign.sim.deform`);
    this is its least: the gather loads the frame (H·W cycles), then serves each tap in one
    fetch cycle while the MVAU/VVAU computes, the slower of the two setting the pace.
    """
    if stage.kind is StageKind.DEFORM:
        c, h, w = stage.input.shape
        kh, kw = stage.main.kernel
        taps = stage.vectors * kh * kw
        if stage.depthwise:
            work = stage.vectors * (kh * kw + 1) * (c // cfg.pe)
        else:
            work = stage.vectors * (stage.mw // cfg.simd) * (stage.mh // cfg.pe)
        return h * w + max(taps, work)
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
        if stage.global_pool:  # one accumulator per channel: one input beat per cycle
            return h * w * (c // cfg.pe)
        _, oh, ow = stage.output.shape
        kh, kw = stage.main.kernel
        return max(h * w, oh * ow * kh * kw) * (c // cfg.pe)
    return stage.output.size // cfg.pe


class Origin(enum.Enum):
    """Where a stage's effective PE or SIMD came from."""

    GIVEN = "given"  #: set by the hardware config
    AUTO = "auto"  #: chosen by the folding balancer


@dataclass(frozen=True)
class StageOrigin:
    """The origin of each folding field of one stage, and of its folding as a whole
    (:attr:`folding`)."""

    pe: Origin
    simd: Origin
    #: ``"given"`` when the config set every folding field that has a choice (more than one
    #: valid value), ``"auto"`` when it set none of them, else ``"pe given"`` or
    #: ``"simd given"``
    folding: str

    def to_dict(self) -> dict:
        return {"pe": self.pe.value, "simd": self.simd.value, "folding": self.folding}


def _origin(stage: Stage, cfg: StageConfig) -> StageOrigin:
    pe = Origin.GIVEN if cfg.pe is not None else Origin.AUTO
    simd = Origin.GIVEN if cfg.simd is not None else Origin.AUTO
    free = [
        (k, o)
        for k, o, choices in (
            ("pe", pe, stage.pe_choices()),
            ("simd", simd, stage.simd_choices()),
        )
        if len(choices) > 1
    ] or [("pe", pe), ("simd", simd)]
    given = [k for k, o in free if o is Origin.GIVEN]
    if len(given) == len(free):
        folding = "given"
    elif not given:
        folding = "auto"
    else:
        folding = f"{given[0]} given"
    return StageOrigin(pe, simd, folding)


class Design:
    """A :class:`~codesign.models.ir.Network` with a :class:`HardwareConfig`: the stages, their
    validated configuration and their closed-form cycle counts.

    Every PE and SIMD the config leaves out (a stage it does not list, or a field it does
    not set) is folded automatically by :func:`codesign.models.folding.balance`, which
    treats the given ones as fixed and their resources as spent; :attr:`origin` records,
    per stage, which fields were given and which automatic. :attr:`config` is complete:
    every stage listed, with its PE, SIMD and concrete weight memory style.

    Raises :class:`ConfigError` naming the stage and listing the valid values when a
    folding is impossible, or listing the stages when the config names one the network
    does not have.
    """

    def __init__(self, net: Network, config: HardwareConfig | None = None) -> None:
        from .folding import DEFAULT_BUDGET, balance

        self.network = net
        self.stages = plan(net)
        names = {s.name for s in self.stages}
        clash = _fork_clash(self.stages)
        if clash is not None:
            raise ConfigError(clash)
        if config is None:
            config = HardwareConfig()
        for name in config.stages:
            if name not in names:
                raise ConfigError(
                    f"config names stage {name!r}, which {net.name} does not have; stages: "
                    f"{', '.join(s.name for s in self.stages)}"
                )
        for s in self.stages:
            cfg = config[s.name]
            if cfg.fifo_depth_b is not None and len(s.inputs) < 2:
                raise ConfigError(
                    f"stage {s.name!r}: fifo_depth_b is the FIFO of a stage's second input "
                    f"(an add's or a deformable convolution's offsets); a {s.kind.value} "
                    "stage has one input"
                )
            if (cfg.banks is not None or cfg.ports is not None) and s.kind is not (
                StageKind.DEFORM
            ):
                raise ConfigError(
                    f"stage {s.name!r}: banks and ports configure a deformable convolution's "
                    f"frame store; a {s.kind.value} stage has none"
                )
            if cfg.pe is not None and cfg.pe not in s.pe_choices():
                raise ConfigError(
                    f"stage {s.name!r}: pe must divide {s.mh if s.kind in _MATRIX else s.channels}"
                    f" (valid: {s.pe_choices()}), not {cfg.pe}"
                )
            if cfg.simd is not None and cfg.simd not in s.simd_choices():
                raise ConfigError(
                    f"stage {s.name!r}: simd must be one of {s.simd_choices()}, not {cfg.simd}"
                )
            if cfg.sparsity is not None:
                from .compress.sparsity import sparsity_problem

                problem = sparsity_problem(s, cfg)
                if problem is not None:
                    raise ConfigError(problem)
        #: per stage: which of its PE and SIMD the config gave and which were automatic
        self.origin: dict[str, StageOrigin] = {
            s.name: _origin(s, config[s.name]) for s in self.stages
        }
        folded = balance(net, self.stages, DEFAULT_BUDGET, given=config.stages)
        # AUTO weight memories become concrete, so everything downstream (RTL, cost model,
        # manifests, written configs) sees the style that is built
        stages = {}
        for s in self.stages:
            cfg = folded[s.name]
            if s.kind in _MATRIX and not s.depthwise and cfg.mem_style is MemStyle.AUTO:
                depth = (s.mw // cfg.simd) * (s.mh // cfg.pe)
                cfg = dataclasses.replace(cfg, mem_style=resolve_mem_style(cfg.mem_style, depth))
            stages[s.name] = cfg
        self.config = HardwareConfig(stages, config.clock_mhz, config.pipeline)
        #: the configuration as given, before the automatic folding and memory styles (what
        #: a design-space sweep that varies the folding starts from)
        self.given = config

    def point_config(self, stage: Stage, pe: int, simd: int | None = None) -> StageConfig:
        """``stage``'s configuration at folding ``pe``, ``simd`` (None: this design's) with
        the memory style and FIFO depths this design was given, an automatic memory style
        resolved at that folding: the stage's config in :meth:`with_folding`'s design."""
        g = self.given[stage.name]
        simd = self.config[stage.name].simd if simd is None else simd
        style = g.mem_style
        if stage.kind in _MATRIX and not stage.depthwise:
            style = resolve_mem_style(style, (stage.mw // simd) * (stage.mh // pe))
        return StageConfig(
            pe=pe,
            simd=simd,
            mem_style=style,
            fifo_depth=g.fifo_depth,
            fifo_depth_b=g.fifo_depth_b,
            banks=g.banks,
            ports=g.ports,
            sparsity=g.sparsity,
        )

    def refold(self, pe: Mapping[str, int], simd: Mapping[str, int]) -> Design:
        """A light copy of this design with the stages that ``pe`` and ``simd`` name folded
        so (:meth:`point_config`), the others as they are: the same network and stages, no
        planning or balancing. What a vectorised evaluator needs to ask a whole-design
        question (a join's FIFO depth) about one folding; equal, for the stages it names, to
        :meth:`with_folding`'s design."""
        stages = dict(self.config.stages)
        for name in {*pe, *simd}:
            s = self.stage(name)
            stages[name] = self.point_config(
                s,
                int(pe.get(name, self.config[name].pe)),
                int(simd.get(name, self.config[name].simd)),
            )
        view = copy.copy(self)
        view.config = HardwareConfig(stages, self.config.clock_mhz, self.config.pipeline)
        return view

    def with_folding(self, pe, simd) -> Design:
        """This design's network and given configuration at another folding: ``pe`` and
        ``simd`` one value per stage, in :attr:`stages` order (or mappings of stage name to
        value; a stage not named keeps this design's). The point of a design-space sweep
        whose cost and cycles the vectorised evaluators give."""
        if isinstance(pe, Mapping):
            pe = [pe.get(s.name, self.config[s.name].pe) for s in self.stages]
        if isinstance(simd, Mapping):
            simd = [simd.get(s.name, self.config[s.name].simd) for s in self.stages]
        stages = {}
        for s, p, q in zip(self.stages, pe, simd, strict=True):
            g = self.given[s.name]
            stages[s.name] = StageConfig(
                pe=int(p),
                simd=int(q),
                mem_style=g.mem_style,
                fifo_depth=g.fifo_depth,
                fifo_depth_b=g.fifo_depth_b,
                banks=g.banks,
                ports=g.ports,
                sparsity=g.sparsity,
            )
        c = self.config
        return Design(self.network, HardwareConfig(stages, c.clock_mhz, c.pipeline))

    def pipeline(self, stage: Stage | str) -> StagePipeline | None:
        """The credit pipeline of ``stage`` (:func:`~codesign.models.pipelining.stage_pipeline`):
        its register stages, latency and queue depth; None for a global pool."""
        s = stage if isinstance(stage, Stage) else self.stage(stage)
        return stage_pipeline(s, self.config[s.name], self.config.pipeline)

    def cycles(self, stage: Stage | str) -> int:
        s = stage if isinstance(stage, Stage) else next(x for x in self.stages if x.name == stage)
        return stage_cycles(s, self.config[s.name])

    def stage(self, name: str) -> Stage:
        return next(x for x in self.stages if x.name == name)

    def fifo_depth(self, stage: Stage | str, port: int = 0) -> int:
        """Depth of the FIFO in front of input ``port`` of ``stage``: the configured one,
        else one frame of that input (at most :data:`AUTO_FIFO_MAX` beats), and for an
        input of an add stage at least :meth:`join_bound` (deadlock freedom)."""
        s = stage if isinstance(stage, Stage) else self.stage(stage)
        cfg = self.config[s.name]
        depth = fifo_depth(s, cfg, port)
        given = cfg.fifo_depth if port == 0 else cfg.fifo_depth_b
        if s.kind is StageKind.ADD and given is None:
            depth = max(depth, self.join_bound(s, port))
        return depth

    def has_fifo(self, stage: Stage | str, port: int = 0) -> bool:
        """Whether input ``port`` of ``stage`` has a FIFO: every input does but the network
        input's when a single stage reads it (a linear pipeline's first stage)."""
        s = stage if isinstance(stage, Stage) else self.stage(stage)
        return s.sources[port] is not None or len(readers(self.stages)[None]) > 1

    def fifos(self) -> list[tuple[Stage, int, str]]:
        """Every FIFO: ``(stage, input port, name)`` in stage order; the name is the stage's
        for port 0 and ``<stage>__b`` for an add stage's second input (the Verilog instance
        is ``fifo_<name>``)."""
        return [
            (s, p, fifo_name(s.name, p))
            for s in self.stages
            for p in range(len(s.sources))
            if self.has_fifo(s, p)
        ]

    def in_width(self, stage: Stage, port: int = 0) -> int:
        """Elements per beat arriving at input ``port`` of ``stage`` (its producer's output
        width, before any width converter)."""
        src = stage.sources[port]
        if src is None:
            first = readers(self.stages)[None][0][0]
            return stage_io(self.stage(first), self.config[first])[0]
        return stage_io(self.stage(src), self.config[src])[1]

    def join_bound(self, stage: Stage | str, port: int) -> int:
        """Least depth of the FIFO on input ``port`` of add stage ``stage`` that provably
        never deadlocks the fork feeding both inputs; 0 when the two inputs share no fork
        (:func:`codesign.models.joins.join_bound` states the bound and proves it)."""
        from .joins import join_bound

        return join_bound(self, stage if isinstance(stage, Stage) else self.stage(stage), port)

    @property
    def ideal_ii(self) -> int:
        """Cycles per frame of the slowest stage: the pipeline's ideal initiation interval."""
        return max(self.cycles(s) for s in self.stages)


def fifo_name(stage: str, port: int) -> str:
    """A FIFO's name: the stage's for its first input, ``<stage>__b`` for an add's second."""
    return stage if port == 0 else f"{stage}__b"


def fork_name(src: str | None, k: int) -> str:
    """The ``k``-th two-way fork copying producer ``src``'s stream (None: the network
    input) when several stages read it: ``fork_<src>``, then ``fork_<src>_<k>``."""
    base = f"fork_{src if src is not None else 'input'}"
    return base if k == 0 else f"{base}_{k}"


def _fork_clash(stages: list[Stage]) -> str | None:
    """What is wrong when two forks of the pipeline would get one instance name (a stage
    ``a`` read by three stages has forks ``fork_a`` and ``fork_a_1``, the name of a stage
    ``a_1``'s fork), or None."""
    owner: dict[str, str | None] = {}
    for src, rs in readers(stages).items():
        for k in range(len(rs) - 1):
            name = fork_name(src, k)
            if name in owner:
                first, second = (f"{x!r}" if x else "the input" for x in (owner[name], src))
                return (
                    f"layer {src or owner[name]!r}: the forks copying the streams of {first} "
                    f"and {second} would both be the RTL instance {name!r}; rename one of them"
                )
            owner[name] = src
    return None
