"""Network → streaming pipeline: one hardware stage per compute layer, chained by FIFOs.

:func:`build` turns a :class:`~models.hwconfig.Design` into an :class:`AxiStreamTop`;
:func:`generate` writes its Verilog, a manifest and a FuseSoC core file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
from amaranth import Module
from amaranth._toolchain.yosys import YosysError
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.binary import Encoding
from models.fileio import atomic_write
from models.hwconfig import ConfigError, Design, Stage, StageConfig, StageKind, stage_io
from models.ir import Tensor
from models.layers import BinaryConv2d, BinaryDense
from models.qtype import Kind

from ..memfiles import externalize
from .act import Activation, ActivationSpec
from .mvau import MVAU
from .stream import StreamFIFO, WidthConverter, beat_layout, element_shape
from .top import AXI_PORTS, AxiStreamTop, stream_doc, to_verilog
from .vvau import VVAU

__all__ = ["Pipeline", "StageUnit", "build", "generate", "stage_io", "top_name"]


def _chain(m: Module, units: list, first, last) -> None:
    """Connect ``first`` (flipped port) → units → ``last`` (flipped port)."""
    prev = first
    for u in units:
        wiring.connect(m, prev, u.i)
        prev = u.o
    wiring.connect(m, prev, last)


def _matrix(stage: Stage) -> tuple[np.ndarray, bool, bool]:
    """The stage's weights as the MVAU sees them (columns in stream order), and its mode."""
    la = stage.main
    w = np.asarray(la.weight)
    if stage.depthwise:  # (C, 1, KH, KW) -> (C, KH*KW)
        return w.reshape(w.shape[0], -1), False, False
    if w.ndim == 4:  # (OC, C, KH, KW) -> (OC, KH*KW*C): the window order of the SWG
        w = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    if stage.in_order is not None:
        w = w[:, stage.in_order]
    xnor = isinstance(la, BinaryDense | BinaryConv2d)
    bipolar_out = xnor and la.encoding is Encoding.BIPOLAR
    if bipolar_out:
        w = (w + 1) // 2  # ±1 weights as bits
    return w, xnor, bipolar_out


def unit_names(stage: Stage) -> list[str]:
    """Instance names of a stage's units, in stream order (``u<k>_<class name>``)."""
    kinds = []
    if stage.kind is StageKind.CONV:
        kinds.append("slidingwindow")
    if stage.kind in (StageKind.MVAU, StageKind.CONV):
        kinds.append("vvau" if stage.depthwise else "mvau")
        if not ActivationSpec.of(stage.layers[1:]).empty:
            kinds.append("activation")
    elif stage.kind is StageKind.POOL:
        kinds.append("pool2d")
    else:
        kinds.append("activation")
    return [f"u{k}_{kind}" for k, kind in enumerate(kinds)]


def tap_instance(stage: Stage) -> str:
    """Instance path, from the pipeline, of the module whose ``o`` port is the stage's
    output under that exact name (the stage's own port may be renamed: its last unit's
    output net is also called ``o__payload`` there)."""
    return f"stage_{stage.name}.{unit_names(stage)[-1]}"


class StageUnit(wiring.Component):
    """One pipeline stage with stream ports ``i`` and ``o``: its units (sliding window,
    MVAU/VVAU, activation, pool) chained, named by :func:`unit_names`."""

    def __init__(
        self, *, stage: Stage, config: StageConfig, corrupt: tuple[int, int] | None = None
    ) -> None:
        self.stage, self.config, self._corrupt = stage, config, corrupt
        n_in, n_out = stage_io(stage, config)
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(stage.input.qtype, n_in))),
                "o": Out(stream.Signature(beat_layout(stage.output.qtype, n_out))),
            }
        )
        self.units = self._make_units()
        self.unit_names = unit_names(stage)
        kinds = [type(u).__name__.lower() for u in self.units]
        assert [n.split("_", 1)[1] for n in self.unit_names] == kinds, (kinds, self.unit_names)

    def _make_units(self) -> list:
        s, cfg = self.stage, self.config
        units = []
        if s.kind in (StageKind.MVAU, StageKind.CONV):
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
                    )
                )
            weights, xnor, bipolar_out = _matrix(s)
            if self._corrupt is not None:  # test-only: one wrong weight in the RTL
                weights = weights.copy()
                r, c = self._corrupt
                weights[r, c] = 1 - weights[r, c] if xnor else (0 if weights[r, c] else 1)
            acc = s.acc
            lo, hi = s.input.lo, s.input.hi
            if s.kind is StageKind.CONV and any(getattr(s.main, "padding", (0, 0))):
                lo, hi = min(lo, 0), max(hi, 0)  # padding inserts zeros
            common = {
                "bias": getattr(s.main, "bias", None),
                "in_type": s.input.qtype,
                "out_type": acc.qtype,
                "in_range": (lo, hi),
                "pe": cfg.pe,
            }
            if s.depthwise:  # weights (C, KH*KW): each channel's own taps
                units.append(VVAU(weights=weights, **common))
            else:
                units.append(
                    MVAU(
                        weights=weights,
                        simd=cfg.simd,
                        xnor=xnor,
                        bipolar_out=bipolar_out,
                        mem_style=cfg.mem_style,
                        **common,
                    )
                )
            spec = ActivationSpec.of(s.layers[1:])
            if not spec.empty:
                units.append(
                    Activation(
                        spec=spec,
                        in_type=acc.qtype,
                        out_type=s.output.qtype,
                        n=cfg.pe,
                        channels=s.mh,
                    )
                )
        elif s.kind is StageKind.POOL:
            from .pool import Pool2d

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
                    mode="max" if la.op == "maxpool2d" else "avg",
                    **({"rounding": la.rounding} if la.op == "avgpool2d" else {}),
                )
            )
        else:
            units.append(
                Activation(
                    spec=ActivationSpec.of(s.layers),
                    in_type=s.input.qtype,
                    out_type=s.output.qtype,
                    n=cfg.pe,
                    channels=s.channels,
                )
            )
        return units

    def elaborate(self, platform):
        m = Module()
        for name, u in zip(self.unit_names, self.units, strict=True):
            m.submodules[name] = u
        _chain(m, self.units, wiring.flipped(self.i), wiring.flipped(self.o))
        return m


class Pipeline(wiring.Component):
    """All stages of a design, chained: width converters where beat widths differ, and a
    FIFO of the configured depth in front of every stage but the first."""

    def __init__(self, design: Design, corrupt: tuple[str, int, int] | None = None) -> None:
        self.design = design
        self._corrupt = corrupt
        if corrupt is not None and corrupt[0] not in {s.name for s in design.stages}:
            raise ValueError(f"corrupt names no stage: {corrupt[0]!r}")
        first, last = design.stages[0], design.stages[-1]
        self.in_per_beat = stage_io(first, design.config[first.name])[0]
        self.out_per_beat = stage_io(last, design.config[last.name])[1]
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(first.input.qtype, self.in_per_beat))),
                "o": Out(stream.Signature(beat_layout(last.output.qtype, self.out_per_beat))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        units = []
        prev_n = None
        for s in self.design.stages:
            cfg = self.design.config[s.name]
            n_in, n_out = stage_io(s, cfg)
            if prev_n is not None:
                el = element_shape(s.input.qtype)
                if prev_n != n_in:
                    wc = WidthConverter(element=el, n_in=prev_n, n_out=n_in)
                    m.submodules[f"dwc_{s.name}"] = wc
                    units.append(wc)
                q = StreamFIFO(
                    layout=beat_layout(s.input.qtype, n_in), depth=self.design.fifo_depth(s)
                )
                m.submodules[f"fifo_{s.name}"] = q
                units.append(q)
            bad = self._corrupt[1:] if self._corrupt and self._corrupt[0] == s.name else None
            unit = StageUnit(stage=s, config=cfg, corrupt=bad)
            m.submodules[f"stage_{s.name}"] = unit
            units.append(unit)
            prev_n = n_out
        _chain(m, units, wiring.flipped(self.i), wiring.flipped(self.o))
        return m


def top_name(name: str) -> str:
    """A Verilog module name for a network name."""
    t = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return t if re.match(r"[A-Za-z_]", t) else f"net_{t}"


def _stream_doc(t: Tensor, per_beat: int) -> dict:
    order = None
    if len(t.shape) == 3:
        c, h, w = t.shape
        order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel().tolist()
    bits = 1 if t.qtype.kind is Kind.BIPOLAR else t.qtype.bits
    return stream_doc(str(t.qtype), bits, per_beat, t.shape, order)


def build(design: Design, corrupt: tuple[str, int, int] | None = None) -> AxiStreamTop:
    """The design's top level (AXI-Stream ports around the :class:`Pipeline`).

    ``corrupt`` is a test-only hook: ``(stage, row, column)`` changes that one weight of
    that stage's MVAU in the hardware only, so verification must report the stage.
    """
    core = Pipeline(design, corrupt)
    last = design.stages[-1]
    return AxiStreamTop(core=core, out_beats=last.output.size // core.out_per_beat)


def manifest(design: Design, top: str, network_hash: str) -> dict:
    """What :func:`generate` records beside the Verilog (ports, folding, ideal cycles)."""
    core_in = stage_io(design.stages[0], design.config[design.stages[0].name])[0]
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
                "fifo_depth": design.fifo_depth(s),
                "cycles": design.cycles(s),
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
        "ports": dict(AXI_PORTS),
        "input": _stream_doc(design.stages[0].input, core_in),
        "output": _stream_doc(last.output, core_out),
        "stages": stages,
    }


def _fusesoc_core(top: str, name: str, memories: list[str]) -> str:
    mem = ""
    if memories:  # $readmemh reads them from the tool's working directory: copy them there
        mem = "  memories:\n    files:\n" + "".join(
            f"      - {f}: {{copyto: {f}}}\n" for f in memories
        )
        mem += "    file_type: user\n"
    return (
        "CAPI=2:\n"
        f"name: codesign:dataflow:{top}:0.1.0\n"
        f"description: Streaming dataflow accelerator for {name}, generated by codesign\n"
        "filesets:\n"
        "  rtl:\n"
        f"    files: [{top}.v]\n"
        "    file_type: verilogSource\n"
        f"{mem}"
        "targets:\n"
        "  default:\n"
        f"    filesets: [rtl{', memories' if memories else ''}]\n"
        f"    toplevel: {top}\n"
    )


def generate(
    design: Design,
    out_dir: str | Path,
    network_hash: str,
    corrupt: tuple[str, int, int] | None = None,
) -> dict:
    """Write ``<top>.v``, the ``$readmemh`` files of its large weight memories
    (:func:`hdl.memfiles.externalize`, listed in the manifest's ``memory_files``),
    ``manifest.json`` and ``<top>.core`` into ``out_dir`` (atomically; the same design always
    gives the same bytes). Returns the manifest."""
    out_dir = Path(out_dir)
    top = top_name(design.network.name)
    try:
        verilog = to_verilog(build(design, corrupt), top)
    except YosysError as e:  # the bundled (WebAssembly) Yosys has 4 GiB at most
        width = {
            s.name: design.config[s.name].pe * design.config[s.name].simd for s in design.stages
        }
        widest = max(design.stages, key=lambda s: width[s.name])
        cfg = design.config[widest.name]
        why = str(e).strip().splitlines()[-1] if str(e).strip() else "failed"
        raise ConfigError(
            f"{design.network.name}: Verilog export failed ({why}); a folding this wide is "
            f"more than the bundled Yosys can hold: reduce PE·SIMD (largest: stage "
            f"{widest.name!r}, pe={cfg.pe}, simd={cfg.simd})"
        ) from None
    doc = manifest(design, top, network_hash)
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
    atomic_write(out_dir / f"{top}.core", _fusesoc_core(top, design.network.name, sorted(memories)))
    atomic_write(out_dir / "manifest.json", json.dumps(doc, indent=1) + "\n")
    return doc
