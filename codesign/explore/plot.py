"""Figures of an exploration (matplotlib): what ``codesign explore --plot`` writes and what the
notebooks draw, from the DataFrame :func:`codesign.explore.explore` returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["block_figure", "front_figure", "knobs_figure", "validation_figure"]


def _figure(n: int = 1, width: float = 5.0, height: float = 3.6):
    from codesign.report import new_figure

    fig = new_figure(width * n, height)
    return fig, [fig.add_subplot(1, n, k + 1) for k in range(n)]


def _save(fig, path: str | Path | None) -> None:
    """Write ``fig`` to ``path`` (SVG, atomically) when given."""
    if path is None:
        return
    from codesign.models.fileio import atomic_write
    from codesign.report import svg_bytes

    if Path(path).suffix.lower() != ".svg":
        raise ValueError(f"plot must be a .svg file, not {str(path)!r}")
    atomic_write(path, svg_bytes(fig))


def front_figure(df, resources=("lut", "dsp"), path: str | Path | None = None):
    """Throughput against each of ``resources``: every feasible point (grey, a sample of at
    most 5,000) and the Pareto front (over the space's objectives; its points
    non-dominated in the plotted pair are joined). Returns the matplotlib Figure."""
    fig, axes = _figure(len(resources))
    ok = df[df["feasible"]]
    sample = ok.sample(min(len(ok), 5000), random_state=0) if len(ok) else ok
    front = ok[ok["pareto"]]
    for ax, res in zip(axes, resources, strict=True):
        ax.scatter(
            sample[res],
            sample["throughput_fps"],
            s=2,
            c="0.8",
            label="feasible points",
            rasterized=True,
        )
        ax.scatter(front[res], front["throughput_fps"], s=8, c="C0", label="Pareto front")
        # the staircase of points non-dominated in this pair (most throughput per resource)
        pair = front.sort_values([res, "throughput_fps"], ascending=[True, False])
        best = np.maximum.accumulate(pair["throughput_fps"].to_numpy())
        keep = np.r_[True, best[1:] > best[:-1]]
        ax.step(
            pair[res].to_numpy()[keep],
            best[keep],
            where="post",
            c="C1",
            lw=1,
            label=f"best throughput for {res.upper()}",
        )
        ax.set_xlabel(res.upper())
        ax.set_ylabel("frames/s")
        ax.set_yscale("log")
        ax.grid(True, lw=0.3)
    axes[0].legend(loc="lower right", fontsize=7)
    net = df.attrs.get("network", "")
    space = df.attrs.get("points", len(df))
    fig.suptitle(
        f"{net}: {len(df):,} of {space:,} points evaluated, {len(front):,} on the front",
        fontsize=10,
    )
    _save(fig, path)
    return fig


def knobs_figure(df, path: str | Path | None = None, limit: int = 400):
    """Parallel coordinates of the front's knobs (log2 of each PE and SIMD), coloured by
    throughput: which foldings the front is made of."""
    import matplotlib as mpl

    fig, (ax,) = _figure(1, width=8.0)
    front = df[df["pareto"]].sort_values("throughput_fps")
    if len(front) > limit:
        front = front.iloc[np.linspace(0, len(front) - 1, limit).round().astype(int)]
    knobs = [c for c in df.columns if c.startswith(("pe__", "simd__")) and df[c].nunique() > 1]
    x = np.arange(len(knobs))
    norm = mpl.colors.LogNorm(front["throughput_fps"].min(), front["throughput_fps"].max())
    cmap = mpl.colormaps["viridis"]
    for _, row in front.iterrows():
        ax.plot(
            x,
            np.log2(row[knobs].to_numpy(dtype=float)),
            c=cmap(norm(row["throughput_fps"])),
            lw=0.6,
            alpha=0.6,
        )
    ax.set_xticks(x, [k.replace("__", " ") for k in knobs], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("log2(value)")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="frames/s")
    ax.set_title("knobs of the Pareto front", fontsize=10)
    _save(fig, path)
    return fig


def block_figure(estimate: dict, path: str | Path | None = None):
    """LUT and FF (left) and DSP and BRAM (right) per block of one design
    (:func:`codesign.sim.cost.estimate`'s blocks)."""
    fig, (ax, hard) = _figure(2, width=4.5)
    blocks = estimate["blocks"]
    names = [b["block"] for b in blocks]
    y = np.arange(len(names))
    ax.barh(y - 0.2, [b["lut"] for b in blocks], height=0.4, label="LUT")
    ax.barh(y + 0.2, [b["ff"] for b in blocks], height=0.4, label="FF")
    hard.barh(y - 0.2, [b["dsp"] for b in blocks], height=0.4, label="DSP", color="C2")
    hard.barh(y + 0.2, [b["bram"] for b in blocks], height=0.4, label="BRAM", color="C3")
    for a in (ax, hard):
        a.set_yticks(y, names if a is ax else [], fontsize=7)
        a.invert_yaxis()
        a.legend(fontsize=7)
    fig.suptitle(
        f"per block: {estimate['lut']} LUT, {estimate['ff']} FF, {estimate['dsp']} DSP, "
        f"{estimate['bram']} BRAM",
        fontsize=9,
    )
    _save(fig, path)
    return fig


def validation_figure(validation, path: str | Path | None = None):
    """Model-vs-measured relative error per validated point and objective (the rows of
    :func:`codesign.explore.validate_front` that have a model value)."""
    fig, (ax,) = _figure(1, width=7.0)
    v = validation.dropna(subset=["error"])
    objectives = list(dict.fromkeys(v["objective"]))
    ids = list(dict.fromkeys(v["id"]))
    width = 0.8 / max(len(ids), 1)
    for k, i in enumerate(ids):
        part = v[v["id"] == i].set_index("objective")
        vals = [100 * float(part["error"].get(o, np.nan)) for o in objectives]
        ax.bar(np.arange(len(objectives)) + k * width, vals, width=width, label=f"point {i}")
    ax.axhline(0, c="k", lw=0.5)
    ax.set_xticks(np.arange(len(objectives)) + 0.4 - width / 2, objectives, fontsize=8)
    ax.set_ylabel("model error (%)")
    ax.legend(fontsize=6)
    ax.set_title("model vs measured on the validated front points", fontsize=10)
    _save(fig, path)
    return fig
