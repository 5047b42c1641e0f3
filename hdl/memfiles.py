"""Weight memories initialised from ``$readmemh`` files instead of Verilog constants.

Amaranth's Verilog export initialises a memory with one assignment per word inside an
``initial`` block. For a network of a million weights that is megabytes of constants in the
Verilog, which every tool parses. :func:`externalize` moves the contents of each large
weight memory (an MVAU's ``weights``) into a hex file, one word per line in address order,
and leaves ``initial $readmemh("<file>", weights);`` in its place: the same memory, the same
bits (Verilator, Icarus and Yosys all read ``$readmemh`` files), a smaller Verilog.

A ``$readmemh`` path is resolved against the reading tool's working directory, so the file
names are bare and every runner puts the files beside the Verilog it runs
(:func:`memory_files` lists them; :func:`codesign.hdl.tools.synthesize` and
:func:`codesign.hdl.verify.verify`
copy them). The output is deterministic: the same Verilog always gives the same files.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["MIN_BITS", "externalize", "memory_files"]

#: Smallest weight memory (depth × width bits) moved to a file; smaller ones stay inline.
MIN_BITS = 4096

_MODULE = re.compile(r"^module (\S+)", re.M)
_DECL = re.compile(r"^  reg \[(\d+):0\] weights \[(\d+):0\];\n  initial begin\n", re.M)
_WORD = re.compile(r"    weights\[(\d+)\] = (\d+)'([hbd])([0-9a-fA-FxzXZ]+);\n")
_BASE = {"h": 16, "b": 2, "d": 10}
_READMEM = re.compile(r'\$readmemh\("([^"]+)"')


def _file_name(top: str, module: str) -> str:
    """``<top>.core.stage_fc0.u0_mvau`` → ``<top>_fc0_weights.hex`` (a bare, portable name)."""
    parts = module.lstrip("\\").split(".")
    # parts[0] is the top, whose name may itself start with "stage_"
    stage = next((p[len("stage_") :] for p in parts[1:] if p.startswith("stage_")), None)
    tail = stage if stage is not None else "_".join(parts[1:]) or "top"
    return f"{top}_{re.sub(r'[^A-Za-z0-9_]', '_', tail)}_weights.hex"


def externalize(verilog: str, top: str, min_bits: int = MIN_BITS) -> tuple[str, dict[str, str]]:
    """Move the initial contents of every ``weights`` memory of at least ``min_bits`` bits
    into a hex file. Returns the new Verilog and ``{file name: file text}``. A memory whose
    initialisation is not one constant per word, in address order, is left as it is."""
    files: dict[str, str] = {}
    out: list[str] = []
    pos = 0
    modules = [(m.start(), m.group(1)) for m in _MODULE.finditer(verilog)]
    for m in _DECL.finditer(verilog):
        width, depth = int(m.group(1)) + 1, int(m.group(2)) + 1
        if width * depth < min_bits:
            continue
        module = max((s for s in modules if s[0] < m.start()), default=(0, top))[1]
        digits = (width + 3) // 4
        lines = []
        at = m.end()
        for addr in range(depth):
            w = _WORD.match(verilog, at)
            if w is None or int(w.group(1)) != addr or int(w.group(2)) != width:
                break
            value = w.group(4)
            if any(c in "xzXZ" for c in value):
                break
            v = int(value, _BASE[w.group(3)])
            lines.append(f"{v:0{digits}x}\n")
            at = w.end()
        else:
            if not verilog.startswith("  end\n", at):
                continue
            name = _file_name(top, module)
            if name in files:
                raise ValueError(f"two weight memories would share the file {name!r}")
            files[name] = "".join(lines)
            out.append(verilog[pos : m.start()])
            out.append(
                f"  reg [{width - 1}:0] weights [{depth - 1}:0];\n"
                f'  initial $readmemh("{name}", weights);\n'
            )
            pos = at + len("  end\n")
    out.append(verilog[pos:])
    return "".join(out), files


def memory_files(verilog_path: str | Path) -> list[Path]:
    """The ``$readmemh`` files a Verilog file reads, as paths beside it (sorted, unique)."""
    path = Path(verilog_path)
    names = sorted(set(_READMEM.findall(path.read_text())))
    return [path.parent / n for n in names]
