"""Design spaces: a network, the knobs that vary, the objectives and the constraints.

A space is a mapping (a YAML file's, or built in Python); every field but ``network`` is
optional, and a network alone is the space of all its valid foldings. The format is
documented in ``docs/explore.md``::

    network: jet_tagger            # zoo name, description (.yaml/.json) or QONNX .onnx
    stages:                        # per stage; a stage not listed takes every valid value
      fc1: {pe: [1, 2, 4, 8], simd: all}
      fc2: {pe: {min: 2, max: 16}}
    mem_style: [auto, block]       # weight memories of every matrix stage
    fifo_depth: [auto]             # FIFO depth policy: auto (one frame, at most 256 beats)
    pipeline: [auto]               # pipeline depth of the datapaths: auto, off
    clock_mhz: [150, 200]          # clock targets
    objectives: [throughput, lut, dsp]
    constraints: {device: LFE5U-45F, min_throughput: 100000}   # default device LFE5U-85F
    search: {strategy: auto, max_points: 2000000, seed: 0, chunk: 65536}

Malformed spaces raise :class:`~codesign.models.errors.DescriptionError` naming the file
and the field.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from codesign.models.device import DEVICES, ECP5_85F, Device
from codesign.models.errors import DescriptionError
from codesign.models.hwconfig import Design, HardwareConfig, MemStyle, StageConfig
from codesign.models.pipelining import PipelineMode
from codesign.models.plan import MATRIX

__all__ = [
    "OBJECTIVES",
    "TULIP_OBJECTIVES",
    "Context",
    "FifoPolicy",
    "Objective",
    "Space",
    "Strategy",
    "TulipKnobs",
    "load_space",
]


class FifoPolicy(enum.Enum):
    """How the FIFO depths of a design point are chosen."""

    AUTO = "auto"  #: one frame of the stage's input, at most 256 beats (the default)


class Strategy(enum.Enum):
    """How a space is searched."""

    AUTO = "auto"  #: exhaustive when the space has at most ``max_points`` points, else NSGA-II
    EXHAUSTIVE = "exhaustive"  #: every point, in chunks (constant memory)
    NSGA2 = "nsga2"  #: pymoo's NSGA-II over the folding indices
    GREEDY = "greedy"  #: FINN-style folding to a series of target cycles per frame


@dataclass(frozen=True)
class Objective:
    """One objective: its column in the results, unit and direction."""

    name: str
    column: str
    unit: str
    maximize: bool = False


#: The objectives a space may name, by name.
OBJECTIVES = {
    o.name: o
    for o in (
        # frames/s at the clock target or the predicted Fmax, whichever is lower
        Objective("throughput", "throughput_fps", "frames/s", maximize=True),
        Objective("latency", "latency_ns", "ns"),
        Objective("lut", "lut", "LUT4"),
        Objective("ff", "ff", "FF"),
        Objective("dsp", "dsp", "MULT18X18D"),
        Objective("bram", "bram", "DP16KD"),
        Objective("fmax", "fmax_mhz", "MHz", maximize=True),
        Objective("energy", "energy_nj", "nJ/inference"),
        # threshold-logic cells of a TULIP array (PEs x cells per PE): its size
        Objective("cells", "tln_cells", "TLN cells"),
    )
}

#: Objectives of a TULIP space (the array has no LUT/FF/DSP/BRAM or Fmax model).
TULIP_OBJECTIVES = ("throughput", "latency", "energy", "cells")


@dataclass(frozen=True)
class TulipKnobs:
    """The TULIP array sizes a space explores (``tulip:`` in a space file)."""

    pes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    tlns: tuple[int, ...] = (1, 2, 4, 8)
    in_width: int = 16  #: input bits per beat


DEFAULT_OBJECTIVES = ("throughput", "latency", "lut", "dsp", "bram")


@dataclass(frozen=True)
class Context:
    """The categorical knobs of a group of points: one base design each (its foldings are
    the vectorised dimension)."""

    mem_style: MemStyle
    fifo_depth: FifoPolicy
    pipeline: PipelineMode

    def label(self) -> str:
        return f"{self.mem_style.value}/{self.fifo_depth.value}/{self.pipeline.value}"


@dataclass(frozen=True)
class Space:
    """A validated design space (see the module docstring)."""

    network: str
    #: per stage (in pipeline order): the PE values and the SIMD values that vary
    pe: dict[str, tuple[int, ...]]
    simd: dict[str, tuple[int, ...]]
    contexts: tuple[Context, ...]
    clocks: tuple[float, ...]
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    device: Device | None = None
    min_throughput: float = 0.0
    strategy: Strategy = Strategy.AUTO
    max_points: int = 2_000_000
    seed: int = 0
    generations: int = 60
    population: int = 200
    #: points per transaction of an exhaustive sweep
    chunk: int = 65536
    #: the TULIP array sizes, for a space that explores a binary network's TULIP array
    #: instead of a dataflow folding
    tulip: TulipKnobs | None = None
    #: where the space came from (errors and reports name it)
    source: str = "space"
    doc: dict = field(default_factory=dict, compare=False)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self.pe)

    @property
    def foldings(self) -> int:
        """Distinct foldings: the product of each stage's PE × SIMD choices."""
        n = 1
        for s in self.stages:
            n *= len(self.pe[s]) * len(self.simd[s])
        return n

    @property
    def size(self) -> int:
        """Points: foldings × contexts × clocks (TULIP: array sizes × clocks)."""
        if self.tulip is not None:
            return len(self.tulip.pes) * len(self.tulip.tlns) * len(self.clocks)
        return self.foldings * len(self.contexts) * len(self.clocks)

    def hash(self) -> str:
        """A short hash of everything that decides the points and their values (the store's
        folder name): the space, the network's own hash and the code's model data."""
        from codesign.summary import network_hash

        from . import evaluate

        body = {
            "network": self.network,
            "network_hash": network_hash(self.net),
            "pe": self.pe,
            "simd": self.simd,
            "contexts": [c.label() for c in self.contexts],
            "clocks": self.clocks,
            "objectives": self.objectives,
            "device": self.device.name if self.device else None,
            "min_throughput": self.min_throughput,
            "strategy": self.strategy.value,
            "max_points": self.max_points,
            "seed": self.seed,
            "generations": self.generations,
            "population": self.population,
            "chunk": self.chunk,
            "tulip": None if self.tulip is None else vars(self.tulip),
            "models": evaluate.model_version(),
        }
        text = json.dumps(body, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def net(self):
        return _network(self.network)

    def base_design(self, ctx: Context, clock_mhz: float | None = None) -> Design:
        """The design whose foldings a context's points are: the context's memory style,
        FIFO policy and pipeline mode, the automatic folding, at ``clock_mhz`` (default the
        first clock target)."""
        net = self.net
        stages = {s: StageConfig(mem_style=ctx.mem_style) for s in self.stages if self._matrix(s)}
        clock = self.clocks[0] if clock_mhz is None else clock_mhz
        return Design(net, HardwareConfig(stages, clock, ctx.pipeline))

    def _matrix(self, name: str) -> bool:
        s = _default_design(self.network).stage(name)
        return s.kind in MATRIX and not s.depthwise


_NETS: dict = {}


def _network(source: str):
    if source not in _NETS:
        from codesign import load

        _NETS[source] = load(source)
    return _NETS[source]


def _default_design(source: str) -> Design:
    key = ("design", source)
    if key not in _NETS:
        _NETS[key] = Design(_network(source))
    return _NETS[key]


def _err(msg: str, source: str, fld: str) -> DescriptionError:
    return DescriptionError(msg, file=source, field=fld)


def _choices(value, valid: list[int], source: str, fld: str) -> tuple[int, ...]:
    """A knob's values: ``all``, a list of valid values, or ``{min, max}``."""
    if value is None or value == "all":
        return tuple(valid)
    if isinstance(value, Mapping):
        bad = sorted(set(value) - {"min", "max"})
        if bad:
            raise _err(f"must have only 'min' and 'max', not {bad[0]!r}", source, fld)
        lo, hi = value.get("min", valid[0]), value.get("max", valid[-1])
        for k, v in (("min", lo), ("max", hi)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise _err(f"must be an int, not {v!r}", source, f"{fld}.{k}")
        out = tuple(v for v in valid if lo <= v <= hi)
        if not out:
            raise _err(f"range {lo}..{hi} holds no valid value (valid: {valid})", source, fld)
        return out
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _err(f"must be 'all', a list of values or {{min, max}}, not {value!r}", source, fld)
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v not in valid:
            raise _err(f"must be one of {valid}, not {v!r}", source, fld)
    return tuple(sorted(set(value)))


def _enum_list(value, kind, default, source: str, fld: str) -> tuple:
    if value is None:
        return (default,)
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _err("must not be empty", source, fld)
    out = []
    for v in items:
        try:
            out.append(kind(v))
        except ValueError:
            valid = ", ".join(m.value for m in kind)
            raise _err(f"must be one of {valid}, not {v!r}", source, fld) from None
    return tuple(dict.fromkeys(out))


_FIELDS = {
    "tulip",
    "network",
    "stages",
    "mem_style",
    "fifo_depth",
    "pipeline",
    "clock_mhz",
    "objectives",
    "constraints",
    "search",
}


def load_space(space, *, source: str | None = None) -> Space:
    """A :class:`Space` from a zoo name, a network description or .onnx path (its default
    space), a space ``.yaml`` file, or a mapping.

    Raises
    ------
    DescriptionError
        Naming the file and field, when the space is malformed.
    """
    if isinstance(space, Space):
        return space
    if isinstance(space, str | Path) and not isinstance(space, Mapping):
        path = Path(space)
        if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
            import yaml

            from codesign.models.fileio import read_text

            src = source or str(path)
            try:
                doc = yaml.safe_load(read_text(path, src))
            except yaml.YAMLError as e:
                line = getattr(getattr(e, "problem_mark", None), "line", None)
                where = f" (line {line + 1})" if line is not None else ""
                raise DescriptionError(f"is not valid YAML{where}", file=src) from None
            if isinstance(doc, Mapping) and "network" in doc:
                return _parse(doc, src, path.parent)
            # a network description: its default space
        return _parse({"network": str(space)}, source or str(space), Path.cwd())
    if not isinstance(space, Mapping):
        raise TypeError(f"space must be a network name, a path or a mapping, not {space!r}")
    return _parse(dict(space), source or "space", Path.cwd())


def _parse(doc: Mapping, source: str, base: Path) -> Space:
    if not isinstance(doc, Mapping):
        raise _err("must be a mapping with 'network'", source, "network")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise _err(f"is not a space field; expected one of {sorted(_FIELDS)}", source, unknown[0])
    network = doc.get("network")
    if not isinstance(network, str) or not network:
        raise _err(f"must be a zoo name or a path, not {network!r}", source, "network")
    from codesign.models.loader import zoo_names

    if network not in zoo_names() and not Path(network).is_absolute():
        if (base / network).exists():
            network = str(base / network)
    if network not in zoo_names() and not Path(network).exists():
        raise _err(
            f"must be a zoo name ({', '.join(zoo_names())}) or the path of a description or "
            f".onnx model, not {network!r}",
            source,
            "network",
        )
    try:
        design = _default_design(network)
    except DescriptionError as e:
        raise e.at(file=source, field="network") from None
    except FileNotFoundError:
        raise _err(f"names no zoo network or file: {network!r}", source, "network") from None
    tulip = _tulip(doc, design, source) if "tulip" in doc else None
    given = doc.get("stages") or {}
    if not isinstance(given, Mapping):
        raise _err("must be a mapping of stage name to knobs", source, "stages")
    names = [s.name for s in design.stages]
    for name in given:
        if name not in names:
            raise _err(
                f"names no stage of {network}; stages: {', '.join(names)}", source, f"stages.{name}"
            )
    pe, simd = {}, {}
    for s in design.stages:
        entry = given.get(s.name) or {}
        if not isinstance(entry, Mapping):
            raise _err("must be a mapping with pe and/or simd", source, f"stages.{s.name}")
        bad = sorted(set(entry) - {"pe", "simd"})
        if bad:
            raise _err(
                "is not a stage knob; expected pe or simd", source, f"stages.{s.name}.{bad[0]}"
            )
        pe[s.name] = _choices(entry.get("pe"), s.pe_choices(), source, f"stages.{s.name}.pe")
        simd[s.name] = _choices(
            entry.get("simd"), s.simd_choices(), source, f"stages.{s.name}.simd"
        )
    mem = _enum_list(doc.get("mem_style"), MemStyle, MemStyle.AUTO, source, "mem_style")
    given_fifo = doc.get("fifo_depth")
    if given_fifo == "sized" or (isinstance(given_fifo, list) and "sized" in given_fifo):
        raise _err(
            "sized is not explored yet: sized depths come from an event simulation of each "
            "design, which the fast tier cannot vectorise; explore with auto and size a chosen "
            "point with `codesign sim --size-fifos`",
            source,
            "fifo_depth",
        )
    fifo = _enum_list(given_fifo, FifoPolicy, FifoPolicy.AUTO, source, "fifo_depth")
    pipe = _enum_list(doc.get("pipeline"), PipelineMode, PipelineMode.AUTO, source, "pipeline")
    clocks = doc.get("clock_mhz", [150.0])
    clocks = clocks if isinstance(clocks, list) else [clocks]
    for c in clocks:
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < 2000:
            raise _err(
                f"must be clock targets in MHz (0 < f < 2000), not {c!r}", source, "clock_mhz"
            )
    if not clocks:
        raise _err("must not be empty", source, "clock_mhz")
    default_objectives = DEFAULT_OBJECTIVES if tulip is None else ("throughput", "energy", "cells")
    objectives = doc.get("objectives", list(default_objectives))
    if not isinstance(objectives, list) or len(objectives) < 2:
        raise _err(
            f"must be a list of at least two of {sorted(OBJECTIVES)}, not {objectives!r}",
            source,
            "objectives",
        )
    allowed = sorted(TULIP_OBJECTIVES) if tulip is not None else sorted(set(OBJECTIVES) - {"cells"})
    for o in objectives:
        if o not in allowed:
            raise _err(f"must be one of {allowed}, not {o!r}", source, "objectives")
    cons = doc.get("constraints") or {}
    if not isinstance(cons, Mapping):
        raise _err("must be a mapping", source, "constraints")
    bad = sorted(set(cons) - {"device", "min_throughput"})
    if bad:
        raise _err(
            "is not a constraint; expected device or min_throughput",
            source,
            f"constraints.{bad[0]}",
        )
    device = cons.get("device", ECP5_85F.name)  # the default synthesis target's part
    if tulip is not None and "device" in cons:
        raise _err("does not apply to a TULIP array (an ASIC view)", source, "constraints.device")
    if device in (None, "none") or tulip is not None:
        device = None
    else:
        if device not in DEVICES:
            raise _err(
                f"must be one of {sorted(DEVICES)} or none, not {device!r}",
                source,
                "constraints.device",
            )
        device = DEVICES[device]
    mt = cons.get("min_throughput", 0.0)
    if isinstance(mt, bool) or not isinstance(mt, int | float) or mt < 0:
        raise _err(
            f"must be a non-negative number (frames/s), not {mt!r}",
            source,
            "constraints.min_throughput",
        )
    search = doc.get("search") or {}
    if not isinstance(search, Mapping):
        raise _err("must be a mapping", source, "search")
    keys = {"strategy", "max_points", "seed", "generations", "population", "chunk"}
    bad = sorted(set(search) - keys)
    if bad:
        raise _err(
            f"is not a search field; expected one of {sorted(keys)}", source, f"search.{bad[0]}"
        )
    try:
        strategy = Strategy(search.get("strategy", "auto"))
    except ValueError:
        valid = ", ".join(m.value for m in Strategy)
        raise _err(
            f"must be one of {valid}, not {search.get('strategy')!r}", source, "search.strategy"
        ) from None
    ints = {}
    for k, default, lo in (
        ("max_points", 2_000_000, 1),
        ("seed", 0, 0),
        ("generations", 60, 1),
        ("population", 200, 4),
        ("chunk", 65536, 1),
    ):
        v = search.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise _err(f"must be an int >= {lo}, not {v!r}", source, f"search.{k}")
        ints[k] = v
    contexts = tuple(Context(m, f, p) for m, f, p in itertools.product(mem, fifo, pipe))
    return Space(
        network=network,
        pe=pe,
        simd=simd,
        contexts=contexts,
        clocks=tuple(float(c) for c in clocks),
        objectives=tuple(objectives),
        device=device,
        min_throughput=float(mt),
        strategy=strategy,
        source=source,
        doc=dict(doc),
        tulip=tulip,
        **ints,
    )


def _tulip(doc: Mapping, design: Design, source: str) -> TulipKnobs:
    """The ``tulip`` field: PEs and cells per PE (lists of positive ints), input width."""
    from codesign.models.binary.tulip import map_network
    from codesign.models.errors import ConfigError

    t = doc["tulip"] or {}
    if not isinstance(t, Mapping):
        raise _err("must be a mapping with pes, tlns and in_width", source, "tulip")
    bad = sorted(set(t) - {"pes", "tlns", "in_width"})
    if bad:
        raise _err("is not a TULIP knob; expected pes, tlns or in_width", source, f"tulip.{bad[0]}")
    dataflow = sorted(set(doc) & {"stages", "mem_style", "fifo_depth", "pipeline"})
    if dataflow:
        raise _err(
            "is a dataflow knob; a space with tulip explores the TULIP array", source, dataflow[0]
        )
    default = TulipKnobs()
    lists = {}
    for k in ("pes", "tlns"):
        v = t.get(k, list(getattr(default, k)))
        v = [v] if isinstance(v, int) and not isinstance(v, bool) else v
        if (
            not isinstance(v, list)
            or not v
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v)
        ):
            raise _err(f"must be a list of positive ints, not {v!r}", source, f"tulip.{k}")
        lists[k] = tuple(sorted(set(v)))
    w = t.get("in_width", default.in_width)
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise _err(f"must be a positive int, not {w!r}", source, "tulip.in_width")
    try:
        map_network(design.network)
    except ConfigError as e:
        raise _err(f"the network has no TULIP mapping: {e}", source, "tulip") from None
    return TulipKnobs(lists["pes"], lists["tlns"], w)
