"""The ``codesign`` command line: one subcommand per step, each with ``--json``.

User errors print one line on stderr and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from models.errors import UserError
from models.fileio import atomic_write
from models.golden import InputError, check_input, golden, random_inputs, trace
from models.ir import Network
from models.loader import load, zoo_names

from .summary import summary, summary_text

__all__ = ["main"]

DEFAULT_NETWORK = "jet_tagger"


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


def _emit(args, doc: dict, text: str) -> None:
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
    _emit(args, {"networks": rows}, text)


def cmd_info(args) -> None:
    info = summary(load(args.net))
    _emit(args, info, summary_text(info))


def _golden_inputs(args, net: Network) -> tuple[np.ndarray, dict]:
    if args.input is not None:
        try:
            x = np.load(args.input, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"{args.input}: no such file") from None
        except (OSError, ValueError) as e:
            raise InputError(f"{args.input}: is not a readable .npy array: {e}") from None
        if not isinstance(x, np.ndarray):
            raise InputError(f"{args.input}: must be a .npy array, not an .npz archive")
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
    _emit(args, doc, text)


def cmd_hdl(args) -> None:
    from .flows import design, generate

    net = load(args.net)
    d = design(net, args.config)
    out_dir = Path(args.output or Path(args.build) / net.name / "hdl")
    doc = generate(d, out_dir)
    rows = [
        f"  {s['name']:10s} {s['kind']:5s} pe {s['pe']:3d} simd {s['simd']:4d} "
        f"{s['cycles']:7d} cycles/frame  ({'+'.join(s['layers'])})"
        for s in doc["stages"]
    ]
    text = "\n".join(
        [
            f"{net.name}: wrote {out_dir / doc['verilog']}, manifest.json, {doc['top']}.core",
            *rows,
            f"ideal II {doc['ideal_ii']} cycles/frame; s_axis_tdata {doc['input']['tdata_bits']} "
            f"bits, m_axis_tdata {doc['output']['tdata_bits']} bits",
        ]
    )
    _emit(args, {"output_dir": str(out_dir), **doc}, text)


def _verify_text(r: dict) -> str:
    verdict = "0 mismatches" if r["mismatches"] == 0 else f"{r['mismatches']} MISMATCHES"
    lines = [
        f"{r['network']} on {r['sim']}: {r['frames']} frames with random back-pressure, {verdict}"
    ]
    if r["mismatches"]:
        lines.append(
            f"first differing stage {r['first_bad_stage']!r} (layer {r['first_bad_layer']!r})"
        )
    lines.append(
        f"latency {r['latency']} cycles (first input beat to first output beat); "
        f"II {r['ii']} cycles/frame measured, {r['ideal_ii']} ideal"
    )
    return "\n".join(lines)


def cmd_verify(args) -> None:
    from .flows import design, verify

    net = load(args.net)
    d = design(net, args.config)
    r = verify(d, args.output, vectors=args.vectors, sim=args.sim, seed=args.seed, waves=args.waves)
    _emit(args, r, _verify_text(r))
    if r["mismatches"]:
        raise VerificationFailed(
            f"{net.name}: {r['mismatches']} mismatches, first in stage "
            f"{r['first_bad_stage']!r} (layer {r['first_bad_layer']!r})"
        )


def cmd_run(args) -> None:
    from .flows import design, verify

    net = load(args.net)
    info = summary(net)
    out_dir = Path(args.build) / net.name
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
    sections = [
        f"# {net.name}\n\n```\n{summary_text(info)}\n```\n",
        f"Golden model: {args.vectors} random vectors (seed {args.seed}), outputs "
        f"sha256 `{manifest['golden']['output_sha256']}`.\n",
    ]
    text = [
        summary_text(info),
        "",
        f"golden: {args.vectors} vectors (seed {args.seed}) → sha256 "
        f"{manifest['golden']['output_sha256'][:16]}",
    ]
    if not args.no_hardware:
        d = design(net)
        r = verify(d, out_dir / "hdl", vectors=args.vectors, sim=args.sim, seed=args.seed)
        manifest["verify"] = {
            k: r[k]
            for k in (
                "sim",
                "frames",
                "mismatches",
                "latency",
                "ii",
                "ideal_ii",
                "first_bad_stage",
                "verilog",
            )
        }
        rows = "\n".join(
            f"| {s.name} | {s.kind.value} | {d.config[s.name].pe} | {d.config[s.name].simd} | "
            f"{d.cycles(s)} |"
            for s in d.stages
        )
        sections.append(
            "\n## Hardware\n\n| stage | kind | PE | SIMD | cycles/frame |\n|---|---|---|---|---|\n"
            f"{rows}\n\nVerilog: `{r['verilog']}`. cocotb on {r['sim']}: {r['frames']} frames "
            f"with random back-pressure, **{r['mismatches']} mismatches**; latency "
            f"{r['latency']} cycles, II {r['ii']} cycles/frame measured against "
            f"{r['ideal_ii']} ideal.\n"
        )
        text += ["", _verify_text(r)]
    atomic_write(out_dir / "manifest.json", json.dumps(manifest, indent=1, default=str) + "\n")
    atomic_write(out_dir / "report.md", "".join(sections))
    text.append(f"wrote {out_dir}/report.md and manifest.json")
    _emit(
        args,
        {"network": net.name, "build_dir": str(out_dir), "summary": info, **manifest},
        "\n".join(text),
    )
    if manifest.get("verify", {}).get("mismatches"):
        raise VerificationFailed(f"{net.name}: the RTL disagrees with the golden model")


# -- parser --------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive int, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, not {text!r}")
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
    s = sub.add_parser("golden", parents=[common], help="run the bit-exact golden model")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="X.npy", help="integer inputs, shape (N, *input)")
    src.add_argument("--random", metavar="N", type=_positive_int, help="N random inputs")
    s.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    s.add_argument("--output", metavar="Y.npy", help="write the outputs here")
    s.add_argument("--trace", metavar="DIR", help="write every layer's output as DIR/<layer>.npy")
    s.set_defaults(func=cmd_golden)
    s = sub.add_parser("hdl", parents=[common], help="generate the dataflow accelerator")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("-o", "--output", metavar="DIR", help="output folder (build/<net>/hdl)")
    s.add_argument("--build", metavar="DIR", default="build", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_hdl)
    s = sub.add_parser("verify", parents=[common], help="prove the RTL against the golden model")
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--config", metavar="HW.yaml", help="hardware configuration (folding)")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument("--vectors", type=_positive_int, default=200, help="random frames (200)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--waves", action="store_true", help="record a waveform")
    s.add_argument("-o", "--output", metavar="DIR", help="design folder (build/<net>/hdl)")
    s.set_defaults(func=cmd_verify)
    s = sub.add_parser("run", parents=[common], help="the whole flow on a network")
    s.add_argument(
        "net",
        metavar="NET",
        nargs="?",
        default=DEFAULT_NETWORK,
        help=f"zoo name or description path (default {DEFAULT_NETWORK})",
    )
    s.add_argument("--vectors", type=_positive_int, default=200, help="golden vectors")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--build", metavar="DIR", default="build", help="output root (build/)")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument(
        "--no-hardware",
        action="store_true",
        help="golden model only: skip generating and verifying the RTL",
    )
    s.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codesign`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except UserError as e:
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
