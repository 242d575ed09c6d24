"""The decomposition verdict (Granite function calling): does training on the umbrella task
plus its seven granular sub-tasks generalise better than the umbrella alone, at the same
number of training examples, to held-out tools and held-out compositions?"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS
from raremix.studies.decomposition import CATEGORIES, UMBRELLA

MIN_GAIN = 0.02
"""A difference between arms counts only beyond this and beyond the larger sd over seeds."""
LEARNED_MIN = 0.1
"""Below this accuracy on 'seen' held-out inputs in both arms, neither arm learned the task."""
NOVEL = ("new-tool", "new-composition")
CLAIM = (
    "Granite-20B-FunctionCalling (2024): training on seven granular sub-tasks generalises "
    "better than training on the umbrella data set"
)


def arm_table(final: pd.DataFrame) -> pd.DataFrame:
    """One row per run: arm, seed, the umbrella's share of examples, and its accuracy on each
    held-out category (`all` = the whole held-out split)."""
    f = final.copy()
    f["arm"] = f["group"].str.split(" · ").str[-1]
    subtasks = f[~f.task.str.startswith(UMBRELLA)].groupby("run_id").size()
    umb = f[f.task.str.startswith(UMBRELLA)].copy()
    umb["category"] = umb.task.str.partition(":")[2].replace("", "all")
    wide = umb.pivot_table(index=["run_id", "arm", "seed"], columns="category", values="acc")
    wide = wide.reset_index().rename_axis(columns=None)
    share = f[f.task == UMBRELLA].set_index("run_id")["share"]
    wide["share"] = wide.run_id.map(share)
    wide["subtasks"] = wide.run_id.map(subtasks).fillna(0).astype(int)
    return wide


def _stat(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna()
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v)


def _fmt(m: float, sd: float) -> str:
    return f"{m:.2f} ± {sd:.2f}" if np.isfinite(sd) else f"{m:.2f}"


def compare(a: pd.Series, b: pd.Series) -> tuple[str, float]:
    """('better' | 'worse' | 'same', b − a): b beats a when the mean gain exceeds
    `MIN_GAIN` and the larger sd over seeds."""
    (ma, sa, _), (mb, sb, _) = _stat(a), _stat(b)
    gain = mb - ma
    margin = max(MIN_GAIN, np.nanmax([sa, sb, 0.0]))
    return ("better" if gain > margin else "worse" if gain < -margin else "same"), gain


def decomposition_verdict(final: pd.DataFrame, ctx: dict[str, Any], out: Path) -> Verdict:
    """Umbrella vs umbrella + sub-tasks on held-out tools and compositions; `figures/decomposition.png`."""
    runs = arm_table(final)
    arms = runs.groupby("arm")["subtasks"].max().sort_values()
    if len(arms) != 2 or arms.iloc[0] != 0 or arms.iloc[1] == 0:
        raise RaremixError(
            "decomposition analysis needs two arms, one training the umbrella alone and one "
            "with its sub-tasks: check the study's 'data' axis"
        )
    umb_arm, dec_arm = str(arms.index[0]), str(arms.index[1])
    cats = [c for c in (*CATEGORIES, "all") if c in runs]
    outcome = {}
    for c in cats:
        outcome[c] = compare(runs[runs.arm == umb_arm][c], runs[runs.arm == dec_arm][c])
    better = [c for c in NOVEL if outcome.get(c, ("same",))[0] == "better"]
    worse = [c for c in NOVEL if outcome.get(c, ("same",))[0] == "worse"]
    headline_word = (
        "reproduced" if len(better) == len(NOVEL)
        else "not reproduced" if not better else "mixed"
    )  # fmt: skip
    seen_best = max(_stat(runs[runs.arm == a]["seen"])[0] for a in (umb_arm, dec_arm))
    if "seen" in runs and seen_best < LEARNED_MIN:
        headline_word = f"not reproduced (neither arm learned {UMBRELLA}: seen < {LEARNED_MIN})"
    parts = []
    for c in NOVEL:
        if c in outcome:
            u, d = _stat(runs[runs.arm == umb_arm][c]), _stat(runs[runs.arm == dec_arm][c])
            parts.append(f"{c} {_fmt(u[0], u[1])} → {_fmt(d[0], d[1])}")
    n_seeds = int(runs.groupby("arm").size().min())
    lines = [
        f"Claim tested: {CLAIM}.",
        f"{dec_arm} vs {umb_arm}, the umbrella task's ({UMBRELLA}) greedy-decoded accuracy, mean ± sd "
        f"over {n_seeds} seed(s): "
        + "; ".join(f"{c}: {outcome[c][0]} ({outcome[c][1]:+.2f})" for c in cats)
        + f". 'better' needs a gain above {MIN_GAIN} and the larger sd.",
        f"Same number of training examples in both arms; the umbrella is "
        f"{runs[runs.arm == dec_arm].share.mean():.0%} of them in '{dec_arm}' "
        f"and {runs[runs.arm == umb_arm].share.mean():.0%} in '{umb_arm}'.",
        "Held-out categories: 'seen' = held-out inputs made of training tools and "
        "compositions; 'new-tool' = calls a tool name never in training; 'new-composition' = "
        "nests or chains a verb pair never composed in training. Each run's accuracy is the "
        f"mean of its last {LAST_EVALS} evaluations.",
    ]
    if worse:
        lines.append(f"The sub-tasks hurt on: {', '.join(worse)}.")
    sub = final[~final.task.str.startswith(UMBRELLA)].groupby("task", sort=True)["acc"]
    if len(sub):
        lines.append(
            f"Sub-tasks' own held-out accuracy in '{dec_arm}': "
            + ", ".join(f"{t} {_fmt(*_stat(a)[:2])}" for t, a in sub)
            + "."
        )
    fig = _figure(runs, [c for c in cats], [umb_arm, dec_arm], str(ctx.get("name", "")))
    from raremix.report.plots import save_figure

    save_figure(fig, out / "figures" / "decomposition.png")
    return Verdict(
        study=str(ctx.get("name", "decomposition")),
        title="decomposition: umbrella task alone vs umbrella + its seven sub-tasks",
        headline=f"{headline_word}: " + "; ".join(parts),
        lines=lines,
        table=_table(runs, cats, [umb_arm, dec_arm]),
        figures=[
            {
                "file": "figures/decomposition.png",
                "caption": "Umbrella-task accuracy per held-out category, per arm "
                "(bars: mean over seeds, error bars: sd, dots: seeds).",
            }
        ],
    )


def _table(runs: pd.DataFrame, cats: list[str], arms: list[str]) -> dict[str, list[Any]]:
    rows = []
    for arm in arms:
        g = runs[runs.arm == arm]
        cells = [_fmt(*_stat(g[c])[:2]) for c in cats]
        rows.append([arm, f"{g.share.mean():.0%}", *cells, len(g)])
    shown = [c.replace("all", "all held-out") for c in cats]
    return {"columns": ["group", "umbrella share", *shown, "seeds"], "rows": rows}


def _figure(runs: pd.DataFrame, cats: list[str], arms: list[str], study: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raremix.studies.plot_bars import seed_bars

    long = runs.melt(
        id_vars=["arm", "seed"], value_vars=cats, var_name="category", value_name="acc"
    )
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    seed_bars(ax, long, "category", "arm", "acc", cats, arms)
    ax.set_ylabel(f"{UMBRELLA} accuracy (greedy, verified)")
    ax.legend(title="training data", fontsize=8)
    ax.set_title(f"{study}: held-out tools and compositions", fontsize=10)
    return fig
