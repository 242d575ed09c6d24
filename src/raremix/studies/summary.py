"""Per-run and per-group summaries of a sweep's final table, shared by verdicts and reports.

`per_run` pools each run's rare and common accuracy (weighted by held-out n);
`group_summary` gives each group (size × mix …) its mean ± sd over seeds, the seeds that
learned the rare task, its params and FLOPs; `strongest_baseline` is what an accuracy must
beat; `pm` prints mean ± sd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from raremix.studies.analysis_final import common_accuracy

NATURAL = "natural"
LEARNED = 0.9
"""A run whose rare acc reaches this has learned the rare task: onsets are abrupt and their
timing random, so seeds often split into learned / not learned, which the count shows."""


def strongest_baseline(final: pd.DataFrame) -> pd.Series:
    """Per row of the final table: the best of its task's chance, majority and heuristic
    accuracies (NaN where none is recorded): what an accuracy must beat to mean anything."""
    cols = [c for c in ("chance", "majority", "heuristic") if c in final]
    return final[cols].max(axis=1, skipna=True) if cols else pd.Series(math.nan, final.index)


def per_run(final: pd.DataFrame) -> pd.DataFrame:
    """One row per run: rare and common acc, each pooled over its tasks weighted by held-out n;
    rare_n (the rare tasks' held-out examples) and rare_baseline (their `strongest_baseline`,
    pooled the same way)."""
    keys = ["run_id", "seed", "size", "params", "flops", "mix", "group"]
    out = final[keys].drop_duplicates("run_id").reset_index(drop=True)
    for role in ("rare", "common"):
        pooled = common_accuracy(final, role)
        acc: pd.Series = pooled.set_index("run_id")["acc"] if len(pooled) else pd.Series()
        out[f"{role}_acc"] = out.run_id.map(acc).astype(float)
        if role == "rare":
            n = pooled.set_index("run_id")["n"] if len(pooled) else pd.Series()
            out["rare_n"] = out.run_id.map(n).astype(float)
    # pool the baseline as the accuracy is pooled: common_accuracy over baseline-as-acc rows
    bars = final.assign(acc=strongest_baseline(final))
    bar = common_accuracy(bars[bars.acc.notna()], "rare")
    out["rare_baseline"] = out.run_id.map(
        bar.set_index("run_id")["acc"] if len(bar) else pd.Series()
    ).astype(float)
    share = final[final.role == "rare"].groupby("run_id")["share"].sum(min_count=1)
    return out.assign(rare_share=out.run_id.map(share))


def group_summary(final: pd.DataFrame) -> pd.DataFrame:
    """Per group (size × mix …): rare and common acc mean ± sd over seeds, params, FLOPs."""
    runs = per_run(final)
    g = runs.groupby(["group", "size", "mix"], sort=False)
    out = g.agg(
        params=("params", "median"),
        flops=("flops", "median"),
        rare_share=("rare_share", "mean"),
        rare_n=("rare_n", "median"),
        rare_baseline=("rare_baseline", "mean"),
        rare_mean=("rare_acc", "mean"),
        rare_sd=("rare_acc", "std"),
        rare_learned=("rare_acc", lambda a: int((a >= LEARNED).sum())),
        common_mean=("common_acc", "mean"),
        common_sd=("common_acc", "std"),
        seeds=("seed", "nunique"),
    ).reset_index()
    out["natural"] = out["mix"] == NATURAL
    return out.sort_values(["natural", "mix", "params"], ascending=[False, True, True]).reset_index(
        drop=True
    )


@dataclass(frozen=True)
class Group:
    """One row of `group_summary`, typed."""

    group: str
    size: str
    mix: str
    params: float
    flops: float
    rare_share: float
    rare_n: float
    """The rare tasks' held-out examples per seed (NaN for runs written before n was)."""
    rare_baseline: float
    """What the rare acc must beat: the strongest of chance, majority and heuristic."""
    rare_mean: float
    rare_sd: float
    rare_learned: int
    """Seeds whose rare acc reached `LEARNED`."""
    common_mean: float
    common_sd: float
    seeds: int
    natural: bool

    @property
    def rare(self) -> str:
        """Rare acc as 'mean ± sd'."""
        return pm(self.rare_mean, self.rare_sd)

    @property
    def learned(self) -> str:
        """'2 of 3': the seeds that learned the rare task."""
        return f"{self.rare_learned} of {self.seeds}"


def group_rows(groups: pd.DataFrame) -> list[Group]:
    """The rows of `group_summary` as `Group`s, in its order."""
    names = [f.name for f in fields(Group)]
    return [Group(**{k: r[k] for k in names}) for r in groups.to_dict("records")]


def best_designed(groups: pd.DataFrame) -> tuple[Group | None, Group | None]:
    """(natural, best designed) groups at the smallest size that has both; None if absent."""
    rows = group_rows(groups)
    nat = sorted((g for g in rows if g.natural), key=lambda g: (g.params, g.flops))
    des = [g for g in rows if not g.natural]
    both = sorted({g.params for g in nat} & {g.params for g in des})
    if not both:
        return (nat[0] if nat else None), None
    at_nat = next(g for g in nat if g.params == both[0])
    return at_nat, max((g for g in des if g.params == both[0]), key=lambda g: g.rare_mean)


def pm(mean: float, sd: float) -> str:
    """'0.56 ± 0.05' ('0.56' when the sd is unknown: one seed)."""
    return f"{mean:.2f}" if not np.isfinite(sd) else f"{mean:.2f} ± {sd:.2f}"
