"""Print the analog PIM crossbar's error on a zoo MLP's dense layers as markdown tables.

    .venv/bin/python tools/pim_error_table.py [--net jet_tagger] [--frames 1000] [--seed 0]
        [--rows 256] [--dac-bits 1] [--adc-bits 4,6,8,10,12] [--cell-bits 1,2,4]

Runs :func:`codesign.models.pim.analog.error_table` (the ``adc_bits`` given plus each config's
exact width) on ``--frames`` inputs from :func:`codesign.models.golden.random_inputs` with
``--seed``, and prints three tables (relative RMS error, largest absolute error with the
worst-case bound, fraction of outputs exactly equal), one row per layer and cell width. The
output depends on nothing but the arguments: it is byte-identical from run to run.
"""

from __future__ import annotations

import argparse
import sys


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated ints, not {text!r}") from None
    return values


def _rel(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def _frac(v: float) -> str:
    return "1" if v == 1 else ("0" if v == 0 else f"{v:.2g}")


def markdown(table, adc_bits: tuple[int, ...]) -> str:
    """The three markdown tables of an :func:`error_table` DataFrame."""
    metrics = (
        ("Relative RMS error", lambda r: _rel(r.rel_rms)),
        ("Largest absolute error (worst-case bound)", lambda r: f"{r.max_abs} ({r.bound})"),
        ("Fraction of outputs exactly equal", lambda r: _frac(r.exact_fraction)),
    )
    head = ["layer", "K×N", "x", "w", "c", *(f"A={a}" for a in adc_bits), "exact A"]
    out = []
    for title, cell in metrics:
        out += [f"{title}:", "", "| " + " | ".join(head) + " |"]
        out.append("|" + "|".join(["---"] * 5 + ["--:"] * (len(adc_bits) + 1)) + "|")
        for (name, c), rows in table.groupby(["layer", "cell_bits"], sort=False):
            first = rows.iloc[0]
            by_a = {int(r.adc_bits): r for r in rows.itertuples()}
            exact = by_a[int(first.exact_adc_bits)]
            cells = [cell(by_a[a]) for a in adc_bits]
            cells.append(f"{cell(exact)} (A={first.exact_adc_bits})")
            shape = f"{first.k}×{first.n}"
            out.append(
                "| " + " | ".join([name, shape, first.x_type, first.w_type, str(c), *cells]) + " |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="jet_tagger", help="a zoo network (default jet_tagger)")
    ap.add_argument("--frames", type=int, default=1000, help="input vectors (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
    ap.add_argument("--rows", type=int, default=256, help="crossbar rows (default 256)")
    ap.add_argument("--dac-bits", type=int, default=1, help="DAC bits (default 1)")
    ap.add_argument("--adc-bits", type=_ints, default=(4, 6, 8, 10, 12))
    ap.add_argument("--cell-bits", type=_ints, default=(1, 2, 4))
    args = ap.parse_args(argv)

    from codesign.models.pim.analog import error_table

    import codesign

    net = codesign.load(args.net)
    table = error_table(
        net,
        adc_bits=(*args.adc_bits, None),
        cell_bits=args.cell_bits,
        dac_bits=args.dac_bits,
        seed=args.seed,
        frames=args.frames,
        rows=args.rows,
    )
    print(
        f"{args.net}, {args.frames} frames of codesign.random_inputs(net, {args.frames}, "
        f"seed={args.seed}); crossbar rows={args.rows}, dac_bits={args.dac_bits}; c = "
        "cell_bits, A = adc_bits; error against the exact layer output (bias included).\n"
    )
    print(markdown(table, args.adc_bits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
