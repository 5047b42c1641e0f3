"""Hardware configurations: the YAML mapping round trip and its errors."""

from __future__ import annotations

import pytest

from models.errors import DescriptionError
from models.hwconfig import (
    LOGIC_ROM_MAX_DEPTH,
    Design,
    HardwareConfig,
    MemStyle,
    StageConfig,
    resolve_mem_style,
)
from models.loader import load


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
