"""The accelerator's top level: AXI-Stream ports around a stream core, and Verilog export."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from amaranth import Fragment, Module, Mux, Signal, Value
from amaranth.back import verilog
from amaranth.hdl import ValueCastable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "AXI_PORTS",
    "AxiStreamTop",
    "stream_doc",
    "tdata_bits",
    "to_verilog",
    "to_verilog_observed",
]


def tdata_bits(bits: int) -> int:
    """AXI-Stream ``tdata`` width for a payload of ``bits``: the next multiple of 8."""
    return max(8, -(-bits // 8) * 8)


#: The ``ports`` entry of a design's ``manifest.json``: the ports of :class:`AxiStreamTop`.
AXI_PORTS = {
    "clock": "clk",
    "reset": "rst (active high, synchronous)",
    "input": "s_axis_tdata/tvalid/tready",
    "output": "m_axis_tdata/tvalid/tready/tlast",
}


def stream_doc(
    type_name: str, element_bits: int, per_beat: int, shape, order: list[int] | None = None
) -> dict:
    """A stream's entry in ``manifest.json`` (read back by
    :func:`codesign.hdl.manifest.read_manifest`):
    ``per_beat`` elements of ``type_name`` (``element_bits`` each) per beat, carrying a
    tensor of ``shape`` in stream ``order`` (None: the default order)."""
    elements = 1
    for n in shape:
        elements *= int(n)
    return {
        "type": type_name,
        "element_bits": element_bits,
        "per_beat": per_beat,
        "elements": elements,
        "beats": elements // per_beat,
        "tdata_bits": tdata_bits(element_bits * per_beat),
        "shape": [int(n) for n in shape],
        "order": order,
    }


class AxiStreamTop(wiring.Component):
    """AXI-Stream slave input and master output around ``core`` (a component with stream
    members ``i`` and ``o``), with the port names Vivado IP integrator and cocotbext-axi
    recognise: ``s_axis_tdata/tvalid/tready`` and ``m_axis_tdata/tvalid/tready/tlast``.

    ``tdata`` is the core's payload zero-padded to whole bytes (padding input bits are
    ignored). ``m_axis_tlast`` marks the last of every ``out_beats`` output beats (one
    frame). Clock ``clk`` and synchronous reset ``rst`` are added by the Verilog export.
    """

    def __init__(self, *, core: wiring.Component, out_beats: int) -> None:
        if not isinstance(out_beats, int) or out_beats < 1:
            raise ValueError(f"out_beats must be a positive int, not {out_beats!r}")
        self._core = core
        self._out_beats = out_beats
        self._in_bits = len(core.i.payload.as_value())
        self._out_bits = len(core.o.payload.as_value())
        super().__init__(
            {
                "s_axis_tdata": In(tdata_bits(self._in_bits)),
                "s_axis_tvalid": In(1),
                "s_axis_tready": Out(1),
                "m_axis_tdata": Out(tdata_bits(self._out_bits)),
                "m_axis_tvalid": Out(1),
                "m_axis_tready": In(1),
                "m_axis_tlast": Out(1),
            }
        )

    @property
    def core(self) -> wiring.Component:
        return self._core

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.d.comb += [
            core.i.payload.as_value().eq(self.s_axis_tdata[: self._in_bits]),
            core.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.i.ready),
            self.m_axis_tdata.eq(core.o.payload.as_value()),
            self.m_axis_tvalid.eq(core.o.valid),
            core.o.ready.eq(self.m_axis_tready),
        ]
        if self._out_beats == 1:
            m.d.comb += self.m_axis_tlast.eq(1)
        else:
            beat = Signal(range(self._out_beats))
            m.d.comb += self.m_axis_tlast.eq(beat == self._out_beats - 1)
            with m.If(core.o.valid & self.m_axis_tready):
                m.d.sync += beat.eq(Mux(beat == self._out_beats - 1, 0, beat + 1))
        return m


def to_verilog(top: wiring.Component, name: str) -> str:
    """Verilog for ``top`` as module ``name``; the same design always gives the same text
    (no source locations)."""
    return verilog.convert(top, name=name, emit_src=False)


def to_verilog_observed(
    top: wiring.Component, name: str, observe: Mapping[Hashable, Value | ValueCastable]
) -> tuple[str, dict[Hashable, list[str]]]:
    """:func:`to_verilog` (the same text), and where each signal of ``observe`` is in it.

    The place is Amaranth's own record of the names it gave (the name map of
    :func:`amaranth.back.verilog.convert_fragment`): the instance names from module ``name``
    down to the module that holds the signal, then the signal's net name there, which
    Amaranth may have renamed (``o__payload$12``). A bench reaches the signal by indexing
    the simulator's handle of the top module with these names, one per level, so it never
    has to guess a name or read the Verilog.

    Raises ``ValueError`` naming a signal of ``observe`` that has no net in the Verilog.
    """
    ports = {}
    for path, _member, value in top.signature.flatten(top):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        ports["__".join(map(str, path))] = (value, None)  # direction: as the design drives it
    fragment = Fragment.get(top, None)
    text, names = verilog.convert_fragment(fragment, ports, name, emit_src=False)
    paths = {}
    for key, value in observe.items():
        sig = value.as_value() if isinstance(value, ValueCastable) else value
        where = names.get(sig) if isinstance(sig, Signal) else None
        if where is None or where[0] != name:
            raise ValueError(f"observed signal {key!r} ({sig!r}) has no net in the Verilog")
        paths[key] = list(where[1:])
    return text, paths
