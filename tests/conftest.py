"""Fixtures shared by the test packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: A small residual network with inline arrays (also the fuzzing harness's base).
RES_SMALL = Path(__file__).resolve().parent / "fixtures" / "res_small.yaml"


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per target of the fuzzing harness (tests/fuzz); default: a bounded "
        "number that keeps the default run short",
    )
    parser.addoption(
        "--fuzz-seed",
        type=int,
        default=None,
        metavar="S",
        help="explore the fuzzing harness's space from seed S (default: the fixed, "
        "derandomized examples CI runs)",
    )


@pytest.fixture
def residual_net(tmp_path):
    """A small residual network: conv + thresholds, 2x2 average pool, conv + thresholds,
    add of the pool's output (the skip), thresholds, global sum pool + thresholds, dense."""
    from codesign.models.loader import load

    path = tmp_path / "res_small.yaml"
    shutil.copyfile(RES_SMALL, path)
    return load(path)
