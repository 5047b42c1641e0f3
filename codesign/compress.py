"""``codesign compress``: a network decomposed per layer (SVD of dense/1×1 layers, CPD of k×k
convolutions, Mixed-TD style) and/or pruned to N:M, written as an ordinary description, with
the accuracy proxy against the original (relative output error and top-1 agreement on seeded
frames) and the MACs and parameters before and after."""

from __future__ import annotations

from pathlib import Path

from codesign.models.errors import DescriptionError
from codesign.models.ir import Network

__all__ = ["add_parser", "cmd_compress", "compress", "compress_text", "parse_assignments"]


def parse_assignments(values: list[str] | None, option: str) -> dict[str, int]:
    """``["conv2=4", "fc=8"]`` → ``{"conv2": 4, "fc": 8}``; a malformed entry raises a
    one-line error naming the option."""
    out: dict[str, int] = {}
    for v in values or []:
        layer, sep, rank = v.partition("=")
        if not sep or not layer or not rank.strip().isdigit():
            raise DescriptionError(f"{option} must be LAYER=RANK (e.g. conv2=4), not {v!r}")
        if layer in out:
            raise DescriptionError(f"{option} names layer {layer!r} twice")
        out[layer] = int(rank)
    return out


def _counts(net: Network) -> dict:
    from .summary import summary

    t = summary(net)["totals"]
    return {"params": int(t["params"]), "macs": int(t["macs"]), "layers": int(t["layers"])}


def compress(
    net: Network,
    *,
    svd: dict[str, int] | None = None,
    cpd: dict[str, int] | None = None,
    nm: tuple[int, int] | None = None,
    nm_layers: list[str] | None = None,
    seed: int = 0,
    frames: int = 64,
) -> tuple[Network, dict]:
    """The compressed network and a report: decompositions first (``svd``/``cpd``: layer →
    rank), then N:M pruning of ``nm_layers`` (None: every prunable layer of the result)."""
    from codesign.models.compress.accuracy import compression_error
    from codesign.models.compress.decompose import decompose
    from codesign.models.compress.sparsity import prune_nm

    svd, cpd = svd or {}, cpd or {}
    both = sorted(set(svd) & set(cpd))
    if both:
        raise DescriptionError(f"layer {both[0]!r} must be given --svd or --cpd, not both")
    plan = {**{k: ("svd", r) for k, r in svd.items()}, **{k: ("cpd", r) for k, r in cpd.items()}}
    out = decompose(net, plan, seed=seed) if plan else net
    pruned: list[str] = []
    if nm is not None:
        before = {la.name: la for la in out.layers}
        out = prune_nm(out, *nm, layers=nm_layers)
        pruned = [
            la.name
            for la in out.layers
            if getattr(la, "weight", None) is not None and before[la.name].weight is not la.weight
        ]
    acc = compression_error(net, out, frames=frames, seed=seed)
    doc = {
        "network": net.name,
        "decomposed": {k: {"method": m, "rank": r} for k, (m, r) in plan.items()},
        "pruned": {"pattern": f"{nm[0]}:{nm[1]}", "layers": pruned} if nm else None,
        "before": _counts(net),
        "after": _counts(out),
        "accuracy": {
            "rel_error": acc.rel_error,
            "top1": acc.top1,
            "frames": acc.frames,
            "seed": seed,
        },
    }
    return out, doc


def compress_text(doc: dict, path: Path | None) -> str:
    b, a = doc["before"], doc["after"]
    lines = [f"{doc['network']} compressed:"]
    for layer, d in doc["decomposed"].items():
        lines.append(f"  {layer}: {d['method'].upper()} rank {d['rank']}")
    if doc["pruned"]:
        p = doc["pruned"]
        lines.append(f"  pruned to {p['pattern']}: {', '.join(p['layers']) or 'no layer'}")
    lines.append(
        f"  MACs {b['macs']:,} -> {a['macs']:,} ({a['macs'] / b['macs']:.3f}x), "
        f"parameters {b['params']:,} -> {a['params']:,}, layers {b['layers']} -> {a['layers']}"
    )
    acc = doc["accuracy"]
    lines.append(
        f"  accuracy proxy on {acc['frames']} seeded frames (seed {acc['seed']}): relative "
        f"output error {acc['rel_error']:.4g}, top-1 agreement {acc['top1']:.1%}"
    )
    if path is not None:
        lines.append(f"wrote {path} and {path.with_suffix('.npz')}")
    if doc.get("config"):
        lines.append(
            f"wrote {doc['config']}: the pruned stages' sparse MVAUs (pass it as --config to "
            "hdl, sim, verify or synth)"
        )
    return "\n".join(lines)


def cmd_compress(args) -> None:
    from codesign.models.compress.sparsity import parse_sparsity
    from codesign.models.loader import load, save_description

    from .cli import CliError, emit

    net = load(args.net)
    nm = None
    if args.nm is not None:
        try:
            nm = parse_sparsity(args.nm)
        except ValueError as e:
            raise CliError(f"codesign compress: argument --nm: {e}") from None
    out, doc = compress(
        net,
        svd=parse_assignments(args.svd, "--svd"),
        cpd=parse_assignments(args.cpd, "--cpd"),
        nm=nm,
        nm_layers=args.nm_layers.split(",") if args.nm_layers else None,
        seed=args.seed,
        frames=args.frames,
    )
    path = None
    if args.output:
        path = Path(args.output)
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise CliError(
                f"codesign compress: argument -o: must be a .yaml file, not {str(path)!r}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_description(out, path)
        doc["output"] = str(path)
        if doc["pruned"]:  # the sparse MVAU for the pruned stages: a config for --config
            import yaml

            from codesign.models.fileio import atomic_write
            from codesign.models.hwconfig import HardwareConfig, StageConfig

            hw = HardwareConfig({n: StageConfig(sparsity=nm) for n in doc["pruned"]["layers"]})
            config = path.with_name(path.stem + ".hw.yaml")
            atomic_write(config, yaml.safe_dump(hw.to_dict(), sort_keys=False))
            doc["config"] = str(config)
    emit(args, doc, compress_text(doc, path))


def add_parser(sub, common, positive_int) -> None:
    """Register ``compress`` on the ``codesign`` subparsers ``sub``."""
    s = sub.add_parser(
        "compress",
        parents=[common],
        help="decompose layers (SVD, CPD) and prune to N:M; write the compressed description",
    )
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument(
        "--svd", metavar="LAYER=R", action="append", help="SVD of a dense or 1x1 layer, rank R"
    )
    s.add_argument(
        "--cpd", metavar="LAYER=R", action="append", help="CP decomposition of a kxk conv, rank R"
    )
    s.add_argument("--nm", metavar="N:M", help="prune to N nonzeros in every M input weights")
    s.add_argument(
        "--nm-layers", metavar="L1,L2", help="the layers to prune (default: every prunable one)"
    )
    s.add_argument("--seed", type=int, default=0, help="CPD and accuracy-proxy seed (0)")
    s.add_argument("--frames", type=positive_int, default=64, help="accuracy-proxy frames (64)")
    s.add_argument("-o", "--output", metavar="OUT.yaml", help="write the compressed description")
    s.set_defaults(func=cmd_compress)
