"""Grouped bar charts with the seed spread: a bar per (x, hue) at the mean over seeds, an
error bar of one sd, and each seed as a dot. Used by the decomposition and instructions
verdicts; imported only when a figure is drawn (matplotlib stays out of workers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def seed_bars(
    ax: Axes,
    data: pd.DataFrame,
    x: str,
    hue: str,
    value: str,
    xs: Sequence[str],
    hues: Sequence[str],
) -> None:
    """Bars of `value` per `x` (in `xs` order) and `hue` (in `hues` order), one row per seed."""
    import matplotlib.pyplot as plt

    width = 0.8 / max(len(hues), 1)
    colors = plt.get_cmap("tab10")
    for j, h in enumerate(hues):
        pos = np.arange(len(xs)) + (j - (len(hues) - 1) / 2) * width
        sel = [data[(data[x] == v) & (data[hue] == h)][value].dropna() for v in xs]
        means = [s.mean() if len(s) else np.nan for s in sel]
        sds = [s.std(ddof=1) if len(s) > 1 else 0.0 for s in sel]
        ax.bar(pos, means, width * 0.9, yerr=sds, capsize=3, color=colors(j), alpha=0.75, label=h)
        for p, s in zip(pos, sel, strict=True):
            ax.plot([p] * len(s), s, "o", ms=3, color="black", alpha=0.6)
    ax.set_xticks(np.arange(len(xs)), list(xs), fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.grid(axis="y", alpha=0.3)
