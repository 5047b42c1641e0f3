"""Network → streaming pipeline: one hardware stage per compute layer, joined by FIFOs; a
fork copies a stream that two stages read, and an add stage joins two streams.

:func:`build` turns a :class:`~codesign.models.hwconfig.Design` into an :class:`AxiStreamTop`;
:func:`generate` writes its Verilog, a manifest and a FuseSoC core file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from amaranth import Module
from amaranth.back.verilog import YosysError
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.deform.stage import matrix_input
from codesign.models.fileio import atomic_write
from codesign.models.hwconfig import (
    ConfigError,
    Design,
    Stage,
    StageConfig,
    StageKind,
    fifo_name,
    fork_name,
    port_width,
    readers,
    stage_io,
)
from codesign.models.ir import Tensor
from codesign.models.pipelining import PipelineMode, stage_pipeline
from codesign.models.plan import stage_matrix, stream_order
from codesign.models.qtype import Kind, QType

from ..kit import fusesoc_core
from ..memfiles import externalize
from ..tools import ToolError, diagnose, size_advice, writable_dir
from .act import Activation, ActivationSpec
from .credit import Admit, CreditQueue
from .mvau import MVAU
from .residual import AddStreams, Fork
from .stream import StreamFIFO, WidthConverter, beat_layout, element_shape
from .top import AXI_PORTS, AxiStreamTop, stream_doc, to_verilog_observed
from .vvau import VVAU

__all__ = ["Pipeline", "StageUnit", "build", "generate", "stage_io", "top_name"]


def _chain(m: Module, units: list, first, last) -> None:
    """Connect ``first`` (flipped port) → units → ``last`` (flipped port)."""
    prev = first
    for u in units:
        wiring.connect(m, prev, u.i)
        prev = u.o
    wiring.connect(m, prev, last)


def _has_queue(stage: Stage) -> bool:
    """Whether ``stage`` is a credit pipeline ending in a queue
    (:func:`codesign.models.pipelining.stage_pipeline` is not None)."""
    act = not ActivationSpec.of(stage.layers).empty
    if stage.kind in (StageKind.MVAU, StageKind.ADD, StageKind.ACT):
        return True
    if stage.kind is StageKind.POOL:
        return not stage.global_pool
    return stage.kind in (StageKind.CONV, StageKind.DEFORM) and (not stage.depthwise or act)


def unit_names(stage: Stage) -> list[str]:
    """Instance names of a stage's units, in stream order (``u<k>_<class name>``)."""
    kinds = []
    act = not ActivationSpec.of(stage.layers[1:]).empty
    if stage.kind is StageKind.ADD:
        kinds.append("addstreams")
    elif stage.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM):
        if stage.kind is StageKind.CONV:
            kinds.append("slidingwindow")
        if stage.kind is StageKind.DEFORM:
            kinds.append("deformwindow")
        if stage.depthwise:
            kinds += ["vvau", "admit"] if act else ["vvau"]
        else:
            kinds.append("mvau")
    elif stage.kind is StageKind.POOL:
        kinds.append("pool2d")
    else:
        kinds.append("admit")
        act = True
    if act:
        kinds.append("activation")
    if _has_queue(stage):
        kinds.append("creditqueue")
    return [f"u{k}_{kind}" for k, kind in enumerate(kinds)]


def tap_instance(stage: Stage) -> str:
    """Instance path, from the pipeline, of the module whose ``o`` port is the stage's
    output under that exact name (the stage's own port may be renamed: its last unit's
    output net is also called ``o__payload`` there)."""
    return f"stage_{stage.name}.{unit_names(stage)[-1]}"


class StageUnit(wiring.Component):
    """One pipeline stage with stream ports ``i`` (and ``i_b``, an add stage's second input)
    and ``o``: its units (sliding window, MVAU/VVAU, add, activation, pool) chained, named
    by :func:`unit_names`."""

    def __init__(
        self,
        *,
        stage: Stage,
        config: StageConfig,
        pipeline: PipelineMode = PipelineMode.AUTO,
        corrupt: tuple[int, int] | None = None,
        target: str | None = None,
    ) -> None:
        self.stage, self.config, self._corrupt = stage, config, corrupt
        self._target = target
        self._mode = PipelineMode(pipeline)
        #: the stage's credit pipeline (None for a pool stage), as models/ defines it
        self.pipeline = stage_pipeline(stage, config, self._mode)
        n_in, n_out = stage_io(stage, config)
        ports = {
            "i": In(stream.Signature(beat_layout(stage.input.qtype, n_in))),
            "o": Out(stream.Signature(beat_layout(stage.output.qtype, n_out))),
        }
        if len(stage.inputs) == 2:  # an add's second input, a deformable stage's offsets
            n_b = port_width(stage, config, 1)
            ports["i_b"] = In(stream.Signature(beat_layout(stage.inputs[1].qtype, n_b)))
        super().__init__(ports)
        self.units = self._make_units()
        self.unit_names = unit_names(stage)
        kinds = [type(u).__name__.lower() for u in self.units]
        assert [n.split("_", 1)[1] for n in self.unit_names] == kinds, (kinds, self.unit_names)

    def _activation(self, channels: int, in_type: QType | None = None) -> list:
        """The stage's activation unit after its accumulator (none when the stage has no
        activation layers)."""
        s = self.stage
        spec = ActivationSpec.of(s.layers)
        if spec.empty:
            return []
        return [
            Activation(
                spec=spec,
                in_type=s.acc.qtype if in_type is None else in_type,
                out_type=s.output.qtype,
                n=self.config.pe,
                channels=channels,
                pipeline=self._mode,
                target=self._target,
            )
        ]

    def _queue(self) -> list:
        """The credit queue at the stage's output, as deep as models/ says."""
        if self.pipeline is None:
            return []
        n_out = stage_io(self.stage, self.config)[1]
        return [
            CreditQueue(
                layout=beat_layout(self.stage.output.qtype, n_out),
                depth=self.pipeline.queue_depth,
            )
        ]

    def _deform_window(self):
        """A deformable stage's gather (:class:`~codesign.hdl.deform.window.DeformWindow`)."""
        from codesign.hdl.deform.window import DeformWindow

        s, cfg = self.stage, self.config
        return DeformWindow.of_layer(
            s.main, s.inputs[0], s.inputs[1], banks=cfg.deform_banks, ports=cfg.deform_ports
        )

    def _make_units(self) -> list:
        s, cfg = self.stage, self.config
        units = []
        if s.kind is StageKind.ADD:
            units.append(
                AddStreams(
                    a_type=s.inputs[0].qtype,
                    b_type=s.inputs[1].qtype,
                    out_type=s.acc.qtype,
                    n=cfg.pe,
                )
            )
            units += self._activation(s.channels)
            units += self._queue()
        elif s.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM):
            if s.kind is StageKind.DEFORM:
                units.append(self._deform_window())
            if s.kind is StageKind.CONV:
                from .swg import SlidingWindow

                c, h, w = s.input.shape
                la = s.main
                pad = getattr(la, "padding", (0, 0))
                units.append(
                    SlidingWindow(
                        element=element_shape(s.input.qtype),
                        channels=c,
                        height=h,
                        width=w,
                        kernel=la.weight.shape[2:],
                        stride=la.stride,
                        padding=pad,
                        dilation=la.dilation,
                        simd=stage_io(s, cfg)[0],
                        pad_value=0,
                        target=self._target,
                    )
                )
            weights, xnor, bipolar_out = stage_matrix(s)
            if self._corrupt is not None:  # test-only: one wrong weight in the RTL
                weights = weights.copy()
                r, c = self._corrupt
                weights[r, c] = 1 - weights[r, c] if xnor else (0 if weights[r, c] else 1)
            acc = s.acc
            in_type, lo, hi = matrix_input(s)
            common = {
                "bias": getattr(s.main, "bias", None),
                "in_type": in_type,
                "out_type": acc.qtype,
                "in_range": (lo, hi),
                "pe": cfg.pe,
            }
            if s.depthwise:  # weights (C, KH*KW): each channel's own taps
                units.append(VVAU(weights=weights, **common))
                if not ActivationSpec.of(s.layers).empty:
                    units.append(Admit(layout=beat_layout(acc.qtype, cfg.pe)))
            else:
                units.append(
                    MVAU(
                        weights=weights,
                        simd=cfg.simd,
                        xnor=xnor,
                        bipolar_out=bipolar_out,
                        mem_style=cfg.mem_style,
                        pipeline=self._mode,
                        target=self._target,
                        sparsity=cfg.sparsity,
                        **common,
                    )
                )
            units += self._activation(s.mh)
            units += self._queue()
        elif s.kind is StageKind.POOL:
            from .pool import Pool2d, PoolMode

            c, h, w = s.input.shape
            la = s.main
            units.append(
                Pool2d(
                    element=element_shape(s.input.qtype),
                    channels=c,
                    height=h,
                    width=w,
                    kernel=la.kernel,
                    stride=la.stride,
                    padding=getattr(la, "padding", (0, 0)),
                    simd=cfg.pe,
                    mode={
                        "maxpool2d": PoolMode.MAX,
                        "avgpool2d": PoolMode.AVG,
                        "sumpool2d": PoolMode.SUM,
                    }[la.op],
                    **({"rounding": la.rounding} if la.op == "avgpool2d" else {}),
                    out_element=element_shape(s.output.qtype),
                    target=self._target,
                    credit=not s.global_pool,
                )
            )
            units += self._queue()
        else:
            units.append(Admit(layout=beat_layout(s.input.qtype, cfg.pe)))
            units += self._activation(s.channels, in_type=s.input.qtype)
            units += self._queue()
        return units

    def elaborate(self, platform):
        m = Module()
        for name, u in zip(self.unit_names, self.units, strict=True):
            m.submodules[name] = u
        if self.pipeline is not None:  # the head's credits come from the queue
            head = next(u for u in self.units if hasattr(u, "reserve"))
            queue = self.units[-1]
            m.d.comb += [head.space.eq(queue.space), queue.reserve.eq(head.reserve)]
        if self.stage.kind is StageKind.DEFORM:
            window = self.units[0]
            wiring.connect(m, wiring.flipped(self.i), window.i)
            wiring.connect(m, wiring.flipped(self.i_b), window.offs)
            _chain(m, self.units[1:], window.o, wiring.flipped(self.o))
            return m
        if self.stage.kind is StageKind.ADD:
            add = self.units[0]
            wiring.connect(m, wiring.flipped(self.i), add.a)
            wiring.connect(m, wiring.flipped(self.i_b), add.b)
            prev = add.o
            for u in self.units[1:]:
                wiring.connect(m, prev, u.i)
                prev = u.o
            wiring.connect(m, prev, wiring.flipped(self.o))
            return m
        _chain(m, self.units, wiring.flipped(self.i), wiring.flipped(self.o))
        return m


class Pipeline(wiring.Component):
    """All stages of a design, joined as its stage graph: a fork (``fork_<producer>``) where
    two stages read one stream, and on every stage input a width converter where beat widths
    differ (``dwc_<fifo name>``) and a FIFO of the configured depth (``fifo_<fifo name>``,
    see :func:`codesign.models.hwconfig.fifo_name`), but on a linear pipeline's first stage."""

    def __init__(
        self,
        design: Design,
        corrupt: tuple[str, int, int] | None = None,
        *,
        target: str | None = None,
    ) -> None:
        self.design = design
        if corrupt is not None and corrupt[0] not in {s.name for s in design.stages}:
            raise ValueError(f"corrupt names no stage: {corrupt[0]!r}")
        first, last = design.stage(readers(design.stages)[None][0][0]), design.stages[-1]
        self.in_per_beat = stage_io(first, design.config[first.name])[0]
        self.out_per_beat = stage_io(last, design.config[last.name])[1]
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(first.input.qtype, self.in_per_beat))),
                "o": Out(stream.Signature(beat_layout(last.output.qtype, self.out_per_beat))),
            }
        )
        self._units: dict[str, StageUnit] = {}
        self._fifos: dict[str, StreamFIFO] = {}
        for s in design.stages:
            cfg = design.config[s.name]
            bad = corrupt[1:] if corrupt and corrupt[0] == s.name else None
            self._units[s.name] = StageUnit(
                stage=s, config=cfg, pipeline=design.config.pipeline, corrupt=bad, target=target
            )
            for port, tensor in enumerate(s.inputs):
                if design.has_fifo(s, port):
                    self._fifos[fifo_name(s.name, port)] = StreamFIFO(
                        layout=beat_layout(tensor.qtype, port_width(s, cfg, port)),
                        depth=design.fifo_depth(s, port),
                        target=target,
                    )

    @property
    def units(self) -> dict[str, StageUnit]:
        """Stage name → its :class:`StageUnit` (instance ``stage_<name>``)."""
        return dict(self._units)

    @property
    def fifos(self) -> dict[str, StreamFIFO]:
        """FIFO name (:func:`codesign.models.hwconfig.fifo_name`) → its
        :class:`~codesign.hdl.dataflow.stream.StreamFIFO` (instance ``fifo_<name>``)."""
        return dict(self._fifos)

    def elaborate(self, platform):
        m = Module()
        design = self.design
        read = readers(design.stages)
        pending: dict[tuple[str, int], object] = {}  # (stage, port) → the stream feeding it

        def branch(src, port, layout) -> None:
            """Route ``port`` (producer ``src``'s stream) to its readers, through a chain of
            two-way forks when there are several."""
            rs = read.get(src, [])
            for k, key in enumerate(rs[:-1]):
                fork = Fork(layout=layout)
                m.submodules[fork_name(src, k)] = fork
                wiring.connect(m, port, fork.i)
                pending[key] = fork.o0
                port = fork.o1
            pending[rs[-1]] = port

        first = design.stage(read[None][0][0])
        branch(None, wiring.flipped(self.i), beat_layout(first.input.qtype, self.in_per_beat))
        for s in design.stages:
            n_in, n_out = stage_io(s, design.config[s.name])
            unit = self._units[s.name]
            for port, tensor in enumerate(s.inputs):
                cur = pending.pop((s.name, port))
                name = fifo_name(s.name, port)
                n_in = port_width(s, design.config[s.name], port)
                prev_n = design.in_width(s, port)
                if prev_n != n_in:
                    wc = WidthConverter(
                        element=element_shape(tensor.qtype), n_in=prev_n, n_out=n_in
                    )
                    m.submodules[f"dwc_{name}"] = wc
                    wiring.connect(m, cur, wc.i)
                    cur = wc.o
                if name in self._fifos:
                    q = self._fifos[name]
                    m.submodules[f"fifo_{name}"] = q
                    wiring.connect(m, cur, q.i)
                    cur = q.o
                wiring.connect(m, cur, unit.i if port == 0 else unit.i_b)
            m.submodules[f"stage_{s.name}"] = unit
            if s is design.stages[-1]:
                wiring.connect(m, unit.o, wiring.flipped(self.o))
            else:
                branch(s.name, unit.o, beat_layout(s.output.qtype, n_out))
        return m


_STREAM = ("valid", "ready", "payload")


def _probes(stage: Stage) -> list[tuple[str, str, tuple[str, ...]]]:
    """The signals of ``stage`` a bench observes, as (kind, name, members): ``out``, the
    stage's output stream; ``fifo`` and ``fifo_b``, the input stream and ``level`` of the
    FIFO on each input that has one (named by :func:`codesign.models.hwconfig.fifo_name`)."""
    out = [("out", stage.name, _STREAM)]
    for port, kind in enumerate(("fifo", "fifo_b")[: len(stage.inputs)]):
        out.append((kind, fifo_name(stage.name, port), ("valid", "ready", "level")))
    return out


def observed(pipeline: Pipeline) -> dict[tuple[str, str, str], object]:
    """The signals of ``pipeline`` a bench observes, keyed (kind, name, member) as
    :func:`_probes` lists them: every stage's output stream, and every FIFO's input stream
    and ``level``."""
    sigs = {}
    for s in pipeline.design.stages:
        unit = pipeline.units[s.name]
        for member in _STREAM:
            sigs[("out", s.name, member)] = getattr(unit.o, member)
        for kind, name, members in _probes(s)[1:]:
            fifo = pipeline.fifos.get(name)
            if fifo is not None:
                sigs.update({(kind, name, m): getattr(fifo.i, m) for m in members[:2]})
                sigs[(kind, name, "level")] = fifo.level
    return sigs


def top_name(name: str) -> str:
    """A Verilog module name for a network name."""
    t = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return t if re.match(r"[A-Za-z_]", t) else f"net_{t}"


def _stream_doc(t: Tensor, per_beat: int) -> dict:
    order = None
    if len(t.shape) == 3:
        order = stream_order(t.shape).tolist()
    bits = 1 if t.qtype.kind is Kind.BIPOLAR else t.qtype.bits
    return stream_doc(str(t.qtype), bits, per_beat, t.shape, order)


def build(
    design: Design, corrupt: tuple[str, int, int] | None = None, *, target: str | None = None
) -> AxiStreamTop:
    """The design's top level (AXI-Stream ports around the :class:`Pipeline`).

    ``corrupt`` is a test-only hook: ``(stage, row, column)`` changes that one weight of
    that stage's MVAU in the hardware only, so verification must report the stage.
    """
    core = Pipeline(design, corrupt, target=target)
    last = design.stages[-1]
    return AxiStreamTop(core=core, out_beats=last.output.size // core.out_per_beat)


def _pipeline_doc(pl) -> dict | None:
    """A stage's credit pipeline in the manifest: its register stages, the cycles from a
    step's issue to the queue (the latency the pipelining adds) and the queue's depth."""
    if pl is None:
        return None
    return {
        "stages": [*pl.head, *pl.activation],
        "latency": pl.latency,
        "queue_depth": pl.queue_depth,
    }


def manifest(design: Design, top: str, network_hash: str) -> dict:
    """What :func:`generate` records beside the Verilog (ports, folding, ideal cycles, the
    stage graph: each stage's ``inputs``, the producing stage of each input port or None for
    the network input, and the depth of the FIFO on each port, None where there is none)."""
    first = design.stage(readers(design.stages)[None][0][0])
    core_in = stage_io(first, design.config[first.name])[0]
    last = design.stages[-1]
    core_out = stage_io(last, design.config[last.name])[1]
    stages = []
    for s in design.stages:
        cfg = design.config[s.name]
        stages.append(
            {
                "name": s.name,
                "kind": s.kind.value,
                "layers": [la.name for la in s.layers],
                "tap": s.tap,
                "instance": tap_instance(s),
                "pe": cfg.pe,
                "simd": cfg.simd,
                "mem_style": cfg.mem_style.value,
                **({"sparsity": f"{cfg.sparsity[0]}:{cfg.sparsity[1]}"} if cfg.sparsity else {}),
                "inputs": list(s.sources),
                "fifo_depth": design.fifo_depth(s) if design.has_fifo(s) else None,
                **(
                    {"fifo_depth_b": design.fifo_depth(s, 1) if design.has_fifo(s, 1) else None}
                    if len(s.sources) > 1
                    else {}
                ),
                "cycles": design.cycles(s),
                "pipeline": _pipeline_doc(design.pipeline(s)),
                "out": _stream_doc(s.output, stage_io(s, cfg)[1]),
            }
        )
    return {
        "format": 1,
        "name": design.network.name,
        "top": top,
        "verilog": f"{top}.v",
        "network_hash": network_hash,
        "ideal_ii": design.ideal_ii,
        "clock_mhz": design.config.clock_mhz,
        "pipeline": design.config.pipeline.value,
        "ports": dict(AXI_PORTS),
        "input": _stream_doc(first.input, core_in),
        "output": _stream_doc(last.output, core_out),
        "stages": stages,
    }


def _export_error(design: Design, top: str, out_dir: Path, output: str) -> Exception:
    """The error of a failed Verilog export: the bundled Yosys's first error line and its
    output's path (``<top>.export.log``); a :class:`ConfigError` advising a narrower folding
    only when that output shows memory ran out (:func:`codesign.hdl.tools.diagnose`); a
    :class:`~codesign.hdl.tools.CacheDirError` when wasmtime could not create its cache."""
    cache = re.search(r"failed to create cache directory: (.+)$", output, re.M)
    if cache:  # wasmtime keeps the compiled Yosys under XDG_CACHE_HOME
        writable_dir(
            cache[1].strip(),
            "the WebAssembly cache directory of the bundled Yosys (wasmtime's)",
            "XDG_CACHE_HOME",
        )
    d = diagnose("yosys", output)
    log = atomic_write(out_dir / f"{top}.export.log", output.rstrip("\n") + "\n")
    what = f"{design.network.name}: Verilog export by the bundled Yosys failed: {d.first_error}"
    if d.too_large:
        return ConfigError(f"{what}{d.size_note}; {size_advice(design)}; log: {log}")
    return ToolError(f"{what}; log: {log}", first_error=d.first_error, log=log)


def generate(
    design: Design,
    out_dir: str | Path,
    network_hash: str,
    corrupt: tuple[str, int, int] | None = None,
    *,
    target: str | None = None,
) -> dict:
    """Write ``<top>.v``, the ``$readmemh`` files of its large weight memories
    (:func:`codesign.hdl.memfiles.externalize`, listed in the manifest's ``memory_files``),
    ``manifest.json`` and ``<top>.core`` into ``out_dir`` (atomically; the same design always
    gives the same bytes). Returns the manifest.

    ``target`` None builds portable Verilog (every register in fabric: what the cocotb
    bench simulates); ``"ecp5"`` puts the multipliers' registers inside MULT18X18D
    instances (:class:`~codesign.hdl.dataflow.dsp.RegisteredProduct`), for synthesis."""
    out_dir = Path(out_dir)
    top = top_name(design.network.name)
    axi = build(design, corrupt, target=target)
    try:
        verilog, paths = to_verilog_observed(axi, top, observed(axi.core))
    except YosysError as e:  # the bundled (WebAssembly) Yosys: 4 GiB of memory at most
        raise _export_error(design, top, out_dir, str(e)) from None
    doc = manifest(design, top, network_hash)
    for stage in doc["stages"]:  # where the bench observes each stage (manifest "probes")
        stage["probes"] = {
            kind: {member: paths[(kind, name, member)] for member in members}
            for kind, name, members in _probes(design.stage(stage["name"]))
            if (kind, name, members[0]) in paths
        }
    if corrupt is not None:
        doc["corrupted_weight"] = list(corrupt)  # test-only: this RTL is wrong on purpose
    verilog, memories = externalize(verilog, top)
    doc["verilog_sha256"] = hashlib.sha256(verilog.encode()).hexdigest()
    # the $readmemh files of the large weight memories, beside the Verilog
    doc["memory_files"] = {
        n: hashlib.sha256(t.encode()).hexdigest() for n, t in sorted(memories.items())
    }
    for n, t in sorted(memories.items()):
        atomic_write(out_dir / n, t)
    atomic_write(out_dir / f"{top}.v", verilog)
    atomic_write(out_dir / f"{top}.core", fusesoc_core(top, design.network.name, sorted(memories)))
    atomic_write(out_dir / "manifest.json", json.dumps(doc, indent=1) + "\n")
    return doc
