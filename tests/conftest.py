"""Fixtures shared by the test packages."""

from __future__ import annotations

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per target of the fuzzing harness (tests/fuzz); default: a bounded "
        "number that keeps the default run short",
    )


@pytest.fixture
def residual_net(tmp_path):
    """A small residual network: conv + thresholds, 2x2 average pool, conv + thresholds,
    add of the pool's output (the skip), thresholds, global sum pool + thresholds, dense."""
    import yaml
    from codesign.models.loader import load

    rng = np.random.default_rng(4)
    t = np.sort(rng.integers(-6, 7, (4, 3)), axis=1).tolist()
    doc = {
        "format": 1,
        "name": "res_small",
        "input": {"shape": [1, 8, 8], "type": "uint2"},
        "layers": [
            {"name": "a", "op": "conv2d", "weight": rng.integers(-2, 3, (4, 1, 3, 3)).tolist(),
             "padding": 1},
            {"name": "a_act", "op": "multithreshold", "thresholds": t},
            {"name": "pool", "op": "avgpool2d", "kernel": 2, "rounding": "half_up"},
            {"name": "b", "op": "conv2d", "weight": rng.integers(-2, 3, (4, 4, 3, 3)).tolist(),
             "padding": 1},
            {"name": "b_act", "op": "multithreshold", "thresholds": t},
            {"name": "add", "op": "add", "inputs": ["b_act", "pool"]},
            {"name": "add_act", "op": "multithreshold", "thresholds": [[1, 2, 4]] * 4},
            {"name": "gap", "op": "sumpool2d", "kernel": 4},
            {"name": "gap_act", "op": "multithreshold", "thresholds": [[8, 16, 32]] * 4},
            {"name": "flatten", "op": "flatten"},
            {"name": "fc", "op": "dense", "weight": rng.integers(-3, 4, (3, 4)).tolist()},
        ],
    }  # fmt: skip
    path = tmp_path / "res_small.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load(path)
