"""The advisor's figure. Left: the FLOPs at which the targets are learned with the stated
probability vs the targets' share, one line (and band) per size, with the pilot runs'
FLOPs-to-learn as points (open triangles: censored, not learned by then). Right: each
option's FLOPs with its band, the recommendation highlighted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raremix.advise.law import band
from raremix.advise.pilots import RunTable
from raremix.advise.recommend import Advice, Goal, Laws, Size, mix_shares


def advice_figure(
    advice: Advice,
    laws: Laws,
    table: RunTable,
    sizes: list[Size],
    counts: np.ndarray,
    goal: Goal,
    path: Path,
) -> Path:
    """Draw the figure to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table.tasks)
    t_idx = [names.index(t) for t in goal.targets]
    top = max(c.factor for c in advice.candidates)
    factors = np.geomspace(1, max(top, 1.0001), 40)
    shares = np.stack([mix_shares(names, counts, goal.targets, float(f)) for f in factors])
    x = shares[:, t_idx].sum(axis=1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(sizes)))
    for size, color in zip(sizes, colors, strict=True):
        need, draws = laws.onset.flops_for(
            goal.probability, shares[:, t_idx], np.full(len(factors), size.params)
        )
        with np.errstate(invalid="ignore"):
            lo, hi = band(draws.max(axis=-1), goal.band)
        left.plot(x, need.max(axis=-1), color=color, label=f"{size.name} (law)")
        left.fill_between(x, lo, hi, color=color, alpha=0.18)
        m = np.array([s == size.name for s in table.sizes])
        px = table.share[m][:, t_idx].sum(axis=1)
        on = table.onset[m][:, t_idx].max(axis=1)
        got = table.learned[m][:, t_idx].all(axis=1)
        left.scatter(px[got], on[got], color=color, edgecolor="k", zorder=3)
        left.scatter(px[~got], on[~got], marker="^", facecolor="none", edgecolor=color, zorder=3)
    left.axhline(laws.onset.flops_range[1], color="grey", ls=":", lw=1, label="pilot's budgets")
    if goal.max_flops is not None:
        left.axhline(goal.max_flops, color="crimson", ls="--", lw=1, label="FLOPs cap")
    if advice.chosen is not None:
        c = advice.chosen
        left.scatter(
            [c.target_share],
            [c.flops[0]],
            marker="*",
            s=260,
            color="crimson",
            zorder=4,
            label="recommended",
        )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="targets' share of the mix",
        ylabel=f"FLOPs to learn (p = {goal.probability:g})",
    )
    from matplotlib.ticker import NullFormatter, PercentFormatter

    left.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    left.xaxis.set_minor_formatter(NullFormatter())
    left.legend(fontsize=7)
    opts = [c for c in advice.options if np.isfinite(c.flops[0])]
    ys = np.arange(len(opts))
    point = np.array([c.flops[0] for c in opts])
    # an unbounded band (too few pilot runs) is drawn as no bar rather than off the axis
    err = np.array([[c.flops[0] - c.flops[1], c.flops[2] - c.flops[0]] for c in opts]).T
    err = np.where(np.isfinite(err), err, 0.0)
    tint = [
        "crimson" if c is advice.chosen else ("tab:blue" if c.feasible else "lightgrey")
        for c in opts
    ]
    right.barh(ys, point, xerr=err.reshape(2, -1), color=tint, capsize=3)
    right.set_yticks(ys, [f"{c.option}\n{c.size} · {c.mix}" for c in opts], fontsize=7)
    right.set(xscale="log", xlabel=f"training FLOPs ({goal.band:.0%} band)")
    right.invert_yaxis()
    fig.suptitle(
        "raremix advise: bigger, longer or remixed — FLOPs to learn the rare tasks "
        "(grey: misses a constraint)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
