"""The pipeline facts of models/pipelining.py, and the config knob that selects them."""

from __future__ import annotations

import re

import pytest
from codesign.models.errors import DescriptionError
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load, zoo_names
from codesign.models.pipelining import (
    PipelineMode,
    credit_depth,
    matrix_stages,
    pool_stages,
    stage_pipeline,
    tree_groups,
)
from codesign.sim.dataflow import random_foldings, simulate


@pytest.mark.parametrize(
    ("terms", "groups"),
    [(1, ()), (2, (1,)), (3, (1, 1)), (4, (1, 1)), (8, (1, 1, 1)), (56, (1,) * 6)],
)
def test_tree_groups_register_every_level(terms, groups):
    """One register per adder level (TREE_LEVELS = 1): two 24-bit carry chains in series
    with their routing were jet_tagger's critical path at 127 MHz."""
    assert tree_groups(terms, PipelineMode.AUTO) == groups
    assert tree_groups(terms, PipelineMode.OFF) == ()


def test_matrix_stages():
    auto, off = PipelineMode.AUTO, PipelineMode.OFF
    assert matrix_stages(8, False, off) == ("fetch", "result")
    assert matrix_stages(8, False, auto) == (
        "fetch", "operand", "multiply", "product", "land", "tree", "tree", "tree", "result",
    )  # fmt: skip
    assert matrix_stages(8, True, auto) == (
        "fetch", "operand", "tree", "tree", "tree", "result",
    )  # fmt: skip
    assert matrix_stages(1, False, auto, block=True) == (
        "fetch", "operand", "memory", "weight", "multiply", "product", "land", "result",
    )  # fmt: skip


@pytest.mark.parametrize(("latency", "gap", "depth"), [(1, 1, 4), (9, 1, 12), (9, 4, 3), (2, 9, 2)])
def test_credit_depth_lets_the_head_issue_every_gap(latency, gap, depth):
    assert credit_depth(latency, gap) == depth
    assert depth * gap >= latency + 3


def test_a_windowed_pool_is_a_credit_pipeline_and_a_global_one_is_not():
    """The window's read stages (READ_LATENCY) then, for an average, the sum's register;
    results at least a window's taps apart; the same in both modes."""
    assert pool_stages(False) == ("read", "output")
    assert pool_stages(True) == ("read", "output", "sum")
    for mode in PipelineMode:
        d = Design(load("cnv_tiny"), HardwareConfig(pipeline=mode))
        pl = stage_pipeline(d.stage("pool1"), d.config["pool1"], mode)
        assert (pl.head, pl.activation, pl.gap) == (("read", "output"), (), 4)
        assert (pl.latency, pl.queue_depth) == (2, 2)
        r = Design(load("resnet_tiny"), HardwareConfig(pipeline=mode))
        pl = r.pipeline("pool")  # 2x2 average
        assert (pl.latency, pl.gap, pl.queue_depth) == (3, 4, 2)
        assert r.pipeline("gap") is None  # global: one accumulator per channel


def test_pipeline_knob_in_configs():
    assert HardwareConfig().pipeline is PipelineMode.AUTO
    c = HardwareConfig.from_dict({"pipeline": "off", "stages": {}})
    assert c.pipeline is PipelineMode.OFF and c.to_dict()["pipeline"] == "off"
    assert "pipeline" not in HardwareConfig().to_dict()
    with pytest.raises(
        DescriptionError,
        match=re.escape("hw.yaml: field 'pipeline': must be one of auto, off, not 'deep'"),
    ):
        HardwareConfig.from_dict({"pipeline": "deep"}, source="hw.yaml")


#: Zoo networks whose II is the closed form's: not those with a deformable stage, whose frame
#: time depends on each frame's offsets and whose gather loads a frame before it computes it
#: (tests/sim/test_dataflow_deform.py checks the simulator against its RTL instead).
FIXED_II = [n for n in zoo_names() if not n.startswith("dcn_")]


@pytest.mark.parametrize("mode", ["auto", "off"])
@pytest.mark.parametrize("name", FIXED_II)
def test_pipelining_costs_no_throughput(name, mode):
    """At every zoo network's default folding and at random ones, the simulated II equals
    the closed-form ideal II in both modes: the queues are deep enough that a credit never
    holds the head back. The simulator raises if a result ever finds its queue full (the
    RTL writes results without looking)."""
    d = Design(load(name), HardwareConfig(pipeline=mode))
    assert simulate(d, frames=6).ii == d.ideal_ii
    pe, simd = random_foldings(d, 3, seed=7)
    for i in range(3):
        cfg = {s.name: StageConfig(int(pe[s.name][i]), int(simd[s.name][i])) for s in d.stages}
        di = Design(d.network, HardwareConfig(cfg, pipeline=mode))
        if di.ideal_ii <= 20_000:
            assert simulate(di, frames=4).ii == di.ideal_ii
