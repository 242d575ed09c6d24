"""The advisor's figure: predicted target and common accuracy vs the targets' share, one line
(and band) per model size, with the pilot runs as points and the recommendation starred."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raremix.advise.law import LawFit, band
from raremix.advise.pilots import RunTable
from raremix.advise.recommend import Advice, Goal, Size, mix_shares


def advice_figure(
    advice: Advice,
    law: LawFit,
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

    names = list(law.tasks)
    t_idx = [names.index(t) for t in goal.targets]
    c_idx = [i for i in range(len(names)) if i not in t_idx]
    top = max(c.factor for c in advice.candidates)
    factors = np.geomspace(1, max(top, 1.0001), 40)
    shares = np.stack([mix_shares(names, counts, goal.targets, float(f)) for f in factors])
    x = shares[:, t_idx].sum(axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(sizes)))
    for size, color in zip(sizes, colors, strict=True):
        mean, draws = law.predict(shares, np.full(len(factors), size.params))
        for ax, idx in zip(axes, (t_idx, c_idx), strict=True):
            if not idx:
                continue
            lo, hi = band(draws[:, :, idx].mean(axis=-1), goal.band)
            ax.plot(x, mean[:, idx].mean(axis=-1), color=color, label=f"{size.name} (law)")
            ax.fill_between(x, lo, hi, color=color, alpha=0.18)
        m = np.array([s == size.name for s in table.sizes])
        px = table.share[m][:, t_idx].sum(axis=1)
        axes[0].scatter(
            px, table.acc[m][:, t_idx].mean(axis=1), color=color, edgecolor="k", zorder=3
        )
        if c_idx:
            axes[1].scatter(
                px, table.acc[m][:, c_idx].mean(axis=1), color=color, edgecolor="k", zorder=3
            )
    axes[0].axhline(goal.target_acc, color="crimson", ls="--", lw=1, label="target")
    if advice.chosen is not None:
        c = advice.chosen
        axes[0].scatter(
            [c.target_share],
            [c.rare[0]],
            marker="*",
            s=260,
            color="crimson",
            zorder=4,
            label="recommended",
        )
        axes[1].scatter(
            [c.target_share], [c.common[0]], marker="*", s=260, color="crimson", zorder=4
        )
    axes[0].set(
        xscale="log", xlabel="targets' share of the mix", ylabel="target accuracy (held-out)"
    )
    axes[1].set(
        xscale="log", xlabel="targets' share of the mix", ylabel="mean common-task accuracy"
    )
    from matplotlib.ticker import NullFormatter, PercentFormatter

    ticks = sorted({round(float(v), 3) for v in table.share[:, t_idx].sum(axis=1)})
    for ax in axes:
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"raremix advise: the fitted law ({goal.band:.0%} bootstrap band) and the pilot runs",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
