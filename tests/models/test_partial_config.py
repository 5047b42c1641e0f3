"""Partial hardware configs: what a config leaves out is folded automatically, balanced
around what it gives, and every stage's folding records where it came from."""

from __future__ import annotations

import pytest
from codesign.models.folding import Budget, balance, stage_usage
from codesign.models.hwconfig import (
    ConfigError,
    Design,
    HardwareConfig,
    MemStyle,
    Origin,
    StageConfig,
    stage_cycles,
)
from codesign.models.loader import load

from codesign.flows import design, load_config


def _folding(d: Design) -> dict[str, tuple[int, int]]:
    return {name: (c.pe, c.simd) for name, c in d.config.stages.items()}


def test_clock_only_config_is_the_automatic_folding(tmp_path):
    """FINN's issue #1430 trap: a config with only the clock used to give every stage
    PE = SIMD = 1 (jet_tagger: II 2048 instead of 32)."""
    net = load("jet_tagger")
    auto = Design(net)
    assert auto.ideal_ii == 32
    (tmp_path / "hw.yaml").write_text("clock_mhz: 150\n")
    for config in (HardwareConfig(clock_mhz=150.0), tmp_path / "hw.yaml"):
        d = design(net, config)
        assert d.ideal_ii == 32
        assert d.config.stages == auto.config.stages
        assert d.config.clock_mhz == 150
        assert {o.folding for o in d.origin.values()} == {"auto"}
    assert {o.folding for o in auto.origin.values()} == {"auto"}


def test_unlisted_stages_are_balanced_around_the_listed_one():
    net = load("jet_tagger")
    d = Design(net, HardwareConfig({"fc2": StageConfig(pe=2, simd=4)}))
    assert _folding(d)["fc2"] == (2, 4)
    assert d.cycles("fc2") == d.ideal_ii == 256  # the given stage is the slowest
    # the others are sped up to its pace and no further: each is within one step of it
    for s in d.stages:
        if s.name != "fc2":
            assert d.cycles(s) <= 256
            assert d.origin[s.name] == d.origin["fc1"]
    assert d.cycles("fc1") == 256  # (16/2)·(64/2): not grown past the given stage
    assert d.origin["fc2"].folding == "given"
    assert d.origin["fc1"].folding == "auto"
    assert (d.origin["fc1"].pe, d.origin["fc1"].simd) == (Origin.AUTO, Origin.AUTO)


def test_given_resources_count_as_spent():
    """With 40 DSPs, a given fc2 of 32 multipliers leaves 8 for the rest: the free stages
    get less than the automatic folding gives them in the same budget."""
    net = load("jet_tagger")
    d = Design(net)
    budget = Budget(dsp=40 / Budget().device.dsp, lut=1.0, bram=1.0)
    auto = balance(net, d.stages, budget)
    given = {"fc2": StageConfig(pe=4, simd=8)}
    mixed = balance(net, d.stages, budget, given=given)
    assert (mixed["fc2"].pe, mixed["fc2"].simd) == (4, 8)
    used = sum(stage_usage(s, mixed[s.name]).dsp for s in d.stages)
    assert used <= 40
    assert stage_usage(d.stage("fc2"), mixed["fc2"]).dsp == 32
    assert mixed["fc1"].pe * mixed["fc1"].simd < auto["fc1"].pe * auto["fc1"].simd


def test_fields_are_decided_one_by_one():
    """A stage that sets only mem_style or fifo_depth keeps the automatic PE and SIMD; one
    that sets only SIMD keeps it and gets an automatic PE."""
    net = load("jet_tagger")
    auto = Design(net)
    d = Design(
        net,
        HardwareConfig(
            {
                "fc1": StageConfig(mem_style=MemStyle.BLOCK),
                "fc2": StageConfig(fifo_depth=3),
                "fc3": StageConfig(simd=2),
            }
        ),
    )
    assert _folding(d)["fc1"] == _folding(auto)["fc1"]
    assert _folding(d)["fc2"] == _folding(auto)["fc2"]
    assert d.config["fc1"].mem_style is MemStyle.BLOCK
    assert d.fifo_depth("fc2") == 3
    assert d.config["fc3"].simd == 2
    assert d.cycles("fc3") <= auto.ideal_ii == d.ideal_ii  # its PE grew to keep the pace
    assert [d.origin[n].folding for n in ("fc1", "fc2", "fc3", "fc4")] == [
        "auto",
        "auto",
        "simd given",
        "auto",
    ]
    assert d.origin["fc3"].to_dict() == {"pe": "auto", "simd": "given", "folding": "simd given"}


def test_a_field_without_choice_does_not_make_a_folding_partial():
    """A pool's SIMD is always 1: a config that sets its PE gives its whole folding."""
    d = Design(load("cnv_tiny"), HardwareConfig({"pool1": StageConfig(pe=2)}))
    assert (d.config["pool1"].pe, d.config["pool1"].simd) == (2, 1)
    assert d.origin["pool1"].folding == "given"
    assert d.origin["pool1"].simd is Origin.AUTO


def test_a_complete_config_is_kept_as_given():
    net = load("tfc_w1a1")
    folding = {"fc0": (16, 49), "fc1": (8, 8), "fc2": (8, 8), "fc3": (10, 8)}
    config = HardwareConfig({k: StageConfig(pe=p, simd=s) for k, (p, s) in folding.items()})
    d = Design(net, config)
    assert _folding(d) == folding and d.ideal_ii == 64
    assert {o.folding for o in d.origin.values()} == {"given"}
    # the design's own config is complete: written and read back, it is the same design
    again = Design(net, HardwareConfig.from_dict(d.config.to_dict()))
    assert again.config == d.config


def test_design_config_lists_every_stage():
    d = Design(load("resnet_tiny"), HardwareConfig({"conv1": StageConfig(pe=2)}))
    assert list(d.config.stages) == [s.name for s in d.stages]
    assert all(isinstance(c.pe, int) and isinstance(c.simd, int) for c in d.config.stages.values())
    for s in d.stages:
        assert d.cycles(s) == stage_cycles(s, d.config[s.name]) <= d.ideal_ii


def test_a_stage_the_network_lacks_lists_its_stages(tmp_path):
    net = load("jet_tagger")
    with pytest.raises(
        ConfigError,
        match=r"^config names stage 'fc5', which jet_tagger does not have; stages: fc1, fc2, "
        r"fc3, fc4$",
    ):
        Design(net, HardwareConfig({"fc5": StageConfig(pe=2)}))
    (tmp_path / "hw.yaml").write_text("stages:\n  relu1: {fifo_depth: 4}\n")
    with pytest.raises(
        ConfigError,
        match=r"^.*hw\.yaml: config names stage 'relu1', which jet_tagger does not have; "
        r"stages: fc1, fc2, fc3, fc4$",
    ):
        design(net, tmp_path / "hw.yaml")


def test_null_pe_in_yaml_is_automatic(tmp_path):
    (tmp_path / "hw.yaml").write_text("stages:\n  fc1: {pe: null, simd: 4}\n")
    config = load_config(tmp_path / "hw.yaml")
    assert config["fc1"] == StageConfig(simd=4)
    d = design(load("jet_tagger"), config)
    assert d.config["fc1"].simd == 4 and d.origin["fc1"].folding == "simd given"
