"""Hardware configurations: the YAML mapping round trip and its errors."""

from __future__ import annotations

import pytest

from models.errors import DescriptionError
from models.hwconfig import Design, HardwareConfig, MemStyle, StageConfig
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
