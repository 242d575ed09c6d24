"""The decomposition verdict (Granite function calling): does training on the umbrella task
plus its seven granular sub-tasks generalise better than the umbrella alone, at the same
number of training examples, to held-out tools and held-out compositions?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from raremix.errors import RaremixError
from raremix.stats import claim_outcome, floor_note, judge, mean_sd
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults
from raremix.studies.decomposition.run import CATEGORIES, UMBRELLA

LEARNED_MIN = 0.1
"""Below this accuracy on 'seen' held-out inputs in both arms, neither arm learned the task."""
NOVEL = ("new-tool", "new-composition")
CLAIM = (
    "Granite-20B-FunctionCalling (2024): training on seven granular sub-tasks generalises "
    "better than training on the umbrella data set"
)
UNPAIRED = (
    "unpaired: the arms share each seed's initialisation but not its data stream, which the "
    "mixture changes"
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


def decomposition_verdict(results: StudyResults, out: Path) -> Verdict:
    """Umbrella vs umbrella + sub-tasks on held-out tools and compositions; `figures/decomposition.png`."""
    final = results.final
    runs = arm_table(final)
    arms = runs.groupby("arm")["subtasks"].max().sort_values()
    if len(arms) != 2 or arms.iloc[0] != 0 or arms.iloc[1] == 0:
        raise RaremixError(
            "decomposition analysis needs two arms, one training the umbrella alone and one "
            "with its sub-tasks: check the study's 'data' axis"
        )
    umb_arm, dec_arm = str(arms.index[0]), str(arms.index[1])
    cats = [c for c in (*CATEGORIES, "all") if c in runs]
    umb, dec = runs[runs.arm == umb_arm], runs[runs.arm == dec_arm]
    novel = [c for c in NOVEL if c in cats]
    claim = judge(
        {f"{dec_arm} − {umb_arm}, {c}": (dec[c], umb[c]) for c in novel},
        family="the sub-tasks generalise better to held-out tools and compositions",
        direction="greater",
    )
    others = judge(
        {f"{dec_arm} − {umb_arm}, {c}": (dec[c], umb[c]) for c in cats if c not in novel},
        family="the sub-tasks change accuracy on the other held-out inputs",
    )
    finding, why = claim_outcome(claim, "greater")
    seen_best = max(float(g["seen"].mean()) for g in (umb, dec)) if "seen" in runs else 1.0
    if seen_best < LEARNED_MIN:
        finding, why = "inconclusive", f"neither arm learned {UMBRELLA}: seen < {LEARNED_MIN}"
    parts = []
    for c in novel:
        parts.append(f"{c} {mean_sd(umb[c])} → {mean_sd(dec[c])}")
    n_seeds = int(runs.groupby("arm").size().min())
    lines = [
        f"Claim tested: {CLAIM}.",
        *(j.text() + "." for j in claim + others),
        *filter(None, [floor_note(claim)]),
        f"{dec_arm} vs {umb_arm} on the umbrella task's ({UMBRELLA}) greedy-decoded accuracy, "
        f"{n_seeds} seed(s) per arm: the held-out tools and compositions decide the claim "
        f"(one-sided exact permutation tests, Holm over the {len(claim)}; supported only if "
        "both are significant); the other categories are two-sided tests of their own. Welch "
        f"t 95% CIs; {UNPAIRED}.",
        f"Same number of training examples in both arms; the umbrella is "
        f"{dec.share.mean():.0%} of them in '{dec_arm}' and {umb.share.mean():.0%} in "
        f"'{umb_arm}': the study asks whether a sub-task example is worth an umbrella example.",
        "Held-out categories: 'seen' = held-out inputs made of training tools and "
        "compositions; 'new-tool' = calls a tool name never in training; 'new-composition' = "
        "nests or chains a verb pair never composed in training. Each run's accuracy is the "
        f"mean of its last {LAST_EVALS} evaluations.",
    ]
    if worse := [j.name.rsplit(", ", 1)[1] for j in others if j.call == "less"]:
        lines.append(f"The sub-tasks significantly hurt on: {', '.join(worse)}.")
    sub = final[~final.task.str.startswith(UMBRELLA)].groupby("task", sort=True)["acc"]
    if len(sub):
        lines.append(
            f"Sub-tasks' own held-out accuracy in '{dec_arm}': "
            + ", ".join(f"{t} {mean_sd(a)}" for t, a in sub)
            + "."
        )
    fig = _figure(runs, [c for c in cats], [umb_arm, dec_arm], results.name)
    from raremix.figures.plots import save_figure

    save_figure(fig, out / "figures" / "decomposition.png")
    return Verdict(
        study=results.name,
        title="decomposition: umbrella task alone vs umbrella + its seven sub-tasks",
        headline=f"{finding}: the sub-tasks generalise better ({why}) — " + "; ".join(parts),
        lines=lines,
        table=_table(runs, cats, [umb_arm, dec_arm]),
        finding=finding,
        comparisons=[j.as_dict() for j in claim + others],
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
        cells = [mean_sd(g[c]) for c in cats]
        rows.append([arm, f"{g.share.mean():.0%}", *cells, len(g)])
    shown = [c.replace("all", "all held-out") for c in cats]
    return {"columns": ["group", "umbrella share", *shown, "seeds"], "rows": rows}


def _figure(runs: pd.DataFrame, cats: list[str], arms: list[str], study: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raremix.figures.bars import seed_bars

    long = runs.melt(
        id_vars=["arm", "seed"], value_vars=cats, var_name="category", value_name="acc"
    )
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    seed_bars(ax, long, "category", "arm", "acc", cats, arms)
    ax.set_ylabel(f"{UMBRELLA} accuracy (greedy, verified)")
    ax.legend(title="training data", fontsize=8)
    ax.set_title(f"{study}: held-out tools and compositions", fontsize=10)
    return fig
