"""A ROM in block RAM whose word arrives two cycles after its address: the block RAM's
address register, then an output register.

On ECP5 (``target="ecp5"``) the ROM is built from ``DP16KD`` instances with their own output
register (``REGMODE "OUTREG"``): Yosys maps a memory to DP16KD with ``REGMODE "NOREG"``
(its ``brams_map_16kd.v``) and keeps a following register in the fabric, and the block's
clock-to-output without its register, 5.6-5.8 ns at speed 6 against 0.96 ns with it, leaves
no room for the routing out of the block at 150 MHz. The instances take the shape Yosys
would choose (:func:`codesign.models.device.bram_tiling`, so the block-RAM count of the cost
model holds), hold only the ROM's non-constant bit columns (as Yosys's ``opt_mem`` does), and
their contents follow the layout of Yosys's mapping (``tests/hdl/test_bram.py`` compares
them). Every other target gets the portable form: a ``Memory`` with a synchronous read port
and a register behind it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from amaranth import Cat, ClockSignal, Const, Module, Signal, Value, unsigned
from amaranth.hdl import Instance
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.device import TDP_SHAPES, bram_tiling, tdp_brams

__all__ = ["RegisteredRam", "RegisteredRom", "dp16kd_initvals"]

#: Targets with a block-RAM primitive; None is the portable path.
TARGETS = (None, "ecp5")

#: Lowest address pin of a DP16KD port for each data width (the pins below it are 0).
_ADDR_SHIFT = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4, 36: 5}


def dp16kd_initvals(words: Sequence[int], width: int) -> list[int]:
    """The 64 ``INITVAL_xx`` values (320 bits each) of a DP16KD holding ``words`` of
    ``width`` bits (1, 2, 4, 9, 18 or 36) from address 0.

    The block is 1024 rows of 18 bits, row ``r`` at bits ``20*(r%16)`` of ``INITVAL_(r//16)``,
    each row two 9-bit halves; a word of 4 bits or fewer fills the low 8 bits of a half, a
    9-bit word a half, an 18-bit word a row, a 36-bit word two rows (low bits first).
    """
    if width not in _ADDR_SHIFT:
        raise ValueError(f"DP16KD width must be one of {sorted(_ADDR_SHIFT)}, not {width!r}")
    capacity = 16384 // width if width <= 4 else 18432 // width
    if len(words) > capacity:
        raise ValueError(f"{len(words)} words of {width} bits do not fit one DP16KD")
    rows = [0] * 1024
    mask = (1 << width) - 1
    for a, word in enumerate(words):
        word = int(word) & mask
        if width == 36:
            rows[2 * a] |= word & 0x3FFFF
            rows[2 * a + 1] |= word >> 18
        elif width == 18:
            rows[a] |= word
        elif width == 9:
            rows[a // 2] |= word << (9 * (a % 2))
        else:
            per_row = 16 // width
            k = a % per_row
            rows[a // per_row] |= word << (width * k + (1 if k >= per_row // 2 else 0))
    return [sum(rows[16 * b + i] << (20 * i) for i in range(16)) for b in range(64)]


class RegisteredRom(wiring.Component):
    """``data`` is the word at the ``addr`` of two cycles before (no enable: a pipeline that
    never stalls).

    Parameters
    ----------
    width
        Bits of a word.
    init
        The words (a ROM of ``max(len(init), 2)`` words, padded with 0).
    target
        None for the portable ``Memory`` and register, ``"ecp5"`` for DP16KD instances.
    name
        The portable ``Memory``'s name (``weights``: :mod:`codesign.hdl.memfiles` moves the
        contents of memories of that name into ``$readmemh`` files).
    """

    def __init__(
        self, *, width: int, init: Sequence[int], target: str | None = None, name: str = "rom"
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, not {width!r}")
        self._width, self._target, self._name = width, target, name
        words = [int(v) & ((1 << width) - 1) for v in init]
        self._words = words + [0] * (max(len(words), 2) - len(words))
        super().__init__({"addr": In(range(len(self._words))), "data": Out(width)})

    @property
    def depth(self) -> int:
        return len(self._words)

    def _live_columns(self) -> list[int]:
        """Bit columns that are not the same in every word."""
        every = ~0
        anyone = 0
        for wd in self._words:
            every &= wd
            anyone |= wd
        return [b for b in range(self._width) if (every >> b) & 1 != (anyone >> b) & 1]

    @property
    def blocks(self) -> int:
        """DP16KD instances on ECP5 (0 on the portable path, where Yosys chooses)."""
        if self._target != "ecp5":
            return 0
        live = len(self._live_columns())
        if not live:
            return 0
        d, w = bram_tiling(self.depth, live)
        return math.ceil(self.depth / d) * math.ceil(live / w)

    def elaborate(self, platform):
        m = Module()
        if self._target != "ecp5":
            m.submodules[self._name] = rom = memory.Memory(
                shape=unsigned(self._width),
                depth=self.depth,
                init=self._words,
                attrs={"ram_style": "block"},
            )
            rd = rom.read_port()
            m.d.comb += rd.addr.eq(self.addr)
            m.d.sync += self.data.eq(rd.data)
            return m
        live = self._live_columns()
        word = [Const((self._words[0] >> b) & 1, 1) for b in range(self._width)]
        if live:
            for b, bit in zip(live, self._ecp5_blocks(m, live), strict=True):
                word[b] = bit
        m.d.comb += self.data.eq(Cat(*word))
        return m

    def _ecp5_blocks(self, m: Module, live: list[int]) -> list:
        """DP16KD banks holding the ``live`` columns; their registered output bits in order."""
        d, w = bram_tiling(self.depth, len(live))
        banks = math.ceil(self.depth / d)

        def block(k: int, taken: list[int], data: Signal, name: str) -> Instance:
            chunk = self._words[k * d : (k + 1) * d]
            columns = [live[j] for j in taken]
            part = [sum(((wd >> b) & 1) << j for j, b in enumerate(columns)) for wd in chunk]
            return _dp16kd(width=w, depth=d, raddr=self.addr, data=data, init=part)

        word = _banks(m, self.addr, len(live), d, w, banks, block)
        return [word[j] for j in range(len(live))]


class RegisteredRam(wiring.Component):
    """A memory of ``depth`` words with a write port and a read port whose word arrives two
    cycles after its address (address register and output register, no enable).

    A write of ``w_data`` at ``w_addr`` when ``w_en``; ``r_data`` is the word at the
    ``r_addr`` of two cycles before. Reading the address being written in the same cycle
    is undefined (the ECP5 block's two ports collide; the portable memory returns the old
    word): a user never does it, except for a read whose word it throws away.

    With ``enable``, a read that can stall: port ``r_en`` (2 bits), the address register
    loads only in a cycle ``r_en[0]`` is set and the output register only when ``r_en[1]``
    is (the DP16KD's ``CE`` and ``OCE`` of its read port).

    On ECP5 the blocks are DP16KD with a write port (A) and a read port with its output
    register (B) at 18 bits or fewer each (:data:`codesign.models.device.TDP_SHAPES`: a
    write port of its own rules out the 36-bit mode).
    """

    def __init__(
        self, *, width: int, depth: int, target: str | None = None, enable: bool = False
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        if not isinstance(width, int) or width < 1 or not isinstance(depth, int) or depth < 2:
            raise ValueError(f"a RAM needs width >= 1 and depth >= 2, not {width!r} x {depth!r}")
        self._width, self._depth, self._target = width, depth, target
        self._enable = bool(enable)
        ports = {
            "w_addr": In(range(depth)),
            "w_data": In(width),
            "w_en": In(1),
            "r_addr": In(range(depth)),
            "r_data": Out(width),
        }
        if self._enable:
            ports["r_en"] = In(2)
        super().__init__(ports)

    @property
    def blocks(self) -> int:
        """DP16KD instances on ECP5 (0 on the portable path, where Yosys chooses)."""
        if self._target != "ecp5":
            return 0
        return tdp_brams(self._depth, self._width)

    def elaborate(self, platform):
        m = Module()
        if self._target != "ecp5":
            m.submodules.ram = ram = memory.Memory(
                shape=unsigned(self._width), depth=self._depth, init=[]
            )
            rd, wr = ram.read_port(), ram.write_port()
            m.d.comb += [
                rd.addr.eq(self.r_addr),
                wr.addr.eq(self.w_addr),
                wr.data.eq(self.w_data),
                wr.en.eq(self.w_en),
            ]
            if self._enable:
                m.d.comb += rd.en.eq(self.r_en[0])
                with m.If(self.r_en[1]):
                    m.d.sync += self.r_data.eq(rd.data)
            else:
                m.d.sync += self.r_data.eq(rd.data)
            return m
        ce, oce = (self.r_en[0], self.r_en[1]) if self._enable else (None, None)
        d, w = bram_tiling(self._depth, self._width, TDP_SHAPES)
        banks = math.ceil(self._depth / d)
        abits = int(math.log2(d))

        def block(k: int, taken: list[int], data: Signal, name: str) -> Instance:
            here = self.w_en & ((self.w_addr >> abits) == k) if banks > 1 else self.w_en
            en = Signal(name=f"{name}_we")
            m.d.comb += en.eq(here)
            return _dp16kd(
                width=w,
                depth=d,
                raddr=self.r_addr,
                data=data,
                waddr=self.w_addr,
                wdata=Cat(*(self.w_data[b] for b in taken)),
                wen=en,
                ce=ce,
                oce=oce,
            )

        word = _banks(m, self.r_addr, self._width, d, w, banks, block, ce=ce, oce=oce)
        m.d.comb += self.r_data.eq(word)
        return m


def _banks(
    m: Module, raddr, width: int, d: int, w: int, banks: int, block, ce=None, oce=None
) -> Value:
    """``banks`` banks of ``ceil(width / w)`` blocks of ``d`` x ``w`` (``block(k, columns,
    data, name)`` builds one), and the word of the bank ``raddr`` selected, after the
    blocks' registered outputs (``ce``, ``oce``: the enables of the blocks' address and
    output registers, None for always)."""
    abits = int(math.log2(d))
    cols = math.ceil(width / w)
    outs = []
    for k in range(banks):
        bits = []
        for c in range(cols):
            taken = list(range(c * w, min((c + 1) * w, width)))
            data = Signal(36 if w == 36 else 18, name=f"do{k}_{c}")
            m.submodules[f"bram{k}_{c}"] = block(k, taken, data, f"bram{k}_{c}")
            bits += [data[j] for j in range(len(taken))]
        outs.append(Cat(*bits))
    if banks == 1:
        return outs[0]
    # the bank of the address, delayed to meet the blocks' registered outputs
    sel = raddr[abits:]
    sel_1, sel_2 = Signal.like(sel, name="bank_1"), Signal.like(sel, name="bank_2")
    for reg, value, en in ((sel_1, sel, ce), (sel_2, sel_1, oce)):
        if en is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(en):
                m.d.sync += reg.eq(value)
    word = Signal(width, name="bank_word")
    with m.Switch(sel_2):
        for k, o in enumerate(outs):
            with m.Case(k):
                m.d.comb += word.eq(o)
    return word


def _dp16kd(
    *,
    width: int,
    depth: int,
    raddr,
    data: Signal,
    init: Sequence[int] | None = None,
    waddr=None,
    wdata=None,
    wen=None,
    ce=None,
    oce=None,
) -> Instance:
    """One DP16KD of ``depth`` x ``width`` whose words (``init``, or 0) are read at
    ``raddr`` through the output register into ``data``; with ``wen``, written on port A.

    A read-only block reads on port A. A 36-bit word (read-only blocks only) is read as two
    18-bit halves, port A the low one at row ``2a`` and port B the high one at row
    ``2a + 1`` (the rows of the 36-bit layout): the block count of the 36-bit mode, without
    relying on which output pins that mode drives (Yosys's mapping and nextpnr's PDPW16KD
    packing read them in opposite orders). A block with a write port reads on port B.
    """
    pair = width == 36
    if pair and wen is not None:
        raise ValueError("a DP16KD with a write port has no 36-bit mode")
    mode = 18 if pair else width
    read = "B" if wen is not None else "A"
    abits = int(math.log2(depth))
    shift = _ADDR_SHIFT[width]
    ports = {
        "p_DATA_WIDTH_A": mode,
        "p_DATA_WIDTH_B": mode,
        "p_REGMODE_A": "OUTREG" if read == "A" else "NOREG",
        "p_REGMODE_B": "OUTREG" if read == "B" or pair else "NOREG",
    }
    for k, v in enumerate(dp16kd_initvals(list(init or []), width)):
        ports[f"p_INITVAL_{k:02X}"] = Const(v, 320)
    for p in "AB":
        reads = p == read or pair
        writes = p == "A" and wen is not None
        addr = waddr if writes else raddr
        ports[f"i_CLK{p}"] = ClockSignal()
        # (``ce``/``oce``: the enables of a read port's address and output registers)
        read_only = reads and not writes
        ports[f"i_CE{p}"] = ce if read_only and ce is not None else Const(int(reads or writes))
        ports[f"i_OCE{p}"] = oce if reads and oce is not None else Const(int(reads))
        ports[f"i_WE{p}"] = wen if writes else Const(0)
        ports[f"i_RST{p}"] = Const(0)
        for k in range(3):
            ports[f"i_CS{p}{k}"] = Const(0)
        for k in range(18):
            ports[f"i_DI{p}{k}"] = wdata[k] if writes and k < len(wdata) else Const(0)
        for k in range(14):
            j = k - shift
            if not (reads or writes):
                pin = Const(0)
            elif 0 <= j < min(abits, len(addr)):
                pin = addr[j]
            elif writes and width == 18 and k < 2:
                pin = Const(1)  # the byte enables of an 18-bit write
            else:  # a pair's row bit: 0 on port A, 1 on port B
                pin = Const(int(pair and k == 4 and p == "B"))
            ports[f"i_AD{p}{k}"] = pin
    low = data if read == "A" else Signal(18, name="doa_unused")
    high = data[18:] if pair else data if read == "B" else Signal(18, name="dob_unused")
    for k in range(18):
        ports[f"o_DOA{k}"] = low[k]
        ports[f"o_DOB{k}"] = high[k]
    return Instance("DP16KD", **ports)
