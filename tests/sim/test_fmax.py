"""codesign.sim.fmax: the Fmax model against the nextpnr results stored in sim/fmax_data.json
(no place and route here: the stored per-stage samples and whole-network figures are what
``python -m codesign.fmax_fit`` measured, with the commit each was measured at).

- every zoo network with a stored whole-network Fmax is predicted within :data:`REL` by
  the model fitted without it (leave-one-network-out: neither its stage samples nor its
  whole-network figure enter that fit);
- the stored coefficients are what :func:`fit` gives on the stored data (so a refit after
  new measurements cannot be forgotten);
- the vectorised form equals the per-design function on random foldings;
- the paths follow the models/ facts they are built from (a block-RAM weight ROM is a
  block-RAM path, a ROM in logic is not).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from codesign.models.hwconfig import Design, HardwareConfig, MemStyle, StageConfig
from codesign.models.loader import load
from codesign.sim import fmax

#: Relative tolerance of a held-out network's predicted Fmax (issue 15).
REL = 0.15

#: Held-out networks the model misses, with the bound of the recorded miss (none since the
#: refit on the session-4 RTL: every zoo network within 11.9 %, tfc_w1a1 the farthest).
KNOWN_MISSES: dict[str, float] = {}

DOC = json.loads(fmax.DATA.read_text())
NETWORKS = sorted(DOC["networks"])


@pytest.mark.parametrize("net", NETWORKS)
def test_held_out_network_within_tolerance(net):
    coef = fmax.fit(DOC, exclude=net)
    measured = DOC["networks"][net]["fmax_mhz"]
    est = fmax.predict_fmax(Design(load(net)), coef)
    err = est.fmax_mhz / measured - 1
    if net in KNOWN_MISSES:  # still missed, and by no more than recorded
        assert REL < abs(err) <= KNOWN_MISSES[net], (net, err)
        return
    assert abs(err) <= REL, (
        f"{net}: predicted {est.fmax_mhz:.1f} MHz ({est.stage}: {est.path}), "
        f"nextpnr {measured} MHz ({100 * err:+.1f}%)"
    )


def test_stored_coefficients_are_the_fit_of_the_stored_data():
    # to a picosecond: least squares may differ in the last bits between BLAS builds
    coef = fmax.fit(DOC)
    assert coef["design"] == pytest.approx(DOC["coefficients"]["design"], abs=1e-3)
    assert coef["terms"] == pytest.approx(DOC["coefficients"]["terms"], abs=1e-3)


def test_samples_cover_every_network_and_name_their_commit():
    nets = {s["spec"]["net"] for s in DOC["samples"].values()}
    assert set(NETWORKS) <= nets
    for rec in [*DOC["samples"].values(), *DOC["networks"].values()]:
        assert rec["commit"]


@pytest.mark.parametrize("net", ["jet_tagger", "tfc_w2a2", "cnv_tiny", "resnet_tiny"])
def test_batch_equals_scalar_on_random_foldings(net):
    base = Design(load(net))
    rng = np.random.default_rng(15)
    n = 12
    pe = np.array([[rng.choice(s.pe_choices()) for s in base.stages] for _ in range(n)])
    simd = np.array([[rng.choice(s.simd_choices()) for s in base.stages] for _ in range(n)])
    batch = fmax.predict_fmax_batch(base, pe, simd)
    assert batch.shape == (n,)
    for k in range(n):
        cfg = HardwareConfig(
            stages={
                s.name: StageConfig(pe=int(pe[k, j]), simd=int(simd[k, j]))
                for j, s in enumerate(base.stages)
            }
        )
        one = fmax.predict_fmax(Design(base.network, cfg))
        assert batch[k] == pytest.approx(one.fmax_mhz, rel=1e-12)
    # one point repeated a thousand times costs what one point does and gives the same
    many = fmax.predict_fmax_batch(base, np.repeat(pe[:1], 1000, 0), np.repeat(simd[:1], 1000, 0))
    assert np.all(many == batch[0])


def test_batch_rejects_wrong_shapes():
    d = Design(load("jet_tagger"))
    with pytest.raises(ValueError, match=r"^pe and simd must be arrays of shape \(N, 4\)"):
        fmax.predict_fmax_batch(d, np.ones((3, 2), int), np.ones((3, 2), int))


def test_weight_memory_style_decides_the_source_of_the_rom_path():
    net = load("jet_tagger")
    s = Design(net).stage("fc1")
    c = Design(net).config["fc1"]
    mode = Design(net).config.pipeline
    logic = fmax.stage_paths(s, StageConfig(c.pe, c.simd, MemStyle.DISTRIBUTED), mode)
    block = fmax.stage_paths(s, StageConfig(c.pe, c.simd, MemStyle.BLOCK), mode)
    assert logic["mvau.weights"][fmax.TERMS.index("bram")] == 0
    assert logic["mvau.weights"][fmax.TERMS.index("lut")] >= 1
    # in block RAM through its output register (hdl/dataflow/bram.py RegisteredRom)
    assert block["mvau.weights"][fmax.TERMS.index("bram_reg")] == 1
    assert block["mvau.weights"][fmax.TERMS.index("bram")] == 0


def test_block_ram_output_register_switches_the_source_term(monkeypatch):
    net = load("tfc_w2a2")
    d = Design(net)
    s, c, mode = d.stage("fc1"), d.config["fc1"], d.config.pipeline
    monkeypatch.setitem(fmax.BRAM_OUTREG, "weights", False)
    p = fmax.stage_paths(s, c, mode)["mvau.weights"]
    assert p[fmax.TERMS.index("bram")] == 1 and p[fmax.TERMS.index("bram_reg")] == 0
    monkeypatch.setitem(fmax.BRAM_OUTREG, "weights", True)
    p = fmax.stage_paths(s, c, mode)["mvau.weights"]
    assert p[fmax.TERMS.index("bram")] == 0 and p[fmax.TERMS.index("bram_reg")] == 1
    # a FIFO in block RAM is a BlockFIFO, read through the block's output register
    assert fmax.BRAM_OUTREG["fifo"]


def test_batch_takes_analytic_foldings_and_ranks_by_throughput():
    from codesign.sim.dataflow.analytic import analytic, random_foldings

    d = Design(load("cnv_tiny"))
    pe, simd = random_foldings(d, 200, seed=3)
    f = fmax.predict_fmax_batch(d, pe, simd)
    cols = [
        np.stack([pe[s.name] for s in d.stages], 1),
        np.stack([simd[s.name] for s in d.stages], 1),
    ]
    assert np.array_equal(f, fmax.predict_fmax_batch(d, *cols))
    fps = f * 1e6 / analytic(d, pe, simd)["ii"]
    best = int(np.argmax(fps))
    cfg = HardwareConfig(
        stages={
            s.name: StageConfig(pe=int(pe[s.name][best]), simd=int(simd[s.name][best]))
            for s in d.stages
        }
    )
    one = Design(d.network, cfg)
    assert fps[best] == pytest.approx(fmax.predict_fmax(one).fmax_mhz * 1e6 / one.ideal_ii)
    # a stage left out keeps the design's folding
    only = fmax.predict_fmax_batch(d, {"conv1": pe["conv1"]}, {"conv1": simd["conv1"]})
    assert only.shape == (200,)
