"""Cycle-level proof of a generated design: cocotb on Verilator or Icarus Verilog.

:func:`verify` draws seeded random inputs for a :class:`~codesign.models.hwconfig.Design`, computes
the golden outputs and every stage's golden tap (:func:`codesign.models.golden.trace`), maps them to
stream order with the compiler's ``manifest.json``, and runs :func:`run_cocotb`, which builds
the Verilog (cached by content) and runs the bench :mod:`codesign.hdl.cocotb_bench`.

The bench protocol
------------------
:func:`run_cocotb` writes, in a run directory, the golden vectors and ``regression.json``
(:func:`codesign.hdl.kit.write_bench`: the files a regression kit ships), and passes the
path of ``regression.json`` to the simulator as the plusarg ``+codesign_bench=<path>``. The
bench writes its measured figures to ``figures.json`` (plusarg ``+codesign_figures``);
whether the run passed is the cocotb test's own verdict, which cocotb writes to
``results.xml`` and :func:`read_bench_results` reads (a failed test's assertion message
names the first check that failed).

The manifest
------------
``manifest.json`` (format 1) next to the Verilog names the top module, the input and output
streams and, for every stage in pipeline order, its instance and output stream; see
:func:`read_manifest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from codesign.hdl.failures import failure
from codesign.hdl.kit import VERILATOR_MAKE_VARS, write_bench
from codesign.hdl.regression_runner import DUMP_MODULE, ICARUS_ARGS, icarus_dump_module
from codesign.hdl.tools import (
    WAIVERS,
    ToolError,
    require_icarus,
    sim_models,
    verilator_on_path,
    writable_dir,
)
from codesign.models.fileio import atomic_write
from codesign.models.qtype import Kind

__all__ = [
    "KEEP_BUILDS",
    "SIMULATORS",
    "BenchFailure",
    "Manifest",
    "ManifestError",
    "SimulationError",
    "StageSpec",
    "StreamSpec",
    "build_failure",
    "default_build_root",
    "golden_streams",
    "read_bench_results",
    "read_manifest",
    "run_cocotb",
    "verify",
]

#: Simulators :func:`run_cocotb` can drive.
from .manifest import (
    Manifest,
    ManifestError,
    StageSpec,
    StreamSpec,
    read_manifest,
)
from .memfiles import memory_files

#: Simulators :func:`run_cocotb` can drive.
SIMULATORS = ("verilator", "icarus")


class SimulationError(ToolError):
    """A build or simulation that did not produce results (the message says where the log
    is)."""


class BenchFailure(AssertionError):
    """The cocotb test of a design failed by its own assertion (a beat that differs from the
    golden model, a missing frame, a timeout); raised by :func:`run_cocotb` with
    ``check=True``. The message is cocotb's record of the assertion; :attr:`results` holds
    what :func:`run_cocotb` would have returned."""

    def __init__(self, message: str, results: dict) -> None:
        super().__init__(message)
        self.results = results


# -- the manifest ------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """An exclusive lock on ``lock`` (so two processes never build into one directory)."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    for ln in lines:
        if "%Error" in ln or "error:" in ln.lower() or "ERROR" in ln:
            return ln
    return lines[-1] if lines else "empty log"


def build_failure(sim: str, verilog: Path, log: Path) -> SimulationError:
    """The error of a failed simulator build whose output is in ``log``: one line,
    ``<sim> build of <verilog> failed: <first error line>; log: <log>``. The first error
    line is the simulator's own (Verilator ``%Error: file:line:col: ...``, Icarus
    ``file:line: error: ...``), else the C++ compiler's or make's
    (:func:`codesign.hdl.tools.diagnose`); a build that ran out of memory says so."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    return failure(f"{sim} build of {verilog}", sim, text, log, kind=SimulationError, write=False)


#: Changes whenever the way builds are made changes, so cached builds are not reused.
_BUILD_RECIPE = f"recipe=3 {VERILATOR_MAKE_VARS} {ICARUS_ARGS}"


def default_build_root() -> Path:
    """The build cache shared by every design and run of this user:
    ``$XDG_CACHE_HOME/codesign/sim_build`` (``~/.cache/codesign/sim_build``). Builds are
    keyed by content, so sharing is safe; the least recently used beyond
    :data:`KEEP_BUILDS` are removed."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codesign" / "sim_build"


#: Builds a cache directory keeps (the least recently used are removed beyond this).
KEEP_BUILDS = 32

#: Build products a finished build no longer needs (objects, precompiled headers): most of
#: a Verilator build's size; the simulator executable stays.
_INTERMEDIATE = ("*.o", "*.a", "*.gch", "*.d")


def _prune(root: Path, keep: int) -> None:
    """Remove the least recently used builds under ``root`` beyond ``keep`` (sparing any
    used in the last hour, which another process may be running)."""
    stamps = sorted(
        root.glob("*/codesign-build.json"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for stamp in stamps[keep:]:
        if time.time() - stamp.stat().st_mtime < 3600:
            continue
        d = stamp.parent
        shutil.rmtree(d, ignore_errors=True)
        for extra in (root / f".{d.name}.lock", root / f"{d.name}.dump.v"):
            extra.unlink(missing_ok=True)


def build_key(manifest: Manifest, sim: str, waves: bool) -> str:
    """The content key of a simulator build: the Verilog, top, simulator, waves, the build
    recipe, cocotb's version and install location, and Verilator's waivers."""
    import cocotb

    h = hashlib.sha256()
    for part in (manifest.verilog.read_bytes(), manifest.top.encode(), sim.encode()):
        h.update(part + b"\0")
    h.update(f"waves={waves} cocotb={cocotb.__version__} {_BUILD_RECIPE}".encode())
    # a Verilator model links cocotb's VPI library by its absolute path (RUNPATH): a build
    # made from another environment's cocotb (another venv or checkout) is not this one's
    h.update(str(Path(cocotb.__file__).resolve().parent).encode())
    if sim == "verilator":
        h.update(WAIVERS.read_bytes())
    for f in sim_models(manifest.verilog):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _build(manifest: Manifest, sim: str, waves: bool, root: Path) -> tuple[Path, float, bool]:
    """Build ``manifest``'s Verilog for ``sim`` under ``root``, reusing an earlier build of
    the same content. Returns the build directory, seconds spent, whether it was reused."""
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    if not manifest.verilog.is_file():
        raise ManifestError(f"{manifest.path}: field 'verilog': {manifest.verilog} does not exist")
    build_dir = root / f"{sim}-{manifest.top}-{build_key(manifest, sim, waves)}"
    stamp = build_dir / "codesign-build.json"
    with _locked(root / f".{build_dir.name}.lock"):
        if stamp.is_file():
            stamp.touch()  # recently used: kept by _prune
            return build_dir, 0.0, True
        # the runner writes the log as the build goes: under a temporary name, renamed
        # when the build is over, so a log under its final name is always whole
        log = root / f".{build_dir.name}.build.log.part"
        start = time.perf_counter()
        kwargs = dict(
            hdl_toplevel=manifest.top,
            build_dir=build_dir,
            clean=True,
            timescale=("1ns", "1ps"),
            log_file=log,
        )
        try:
            if sim == "verilator":
                with verilator_on_path(VERILATOR_MAKE_VARS):
                    runner = get_runner("verilator")
                    runner.build(
                        sources=[
                            VerilatorControlFile(WAIVERS),
                            *sim_models(manifest.verilog),
                            manifest.verilog,
                        ],
                        waves=waves,
                        **kwargs,
                    )
            else:
                # Verilog-2005, not the runner's -g2012 (the last -g wins): Yosys starts
                # every `always @*` at time 0 through a `reg ... = 0` initialiser, which
                # SystemVerilog semantics do not turn into an event, so under -g2012
                # combinational outputs stay X until one of their inputs changes
                args = list(ICARUS_ARGS)  # Verilog-2005: see regression_runner.ICARUS_ARGS
                sources = [*sim_models(manifest.verilog), manifest.verilog]
                if waves:  # cocotb's own dump module is SystemVerilog: use a 2005 one
                    dump = root / f"{build_dir.name}.dump.v"
                    dump.write_text(icarus_dump_module(manifest.top))
                    sources.append(dump)
                    args += ["-s", DUMP_MODULE]
                runner = get_runner("icarus")
                runner.build(sources=sources, build_args=args, waves=False, **kwargs)
        except (RuntimeError, SystemExit):
            failed = root / f"{build_dir.name}.build.log"
            try:
                log.replace(failed)
            except OSError:
                failed = log
            raise build_failure(sim, manifest.verilog, failed) from None
        seconds = time.perf_counter() - start
        for pattern in _INTERMEDIATE:
            for f in build_dir.glob(pattern):
                f.unlink()
        log.replace(build_dir / "build.log")
        stamp.write_text(
            json.dumps({"verilog": str(manifest.verilog), "top": manifest.top, "seconds": seconds})
        )
    _prune(root, KEEP_BUILDS)
    return build_dir, seconds, False


# -- running -----------------------------------------------------------------------------------


def _check_frames(name: str, x, spec: StreamSpec, n: int | None) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, not {x.dtype}")
    if x.ndim != 2 or x.shape[1] != spec.elements or (n is not None and len(x) != n):
        want = f"({n if n is not None else 'N'}, {spec.elements})"
        raise ValueError(f"{name} must have shape {want} (frames × elements), not {x.shape}")
    qt = spec.qtype
    bad = ((x != 1) & (x != -1)) if qt.kind is Kind.BIPOLAR else (x < qt.min) | (x > qt.max)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: value {x[idx].item()} at (frame, element) {idx} is outside {spec.type}"
        )
    return x.astype(np.int64)


def run_cocotb(
    design_dir: str | os.PathLike,
    frames_in: np.ndarray,
    expected_out: np.ndarray,
    taps: Mapping[str, np.ndarray],
    sim: str = "verilator",
    seed: int = 0,
    waves: bool = False,
    build_dir: str | os.PathLike | None = None,
    *,
    perf_frames: int | None = None,
    timeout_cycles: int | None = None,
    source_pause: float = 0.3,
    sink_pause: float = 0.3,
    input_rate: float = 1.0,
    check: bool = False,
    expect_latency: int | None = None,
    expect_ii: float | None = None,
    junit: str | os.PathLike | None = None,
) -> dict:
    """Simulate the design in ``design_dir`` (``manifest.json`` and its Verilog) with cocotb.

    Phase 1 sends every frame of ``frames_in`` with random input gaps and random output
    back-pressure (seeded by ``seed``) and checks every output frame against
    ``expected_out`` and every monitored stage output against ``taps``. Phase 2 sends the
    first ``perf_frames`` frames again with the input always valid and the output always
    ready, and measures latency and initiation interval.

    Parameters
    ----------
    design_dir
        Directory holding ``manifest.json`` (see :func:`read_manifest`).
    frames_in, expected_out
        Integer arrays (frames × elements) in stream order, of the input and output types.
    taps
        Stage name → golden output of that stage (frames × elements, stream order); stages
        left out are not monitored.
    sim
        ``"verilator"`` or ``"icarus"``.
    waves
        Record a waveform (``dump.vcd`` for Verilator, ``<top>.fst`` for Icarus) in a run
        directory under ``<design_dir>/waves/``, returned as ``run_dir``.
    build_dir
        Root of the build cache (default :func:`default_build_root`, shared by all designs);
        a build is reused when the Verilog, simulator and ``waves`` are the same.
    perf_frames
        Frames of phase 2 (default ``min(len(frames_in), 32)``).
    timeout_cycles
        Cycles each phase may take before it is reported as timed out (a phase in which no
        stream moves for a while is reported as stuck well before that).
    input_rate
        Phase 2 input pace in beats per cycle: 1.0 keeps the input always valid; below 1,
        each frame's beats are spread evenly over ``ceil(beats / input_rate)`` cycles (as
        :func:`codesign.sim.dataflow.simulate` models the source).
    expect_latency, expect_ii
        What phase 2 must measure (the cocotb test fails otherwise); None: not checked.
    junit
        Where to copy cocotb's JUnit XML (``results.xml``) of the run.
    check
        Raise :class:`BenchFailure` (an ``AssertionError``, so a pytest test fails with
        cocotb's message) when the cocotb test fails, instead of returning its report.

    Returns
    -------
    dict
        ``passed`` and ``failure``: the cocotb test's verdict from its ``results.xml``, and
        its assertion message (None when it passed), which names the first check that failed
        (a monitored stage in pipeline order, else the output), with the frame, beat and
        element, expected and received values. Then the bench's measured figures:
        ``output`` and ``stages[name]`` (each with
        ``frames_checked``, ``mismatched_frames``, ``mismatched_elements``,
        ``unknown_elements`` (X/Z), ``missing_frames`` and ``first_mismatch`` = frame,
        beat, element, expected, got; ``output`` also ``tlast_errors``, ``padding_errors``;
        a stage also its ``tap``, ``layers`` and the ``instance`` path monitored);
        ``first_bad_stage``, ``first_bad_layer`` (the first stage in pipeline order whose
        output differs, and its tap layer; None when all agree); ``mismatches`` (output
        elements that differ); ``latency`` (cycles from the first input beat's transfer to
        the first output beat's transfer, phase 2); ``ii`` (cycles per frame between output
        frame completions over the last half of phase 2); ``cycles`` (simulated);
        ``timed_out`` (None, or why a phase ended early: timeout or no stream moving);
        per FIFO in front of a stage (``<stage>``, ``<stage>__b``), phase 2's
        ``fifo_full_cycles`` (cycles the FIFO refused a beat) and ``fifo_levels`` (``depth``,
        ``max_level``, ``mean_level``, read from its ``level`` port, and ``full_cycles``);
        and ``sim``, ``build_seconds``, ``build_cached``, ``run_seconds``.

    Raises
    ------
    SimulationError
        The build failed, or the bench could not run (no ``results.xml``, or the cocotb test
        ended by an error other than an assertion: a probe not found, ...).
    BenchFailure
        With ``check=True``, the cocotb test failed by assertion.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, not {seed!r}")
    design_dir = Path(design_dir)
    manifest = read_manifest(design_dir / "manifest.json")
    frames_in = _check_frames("frames_in", frames_in, manifest.input, None)
    n = len(frames_in)
    if n < 1:
        raise ValueError("frames_in must hold at least one frame")
    expected_out = _check_frames("expected_out", expected_out, manifest.output, n)
    tap_arrays = {}
    for name, values in taps.items():
        try:
            spec = manifest.stage(name)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        tap_arrays[name] = _check_frames(f"taps[{name!r}]", values, spec.out, n)
    if perf_frames is None:
        perf_frames = min(n, 32)
    if not isinstance(perf_frames, int) or not 0 <= perf_frames <= n:
        raise ValueError(f"perf_frames must be an int in [0, {n}], not {perf_frames!r}")
    if not isinstance(input_rate, int | float) or not 0 < input_rate <= 1:
        raise ValueError(f"input_rate must be in (0, 1] beats per cycle, not {input_rate!r}")
    for label, p in (("source_pause", source_pause), ("sink_pause", sink_pause)):
        if not 0 <= p < 1:
            raise ValueError(f"{label} must be in [0, 1), not {p!r}")
    if sim == "icarus":
        try:
            require_icarus()
        except ToolError as e:
            raise SimulationError(str(e)) from None

    root = Path(build_dir) if build_dir is not None else default_build_root()
    writable_dir(root, "the simulator build cache", "XDG_CACHE_HOME")
    built, build_seconds, cached = _build(manifest, sim, waves, root)

    if waves:  # kept beside the design, where whoever debugs it looks
        (design_dir / "waves").mkdir(exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{sim}-", dir=design_dir / "waves"))
        ctx: contextlib.AbstractContextManager = contextlib.nullcontext(str(run_dir))
    else:
        ctx = tempfile.TemporaryDirectory(prefix=f"run-{sim}-", dir=root)
    with ctx as d:
        run = Path(d)
        write_bench(
            run,
            manifest,
            frames_in,
            expected_out,
            tap_arrays,
            seed=seed,
            perf_frames=perf_frames,
            timeout=timeout_cycles,
            source_pause=source_pause,
            sink_pause=sink_pause,
            input_rate=input_rate,
            expect_latency=expect_latency,
            expect_ii=expect_ii,
        )
        for f in memory_files(manifest.verilog):  # $readmemh reads from the run directory
            shutil.copyfile(f, run / f.name)
        results = _run_bench(manifest, sim, built, run, waves, seed)
        if junit is not None:
            atomic_write(Path(junit), (run / "results.xml").read_bytes())
    results.update(sim=sim, build_seconds=round(build_seconds, 3), build_cached=cached)
    if waves:
        results["run_dir"] = str(run)
    if check and not results["passed"]:
        raise BenchFailure(f"{sim} cocotb test of {manifest.top}: {results['failure']}", results)
    return results


def read_bench_results(run: str | os.PathLike) -> dict:
    """The outcome of the bench run in directory ``run``: the cocotb test's verdict from
    ``results.xml`` (:func:`cocotb_tools.runner.get_results`) as ``passed`` and its failure
    message as ``failure`` (None when it passed), with the figures the bench measured
    (``figures.json``, see :func:`run_cocotb`), which never decide the verdict.

    Raises :class:`SimulationError` when there is no ``results.xml`` or it holds no test, and
    when the test failed by an error other than an assertion (the bench could not run the
    design); the message holds the error.
    """
    from xml.etree import ElementTree

    from cocotb_tools.runner import get_results

    run = Path(run)
    xml = run / "results.xml"
    try:
        tests, failed = get_results(xml)
    except RuntimeError:
        raise SimulationError("no results.xml: the simulation ended abnormally") from None
    if tests < 1:
        raise SimulationError(f"{xml} records no test")
    failure = None
    if failed:
        root = ElementTree.parse(xml).getroot()
        node = next(root.iter("failure"), None)
        if node is None:
            node = next(root.iter("error"), None)
        kind = node.get("type", "") if node is not None else ""
        message = (node.get("message") or "").strip() if node is not None else ""
        # cocotb rewrites assertions as pytest does: the message, then the failed expression
        first = message.splitlines()[0] if message else "failed without a message"
        if kind != "AssertionError":
            raise SimulationError(f"{kind}: {first}" if kind else first)
        failure = first
    path = run / "figures.json"
    figures = json.loads(path.read_text()) if path.is_file() else {}
    if not figures:
        raise SimulationError(f"the bench wrote no figures ({path})")
    return {"passed": not failed, "failure": failure, **figures}


def _run_bench(manifest: Manifest, sim: str, built: Path, run: Path, waves: bool, seed: int):
    from cocotb_tools.runner import get_runner

    log = run / "sim.log"
    plusargs = [
        f"+codesign_bench={(run / 'regression.json').resolve()}",
        f"+codesign_figures={(run / 'figures.json').resolve()}",
    ]
    if sim == "icarus" and waves:
        plusargs.append(f"+dumpfile_path={(run / (manifest.top + '.fst')).resolve()}")
    runner = get_runner(sim)
    start = time.perf_counter()
    try:
        runner.test(
            test_module="codesign.hdl.cocotb_bench",
            hdl_toplevel=manifest.top,
            hdl_toplevel_lang="verilog",
            build_dir=built,
            test_dir=run,
            plusargs=plusargs,
            waves=waves,
            seed=seed,
            results_xml=str((run / "results.xml").resolve()),
            log_file=log,
        )
    except (RuntimeError, SystemExit):
        # under pytest the runner exits when a test failed; the verdict is in results.xml
        pass
    seconds = time.perf_counter() - start
    why = None
    if not (run / "results.xml").is_file():
        why = f"no results ({_last_error(log)})"
    else:
        try:
            results = read_bench_results(run)
        except SimulationError as e:
            why = str(e)
    if why is not None:
        # keep the log: the run directory is temporary
        kept = run.parent / f"{sim}-{manifest.top}-failed.log"
        try:
            shutil.copyfile(log, kept)
        except OSError:
            kept = log
        raise SimulationError(
            f"{sim} simulation of {manifest.top}: {why}; log: {kept}", first_error=why, log=kept
        )
    results["run_seconds"] = round(seconds, 3)
    return results


def golden_streams(design, manifest: Manifest, vectors: int, seed: int):
    """``vectors`` seeded random inputs of ``design``'s network and their golden outputs
    and stage taps, in stream order for ``manifest``'s design: ``(inputs, expected,
    {stage: tap})``, each frames × elements. Raises :class:`ManifestError` when the
    manifest does not describe ``design``."""
    from codesign.models.golden import random_inputs, trace

    net = design.network
    plan = [s.name for s in design.stages]
    if [s.name for s in manifest.stages] != plan:
        raise ManifestError(
            f"{manifest.path}: field 'stages': must be the design's stages {plan}, "
            f"not {[s.name for s in manifest.stages]}; regenerate the design"
        )
    x = random_inputs(net, vectors, seed)
    values = trace(net, x)
    for s in manifest.stages:
        if s.tap not in values:
            raise ManifestError(
                f"{manifest.path}: field 'stages[{plan.index(s.name)}].tap': {s.tap!r} is "
                f"not a layer of {net.name}"
            )
    try:
        frames_in = manifest.input.to_stream(x)
        expected = manifest.output.to_stream(values[net.output])
        taps = {s.name: s.out.to_stream(values[s.tap]) for s in manifest.stages}
    except ValueError as e:
        raise ManifestError(f"{manifest.path}: does not fit {net.name}: {e}") from None
    return frames_in, expected, taps


def verify(
    design,
    design_dir: str | os.PathLike,
    vectors: int = 200,
    sim: str = "verilator",
    seed: int = 0,
    waves: bool = False,
    build_dir: str | os.PathLike | None = None,
    *,
    perf_frames: int | None = None,
    input_rate: float = 1.0,
    check: bool = False,
    junit: str | os.PathLike | None = None,
) -> dict:
    """Run ``vectors`` seeded random inputs through the generated design of ``design``
    (a :class:`~codesign.models.hwconfig.Design`) in ``design_dir`` and compare it, output and every
    stage, with the golden model. Returns :func:`run_cocotb`'s results plus ``network``,
    ``vectors``, ``seed`` and ``ideal_ii`` (the design's closed-form initiation interval);
    ``check=True`` raises :class:`BenchFailure` when the cocotb test fails; ``junit`` is
    where to copy cocotb's JUnit XML.
    """
    manifest = read_manifest(Path(design_dir) / "manifest.json")
    frames_in, expected, taps = golden_streams(design, manifest, vectors, seed)
    results = run_cocotb(
        design_dir,
        frames_in,
        expected,
        taps,
        sim=sim,
        seed=seed,
        waves=waves,
        build_dir=build_dir,
        perf_frames=perf_frames,
        input_rate=input_rate,
        check=check,
        junit=junit,
    )
    results.update(
        network=design.network.name, vectors=vectors, seed=seed, ideal_ii=design.ideal_ii
    )
    return results
