"""The names a network may use: they reach the RTL, the cocotb bench, manifests and files.

A layer's name becomes Verilog instance names (``stage_<name>``, ``fifo_<name>``,
``fifo_<name>__b`` for an add stage's second input, ``dwc_<name>``, ``fork_<name>``), weight
files (``<top>_<name>_weights.hex``), golden-model traces (``<name>.npy``) and manifest
entries; the network's name becomes the Verilog top module, its ``.v``/``.core`` files and
the build folder. So:

- a layer name matches :data:`IDENTIFIER` (a Verilog simple identifier, which is also a
  portable file name), holds no ``__`` (the generator's separator: ``<stage>__b``,
  ``fork_<stage>__<k>``), has at most :data:`MAX_NAME` characters, and differs from every
  other layer's in more than case (case-insensitive file systems); ``input`` is kept for
  the network's input layer (the RTL's ``fork_input`` copies the input stream). A layer
  name is always prefixed in the RTL, so a Verilog keyword is a valid layer name (the
  usual input layer is called ``input``);
- a network name matches :data:`IDENTIFIER`, has at most :data:`MAX_NAME` characters and
  is not a Verilog or SystemVerilog keyword: it is the top module's name as it stands.

Descriptions and Python code that break a rule are refused (:func:`layer_name_problem`,
:func:`network_name_problem`, :func:`check_names`); names that come from elsewhere (a file
name, a QONNX graph) are mapped to valid ones by :func:`safe_name`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import DescriptionError

__all__ = [
    "IDENTIFIER",
    "MAX_NAME",
    "VERILOG_KEYWORDS",
    "check_names",
    "layer_name_problem",
    "network_name_problem",
    "safe_name",
]

#: A Verilog simple identifier limited to ASCII letters, digits and underscores (no ``$``).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Longest name: ``<top>_<layer>_weights.hex`` stays within a file system's 255 bytes.
MAX_NAME = 100

#: Reserved words of Verilog (IEEE 1364-2005) and SystemVerilog (IEEE 1800-2017, Annex B).
VERILOG_KEYWORDS = frozenset(
    """
    accept_on alias always always_comb always_ff always_latch and assert assign assume
    automatic before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez
    cell chandle checker class clocking cmos config const constraint context continue cover
    covergroup coverpoint cross deassign default defparam design disable dist do edge else
    end endcase endchecker endclass endclocking endconfig endfunction endgenerate endgroup
    endinterface endmodule endpackage endprimitive endprogram endproperty endspecify
    endsequence endtable endtask enum event eventually expect export extends extern final
    first_match for force foreach forever fork forkjoin function generate genvar global
    highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir
    include initial inout input inside instance int integer interconnect interface intersect
    join join_any join_none large let liblist library local localparam logic longint
    macromodule matches medium modport module nand negedge nettype new nexttime nmos nor
    noshowcancelled not notif0 notif1 null or output package packed parameter pmos posedge
    primitive priority program property protected pull0 pull1 pulldown pullup
    pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real
    realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0
    rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint
    shortreal showcancelled signed small soft solve specify specparam static string strong
    strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table tagged
    task this throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1
    triand trior trireg type typedef union unique unique0 unsigned until until_with untyped
    use uwire var vectored virtual void wait wait_order wand weak weak0 weak1 while wildcard
    wire with within wor xnor xor
    """.split()
)

#: The name of the network input's stream in the RTL (``fork_input``): only the input
#: layer may have it.
INPUT_NAME = "input"

_LAYER_RULE = (
    f"must match [A-Za-z_][A-Za-z0-9_]*, hold no '__' and have at most {MAX_NAME} "
    "characters (it names Verilog instances and files)"
)
_NETWORK_RULE = (
    f"must match [A-Za-z_][A-Za-z0-9_]*, have at most {MAX_NAME} characters and not be a "
    "Verilog/SystemVerilog keyword (it names the Verilog top module)"
)


def _is_identifier(name) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME and bool(IDENTIFIER.fullmatch(name))


def layer_name_problem(name) -> str | None:
    """What is wrong with ``name`` as a layer name ("must ..., not ..."), or None."""
    if not _is_identifier(name) or "__" in name:
        return f"{_LAYER_RULE}, not {name!r}"
    return None


def network_name_problem(name) -> str | None:
    """What is wrong with ``name`` as a network name ("must ..., not ..."), or None."""
    if not _is_identifier(name) or name in VERILOG_KEYWORDS:
        return f"{_NETWORK_RULE}, not {name!r}"
    return None


def check_names(name, layers: Iterable) -> None:
    """Raise :class:`DescriptionError` for the first name of a network (``name``) or of its
    ``layers`` (objects with ``name``; the input layer is the one of class ``Input``) that
    breaks a rule of this module: layer names in order, then the network's."""
    seen: dict[str, str] = {}
    for la in layers:
        problem = layer_name_problem(la.name)
        if problem is not None:
            raise DescriptionError(problem, layer=la.name, field="name")
        if la.name == INPUT_NAME and type(la).__name__ != "Input":
            raise DescriptionError(
                f"must not be {INPUT_NAME!r}, which names the network input's stream in the "
                "RTL; only the input layer may have it",
                layer=la.name,
                field="name",
            )
        other = seen.setdefault(la.name.casefold(), la.name)
        if other != la.name:
            raise DescriptionError(
                f"must differ from layer {other!r} in more than case (names become file "
                "names, and file systems may ignore case)",
                layer=la.name,
                field="name",
            )
    problem = network_name_problem(name)
    if problem is not None:
        raise DescriptionError(problem, field="name")


def safe_name(text: str, taken: Iterable[str] = (), *, network: bool = False) -> str:
    """A valid layer name (network name when ``network``) for ``text``: every character
    outside ``[A-Za-z0-9_]`` becomes ``_``, runs of ``_`` become one and are dropped at
    either end, a leading digit gets
    ``n_`` in front, an empty result is ``layer`` (``net``), a keyword or ``input`` gets
    ``_net``/``_1`` after it; cut to :data:`MAX_NAME` characters and made unique (ignoring
    case) among ``taken`` with a ``_<k>`` suffix. A valid name not taken is returned as it
    is."""
    problem = network_name_problem if network else layer_name_problem
    folded = {t.casefold() for t in taken}
    if problem(text) is None and text.casefold() not in folded and (network or text != "input"):
        return text
    t = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", str(text))).strip("_")
    if not t:
        t = "net" if network else "layer"
    if t[0].isdigit():
        t = f"n_{t}"
    t = t[:MAX_NAME]
    if network and t in VERILOG_KEYWORDS:
        t = f"{t}_net"
    base, k = t, 0
    while t.casefold() in folded or (not network and t == INPUT_NAME):
        k += 1
        suffix = f"_{k}"
        t = base[: MAX_NAME - len(suffix)].rstrip("_") + suffix
    return t
