"""The ``codesign`` command line: one subcommand per step, each with ``--json``.

User errors print one line on stderr and exit with status 2; nothing is half-written. So do
failures of the external tools (:class:`codesign.hdl.tools.ToolError`: the tool's first error
line and the path of its full log) and unwritable cache directories.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from codesign.hdl.tools import ToolError
from codesign.models.errors import UserError
from codesign.models.fileio import atomic_write, read_npy
from codesign.models.golden import check_input, golden, random_inputs, trace
from codesign.models.ir import Network
from codesign.models.loader import zoo_names

from . import load  # zoo names, descriptions and .onnx (QONNX) models
from .summary import summary, summary_text

__all__ = ["main"]

DEFAULT_NETWORK = "jet_tagger"
#: The FPGA family ``codesign run`` synthesises for.
SYNTH_TARGET = "ecp5"


class CliError(UserError, ValueError):
    """A command-line usage error."""


class VerificationFailed(UserError, ValueError):
    """The RTL disagrees with the golden model (exit status 2, after the report)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every user error
        raise CliError(f"{self.prog}: {message}")


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr, dtype="<i8").tobytes()).hexdigest()


def emit(args, doc: dict, text: str) -> None:
    """Print ``doc`` as one JSON document under ``--json``, else ``text``."""
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        sys.stdout.write(text + "\n")


# -- subcommands ---------------------------------------------------------------------------


def cmd_zoo(args) -> None:
    rows = []
    for name in zoo_names():
        info = summary(load(name))
        rows.append(
            {
                "name": name,
                "input": info["input"],
                "output": info["output"],
                "layers": info["totals"]["layers"],
                "params": info["totals"]["params"],
                "macs": info["totals"]["macs"],
            }
        )
    lines = []
    for r in rows:
        shape = "x".join(map(str, r["input"]["shape"]))
        lines.append(
            f"{r['name']:12s} in {r['input']['type']:>12s} {shape:>8s}  "
            f"{r['layers']:3d} layers  {r['params']:7d} params  {r['macs']:8d} MACs"
        )
    text = "\n".join(lines)
    emit(args, {"networks": rows}, text)


def cmd_info(args) -> None:
    from .bnn import binary_stats, binary_stats_text

    net = load(args.net)
    info = summary(net)
    text = summary_text(info)
    binary = binary_stats(net)
    if binary:
        info["binary"] = binary
        text += "\n" + binary_stats_text(binary)
    emit(args, info, text)


def cmd_bnn(args) -> None:
    from .bnn import bnn_report, bnn_text

    net = load(args.net)
    kw = {
        "pes": args.pes,
        "tlns": args.tlns,
        "in_width": args.in_width,
        "mst": args.mst,
        "max_depth": args.max_depth,
    }
    doc = bnn_report(net, **kw)
    text = bnn_text(doc)
    if args.verify is not None:
        from .bnn import bnn_verify, bnn_verify_text

        out = args.output or Path("build") / net.name / "bnn"
        v = bnn_verify(net, out, vectors=args.verify, seed=args.seed, sim=args.sim, **kw)
        doc["verify"] = v
        text += "\n\n" + bnn_verify_text(v)
    if args.testbench is not None:
        from .bnn import bnn_testbench

        out = args.output or Path("build") / net.name / "bnn"
        kits = bnn_testbench(net, out, vectors=args.testbench, seed=args.seed, **kw)
        doc["testbench"] = kits
        text += "\n\nregression kits (run without codesign: python3 run_regression.py): " + (
            ", ".join(f"{k} in {v}" for k, v in kits.items())
        )
    emit(args, doc, text)
    bad = [k for k in ("tulip", "mst") if k in doc.get("verify", {})]
    bad = [k for k in bad if not doc["verify"][k]["passed"]]
    if bad:
        raise VerificationFailed(
            f"{net.name}: the {' and the '.join(bad)} RTL disagrees with the golden model "
            "or did not finish (see the report above)"
        )


def _golden_inputs(args, net: Network) -> tuple[np.ndarray, dict]:
    if args.input is not None:
        x = read_npy(args.input)  # no pickles; header and size checked before reading
        return check_input(net, x, source=args.input), {"input": args.input}
    return random_inputs(net, args.random, args.seed), {"random": args.random, "seed": args.seed}


def cmd_golden(args) -> None:
    net = load(args.net)
    x, origin = _golden_inputs(args, net)
    if args.trace is not None:
        values = trace(net, x)
        y = values[net.output]
    else:
        y = golden(net, x)
    doc = {
        "network": net.name,
        **origin,
        "vectors": int(x.shape[0]),
        "input_sha256": _sha256(x),
        "output_shape": list(y.shape),
        "output_type": str(net.output_tensor.qtype),
        "output_sha256": _sha256(y),
    }
    if args.output is not None:
        atomic_write(args.output, _npy_bytes(y))
        doc["output"] = str(args.output)
    if args.trace is not None:
        out_dir = Path(args.trace)
        doc["trace"] = {}
        for name, v in values.items():
            p = out_dir / f"{name}.npy"
            atomic_write(p, _npy_bytes(v))
            doc["trace"][name] = str(p)
    doc["outputs"] = y.tolist()
    head = np.array2string(y[:4], threshold=40, max_line_width=100)
    text = (
        f"{net.name}: {x.shape[0]} vectors → outputs {list(y.shape)} "
        f"{net.output_tensor.qtype}\nsha256 {doc['output_sha256']}\nfirst rows:\n{head}"
    )
    emit(args, doc, text)


def _variant_of(net, args, command: str):
    """``net`` switched to ``--variant`` (a network with deformable layers; else ``net``)."""
    from .deform import network_variant

    return network_variant(net, args.variant, args.bound, command)


def _variant_options(parser) -> None:
    from .deform import nonnegative_int

    g = parser.add_argument_group("deformable layers")
    g.add_argument(
        "--variant",
        metavar="V",
        help="switch the deformable layers to this offset variant: free, or bounded/square/"
        "rounded joined by '+' (the design is named <net>_<variant>)",
    )
    g.add_argument("--bound", metavar="B", type=nonnegative_int, help="offset bound, pixels")


def cmd_hdl(args) -> None:
    from .flows import design, generate, testbench

    net = _variant_of(load(args.net), args, "hdl")
    d = design(net, args.config)
    out_dir = Path(args.output or Path(args.build) / net.name / "hdl")
    if args.testbench:
        doc = testbench(d, out_dir, vectors=args.vectors, seed=args.seed)
    else:
        doc = generate(d, out_dir)
    stages = [{**s, "origin": d.origin[s["name"]].to_dict()} for s in doc["stages"]]

    def pipe(s) -> str:
        p = s.get("pipeline")
        return f"pipeline {p['latency']:2d} cycles" if p else " " * 17

    rows = [
        f"  {s['name']:10s} {s['kind']:5s} pe {s['pe']:3d} simd {s['simd']:4d} "
        f"{s['origin']['folding']:10s} {s['cycles']:7d} cycles/frame  {pipe(s)}  "
        f"({'+'.join(s['layers'])})"
        for s in stages
    ]
    text = "\n".join(
        [
            f"{net.name}: wrote {out_dir / doc['verilog']}, manifest.json, {doc['top']}.core",
            *rows,
            f"ideal II {doc['ideal_ii']} cycles/frame; s_axis_tdata {doc['input']['tdata_bits']} "
            f"bits, m_axis_tdata {doc['output']['tdata_bits']} bits",
        ]
    )
    if "kit" in doc:
        k = doc["kit"]
        text += (
            f"\nregression kit: {k['vectors']} frames, seed {k['seed']}, expects latency "
            f"{k['expect_latency']} and II {_fmt(k['expect_ii'])}; run it without codesign: "
            f"cd {out_dir} && python3 run_regression.py (or make SIM=icarus)"
        )
    emit(args, {"output_dir": str(out_dir), **doc, "stages": stages}, text)


def cmd_import(args) -> None:
    from .importer import check_import, import_qonnx, save_import

    net = import_qonnx(args.model, input_type=args.input_type)
    paths = save_import(net, args.output)
    info = net.imported
    doc = {
        "network": net.name,
        "source": args.model,
        **paths,
        "layers": [{"name": la.name, "op": la.op} for la in net.layers],
        "input_type": str(net.input_tensor.qtype),
        "output": {"tensor": info.output_tensor, "host_ops": info.host_ops},
    }
    lines = [
        f"{net.name}: {len(net.layers)} layers, input {net.input_tensor.qtype}, wrote "
        f"{paths['description']}",
    ]
    if info.host_ops:
        lines.append(f"host-side (not hardware): {', '.join(info.host_ops)}")
    if args.check:
        r = check_import(net, args.check, args.seed)
        doc["check"] = r
        verdict = "OK" if r["unexplained"] == 0 else "UNEXPLAINED MISMATCHES"
        lines.append(
            f"check {r['vectors']} vectors (seed {r['seed']}) on {r['compared_tensor']}: "
            f"{r['exact']} exact, {r['float32_explained']} explained by float32 rounding, "
            f"{r['float64_explained']} by float64 rounding, {r['unexplained']} unexplained: "
            f"{verdict}"
        )
        if "first_unexplained" in r:
            lines.append(
                f"first unexplained: sample {r['first_unexplained']['sample']}, "
                f"layer {r['first_unexplained']['layer']}"
            )
    emit(args, doc, "\n".join(lines))
    if args.check and doc["check"]["unexplained"]:
        raise VerificationFailed(
            f"{args.model}: {doc['check']['unexplained']} unexplained mismatches, first at "
            f"layer {doc['check']['first_unexplained']['layer']!r}"
        )


def _verify_text(r: dict) -> str:
    verdict = "0 mismatches" if r["mismatches"] == 0 else f"{r['mismatches']} MISMATCHES"
    lines = [
        f"{r['network']} on {r['sim']}: {r['frames']} frames with random back-pressure, {verdict}"
    ]
    if r["mismatches"]:
        lines.append(
            f"first differing stage {r['first_bad_stage']!r} (layer {r['first_bad_layer']!r})"
        )
    if not r.get("passed", True):
        lines.append(f"the cocotb test FAILED: {r.get('failure')}")
    if r.get("predicted_latency") is None:
        lines.append(
            f"latency {r['latency']} cycles (first input beat to first output beat); "
            f"II {r['ii']} cycles/frame measured, {r['ideal_ii']} ideal"
        )
    else:
        lines.append(
            f"latency {r['latency']} cycles measured, {r['predicted_latency']} predicted "
            f"(first input beat to first output beat); II {_fmt(r['ii'])} cycles/frame "
            f"measured, {_fmt(r['predicted_ii'])} predicted, {r['ideal_ii']} ideal"
        )
    return "\n".join(lines)


def _ns(v: float) -> str:
    """A time in ns."""
    return f"{v:,.1f} ns"


def _fmt(v) -> str:
    """A cycle count: integer-valued numbers without a fraction."""
    return f"{int(v)}" if float(v).is_integer() else f"{v:.2f}"


def _pair(a, b) -> str:
    """A FIFO figure, and an add stage's second input's after a slash."""
    text = "-" if a is None else str(a)
    return text if b is None else f"{text}/{b}"


def _sim_text(r, config, origin: dict) -> str:
    """The ``sim`` report: ``config`` is the design's, ``origin`` its folding's origins."""
    head = [
        f"{r.network}: {r.frames} frames at input rate {r.input_rate:g}, {r.clock_mhz:g} MHz",
        f"latency {r.latency} cycles to the first output beat, {r.latency_last} to the last "
        f"beat of frame 0 ({_ns(r.latency_ns)}, {_ns(r.latency_last_ns)} at "
        f"{r.clock_mhz:g} MHz)",
        f"II {_fmt(r.ii)} cycles/frame (ideal {r.ideal_ii}); {r.frames_per_s:,.0f} frames/s "
        f"at {r.clock_mhz:g} MHz; {r.cycles} cycles in all",
    ]
    rows = [
        (
            "stage", "kind", "PE", "SIMD", "folding", "cycles", "busy", "starved", "blocked",
            "util", "FIFO", "max",
        )
    ]  # fmt: skip
    for st in r.stages:
        cfg = config[st.name]
        rows.append(
            (
                st.name,
                st.kind,
                str(cfg.pe),
                str(cfg.simd),
                origin[st.name].folding,
                str(st.ideal_cycles),
                str(st.busy),
                str(st.starved),
                str(st.blocked),
                f"{100 * st.utilisation:.1f}%",
                _pair(st.fifo_depth, st.fifo_b_depth),
                _pair(st.fifo_max, st.fifo_b_max),
            )
        )
    from .summary import aligned

    return "\n".join([*head, *aligned(rows, (0, 1, 4))])


def cmd_sim(args) -> None:
    from .flows import design, simulate

    if args.plot is not None and Path(args.plot).suffix.lower() != ".svg":
        raise CliError(f"codesign sim: argument --plot: must be a .svg file, not {args.plot!r}")
    net = load(args.net)
    from .deform import deform_requested, deform_sim, has_deformable

    if has_deformable(net) or deform_requested(args):  # the gather engine's model
        emit(args, *deform_sim(net, args))
        return
    d = design(net, args.config)
    origin = d.origin  # of the folding, which sizing FIFOs keeps
    rate = 1.0 if args.input_rate is None else args.input_rate
    sized = None
    if args.size_fifos is not None:
        import yaml

        from codesign.sim.dataflow import pipeline_rate, size_fifos

        if args.input_rate is None:
            rate = pipeline_rate(d)
        d = size_fifos(d, input_rate=rate)
        sized = {name: d.fifo_depth(s, port) for s, port, name in d.fifos()}
        atomic_write(args.size_fifos, yaml.safe_dump(d.config.to_dict(), sort_keys=False))
    r = simulate(d, frames=args.frames, input_rate=rate)
    doc = {"network": net.name, **r.to_dict()}
    for st in doc["stages"]:
        cfg = d.config[st["name"]]
        st.update(pe=cfg.pe, simd=cfg.simd, origin=origin[st["name"]].to_dict())
    text = _sim_text(r, d.config, origin)
    from codesign.sim.fmax import predict_fmax

    est = predict_fmax(d)
    fps = est.fmax_mhz * 1e6 / r.ii if r.ii else None
    doc["predicted_fmax"] = {**est.to_dict(), "frames_per_s": fps}
    text += (
        f"\npredicted Fmax {est.fmax_mhz:.1f} MHz (ECP5 speed 6, without place and route; "
        f"stage {est.stage}, path {est.path})" + (f": {fps:,.0f} frames/s" if fps else "")
    )
    if sized is not None:
        doc["sized_fifos"] = sized
        doc["config_written"] = str(args.size_fifos)
        text += (
            f"\nFIFO depths for input rate {rate:.4g}: "
            + ", ".join(f"{k} {v}" for k, v in sized.items())
            + f"\nwrote {args.size_fifos}"
        )
    if args.plot is not None:
        from .report import timeline_figure

        timeline_figure(r, args.plot)
        doc["plot"] = str(args.plot)
        text += f"\nwrote {args.plot}"
    emit(args, doc, text)


def cmd_verify(args) -> None:
    from .flows import design, verify

    net = _variant_of(load(args.net), args, "verify")
    d = design(net, args.config)
    r = verify(
        d,
        args.output,
        vectors=args.vectors,
        sim=args.sim,
        seed=args.seed,
        waves=args.waves,
        junit=args.junit,
    )
    emit(args, r, _verify_text(r))
    if r["mismatches"]:
        raise VerificationFailed(
            f"{net.name}: {r['mismatches']} mismatches, first in stage "
            f"{r['first_bad_stage']!r} (layer {r['first_bad_layer']!r})"
        )
    if not r.get("passed", True):  # no mismatch, but a check of the bench failed
        raise VerificationFailed(f"{net.name}: the cocotb test failed: {r.get('failure')}")


def _warn(text: str) -> None:
    """One warning line on stderr (the run goes on; the exit status does not change)."""
    print(f"codesign: warning: {text}", file=sys.stderr)


def _clock_warnings(r: dict) -> None:
    """A warning for every speed grade of a synthesis result that misses the clock target."""
    from .synth import clock_verdict

    for t in r.get("timing") or [r]:
        if t.get("meets_clock") is False:
            _warn(f"{r['network']} {clock_verdict({**t, 'clock_mhz': r['clock_mhz']})}")


def cmd_synth(args) -> None:
    from .flows import design
    from .synth import synth_text, synthesize

    net = _variant_of(load(args.net), args, "synth")
    d = design(net, args.config)
    r = synthesize(d, target=args.target, pnr=not args.no_pnr, speed=args.speed)
    emit(args, r, synth_text(r))
    _clock_warnings(r)


def cmd_run(args) -> None:
    from .flows import PERF_FRAMES_MAX, design, generate, simulate, verify
    from .progress import Progress
    from .report import write_report

    net = load(args.net)
    d = design(net, args.config)
    if args.speed is not None and not (args.no_hardware or args.no_synth):
        from .synth import speed_grades

        speed_grades(SYNTH_TARGET, args.speed)  # a bad grade fails now, not after verifying
    info = summary(net)
    out_dir = Path(args.build) / net.name
    progress = Progress(6, prog="codesign run")
    with progress.step("golden model"):
        x = random_inputs(net, args.vectors, args.seed)
        y = golden(net, x)
        atomic_write(out_dir / "golden_inputs.npy", _npy_bytes(x))
        atomic_write(out_dir / "golden_outputs.npy", _npy_bytes(y))
    manifest = {
        "network": net.name,
        "network_hash": info["hash"],
        "golden": {
            "vectors": args.vectors,
            "seed": args.seed,
            "input_sha256": _sha256(x),
            "output_sha256": _sha256(y),
        },
    }
    text = [
        summary_text(info),
        "",
        f"golden: {args.vectors} vectors (seed {args.seed}) → sha256 "
        f"{manifest['golden']['output_sha256'][:16]}",
    ]
    # the frames of the cocotb throughput run, so prediction and measurement compare
    with progress.step("simulate"):
        p = simulate(d, frames=min(args.vectors, PERF_FRAMES_MAX), seed=args.seed)
    manifest["simulate"] = {
        "frames": p.frames,
        "input_rate": p.input_rate,
        "latency": p.latency,
        "latency_last": p.latency_last,
        "ii": p.ii,
        "ideal_ii": p.ideal_ii,
        "cycles": p.cycles,
        "clock_mhz": p.clock_mhz,
        "latency_ns": p.latency_ns,
        "latency_last_ns": p.latency_last_ns,
        "frames_per_s": p.frames_per_s,
        "throughput_fps": p.throughput_fps,
    }
    text += [
        "",
        f"simulate: {p.frames} frames, latency {p.latency} cycles, II {_fmt(p.ii)} cycles/frame "
        f"(ideal {p.ideal_ii}); at the {p.clock_mhz:g} MHz target: latency "
        f"{_ns(p.latency_ns)}, {p.frames_per_s:,.0f} frames/s",
    ]
    r = synth = None
    if args.no_hardware:
        for step in ("generate", "verify", "synthesize"):
            progress.skip(step, "--no-hardware")
    else:
        hdl_dir = out_dir / "hdl"
        with progress.step("generate"):
            generate(d, hdl_dir)
        with progress.step(f"verify ({args.sim})"):
            r = verify(
                d,
                hdl_dir,
                vectors=args.vectors,
                sim=args.sim,
                seed=args.seed,
                prediction=p,
                regenerate=False,
            )
        manifest["verify"] = {
            k: r[k]
            for k in (
                "sim",
                "frames",
                "mismatches",
                "latency",
                "ii",
                "ideal_ii",
                "predicted_latency",
                "predicted_ii",
                "first_bad_stage",
                "verilog",
                "passed",
                "failure",
            )
        }
        text += ["", _verify_text(r)]
        if args.no_synth:
            progress.skip("synthesize", "--no-synth")
        elif r["mismatches"] or not r.get("passed", True):
            progress.skip("synthesize", "the RTL disagrees with the golden model")
        else:
            from .synth import synthesize

            with progress.step(f"synthesize ({SYNTH_TARGET})"):
                synth = synthesize(
                    d,
                    target=SYNTH_TARGET,
                    out_dir=out_dir / "synth" / SYNTH_TARGET,
                    speed=args.speed,
                )
            manifest["synth"] = {
                k: synth.get(k)
                for k in (
                    "target",
                    "device",
                    "lut",
                    "ff",
                    "dsp",
                    "bram",
                    "lutram",
                    "carry",
                    "clock_mhz",
                    "speed",
                    "fmax_mhz",
                    "fmax_reason",
                    "meets_clock",
                    "slack_ns",
                    "critical_path",
                    "timing",
                    "key",
                    "cached",
                )
            }
            text += ["", _synth_line(synth)]
            for t in synth["timing"][1:]:  # the other speed grades
                text.append(f"  {_synth_verdict({**t, 'clock_mhz': synth['clock_mhz']})}")
            for t in synth["timing"]:
                if t.get("fmax_mhz") is not None:
                    at = p.at(t["fmax_mhz"])
                    t["at_fmax"] = at.to_dict()
                    grade = f" (speed {t['speed']})" if t.get("speed") is not None else ""
                    text.append(
                        f"at Fmax {at.clock_mhz:g} MHz{grade}: latency {_ns(at.latency_ns)}, "
                        f"{at.frames_per_s:,.0f} frames/s"
                    )
            if synth["timing"][0].get("at_fmax"):
                manifest["synth"]["at_fmax"] = synth["timing"][0]["at_fmax"]
    with progress.step("report"):
        from codesign.sim.cost import estimate

        cost = estimate(d, SYNTH_TARGET) if SYNTH_TARGET == "ecp5" else None
        report = write_report(
            out_dir,
            summary=info,
            design=d,
            sim_result=p,
            verify_result=r,
            synth_result=synth,
            cost_result=cost,
            golden=manifest["golden"],
            target=SYNTH_TARGET,
        )
        atomic_write(out_dir / "manifest.json", json.dumps(manifest, indent=1, default=str) + "\n")
    text.append(f"wrote {report}, manifest.json and the figures")
    emit(
        args,
        {
            "network": net.name,
            "build_dir": str(out_dir),
            "report": str(report),
            "summary": info,
            **manifest,
        },
        "\n".join(text),
    )
    if synth is not None:
        _clock_warnings(synth)
    checked = manifest.get("verify", {})
    if checked.get("mismatches"):
        raise VerificationFailed(f"{net.name}: the RTL disagrees with the golden model")
    if checked and not checked.get("passed", True):
        raise VerificationFailed(f"{net.name}: the cocotb test failed: {checked.get('failure')}")


def _synth_verdict(r: dict) -> str:
    """The clock target's verdict of a synthesis result, or why there is no Fmax."""
    from .synth import clock_verdict

    return clock_verdict(r) or f"no Fmax ({r.get('fmax_reason')})"


def _synth_line(r: dict) -> str:
    fmax = _synth_verdict(r)
    return (
        f"synthesize: {r['target']} ({r.get('device')}): {r['lut']} LUT, {r['ff']} FF, "
        f"{r['dsp']} DSP, {r['bram']} BRAM; {fmax}" + (" (cached)" if r.get("cached") else "")
    )


# -- parser --------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive int, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, not {text!r}")
    return v


def _speeds(text: str) -> tuple[int, ...]:
    try:
        speeds = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a speed grade or a comma-separated list of them (6, 6,8), not {text!r}"
        ) from None
    return speeds


def _input_rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v <= 1:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], not {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    p = _Parser(
        prog="codesign", description="Hardware co-design workbench for quantized neural networks."
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("zoo", parents=[common], help="list the zoo networks")
    s.set_defaults(func=cmd_zoo)
    s = sub.add_parser("info", parents=[common], help="layers, types, exact ranges, MACs")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.set_defaults(func=cmd_info)
    s = sub.add_parser(
        "bnn", parents=[common], help="binary network on TULIP: schedule, cycles, energy"
    )
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--pes", type=_positive_int, default=16, help="TULIP PEs (16)")
    s.add_argument("--tlns", type=_positive_int, default=4, help="TLN cells per PE (4)")
    s.add_argument("--in-width", type=_positive_int, default=16, help="input bits/beat (16)")
    s.add_argument("--mst", action="store_true", help="also MST channel reuse per layer")
    s.add_argument(
        "--max-depth", type=_positive_int, default=None, help="MST reuse depth bound (none)"
    )
    s.add_argument(
        "--verify",
        metavar="N",
        type=_positive_int,
        help="generate the RTL (TULIP; with --mst also the MST chain) and prove N random "
        "frames in cocotb, with measured cycles beside the model's",
    )
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument("--seed", type=int, default=0, help="seed for --verify (default 0)")
    s.add_argument(
        "--testbench",
        metavar="N",
        type=_positive_int,
        default=None,
        help="write each design's regression kit with N random frames (runs without codesign)",
    )
    s.add_argument("-o", "--output", metavar="DIR", help="design folder (build/<net>/bnn)")
    s.set_defaults(func=cmd_bnn)
    from .compress import add_parser as add_compress
    from .pim import add_parser as add_pim

    add_pim(sub, common, _positive_int)
    add_compress(sub, common, _positive_int)
    s = sub.add_parser("golden", parents=[common], help="run the bit-exact golden model")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="X.npy", help="integer inputs, shape (N, *input)")
    src.add_argument("--random", metavar="N", type=_positive_int, help="N random inputs")
    s.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    s.add_argument("--output", metavar="Y.npy", help="write the outputs here")
    s.add_argument("--trace", metavar="DIR", help="write every layer's output as DIR/<layer>.npy")
    s.set_defaults(func=cmd_golden)
    s = sub.add_parser("import", parents=[common], help="import a QONNX model (.onnx)")
    s.add_argument("model", metavar="MODEL.onnx", help="the QONNX model")
    s.add_argument("-o", "--output", metavar="NETDIR", required=True, help="output folder")
    s.add_argument(
        "--input-type",
        metavar="T",
        default="fixed<16,6>",
        help="type of a float network input (default fixed<16,6>)",
    )
    s.add_argument("--check", metavar="N", type=_positive_int, help="prove N random inputs")
    s.add_argument("--seed", type=int, default=0, help="seed for --check (default 0)")
    s.set_defaults(func=cmd_import)
    s = sub.add_parser("hdl", parents=[common], help="generate the dataflow accelerator")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("-o", "--output", metavar="DIR", help="output folder (build/<net>/hdl)")
    s.add_argument("--build", metavar="DIR", default="build", help=argparse.SUPPRESS)
    s.add_argument(
        "--testbench",
        action="store_true",
        help="also write the regression kit (golden vectors, cocotb bench, run_regression.py, "
        "Makefile, FuseSoC sim target), runnable without codesign",
    )
    s.add_argument(
        "--vectors", type=_positive_int, default=32, help="--testbench: random frames (32)"
    )
    s.add_argument("--seed", type=int, default=0, help="--testbench: seed (0)")
    _variant_options(s)
    s.set_defaults(func=cmd_hdl)
    s = sub.add_parser("sim", parents=[common], help="predict cycles, stalls and FIFO use")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("--frames", type=_positive_int, default=8, help="frames to stream (8)")
    s.add_argument(
        "--input-rate",
        metavar="R",
        type=_input_rate,
        default=None,
        help="input beats offered per cycle, in (0, 1] (1; with --size-fifos: the "
        "pipeline's own pace, one frame per ideal II)",
    )
    s.add_argument("--plot", metavar="FILE.svg", help="write the busy/stall timeline here")
    s.add_argument(
        "--size-fifos",
        metavar="OUT.yaml",
        help="size every FIFO to the least depth that never fills at the input rate, write "
        "the config there, and simulate the sized design",
    )
    from .deform import ENGINES, nonnegative_int

    g = s.add_argument_group("deformable layers (the gather engine's cycle model)")
    g.add_argument(
        "--variant",
        metavar="V",
        help="offset variant: free, or bounded/square/rounded joined by '+', or all",
    )
    g.add_argument("--bound", metavar="B", type=nonnegative_int, help="offset bound, pixels")
    g.add_argument("--engine", choices=tuple(ENGINES), help="parameter set (rtl)")
    for flag, what in (
        ("--banks", "line-buffer banks R"),
        ("--ports", "read ports P per bank"),
        ("--taps", "taps T per fetch group"),
        ("--rows", "rows buffered on chip (the engine's)"),
        ("--pe", "MAC array PE"),
        ("--simd", "MAC array SIMD"),
    ):
        g.add_argument(flag, metavar="N", type=_positive_int, help=what)
    g.add_argument("--seed", type=int, help="seed of the random frames (0)")
    s.set_defaults(func=cmd_sim)
    s = sub.add_parser("verify", parents=[common], help="prove the RTL against the golden model")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument("--vectors", type=_positive_int, default=200, help="random frames (200)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--waves", action="store_true", help="record a waveform")
    s.add_argument("--junit", metavar="FILE", help="write cocotb's JUnit XML (results.xml) to FILE")
    s.add_argument("-o", "--output", metavar="DIR", help="design folder (build/<net>/hdl)")
    _variant_options(s)
    s.set_defaults(func=cmd_verify)
    s = sub.add_parser("synth", parents=[common], help="resources and Fmax (Yosys, nextpnr)")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("--target", choices=("ecp5", "ice40", "xilinx"), default="ecp5")
    s.add_argument("--no-pnr", action="store_true", help="skip place and route (no Fmax)")
    s.add_argument(
        "--speed",
        metavar="S[,S...]",
        type=_speeds,
        default=None,
        help="ECP5 speed grade(s) to place and route at: 6, 7 or 8, or several such as 6,8 "
        "(default 6); the first is the headline result",
    )
    _variant_options(s)
    s.set_defaults(func=cmd_synth)
    s = sub.add_parser("run", parents=[common], help="the whole flow on a network")
    s.add_argument(
        "net",
        metavar="NET",
        nargs="?",
        default=DEFAULT_NETWORK,
        help=f"zoo name or description path (default {DEFAULT_NETWORK})",
    )
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("--vectors", type=_positive_int, default=200, help="golden vectors")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--build", metavar="DIR", default="build", help="output root (build/)")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument(
        "--no-hardware",
        action="store_true",
        help="golden model and simulator only: skip generating, verifying, synthesising",
    )
    s.add_argument("--no-synth", action="store_true", help=f"skip synthesis ({SYNTH_TARGET})")
    s.add_argument(
        "--speed",
        metavar="S[,S...]",
        type=_speeds,
        default=None,
        help="ECP5 speed grade(s) to place and route at (6, 7, 8; default 6; 6,8 for both)",
    )
    s.set_defaults(func=cmd_run)
    from .explore.cli import add_parser as add_explore

    add_explore(sub, common, _positive_int)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codesign`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except UserError as e:
        print(f"codesign: error: {e}", file=sys.stderr)
        return 2
    except ToolError as e:  # a tool missing or failed: its first error line and its log's path
        print(f"codesign: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # unwritable output paths and the like: the user's environment
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"codesign: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
