"""Flows that join the layers: design, generate (and, later, verify and synthesize)."""

from __future__ import annotations

from pathlib import Path

import yaml

from models.errors import DescriptionError
from models.hwconfig import ConfigError, Design, HardwareConfig
from models.ir import Network

from .summary import network_hash

__all__ = ["design", "generate", "load_config", "verify"]


def load_config(path: str | Path) -> HardwareConfig:
    """A :class:`HardwareConfig` from a YAML file (see ``HardwareConfig.from_dict``)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DescriptionError("no such file", file=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise DescriptionError(
            f"is not valid YAML: {where}{getattr(e, 'problem', e)}", file=str(path)
        ) from None
    return HardwareConfig.from_dict(doc, source=str(path))


def design(net: Network, config: HardwareConfig | str | Path | None = None) -> Design:
    """The network with a hardware configuration (balanced automatically when None)."""
    source = None
    if isinstance(config, str | Path):
        source = str(config)
        config = load_config(config)
    try:
        return Design(net, config)
    except ConfigError as e:
        if source is None:
            raise
        raise ConfigError(f"{source}: {e}") from None


def generate(d: Design, out_dir: str | Path) -> dict:
    """Verilog, ``manifest.json`` and a FuseSoC ``.core`` for ``d`` in ``out_dir``; returns
    the manifest."""
    from hdl.dataflow.pipeline import generate as _generate

    return _generate(d, out_dir, network_hash(d.network))


def verify(
    d: Design,
    out_dir: str | Path | None = None,
    *,
    vectors: int = 200,
    sim: str = "verilator",
    seed: int = 0,
    waves: bool = False,
    build_cache: str | Path | None = None,
) -> dict:
    """Generate ``d`` (into ``out_dir``, default ``build/<net>/hdl``) and prove it against
    the golden model in cocotb: ``vectors`` random frames with random back-pressure, then a
    throughput run. Returns mismatches (and the first differing stage and layer), measured
    latency and initiation interval, and the ideal II. Simulator builds are reused from
    ``build_cache`` (default :func:`hdl.verify.default_build_root`, shared by every run on
    this machine and keyed by the Verilog's content)."""
    from hdl.verify import verify as _verify

    out_dir = Path(out_dir or Path("build") / d.network.name / "hdl")
    doc = generate(d, out_dir)
    result = _verify(
        d,
        out_dir,
        vectors=vectors,
        sim=sim,
        seed=seed,
        waves=waves,
        build_dir=build_cache,
    )
    result["verilog"] = str(out_dir / doc["verilog"])
    return result
