"""Hardware configurations: the YAML mapping round trip and its errors."""

from __future__ import annotations

import pytest
from codesign.models.errors import ConfigError, DescriptionError
from codesign.models.hwconfig import (
    LOGIC_ROM_MAX_DEPTH,
    Design,
    HardwareConfig,
    MemStyle,
    StageConfig,
    resolve_mem_style,
)
from codesign.models.loader import load


def test_to_dict_round_trips_and_omits_defaults():
    cfg = HardwareConfig(
        {
            "fc1": StageConfig(pe=4, simd=8, mem_style=MemStyle.BLOCK, fifo_depth=16),
            "fc2": StageConfig(),
        },
        clock_mhz=150.0,
    )
    doc = cfg.to_dict()
    assert doc == {
        "clock_mhz": 150.0,
        "stages": {"fc1": {"pe": 4, "simd": 8, "fifo_depth": 16, "mem_style": "block"}, "fc2": {}},
    }
    assert HardwareConfig.from_dict(doc) == cfg


def test_default_design_config_round_trips():
    d = Design(load("cnv_tiny"))
    assert HardwareConfig.from_dict(d.config.to_dict()) == d.config


def test_from_dict_names_the_bad_field():
    with pytest.raises(
        DescriptionError, match=r"^hw\.yaml: layer 'fc1': field 'fifo': is not a stage field"
    ):
        HardwareConfig.from_dict({"stages": {"fc1": {"fifo": 3}}}, source="hw.yaml")


def test_auto_mem_style_puts_roms_deeper_than_a_lut7_in_block_ram():
    """AUTO (the default) resolves per stage: tfc_w2a2's weight ROMs are 256-448 words deep
    (block RAM), cnv_tiny's convolutions 9 and 36 (logic), its classifier 4000 (block RAM);
    an explicit style is kept whatever the depth. (tfc_w1a1, whose XNOR lanes the default
    folding now counts in LUTs, has ROMs of 8-14 words: all in logic.)"""
    assert StageConfig().mem_style is MemStyle.AUTO
    w1 = Design(load("tfc_w1a1"))
    assert {c.mem_style for c in w1.config.stages.values()} == {MemStyle.DISTRIBUTED}
    d = Design(load("tfc_w2a2"))
    for s in d.stages:
        cfg = d.config[s.name]
        depth = (s.mw // cfg.simd) * (s.mh // cfg.pe)
        assert depth > LOGIC_ROM_MAX_DEPTH
        assert cfg.mem_style is MemStyle.BLOCK
    cnv = Design(load("cnv_tiny"))
    styles = {n: c.mem_style for n, c in cnv.config.stages.items()}
    assert styles["conv1"] is styles["conv2"] is MemStyle.DISTRIBUTED
    assert styles["fc"] is MemStyle.BLOCK
    assert styles["pool1"] is MemStyle.AUTO  # no weights: nothing to resolve
    forced = {s: StageConfig(d.config[s].pe, d.config[s].simd, "distributed") for s in ("fc0",)}
    d2 = Design(load("tfc_w2a2"), HardwareConfig({**d.config.stages, **forced}))
    assert d2.config["fc0"].mem_style is MemStyle.DISTRIBUTED


def test_resolve_mem_style_boundary():
    assert resolve_mem_style(MemStyle.AUTO, LOGIC_ROM_MAX_DEPTH) is MemStyle.DISTRIBUTED
    assert resolve_mem_style(MemStyle.AUTO, LOGIC_ROM_MAX_DEPTH + 1) is MemStyle.BLOCK
    assert resolve_mem_style(MemStyle.BLOCK, 2) is MemStyle.BLOCK
    assert resolve_mem_style(MemStyle.DISTRIBUTED, 4096) is MemStyle.DISTRIBUTED


# -- the stage graph: forks, add stages, skip FIFOs -------------------------------------------


def _residual(tmp_path, *, skip_first=False, extra: list | None = None, output=None):
    """input → conv a (thresholds) → conv b → add(b, a) [→ thresholds] (+ extra layers)."""
    import numpy as np
    import yaml

    rng = np.random.default_rng(0)
    w = lambda: rng.integers(-2, 3, (4, 4, 3, 3)).tolist()  # noqa: E731
    t = [[-4, 0, 4]] * 4
    layers = [
        {"name": "a", "op": "conv2d", "weight": rng.integers(-2, 3, (4, 1, 3, 3)).tolist(),
         "padding": 1},
        {"name": "a_act", "op": "multithreshold", "thresholds": t},
        {"name": "b", "op": "conv2d", "weight": w(), "padding": 1},
        {"name": "b_act", "op": "multithreshold", "thresholds": t},
        {"name": "add", "op": "add", "inputs": ["a_act", "b_act"] if skip_first
         else ["b_act", "a_act"]},
        {"name": "add_act", "op": "multithreshold", "thresholds": [[1, 3, 5]] * 4},
    ] + (extra or [])  # fmt: skip
    doc = {"format": 1, "name": "res", "input": {"shape": [1, 6, 6], "type": "uint2"}}
    doc["layers"] = layers
    if output:
        doc["output"] = output
    path = tmp_path / "res.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load(path)


def test_plan_builds_a_stage_graph_with_a_fork_and_an_add(tmp_path):
    from codesign.models.hwconfig import StageKind, readers

    d = Design(_residual(tmp_path))
    kinds = {s.name: (s.kind, s.sources, [la.name for la in s.layers]) for s in d.stages}
    assert kinds == {
        "a": (StageKind.CONV, (None,), ["a", "a_act"]),
        "b": (StageKind.CONV, ("a",), ["b", "b_act"]),
        "add": (StageKind.ADD, ("b", "a"), ["add", "add_act"]),  # the activation is fused
    }
    assert readers(d.stages) == {None: [("a", 0)], "a": [("b", 0), ("add", 1)], "b": [("add", 0)]}
    assert [name for _, _, name in d.fifos()] == ["b", "add", "add__b"]
    assert not d.has_fifo("a")  # the network input feeds one stage: no FIFO
    assert d.cycles("add") == 4 * 6 * 6 // d.config["add"].pe


def test_skip_fifo_default_is_the_deadlock_bound_and_grows_with_the_long_branch(tmp_path):
    d = Design(_residual(tmp_path))
    skip, long = d.join_bound("add", 1), d.join_bound("add", 0)
    assert skip > long  # the skip input waits for the two-convolution branch
    assert d.fifo_depth("add", 1) >= skip
    # the same bound whichever input of the add the skip is
    d2 = Design(_residual(tmp_path, skip_first=True))
    assert (d2.join_bound("add", 0), d2.join_bound("add", 1)) == (skip, long)
    # one row of 6 pixels x 4 channels behind per 3x3 'same' convolution, at least
    assert skip * d.config["add"].pe >= 2 * (6 + 1) * 4


def test_fifo_depth_b_is_configured_by_name_and_only_for_add_stages(tmp_path):
    from codesign.models.hwconfig import ConfigError

    net = _residual(tmp_path)
    doc = {"stages": {"add": {"pe": 2, "fifo_depth": 5, "fifo_depth_b": 77}}}
    d = Design(net, HardwareConfig.from_dict(doc))
    assert (d.fifo_depth("add"), d.fifo_depth("add", 1)) == (5, 77)
    # a design's config lists every PE and SIMD (simd 1: an add stage has no other choice)
    assert d.config.to_dict()["stages"]["add"] == {
        "pe": 2,
        "simd": 1,
        "fifo_depth": 5,
        "fifo_depth_b": 77,
    }
    with pytest.raises(
        ConfigError,
        match=r"^stage 'b': fifo_depth_b is the FIFO of a stage's second input \(an add's or a "
        r"deformable convolution's offsets\); a \w+ stage has one input$",
    ):
        Design(net, HardwareConfig({"b": StageConfig(fifo_depth_b=3)}))


def test_plan_refuses_unread_branches_and_outputs_read_elsewhere(tmp_path):
    from codesign.models.hwconfig import ConfigError, plan

    extra = [{"name": "dead", "op": "multithreshold", "inputs": "a_act", "thresholds": [[1]]}]
    net = _residual(tmp_path, extra=extra, output="add_act")
    with pytest.raises(ConfigError, match=r"^layer 'dead': its output is never read"):
        plan(net)
    extra = [{"name": "tail", "op": "multithreshold", "inputs": "b_act", "thresholds": [[1]]}]
    net = _residual(tmp_path, extra=extra, output="add_act")
    with pytest.raises(ConfigError, match=r"^layer 'tail': its output is never read"):
        plan(net)


def test_sum_pool_is_a_pool_stage_and_a_whole_map_window_is_global():
    d = Design(load("resnet_tiny"))
    gap, pool = d.stage("gap"), d.stage("pool")
    assert gap.global_pool and not pool.global_pool
    c, h, w = gap.input.shape
    assert d.cycles(gap) == h * w * c // d.config["gap"].pe


@pytest.mark.parametrize("clock", [0, -5.0, float("nan"), float("inf"), True, "100", None])
def test_clock_must_be_finite_positive_from_python(clock):
    """The same rule whether the config comes from a file or is built in Python."""
    with pytest.raises(
        ConfigError, match=r"^clock_mhz must be a finite positive number \(MHz\), not .+$"
    ):
        HardwareConfig({}, clock)


def test_stages_must_be_a_mapping():
    with pytest.raises(
        DescriptionError,
        match=r"^hw\.yaml: field 'stages': must be a mapping of stage name to stage fields, "
        r"not 7$",
    ):
        HardwareConfig.from_dict({"stages": 7}, source="hw.yaml")
