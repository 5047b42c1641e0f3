"""The deformable gather unit: bilinear tap samples of a frame stored on chip, in the window
order of :class:`~codesign.hdl.dataflow.swg.SlidingWindow`, for the MVAU.

The arithmetic is :mod:`codesign.models.deform.fixed`'s, bit for bit; the bank layout, the
fetch rule and the cycle counts are :mod:`codesign.models.deform.engine`'s.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import Array, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import ShapeCastable
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from codesign.models.dataflow import conv_out_size
from codesign.models.deform import OffsetShape, Variant, offset_channels
from codesign.models.deform.engine import sample_bits

from ..dataflow.checks import check_int, check_pair, element_shape_of, shape_range

__all__ = ["DeformWindow"]

#: Largest offset fraction the unit takes (that of :func:`~.fixed.deform_conv2d_fixed`).
MAX_FRAC = 12


def _span(values) -> range:
    """The smallest ``range`` holding every int of ``values`` (a signed shape if any is
    negative)."""
    values = list(values)
    return range(min(values), max(values) + 1)


def _any(values):
    return reduce(or_, values) if values else Const(0)


def _shift_add(a, b):
    """``a · b`` of two small unsigned values as a sum of shifted copies of ``b`` (logic, not
    a multiplier block: a few bits each, and on the critical path)."""
    terms = [Mux(a[i], b << i, 0) for i in range(len(a))]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)] + (
            [terms[-1]] if len(terms) % 2 else []
        )
    return terms[0] if terms else Const(0)


class DeformWindow(wiring.Component):
    """Deformable sliding window: one frame in a banked store, bilinear samples out.

    Per frame, two phases (frames do not overlap: the next frame's LOAD begins in the cycle
    after this frame's last fetch, while its last samples are still in the output pipeline):

    - **LOAD**: ``i`` takes the frame's H·W pixels in raster order, one per cycle, into
      ``banks`` memories (image row ``y`` in bank ``y mod banks`` at word
      ``(y div banks)·W + x``, :func:`~codesign.models.deform.engine.bank_address`);
      ``offs`` is not ready.
    - **RUN**: ``offs`` takes the Ho·Wo output pixels' offset beats in raster order; for each,
      for each tap ``k = i·kw + j`` in order, the unit applies the variant
      (:func:`~codesign.models.deform.fixed.tap_offsets`: square expansion, bound clamp,
      round-half-even to whole pixels), forms the position
      ``Y = ((oy·sh − ph + i·dh) << frac') + Δy`` (and ``X``), fetches only the corners that
      contribute (:func:`~codesign.models.deform.engine.corner_requests`) in
      ``max(1, max over banks ⌈corner words in the bank / ports⌉)`` cycles, and emits one
      ``o`` beat of the C exact samples ``Σ weight·x[corner]`` in units of
      ``2**-(2·frac')`` (:func:`~codesign.models.deform.fixed.sample_fixed`); ``i`` is not
      ready.

    The output order is :data:`~codesign.hdl.dataflow.swg.TapOrder.KERNEL_MAJOR` with all C
    channels per beat: for each output pixel, for each tap, the tap's channels — the rows of
    a convolution's weight matrix, as the MVAU consumes them.

    Timing (:mod:`codesign.models.deform.engine`): LOAD takes
    :func:`~codesign.models.deform.engine.load_cycles` cycles with ``i`` always valid; RUN
    accepts its first offset beat at the earliest in the cycle after the last pixel, and
    takes exactly :func:`~codesign.models.deform.engine.run_cycles` of the taps' fetch
    cycles from that beat to its last output beat with ``offs`` always valid and ``o``
    always ready. Offset beats may arrive with gaps (the taps' fetches then wait), and any
    back-pressure on ``o`` stalls the whole RUN pipeline (``o.ready`` reaches every stage's
    enable, the memories' read enables and, combinationally, ``offs.ready``; ``o.valid``,
    ``i.ready`` and the data path's stages are registers).

    Pipeline (one register stage each, so that the RUN timing is a closed form): the offset
    beat and tap counters; the tap's base position and raw offsets (the square expansion's
    product); the bound; the rounding; the position; floor, fraction, in-image tests and the
    corner rows' banks and words; the used corners, their weights and words and the fetch
    schedule; the fetch (a tap stays there for its fetch cycles while the stages ahead of it
    hold); the memories' synchronous read; the read data's register (a block RAM's output
    register); the corner registers; the products; the sum, which is the output register.

    Parameters
    ----------
    element
        Shape of one input element (``unsigned(8)``, ``signed(4)``, ...).
    channels, height, width
        Input image size C, H, W.
    kernel, stride, padding, dilation
        (h, w) pairs, as for :class:`~codesign.hdl.dataflow.swg.SlidingWindow`.
    variant
        The offset variant (:class:`~codesign.models.deform.Variant`).
    frac
        Fraction bits of the offsets (units of ``2**-frac`` pixel), 0 to 12.
    offset
        Shape of one offset value: ``signed(b)``.
    offset_groups
        Offset groups G: only 1.
    banks
        Memories R of the frame store: a power of two.
    ports
        Read ports P per memory: 1 or 2.

    Ports
    -----
    i
        One input pixel per beat: ``ArrayLayout(element, C)``.
    offs
        One output pixel's offsets per beat: ``ArrayLayout(offset, n)`` with ``n`` from
        :func:`~codesign.models.deform.offset_channels` (Δy of tap ``k`` at ``2k``, Δx at
        ``2k + 1``; one ``d`` for a square variant).
    o
        One tap's samples per beat: ``ArrayLayout(sample, C)``, ``sample`` of
        :func:`~codesign.models.deform.engine.sample_bits` bits with the element's signedness.
    """

    def __init__(
        self,
        *,
        element: ShapeCastable,
        channels: int,
        height: int,
        width: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0),
        dilation: tuple[int, int] = (1, 1),
        variant: Variant,
        frac: int,
        offset: ShapeCastable,
        offset_groups: int = 1,
        banks: int = 1,
        ports: int = 1,
    ) -> None:
        shape = element_shape_of(element)
        self._element = element
        self._channels = check_int("channels", channels, 1)
        self._height = check_int("height", height, 1)
        self._width = check_int("width", width, 1)
        self._kernel = check_pair("kernel", kernel, 1)
        self._stride = check_pair("stride", stride, 1)
        self._padding = check_pair("padding", padding, 0)
        self._dilation = check_pair("dilation", dilation, 1)
        self._out_h = conv_out_size(height, self._kernel[0], *self._axis(0))
        self._out_w = conv_out_size(width, self._kernel[1], *self._axis(1))
        if self._out_h < 1 or self._out_w < 1:
            raise ValueError(
                f"kernel {self._kernel} with dilation {self._dilation} and padding "
                f"{self._padding} must fit the {height}x{width} image"
            )
        if not isinstance(variant, Variant):
            raise TypeError(f"variant must be a Variant, not {variant!r}")
        if variant.shape is OffsetShape.SQUARE and (
            self._kernel[0] % 2 == 0 or self._kernel[1] % 2 == 0
        ):
            raise ValueError(
                f"kernel must be odd in both axes for a square variant, not {kernel!r}"
            )
        self._variant = variant
        self._frac = check_int("frac", frac, 0)
        if frac > MAX_FRAC:
            raise ValueError(f"frac must be at most {MAX_FRAC}, not {frac!r}")
        try:
            oshape = Shape.cast(offset)
        except TypeError:
            raise TypeError(f"offset must be a shape, not {offset!r}") from None
        if not oshape.signed or oshape.width < 2:
            raise ValueError(f"offset must be a signed shape of at least 2 bits, not {offset!r}")
        self._offset = offset
        if check_int("offset_groups", offset_groups, 1) != 1:
            raise ValueError(f"offset_groups must be 1 (one offset group), not {offset_groups!r}")
        self._banks = check_int("banks", banks, 1)
        if banks & (banks - 1):
            raise ValueError(f"banks must be a power of two, not {banks!r}")
        if not isinstance(ports, int) or isinstance(ports, bool):
            raise TypeError(f"ports must be an int, not {ports!r}")
        if ports not in (1, 2):
            raise ValueError(f"ports must be 1 or 2, not {ports!r}")
        self._ports = ports
        self._frac_out = 0 if variant.rounded else frac
        self._sample = (signed if shape.signed else unsigned)(
            sample_bits(shape.width, shape.signed, self._frac)
        )
        self._offset_values = offset_channels(variant, 1, self._kernel)
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(element, channels))),
                "offs": In(stream.Signature(data.ArrayLayout(offset, self._offset_values))),
                "o": Out(stream.Signature(data.ArrayLayout(self._sample, channels))),
            }
        )

    @classmethod
    def of_layer(cls, layer, image, offsets, *, banks: int, ports: int) -> DeformWindow:
        """The gather of deformable IR layer ``layer`` (a
        :class:`~codesign.models.deform.layer.DeformConv2d`) whose image and offsets are the
        tensors ``image`` and ``offsets``, with ``banks`` memories of ``ports`` read ports."""
        from ..dataflow.stream import element_shape

        c, h, w = image.shape
        # the caller is the unit's creator (whose file says whether an unused unit warns)
        unit = cls.__new__(cls, src_loc_at=1)
        unit.__init__(
            element=element_shape(image.qtype),
            channels=c,
            height=h,
            width=w,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            variant=layer.variant,
            frac=layer.offset_frac(offsets),
            offset=element_shape(offsets.qtype),
            banks=banks,
            ports=ports,
        )
        return unit

    def _axis(self, a: int) -> tuple[int, int, int]:
        return self._stride[a], self._padding[a], self._dilation[a]

    @property
    def element(self) -> ShapeCastable:
        return self._element

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    @property
    def kernel(self) -> tuple[int, int]:
        return self._kernel

    @property
    def out_size(self) -> tuple[int, int]:
        """Output image size (Ho, Wo)."""
        return self._out_h, self._out_w

    @property
    def variant(self) -> Variant:
        return self._variant

    @property
    def frac(self) -> int:
        return self._frac

    @property
    def sample_frac(self) -> int:
        """Fraction bits of the positions after the variant (0 when rounded). The samples are
        in units of ``2**-(2·frac)`` for every variant: a rounded variant's one corner is
        shifted left by ``2·frac`` (wiring), as :func:`~codesign.models.deform.fixed.
        deform_conv2d_fixed` defines it, so the variants of a layer feed one MVAU."""
        return self._frac_out

    @property
    def sample(self) -> Shape:
        """Shape of one output sample."""
        return self._sample

    @property
    def offset_values(self) -> int:
        """Offset values per ``offs`` beat."""
        return self._offset_values

    @property
    def banks(self) -> int:
        return self._banks

    @property
    def ports(self) -> int:
        return self._ports

    @property
    def bank_depth(self) -> int:
        """Words of each bank: ``⌈H / banks⌉·W``."""
        return -(-self._height // self._banks) * self._width

    @property
    def taps_per_frame(self) -> int:
        return self._out_h * self._out_w * self._kernel[0] * self._kernel[1]

    # -- elaboration -------------------------------------------------------------------------

    def _offset_ranges(self):
        """Ranges of the per-tap (Δy, Δx) after expansion, clamp and rounding."""
        olo, ohi = shape_range(Shape.cast(self._offset))
        (kh, kw), (dh, dw), f = self._kernel, self._dilation, self._frac
        if self._variant.shape is OffsetShape.SQUARE:
            sy = [(i - kh // 2) * dh for i in range(kh)]
            sx = [(j - kw // 2) * dw for j in range(kw)]
            ry = _span(s * v for s in sy for v in (olo, ohi))
            rx = _span(s * v for s in sx for v in (olo, ohi))
        else:
            ry = rx = range(olo, ohi + 1)
        out = []
        for r in (ry, rx):
            lo, hi = r.start, r.stop - 1
            if self._variant.bound is not None:
                lim = self._variant.bound << f
                lo, hi = min(max(lo, -lim), lim), min(max(hi, -lim), lim)
            if self._variant.rounded:
                lo, hi = lo >> f, (hi >> f) + 1
            out.append(range(min(lo, 0), max(hi, 0) + 1))
        return out

    def elaborate(self, platform):
        m = Module()
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self._kernel,
            self._stride,
            self._padding,
            self._dilation,
        )
        h, w, c = self._height, self._width, self._channels
        ho, wo = self._out_h, self._out_w
        taps = kh * kw
        f, fp = self._frac, self._frac_out
        nb, npo = self._banks, self._ports
        rb = nb.bit_length() - 1  # log2 banks
        depth = self.bank_depth
        word_shape = data.ArrayLayout(self._element, c)
        bank_shape = unsigned(max(1, rb))

        # -- frame store ------------------------------------------------------------------
        writes, reads = [], []
        for b in range(nb):
            mem = Memory(shape=word_shape, depth=depth, init=[])
            m.submodules[f"bank{b}"] = mem
            writes.append(mem.write_port())
            reads.append([mem.read_port() for _ in range(npo)])

        adv = Signal()  # the RUN pipeline moves: the output register is empty or taken
        m.d.comb += adv.eq(~self.o.valid | self.o.ready)

        # -- LOAD: one pixel per cycle into its bank ---------------------------------------
        l_x = Signal(range(w))
        l_y = Signal(range(h))
        l_bank = Signal(bank_shape)
        l_word = Signal(range(depth))
        l_row = Signal(range(depth))  # word of the current row's first pixel
        for wr in writes:
            m.d.comb += [wr.addr.eq(l_word), wr.data.eq(self.i.payload)]

        # -- RUN, stage G: the offset beat and the tap counters -----------------------------
        front = Signal()  # the stages ahead of the fetch move
        off = Signal(data.ArrayLayout(self._offset, self._offset_values))
        g_valid = Signal()
        g_k = Signal(range(taps))
        g_j = Signal(range(kw))
        g_ty = Signal(range((kh - 1) * dh + 1))
        g_tx = Signal(range((kw - 1) * dw + 1))
        g_py = Signal(_span([-ph, (ho - 1) * sh - ph]))
        g_px = Signal(_span([-pw, (wo - 1) * sw - pw]))
        g_end = Signal()  # the pixel is the frame's last
        n_ox = Signal(range(wo))  # the next pixel to accept
        n_oy = Signal(range(ho))
        n_px = Signal.like(g_px, init=-pw)
        n_py = Signal.like(g_py, init=-ph)
        taken = Signal()  # every offset beat of the frame is accepted
        running = Signal()
        tap_last = g_k == taps - 1
        m.d.comb += self.offs.ready.eq(running & ~taken & front & (~g_valid | tap_last))
        with m.If(front):
            with m.If(g_valid & ~tap_last):
                m.d.sync += g_k.eq(g_k + 1)
                with m.If(g_j == kw - 1):
                    m.d.sync += [g_j.eq(0), g_tx.eq(0), g_ty.eq(g_ty + dh)]
                with m.Else():
                    m.d.sync += [g_j.eq(g_j + 1), g_tx.eq(g_tx + dw)]
            with m.Else():
                m.d.sync += [
                    g_valid.eq(self.offs.valid & self.offs.ready),
                    g_k.eq(0),
                    g_j.eq(0),
                    g_tx.eq(0),
                    g_ty.eq(0),
                ]
        with m.If(self.offs.valid & self.offs.ready):
            last_pixel = (n_ox == wo - 1) & (n_oy == ho - 1)
            m.d.sync += [off.eq(self.offs.payload), g_py.eq(n_py), g_px.eq(n_px)]
            m.d.sync += g_end.eq(last_pixel)
            with m.If(n_ox == wo - 1):
                m.d.sync += [n_ox.eq(0), n_px.eq(-pw)]
                with m.If(n_oy == ho - 1):
                    m.d.sync += [n_oy.eq(0), n_py.eq(-ph), taken.eq(1)]
                with m.Else():
                    m.d.sync += [n_oy.eq(n_oy + 1), n_py.eq(n_py + sh)]
            with m.Else():
                m.d.sync += [n_ox.eq(n_ox + 1), n_px.eq(n_px + sw)]

        def stage(name, value, shape=None, en=front):
            """A register of the front stages (or of ``en``) loaded with ``value``."""
            reg = Signal(value.shape() if shape is None else shape, name=name)
            with m.If(en):
                m.d.sync += reg.eq(value)
            return reg

        # -- T1: the tap's base position and raw offsets ------------------------------------
        t1_valid = stage("t1_valid", g_valid)
        t1_end = stage("t1_end", g_end & tap_last)
        ry, rx = self._offset_ranges()
        t1_by = stage("t1_by", g_py + g_ty)
        t1_bx = stage("t1_bx", g_px + g_tx)
        if self._variant.shape is OffsetShape.SQUARE:
            ky = [(k // kw - kh // 2) * dh for k in range(taps)]
            kx = [(k % kw - kw // 2) * dw for k in range(taps)]
            sy = Array(Const(v, _span([*ky, -1, 1])) for v in ky)
            sx = Array(Const(v, _span([*kx, -1, 1])) for v in kx)
            raw_dy, raw_dx = off[0] * sy[g_k], off[0] * sx[g_k]
        else:
            raw_dy = Array(off[2 * k] for k in range(taps))[g_k]
            raw_dx = Array(off[2 * k + 1] for k in range(taps))[g_k]
        t1_dy = stage("t1_dy", raw_dy, signed(max(raw_dy.shape().width, 2)))
        t1_dx = stage("t1_dx", raw_dx, signed(max(raw_dx.shape().width, 2)))

        # -- T2: the bound --------------------------------------------------------------------
        def clamp(v):
            if self._variant.bound is None:
                return v
            lim = self._variant.bound << f
            return Mux(v > lim, lim, Mux(v < -lim, -lim, v))

        t2_valid = stage("t2_valid", t1_valid)
        t2_end = stage("t2_end", t1_end)
        t2_by, t2_bx = stage("t2_by", t1_by), stage("t2_bx", t1_bx)
        t2_dy = stage("t2_dy", clamp(t1_dy), t1_dy.shape())
        t2_dx = stage("t2_dx", clamp(t1_dx), t1_dx.shape())

        # -- T3: rounding to whole pixels (ties to even) ------------------------------------
        def rounded(v):
            if not self._variant.rounded or f == 0:
                return v
            q = v >> f
            r = v[:f]
            half = 1 << (f - 1)
            return q + ((r > half) | ((r == half) & q[0]))

        t3_valid = stage("t3_valid", t2_valid)
        t3_end = stage("t3_end", t2_end)
        t3_by, t3_bx = stage("t3_by", t2_by), stage("t3_bx", t2_bx)
        t3_dy = stage("t3_dy", rounded(t2_dy), ry)
        t3_dx = stage("t3_dx", rounded(t2_dx), rx)

        # -- T4: the position ---------------------------------------------------------------
        t4_valid = stage("t4_valid", t3_valid)
        t4_end = stage("t4_end", t3_end)
        t4_y = stage("t4_y", (t3_by << fp) + t3_dy)
        t4_x = stage("t4_x", (t3_bx << fp) + t3_dx)

        # -- T5: floor, fraction, in-image tests, row words and banks -----------------------
        one = 1 << fp
        inside = (t4_y > -one) & (t4_y < h * one) & (t4_x > -one) & (t4_x < w * one)
        y0, x0 = t4_y >> fp, t4_x >> fp
        y1 = y0 + 1
        t5_valid = stage("t5_valid", t4_valid)
        t5_end = stage("t5_end", t4_end)
        t5_in = stage("t5_in", inside)
        fy, fx = t4_y[:fp], t4_x[:fp]
        # the one-dimensional weights: 2**frac' − f and f
        t5_wy = [stage("t5_wy0", one - fy, range(one + 1)), stage("t5_wy1", fy, unsigned(fp))]
        t5_wx = [stage("t5_wx0", one - fx, range(one + 1)), stage("t5_wx1", fx, unsigned(fp))]
        t5_x0 = stage("t5_x0", x0, signed(max(x0.shape().width, 2)))
        t5_top = stage("t5_top", y0 >= 0)
        t5_bot = stage("t5_bot", y0 < h - 1)
        t5_left = stage("t5_left", x0 >= 0)
        t5_right = stage("t5_right", x0 < w - 1)
        # a row's first word, (y div R)·W; meaningless (and unused) outside the image
        row_range = range(-w, depth + 1)
        t5_wtop = stage("t5_wtop", (y0 >> rb) * w, row_range)
        t5_wbot = stage("t5_wbot", (y1 >> rb) * w, row_range)
        t5_btop = stage("t5_btop", y0[:rb] if rb else Const(0, 1), bank_shape)
        t5_bbot = stage("t5_bbot", y1[:rb] if rb else Const(0, 1), bank_shape)

        # -- T6: used corners, weights, words, the fetch schedule ---------------------------
        row_ok = [t5_in & t5_top, t5_in & t5_bot & (t5_wy[1] != 0)]
        col_ok = [t5_left, t5_right & (t5_wx[1] != 0)]
        used, weight, word, bank = [], [], [], []
        for q in range(4):
            a, b = divmod(q, 2)
            used.append(row_ok[a] & col_ok[b])
            weight.append(_shift_add(t5_wy[a], t5_wx[b]))
            word.append((t5_wtop, t5_wbot)[a] + t5_x0 + b)
            bank.append((t5_btop, t5_bbot)[a])
        if nb == 1:  # all four corners in the one bank, in corner order
            index = [
                Const(0, 3),
                used[0],
                used[0] + used[1],
                used[0] + used[1] + used[2],
            ]
            count = used[0] + used[1] + used[2] + used[3]
        else:  # rows y0 and y0 + 1 are in different banks
            index = [Const(0, 3), used[0], Const(0, 3), used[2]]
            top, bottom = used[0] + used[1], used[2] + used[3]
            count = Mux(top > bottom, top, bottom)
        if npo == 1:
            cyc = index
            port = [Const(0, 1)] * 4
            n = count
        else:
            cyc = [v >> 1 for v in index]
            port = [v[0] for v in index]
            n = (count + 1) >> 1
        last_cycle = Mux(n == 0, 0, n - 1)
        t6_valid = stage("t6_valid", t5_valid)
        t6_end = stage("t6_end", t5_end)
        t6_used = [stage(f"t6_used{q}", used[q]) for q in range(4)]
        t6_w = [
            stage(f"t6_w{q}", Mux(used[q], weight[q], 0), range(one * one + 1)) for q in range(4)
        ]
        t6_word = [stage(f"t6_word{q}", word[q], range(depth)) for q in range(4)]
        t6_bank = [stage(f"t6_bank{q}", bank[q]) for q in range(4)]
        t6_cyc = [stage(f"t6_cyc{q}", cyc[q], range(4)) for q in range(4)]
        t6_port = [stage(f"t6_port{q}", port[q], 1) for q in range(4)]
        t6_lastc = stage("t6_lastc", last_cycle, range(4))

        # -- F: the fetch, one or more cycles per tap ---------------------------------------
        f_valid = Signal()
        f_end = Signal()
        f_c = Signal(range(4))
        f_last = Signal()  # the tap's last fetch cycle
        f_used = [Signal(name=f"f_used{q}") for q in range(4)]
        f_w = [Signal.like(t6_w[q], name=f"f_w{q}") for q in range(4)]
        f_word = [Signal.like(t6_word[q], name=f"f_word{q}") for q in range(4)]
        f_bank = [Signal.like(t6_bank[q], name=f"f_bank{q}") for q in range(4)]
        f_cyc = [Signal.like(t6_cyc[q], name=f"f_cyc{q}") for q in range(4)]
        f_port = [Signal.like(t6_port[q], name=f"f_port{q}") for q in range(4)]
        f_lastc = Signal.like(t6_lastc)
        m.d.comb += [f_last.eq(f_valid & (f_c == f_lastc)), front.eq(adv & (~f_valid | f_last))]
        with m.If(front):
            m.d.sync += [f_valid.eq(t6_valid), f_end.eq(t6_end), f_c.eq(0), f_lastc.eq(t6_lastc)]
            for q in range(4):
                m.d.sync += [
                    f_used[q].eq(t6_used[q]),
                    f_w[q].eq(t6_w[q]),
                    f_word[q].eq(t6_word[q]),
                    f_bank[q].eq(t6_bank[q]),
                    f_cyc[q].eq(t6_cyc[q]),
                    f_port[q].eq(t6_port[q]),
                ]
        with m.Elif(adv):
            m.d.sync += f_c.eq(f_c + 1)
        fetch = [f_valid & f_used[q] & (f_cyc[q] == f_c) for q in range(4)]
        for b in range(nb):
            for p in range(npo):
                rd = reads[b][p]
                sel = [fetch[q] & (f_bank[q] == b) & (f_port[q] == p) for q in range(4)]
                m.d.comb += [
                    rd.addr.eq(_any([Mux(sel[q], f_word[q], 0) for q in range(4)])),
                    rd.en.eq(adv),
                ]

        # -- D: the memories' read data; E: its registers; G: the corner registers --------
        d_last = stage("d_last", f_last, en=adv)
        d_fetch = [stage(f"d_fetch{q}", fetch[q], en=adv) for q in range(4)]
        d_src = [
            stage(f"d_src{q}", f_bank[q] * npo + f_port[q], range(nb * npo), en=adv)
            for q in range(4)
        ]
        d_w = [stage(f"d_w{q}", f_w[q], en=adv) for q in range(4)]
        e_last = stage("e_last", d_last, en=adv)
        e_fetch = [stage(f"e_fetch{q}", d_fetch[q], en=adv) for q in range(4)]
        e_src = [stage(f"e_src{q}", d_src[q], en=adv) for q in range(4)]
        e_w = [stage(f"e_w{q}", d_w[q], en=adv) for q in range(4)]
        rdata = [
            stage(f"rdata{b}_{p}", reads[b][p].data.as_value(), en=adv)
            for b in range(nb)
            for p in range(npo)
        ]
        gather = []
        for q in range(4):
            g = Signal(word_shape, name=f"corner{q}")
            value = _any([Mux(e_src[q] == s, rdata[s], 0) for s in range(len(rdata))])
            with m.If(adv & e_fetch[q]):
                m.d.sync += g.as_value().eq(value)
            gather.append(g)
        g_last = stage("g_last", e_last, en=adv)
        g_w = [stage(f"g_w{q}", e_w[q], en=adv) for q in range(4)]

        # -- M: the products; O: their sums ---------------------------------------------------
        m_valid = stage("m_valid", g_last, en=adv)
        prods = [
            [stage(f"prod{q}_{ch}", g_w[q] * gather[q][ch], en=adv) for ch in range(c)]
            for q in range(4)
        ]
        o_valid = Signal()
        o_data = Signal(data.ArrayLayout(self._sample, c))
        with m.If(adv):
            m.d.sync += o_valid.eq(m_valid)
            for ch in range(c):
                m.d.sync += o_data[ch].eq(
                    ((prods[0][ch] + prods[1][ch]) + (prods[2][ch] + prods[3][ch]))
                    << (2 * (f - fp))
                )
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_data)]

        # -- the phases -----------------------------------------------------------------------
        with m.FSM(name="phase"):
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += taken.eq(0)
                for b, wr in enumerate(writes):
                    m.d.comb += wr.en.eq(self.i.valid & (l_bank == b))
                with m.If(self.i.valid):
                    with m.If(l_x == w - 1):
                        m.d.sync += l_x.eq(0)
                        with m.If(l_y == h - 1):
                            m.d.sync += [l_y.eq(0), l_bank.eq(0), l_word.eq(0), l_row.eq(0)]
                            m.next = "RUN"
                        with m.Else():
                            m.d.sync += l_y.eq(l_y + 1)
                            if nb == 1:
                                m.d.sync += [l_word.eq(l_word + 1), l_row.eq(l_word + 1)]
                            else:
                                with m.If(l_bank == nb - 1):
                                    m.d.sync += [
                                        l_bank.eq(0),
                                        l_word.eq(l_word + 1),
                                        l_row.eq(l_word + 1),
                                    ]
                                with m.Else():
                                    m.d.sync += [l_bank.eq(l_bank + 1), l_word.eq(l_row)]
                    with m.Else():
                        m.d.sync += [l_x.eq(l_x + 1), l_word.eq(l_word + 1)]
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(adv & f_last & f_end):
                    m.next = "LOAD"
        return m
