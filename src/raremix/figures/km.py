"""Kaplan–Meier figures of FLOPs-to-learn: the share of seeds that have learned, per arm.

One drawing for every study that reports onsets (the demo, bigger-longer-remixed, and any
study with a `flops_to_learn` hypothesis): a step curve of the learned fraction
(1 − survival) over training FLOPs on a log axis, lifelines' 95% band, and a tick below
the axis at each seed's onset. Up and left is better: more seeds learned, with less
compute. A curve ends at its arm's cap, so an arm followed further is visibly longer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib loads only when a figure is drawn
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class KmArm:
    """One arm's onsets: FLOPs at which each seed learned, or was censored."""

    label: str
    flops: np.ndarray
    """Per seed: FLOPs-to-learn, or the FLOPs it was followed to when not learned."""
    learned: np.ndarray
    """Per seed: True where the task was learned (False: right-censored at `flops`)."""
    cap: float | None = None
    """FLOPs every seed of the arm was followed to; default: the largest value in `flops`."""

    @property
    def end(self) -> float:
        return float(self.cap if self.cap is not None else np.max(self.flops, initial=1.0))


def learned_curve(arm: KmArm) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(FLOPs, learned fraction, band low, band high), as steps up to the arm's end."""
    from raremix.stats.survival import kaplan_meier

    km = kaplan_meier(arm.flops.astype(float), arm.learned.astype(bool), arm.label)
    km = km[km.timeline <= arm.end]
    x = np.append(km.timeline.to_numpy(), arm.end)
    y, lo, hi = (
        np.append(v, v[-1])
        for v in (
            1 - km.survival.to_numpy(),
            1 - km.ci_upper.to_numpy(),
            1 - km.ci_lower.to_numpy(),
        )
    )
    return x, y, lo, hi


def draw_km(ax: Axes, arms: Sequence[KmArm], *, ylabel: str = "seeds that learned") -> None:
    """Draw each arm's learned fraction with its band and onset ticks on `ax`."""
    from raremix.figures.plots import plt

    colors = plt.get_cmap("tab10")
    # the curves start at 0 FLOPs; on a log axis they start a decade and a half below the
    # smallest end, where no run could have learned yet
    left = min(a.end for a in arms) / 30 if arms else 1.0
    for i, a in enumerate(arms):
        x, y, lo, hi = learned_curve(a)
        x = np.maximum(x, left)
        label = f"{a.label} ({int(a.learned.sum())}/{len(a.learned)})"
        ax.step(x, y, where="post", color=colors(i % 10), lw=2, label=label)
        ax.fill_between(x, lo, hi, step="post", color=colors(i % 10), alpha=0.12)
        onsets = a.flops[a.learned.astype(bool)]
        ax.plot(onsets, np.full(len(onsets), -0.03 - 0.025 * i), "|", color=colors(i % 10), ms=8)
    ax.set_xscale("log")
    ax.set_xlim(left=left)
    ax.set_ylim(-0.03 - 0.025 * len(arms), 1.02)
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def save_km_figure(
    panels: Sequence[tuple[str, Sequence[KmArm]]], path: Path, *, ylabel: str = "seeds that learned"
) -> Path:
    """One Kaplan–Meier panel per (title, arms), up to three a row; written to `path`."""
    from raremix.figures.plots import plt, save_figure

    n = max(1, len(panels))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    width = 7.0 if n == 1 else 4.4 * cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(width, 4.2 if n == 1 else 3.6 * rows),
        squeeze=False,
        layout="constrained",
    )
    for ax, (title, arms) in zip(axes.flat, panels, strict=False):
        draw_km(ax, arms, ylabel=ylabel)
        ax.set_title(title, fontsize=10 if n == 1 else 9)
        ax.legend(loc="upper left", fontsize=8 if n == 1 else 7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return save_figure(fig, path)
