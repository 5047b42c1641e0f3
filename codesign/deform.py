"""``codesign sim`` on a network with deformable layers: the gather engine's cycle model
(:mod:`codesign.sim.deform`) per offset variant, as a table or one JSON document."""

from __future__ import annotations

import argparse

from codesign.models.deform import Variant
from codesign.models.deform.variants import deform_layers, with_variant
from codesign.models.errors import UserError
from codesign.models.ir import Network
from codesign.sim.deform import (
    GatherConfig,
    NetworkTiming,
    codenet_config,
    network_timing,
    rtl_config,
)

__all__ = [
    "DEFAULT_BOUND",
    "ENGINES",
    "VARIANT_TABLE",
    "DeformOptionError",
    "deform_sim",
    "has_deformable",
    "network_variant",
    "nonnegative_int",
    "report_text",
    "variants",
]

#: The variants ``--variant all`` compares (CoDeNet's ladder), in order.
VARIANT_TABLE = ("free", "bounded", "square", "rounded", "square+bounded+rounded")
#: The bound (pixels) of ``--variant all``'s bounded variants when ``--bound`` is not given:
#: the ±1 pixel that the CoDeNet-style 5-row buffer holds.
DEFAULT_BOUND = 1
#: The engines ``--engine`` names.
ENGINES = {"rtl": rtl_config, "codenet": codenet_config}
#: Options of the dataflow simulator that mean nothing to the gather engine.
_DATAFLOW_ONLY = ("config", "plot", "size_fifos", "input_rate")
#: Options of the gather engine (dest, flag).
_ENGINE_OPTIONS = (
    ("banks", "--banks"),
    ("ports", "--ports"),
    ("taps", "--taps"),
    ("rows", "--rows"),
    ("pe", "--pe"),
    ("simd", "--simd"),
)


class DeformOptionError(UserError, ValueError):
    """A ``codesign sim`` option that does not fit the network or the other options."""


def nonnegative_int(text: str) -> int:
    """An argparse type: an int of at least 0."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an int of at least 0, not {text!r}")
    return v


def has_deformable(net: Network) -> bool:
    return bool(deform_layers(net))


def _error(flag: str, message: str) -> DeformOptionError:
    return DeformOptionError(f"codesign sim: argument {flag}: {message}")


def variants(name: str | None, bound: int | None) -> list[Variant | None]:
    """The variants ``--variant name --bound bound`` asks for: ``[None]`` (the network's own)
    when ``name`` is None, :data:`VARIANT_TABLE` for ``all``."""
    if name is None:
        if bound is not None:
            raise _error("--bound", f"must come with a bounded --variant, not {bound} alone")
        return [None]
    if name == "all":
        b = DEFAULT_BOUND if bound is None else bound
        return [Variant.parse(v, b if "bounded" in v else None) for v in VARIANT_TABLE]
    try:
        return [Variant.parse(name, bound)]
    except (TypeError, ValueError) as e:
        flag = "--bound" if str(e).startswith("bound") else "--variant"
        raise _error(flag, str(e)) from None


def network_variant(net: Network, name: str | None, bound: int | None, command: str) -> Network:
    """``net`` with its deformable layers switched to ``--variant name --bound bound`` for
    ``codesign hdl``, ``verify`` and ``synth`` (``command``), named ``<net>_<variant>`` so that
    the variants' designs and build folders do not clobber each other; ``net`` itself when no
    variant is given."""

    def error(flag: str, message: str) -> DeformOptionError:
        return DeformOptionError(f"codesign {command}: argument {flag}: {message}")

    if name is None:
        if bound is not None:
            raise error("--bound", f"must come with a bounded --variant, not {bound} alone")
        return net
    if not has_deformable(net):
        raise error("--variant", f"is for a network with deformable layers; {net.name} has none")
    try:
        variant = Variant.parse(name, bound)
    except (TypeError, ValueError) as e:
        flag = "--bound" if str(e).startswith("bound") else "--variant"
        raise error(flag, str(e)) from None
    label = variant.name.replace("+", "_") + (f"_b{bound}" if bound is not None else "")
    try:
        return with_variant(net, variant, name=f"{net.name}_{label}")
    except ValueError as e:
        raise error("--variant", str(e)) from None


def engine_config(args) -> GatherConfig:
    """The engine ``--engine`` names with the options given on the command line."""
    changes = {
        "banks": args.banks,
        "ports": args.ports,
        "taps_per_group": args.taps,
        "rows": args.rows,
        "pe": args.pe,
        "simd": args.simd,
    }
    cfg = ENGINES[args.engine or "rtl"]()
    given = {k: v for k, v in changes.items() if v is not None}
    if ("pe" in given) != ("simd" in given) and cfg.pe is None:
        flag = "--simd" if "pe" in given else "--pe"
        raise _error(flag, "must be given with --pe and --simd together for an engine with "
                     "no MAC array")  # fmt: skip
    return cfg.with_(**given)


def report_text(results: list[NetworkTiming], engine: str, cfg: GatherConfig) -> str:
    """The table ``codesign sim`` prints: one row per variant and deformable layer."""
    r0 = results[0]
    mac = "none" if cfg.pe is None else f"PE {cfg.pe} × SIMD {cfg.simd}, {cfg.overlap.value}"
    rows_txt = "the whole frame" if cfg.rows is None else f"{cfg.rows} rows"
    head = [
        f"{r0.network}: gather engine on {r0.frames} random frames (seed {r0.seed}); engine "
        f"{engine}: {cfg.banks} banks, {cfg.ports} read port(s) each, {cfg.taps_per_group} "
        f"tap(s) per fetch group, on chip {rows_txt}, MAC {mac}",
    ]
    if cfg.rows is not None:
        head.append(
            f"external bursts: {cfg.burst_latency} cycles latency per window, "
            f"{cfg.bytes_per_cycle} bytes/cycle, at least {cfg.min_burst_bytes} bytes each"
        )
    base = {t.layer: t.frame_cycles.mean() for t in results[0].layers}
    table = [
        (
            "variant", "layer", "cycles/frame", "speedup", "gather/win", "MAC/win",
            "bursts/frame", "ext bytes/frame", "fetch-group cycles: count",
        )
    ]  # fmt: skip
    for r in results:
        for t in r.layers:
            fc = t.frame_cycles.mean()
            hist = " ".join(f"{c}:{n}" for c, n in enumerate(t.fetch_histogram) if n)
            table.append(
                (
                    t.variant,
                    t.layer,
                    f"{fc:,.0f}",
                    f"{base[t.layer] / fc:.2f}x",
                    f"{t.gather_cycles.mean():.2f}",
                    str(t.mac_cycles),
                    f"{t.bursts.mean():,.0f}",
                    f"{t.external_bytes.mean():,.0f}",
                    hist,
                )
            )
    from .summary import aligned

    lines = aligned(table, (0, 1, 8))
    notes = [f"speedup: against the first row ({results[0].variant})"]
    rtl = [(r.variant, t) for r in results for t in r.layers if t.rtl_frame_interval is not None]
    if rtl:
        notes.append(
            "cycles/frame is the RTL's RUN phase (models/deform/engine.run_cycles); frame "
            "interval with LOAD: "
            + ", ".join(f"{v} {t.layer} {t.rtl_frame_interval.mean():,.0f}" for v, t in rtl)
        )
    return "\n".join([*head, *lines, *notes])


def deform_sim(net: Network, args) -> tuple[dict, str]:
    """``codesign sim`` on ``net`` (which must have deformable layers): the JSON document and
    the text, from the parsed arguments.

    Raises
    ------
    DeformOptionError
        When ``net`` has no deformable layer but an engine option was given, when a dataflow
        option was given, or when an option's value does not fit (one line naming it).
    """
    if not has_deformable(net):
        given = [
            "--" + d
            for d in ("variant", "bound", "engine", "seed", *(d for d, _ in _ENGINE_OPTIONS))
            if getattr(args, d) is not None
        ]
        raise _error(
            given[0] if given else "--variant",
            f"needs a network with deformable layers, and {net.name} has none",
        )
    for dest in _DATAFLOW_ONLY:
        if getattr(args, dest, None) is not None:
            flag = "--" + dest.replace("_", "-")
            raise _error(flag, f"does not apply to the gather engine of {net.name}")
    cfg = engine_config(args)
    results = []
    for v in variants(args.variant, args.bound):
        try:
            seed = 0 if args.seed is None else args.seed
            results.append(network_timing(net, cfg, frames=args.frames, seed=seed, variant=v))
        except ValueError as e:
            if str(e).startswith("rows"):
                raise _error("--rows", str(e)) from None
            raise
    doc = {
        "network": net.name,
        "engine": args.engine or "rtl",
        "config": cfg.to_dict(),
        "results": [r.to_dict() for r in results],
    }
    return doc, report_text(results, args.engine or "rtl", cfg)


def deform_requested(args) -> bool:
    """Whether the command line names a gather-engine option."""
    return any(getattr(args, d) is not None for d in ("variant", "bound", "engine", "seed")) or any(
        getattr(args, d) is not None for d, _ in _ENGINE_OPTIONS
    )
