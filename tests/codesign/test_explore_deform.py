"""The deformable space (codesign.explore.deform): each column equal to the single-point
function it vectorises."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.models.deform import Variant
from codesign.models.deform.accuracy import variant_error
from codesign.models.deform.variants import with_variant
from codesign.models.errors import ConfigError
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load
from codesign.sim.cost import estimate
from codesign.sim.deform import GatherConfig, network_timing

from codesign.explore.deform import deform_space


@pytest.fixture(scope="module")
def space():
    return deform_space(
        "dcn_tiny", variants=("free", "rounded"), banks=(1, 2), ports=(1, 2), pe=(4, 16), frames=2
    )


def test_every_point_and_a_front(space):
    assert len(space) == 2 * 2 * 2 * 2
    assert space["pareto"].any()
    assert set(space["variant"]) == {"free", "rounded"}


def test_columns_equal_the_single_point_functions(space):
    net = load("dcn_tiny")
    row = space[(space.variant == "free") & (space.banks == 2) & (space.ports == 1)]
    row = row[row.pe == 16].iloc[0]
    # the other stages keep the automatic folding of the design with that frame store
    base = Design(net, HardwareConfig({"dconv": StageConfig(banks=2, ports=1)}))
    d = base.refold({"dconv": 16}, {})
    e = estimate(d)
    assert {k: int(row[k]) for k in ("lut", "ff", "dsp", "bram", "lutram")} == {
        k: e[k] for k in ("lut", "ff", "dsp", "bram", "lutram")
    }
    t = network_timing(net, GatherConfig(banks=2, ports=1), frames=2, seed=0)
    s = d.stage("dconv")
    gather = t.layers[0].gather_cycles.reshape(2, -1)
    mac = -(-s.mh // 16) * 9
    want = 32 * 32 + np.maximum(gather, mac).sum(axis=1).mean()
    assert row["cycles"] == want
    err = variant_error(net, Variant(), frames=2, seed=0)
    assert row["error"] == err.layer_rel_rms


def test_rounded_reads_one_port(space):
    r = space[space.variant == "rounded"]
    one, two = r[r.ports == 1], r[r.ports == 2]
    assert list(one["bram"]) == list(two["bram"])
    f = space[space.variant == "free"]
    assert (f[f.ports == 2]["bram"].to_numpy() > f[f.ports == 1]["bram"].to_numpy()).all()


def test_refusals():
    with pytest.raises(ConfigError, match=r"^network 'jet_tagger' must have one deformable"):
        deform_space("jet_tagger")
    with pytest.raises(ConfigError, match=r"^pe must be one of \[1, 2, 4, 8, 16\], not 3$"):
        deform_space("dcn_tiny", variants=("free",), pe=(3,), frames=1)
    with pytest.raises(ConfigError, match=r"^the deformable space: banks must be a power of two"):
        deform_space("dcn_tiny", variants=("free",), banks=(3,), frames=1)
    with pytest.raises(ConfigError, match=r"^variant 'wobbly'"):
        deform_space("dcn_tiny", variants=("wobbly",), frames=1)
    assert with_variant  # the space switches variants as codesign sim --variant does


def test_explore_and_its_cli_dispatch_a_deformable_network(tmp_path, capsys):
    """``codesign explore NET`` on a network with a deformable layer sweeps its deformable
    space (the dataflow space's analytic model has no closed form for it)."""
    import json

    from codesign.cli import main
    from codesign.explore import explore

    df = explore("dcn_tiny_dw", out=tmp_path, progress=False)
    assert df.attrs["space"] == "deformable" and df.attrs["network"] == "dcn_tiny_dw"
    assert df.attrs["front"] == int(df["pareto"].sum()) > 0
    assert {"variant", "banks", "ports", "pe", "cycles", "lut", "error"} <= set(df.columns)
    status = main(["explore", "dcn_tiny_dw", "--json", "--out", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert status in (0, None) and doc["front_size"] == df.attrs["front"]
    assert main(["explore", "dcn_tiny_dw", "--validate", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deformable layer" in err[0], err
