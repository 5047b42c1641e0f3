"""The slow tier of the explorer: measure chosen design points with the project's own flows
(the event simulator, cocotb on Verilator or Icarus, Yosys and nextpnr), one task per point,
run on Dask distributed.

:func:`measure` measures one point in this process; :func:`run_tasks` runs many on a Dask
cluster (a :class:`~distributed.LocalCluster` on this machine, or an existing cluster by its
scheduler's address) and hands each result to a callback in the calling process as it
arrives, so the explorer can store it at once.

Every call of :func:`measure` generates its Verilog into a directory of its own, so two
workers measuring two designs of one network at once never write into the same place (the
flows' default, ``build/<network>/...``, is one directory per network). The caches the flows
share are safe to share: simulator builds are keyed by the Verilog's content and built under
a lock (:func:`codesign.hdl.verify.default_build_root`), synthesis results are keyed by the
design and written atomically (:func:`codesign.synth.default_cache_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from codesign.models.errors import UserError

__all__ = ["CHECKS", "DaskMissingError", "measure", "run_tasks"]

#: What :func:`measure` can run, in the order it runs them: the event simulator, the RTL in
#: cocotb, synthesis for ECP5.
CHECKS = ("sim", "rtl", "synth")

#: The keyword arguments of :func:`measure` a task may carry besides its network and config.
TASK_OPTIONS = ("checks", "sim", "vectors", "pnr", "seed", "build_dir", "cache_dir")

#: Suffixes of description files (a task's network given as a path).
_FILES = (".yaml", ".yml", ".json", ".onnx")


class DaskMissingError(UserError, ImportError):
    """Dask distributed, which :func:`run_tasks` runs on, is not installed."""


def measure(
    network: str,
    config: Mapping,
    *,
    checks: Sequence[str] = CHECKS,
    sim: str = "verilator",
    vectors: int = 20,
    pnr: bool = True,
    seed: int = 0,
    build_dir: str | None = None,
    cache_dir: str | None = None,
) -> dict:
    """Measure one design point with the project's flows.

    Parameters
    ----------
    network
        A zoo name, or the path of a description (``.yaml``, ``.yml``, ``.json``) or of a
        QONNX ``.onnx`` model (see :func:`codesign.load`).
    config
        A :class:`~codesign.models.hwconfig.HardwareConfig` as a mapping
        (:meth:`~codesign.models.hwconfig.HardwareConfig.to_dict`); what it leaves out is
        folded automatically (:func:`codesign.design`).
    checks
        Any of ``"sim"`` (:func:`codesign.simulate`, 8 frames at full input rate), ``"rtl"``
        (:func:`codesign.verify`: ``vectors`` random frames through the generated Verilog in
        cocotb, compared with the golden model, then a throughput run) and ``"synth"``
        (:func:`codesign.synthesize` for ECP5); they run in that order.
    sim
        The RTL simulator of ``"rtl"``: ``"verilator"`` or ``"icarus"``.
    vectors
        Random frames of ``"rtl"``.
    pnr
        Place and route for Fmax in ``"synth"`` (nextpnr; minutes on a large design).
    seed
        The seed of ``"rtl"``'s random frames and back-pressure, and nextpnr's placement seed.
    build_dir
        Where the generated Verilog goes: a new directory ``<network>-<config hash>-<random>``
        under it, kept. None: a temporary directory, removed when done.
    cache_dir
        The synthesis result cache (default :func:`codesign.synth.default_cache_dir`, shared
        by every run of this user: a design synthesized before returns at once).

    Returns
    -------
    dict
        Plain Python numbers, keys only for the checks run: ``sim_ii`` (cycles, float),
        ``sim_latency`` (cycles); ``rtl_ii``, ``rtl_latency`` (measured by the bench; None
        when it timed out), ``mismatches`` (output elements that differ from the golden
        model); ``lut``, ``ff``, ``dsp``, ``bram``, and with ``pnr`` ``fmax_mhz`` (MHz, None
        when nextpnr gives none: a design that does not fit); then ``seconds`` (wall time of
        the whole call). When the cocotb test fails (a stage's output, a ``tlast`` or a
        timeout, not only output mismatches) ``error`` holds its message, beside the figures.

    Raises
    ------
    ValueError
        For an unknown check or an empty ``checks``.
    codesign.UserError
        For a network or config that cannot be loaded or designed, or a flow that cannot run
        (a tool missing: :class:`codesign.synth.SynthError`, ...).
    """
    start = time.perf_counter()
    checks = _checks(checks)
    import codesign
    from codesign.models.hwconfig import HardwareConfig

    net = codesign.load(network)
    d = codesign.design(net, config=HardwareConfig.from_dict(config, source="config"))
    out: dict[str, Any] = {}
    if "sim" in checks:
        p = codesign.simulate(d)
        out.update(sim_ii=_number(p.ii, float), sim_latency=_number(p.latency, int))
    if "rtl" in checks or "synth" in checks:
        with _workdir(build_dir, net.name, config) as work:
            if "rtl" in checks:
                r = codesign.verify(d, work / "hdl", vectors=vectors, sim=sim, seed=seed)
                out.update(
                    rtl_ii=_number(r.get("ii"), float),
                    rtl_latency=_number(r.get("latency"), int),
                    mismatches=_number(r["mismatches"], int),
                )
                if not r.get("passed", True):
                    out["error"] = _line(f"rtl: {r.get('failure') or 'the cocotb test failed'}")
            if "synth" in checks:
                s = codesign.synthesize(
                    d,
                    target="ecp5",
                    pnr=pnr,
                    out_dir=work / "synth",
                    cache_dir=cache_dir,
                    seed=seed,
                )
                for k in ("lut", "ff", "dsp", "bram"):
                    out[k] = _number(s[k], int)
                if pnr:
                    out["fmax_mhz"] = _number(s.get("fmax_mhz"), float)
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def run_tasks(
    tasks: Sequence[Mapping],
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    on_result: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> list[dict]:
    """Measure design points on Dask distributed, one task per point (:func:`measure`).

    Parameters
    ----------
    tasks
        Each a mapping ``{"key": str, "network": str, "config": dict}`` plus any keyword of
        :func:`measure` (:data:`TASK_OPTIONS`); keys unique. A network given as a relative
        path of an existing file is sent as its absolute path.
    scheduler
        The address of an existing cluster's scheduler (``tcp://host:port``); None starts a
        :class:`~distributed.LocalCluster` on this machine (worker processes of one thread
        each), closed when done.
    n_workers
        Workers of the local cluster (default 2); only without ``scheduler``.
    on_result
        Called in this process with each result as it arrives (in the order they finish):
        ``{"key": ..., **measure(...)}``, or ``{"key": ..., "error": "<one line>"}`` for a
        task that raised (the sweep goes on) or whose workers kept dying.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    list of dict
        The results in the order of ``tasks``, as given to ``on_result``.

    Notes
    -----
    Each task is submitted under a Dask key made of its ``key`` and a hash of its contents,
    so a sweep never runs one point twice, and two sweeps on one shared cluster that reuse a
    key for different points do not take each other's results. When a worker dies, the
    scheduler runs its tasks again on the others (up to Dask's
    ``distributed.scheduler.allowed-failures`` deaths per task, 3 by default); each result is
    still handed over once.

    Raises
    ------
    TypeError, ValueError
        For a malformed task (before anything runs).
    DaskMissingError
        When Dask distributed is not installed.
    """
    tasks = [_checked_task(i, t) for i, t in enumerate(tasks)]
    keys = [t["key"] for t in tasks]
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            raise ValueError(f"tasks' keys must be unique, not {k!r} twice")
        seen.add(k)
    if scheduler is not None:
        if n_workers is not None:
            raise ValueError(
                "n_workers applies to the local cluster only: leave it out with a scheduler"
            )
        if not isinstance(scheduler, str):
            raise TypeError(
                f"scheduler must be an address such as 'tcp://host:port', not {scheduler!r}"
            )
    elif n_workers is not None and (
        not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1
    ):
        raise ValueError(f"n_workers must be a positive int, not {n_workers!r}")
    client_cls, cluster_cls, as_completed = _dask()
    from tqdm import tqdm

    results: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                cluster_cls(
                    n_workers=n_workers or 2,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(client_cls(cluster))
        else:
            client = stack.enter_context(client_cls(scheduler))
        futures = {client.submit(_run_task, t, key=_dask_key(t)): t["key"] for t in tasks}
        bar = stack.enter_context(
            tqdm(
                total=len(tasks),
                desc="validate",
                unit="task",
                file=sys.stderr,
                disable=not progress,
            )
        )
        done = as_completed(list(futures), loop=client.loop, with_results=True, raise_errors=False)
        for future, value in done:
            key = futures[future]
            if key in results:  # handed over once, whatever happened on the cluster
                continue
            if future.status == "error":  # raised outside measure(): its worker kept dying
                row = {"key": key, "error": _line(_describe(value[1]))}
            elif isinstance(value, BaseException):  # cancelled
                row = {"key": key, "error": _line(_describe(value))}
            else:
                row = value
            results[key] = row
            future.release()
            bar.update(1)
            if on_result is not None:
                on_result(row)
    return [results[k] for k in keys]


# -- helpers ---------------------------------------------------------------------------------


def _run_task(task: dict) -> dict:
    """A task on a worker: :func:`measure`'s result, or the error it raised in one line."""
    start = time.perf_counter()
    opts = {k: v for k, v in task.items() if k not in ("key", "network", "config")}
    try:
        return {"key": task["key"], **measure(task["network"], task["config"], **opts)}
    except Exception as e:  # a bad point must not end the sweep
        return {
            "key": task["key"],
            "error": _line(_describe(e)),
            "seconds": round(time.perf_counter() - start, 3),
        }


def _checks(checks: Sequence[str]) -> tuple[str, ...]:
    if isinstance(checks, str) or not isinstance(checks, Sequence):
        raise TypeError(f"checks must be a tuple of {', '.join(CHECKS)}, not {checks!r}")
    bad = [c for c in checks if c not in CHECKS]
    if bad or not checks:
        raise ValueError(
            f"checks must be one or more of {', '.join(CHECKS)}, not {bad[0] if bad else checks!r}"
        )
    return tuple(c for c in CHECKS if c in checks)


def _checked_task(i: int, task: Mapping) -> dict:
    if not isinstance(task, Mapping):
        raise TypeError(f"tasks[{i}] must be a mapping, not {task!r}")
    for name, kind, what in (
        ("key", str, "str"),
        ("network", str | Path, "zoo name or path"),
        ("config", Mapping, "mapping"),
    ):
        if name not in task:
            raise ValueError(f"tasks[{i}] must have a {name!r}")
        if not isinstance(task[name], kind):
            raise TypeError(f"tasks[{i}][{name!r}] must be a {what}, not {task[name]!r}")
    extra = sorted(set(task) - {"key", "network", "config", *TASK_OPTIONS})
    if extra:
        raise ValueError(
            f"tasks[{i}] field {extra[0]!r} must be one of key, network, config, "
            f"{', '.join(TASK_OPTIONS)}"
        )
    out = {**task, "config": _plain(task["config"])}
    if "checks" in out:
        out["checks"] = _checks(out["checks"])
    network = Path(task["network"])
    if network.suffix.lower() in _FILES and network.is_file():  # a worker may run elsewhere
        out["network"] = str(network.resolve())
    else:
        out["network"] = str(task["network"])
    return out


def _plain(doc: Any) -> Any:
    """A config mapping as plain dicts (what pickles and hashes the same everywhere)."""
    if isinstance(doc, Mapping):
        return {str(k): _plain(v) for k, v in doc.items()}
    return doc


def _dask_key(task: dict) -> str:
    digest = hashlib.sha256(json.dumps(task, sort_keys=True, default=str).encode()).hexdigest()
    return f"validate-{task['key']}-{digest[:16]}"


def _dask():
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DaskMissingError(
            "validation runs on Dask distributed, which is not installed: "
            "pip install 'dask[distributed]'"
        ) from None
    return Client, LocalCluster, as_completed


@contextlib.contextmanager
def _workdir(build_dir: str | None, name: str, config: Mapping) -> Iterator[Path]:
    """A directory of this call's own (kept under ``build_dir``, else temporary)."""
    digest = hashlib.sha256(
        json.dumps(_plain(config), sort_keys=True, default=str).encode()
    ).hexdigest()
    prefix = f"{name}-{digest[:10]}-"
    if build_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"codesign-validate-{prefix}") as tmp:
            yield Path(tmp)
    else:
        root = Path(build_dir)
        root.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def _number(v: Any, kind: type) -> int | float | None:
    """``v`` as a plain int or float (numpy scalars too); None stays None."""
    if v is None:
        return None
    return kind(v.item() if hasattr(v, "item") else v)


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _line(text: str) -> str:
    """The first line of ``text``."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
