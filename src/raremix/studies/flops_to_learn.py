"""FLOPs-to-learn as a study outcome: onsets per run × task, KM per arm, log-rank, Weibull AFT.

The outcome of a run on a task is the training FLOPs at which the declared rule first
holds (`results.onset.flops_to_learn`), right-censored at the run's cap: its planned
FLOPs, or a view's cap (`studies.views`), or where its curve stops. `onset_table` turns a
study's learning curves into one row per run × task with that time beside the final and
area-under-curve accuracy; `km_by_arm`, `logrank_vs` and `aft_fit` feed the verdicts;
`compare_flops_to_learn` is how a declared hypothesis with metric `flops_to_learn` is
tested (docs/statistics.md, "FLOPs-to-learn").
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.results.onset import LearnedRule, flops_to_learn
from raremix.stats import Comparison, Direction, compare_means, kaplan_meier, logrank, survival_fit
from raremix.studies.analysis_final import LAST_EVALS

ONSET_COLUMNS = [
    "run_id",
    "seed",
    "group",
    "size",
    "params",
    "mix",
    "task",
    "role",
    "share",
    "flops_to_learn",
    "learned",
    "cap",
    "final_acc",
    "auc",
]


def run_flops_per_step(runs: pd.DataFrame) -> dict[str, float]:
    """{run_id: training FLOPs per step}: the run's recorded fact, else its FLOPs ÷ steps."""
    out: dict[str, float] = {}
    for r in runs.to_dict("records"):
        fps = float(pd.to_numeric(str(r.get("flops_per_step")), errors="coerce"))
        if not (isinstance(fps, float) and math.isfinite(fps) and fps > 0):
            config = json.loads(r["config"]) if isinstance(r.get("config"), str) else {}
            steps = float(config.get("steps", math.nan)) if isinstance(config, dict) else math.nan
            fps = float(r.get("flops", math.nan)) / steps
        if not (math.isfinite(fps) and fps > 0):
            raise RaremixError(
                f"run {r['run_id']} records no training FLOPs: FLOPs-to-learn needs runs of "
                "raremix's trainer (they record flops_per_step)"
            )
        out[str(r["run_id"])] = float(fps)
    return out


def run_caps(runs: pd.DataFrame) -> dict[str, float]:
    """{run_id: the FLOPs a run is followed to}: a view's `cap`, else its planned FLOPs."""
    caps = pd.to_numeric(runs["cap"], errors="coerce") if "cap" in runs else None
    planned = pd.to_numeric(runs["flops"], errors="coerce")
    out = {}
    for i, run_id in enumerate(runs["run_id"]):
        cap = caps.iloc[i] if caps is not None else math.nan
        out[str(run_id)] = float(cap if math.isfinite(cap) else planned.iloc[i])
    return out


def onset_table(curves: pd.DataFrame, runs: pd.DataFrame, rule: LearnedRule) -> pd.DataFrame:
    """One row per run × task: FLOPs-to-learn (censored at the run's cap), learned, final acc
    (mean of the last `LAST_EVALS` evaluations) and AUC (mean accuracy over [0, cap] FLOPs,
    the last evaluation carried to the cap: a run stopped once learned keeps what it knew)."""
    fps, caps = run_flops_per_step(runs), run_caps(runs)
    shares = dict(zip(runs.run_id, runs.shares, strict=True)) if "shares" in runs else {}
    rows: list[dict[str, Any]] = []
    for (run_id, task), c in curves.groupby(["run_id", "task"], sort=False):
        c = c.sort_values("step")
        per_step, cap = fps[str(run_id)], caps[str(run_id)]
        steps, acc = c.step.to_numpy(dtype=float), c.acc.to_numpy(dtype=float)
        cap = cap if math.isfinite(cap) else float(steps[-1] * per_step)
        onset = flops_to_learn(steps, acc, rule, per_step, cap)
        x = np.append(steps * per_step, cap)
        y = np.append(acc, acc[-1])
        keep = x <= cap
        area = np.trapezoid(y[keep], x[keep]) / cap if keep.sum() > 1 else float(y[0])
        first = c.iloc[0]
        rows.append(
            {
                "run_id": run_id,
                "seed": first.seed,
                "group": first.group,
                "size": first["size"],
                "params": first.params,
                "mix": first.mix,
                "task": task,
                "role": first.role,
                "share": (shares.get(run_id) or {}).get(task, math.nan),
                "flops_to_learn": onset.flops,
                "learned": onset.observed,
                "cap": cap,
                "final_acc": float(np.nanmean(acc[keep[:-1]][-LAST_EVALS:])),
                "auc": float(area),
            }
        )
    return pd.DataFrame(rows, columns=ONSET_COLUMNS)


def all_learned(onsets: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Per run: the FLOPs at which every one of `tasks` was learned (the latest onset), and
    whether all were; censored (at the earliest censoring) when any was not."""
    sel = onsets[onsets.task.isin(tasks)]
    out = []
    for run_id, g in sel.groupby("run_id", sort=False):
        if set(g.task) != set(tasks):
            continue  # a run without every task's curve has no time for them all
        done = bool(g.learned.all())
        t = float(g.flops_to_learn.max() if done else g[~g.learned].flops_to_learn.min())
        out.append({"run_id": run_id, "flops_to_learn": t, "learned": done})
    return pd.DataFrame(out, columns=["run_id", "flops_to_learn", "learned"])


def km_by_arm(onsets: pd.DataFrame, task: str, arm: str = "group") -> pd.DataFrame:
    """Kaplan–Meier curves of FLOPs-to-learn `task`, one per arm, stacked with an `arm` column."""
    parts = []
    for name, g in onsets[onsets.task == task].groupby(arm, sort=False):
        km = kaplan_meier(g.flops_to_learn.to_numpy(float), g.learned.to_numpy(bool), str(name))
        parts.append(km.assign(arm=str(name)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def logrank_vs(
    onsets: pd.DataFrame, task: str, reference: str, arm: str = "group"
) -> dict[str, dict[str, Any]]:
    """{arm: log-rank result vs `reference`} on FLOPs-to-learn `task` (a reason when untestable)."""
    sel = onsets[onsets.task == task]
    ref = sel[sel[arm] == reference]
    out: dict[str, dict[str, Any]] = {}
    for name, g in sel.groupby(arm, sort=False):
        if name == reference or ref.empty:
            continue
        try:
            out[str(name)] = dict(
                logrank(
                    g.flops_to_learn.to_numpy(float),
                    g.learned.to_numpy(bool),
                    ref.flops_to_learn.to_numpy(float),
                    ref.learned.to_numpy(bool),
                )
            )
        except RaremixError as err:
            out[str(name)] = {"p": math.nan, "test": str(err).split(":")[0]}
    return out


AFT_FORMULA = "log_params * log_share"
"""FLOPs-to-learn on log-params, log-share and their interaction (time ratios per e-fold)."""


def aft_fit(onsets: pd.DataFrame, task: str, formula: str = AFT_FORMULA) -> pd.DataFrame | str:
    """A Weibull AFT fit of FLOPs-to-learn `task` (`stats.survival_fit`), or why there is none."""
    sel = onsets[(onsets.task == task) & (onsets.share > 0) & (onsets.params > 0)]
    data = pd.DataFrame(
        {
            "t": sel.flops_to_learn.to_numpy(float),
            "e": sel.learned.to_numpy(bool),
            "log_params": np.log(sel.params.to_numpy(float)),
            "log_share": np.log(sel.share.to_numpy(float)),
        }
    )
    if data.log_share.nunique() < 2 and "share" in formula:
        formula = "log_params"  # one share: the share terms are not identified
    if data.log_params.nunique() < 2:
        return "one model size: the size terms are not identified"
    try:
        return survival_fit(data, "t", "e", formula)
    except RaremixError as err:
        return str(err).removeprefix("survival_fit: ")


def restricted_log_flops(durations: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, float]:
    """Per run log10 min(T, τ), with τ the earliest censoring time (else the latest time):
    every run is followed to τ, so each value is known exactly despite censoring."""
    t, e = np.asarray(durations, float), np.asarray(observed, bool)
    tau = float(t[~e].min()) if (~e).any() else float(t.max())
    return np.log10(np.minimum(t, tau)), tau


def compare_flops_to_learn(
    treat: tuple[np.ndarray, np.ndarray],
    ctrl: tuple[np.ndarray, np.ndarray],
    *,
    direction: Direction,
    alpha: float,
    paired: bool = False,
) -> Comparison:
    """Treatment vs control FLOPs-to-learn ((durations, observed) each): the restricted mean
    of log10 FLOPs-to-learn, τ common to both arms, compared by an exact permutation test with
    a t interval (effect in decades: −0.30 is 2× fewer FLOPs); the log-rank p is named beside."""
    (tt, te), (ct, ce) = treat, ctrl
    both_t, both_e = np.concatenate([tt, ct]), np.concatenate([te, ce]).astype(bool)
    values, tau = restricted_log_flops(both_t, both_e)
    c = compare_means(
        values[: len(tt)], values[len(tt) :], paired=paired, direction=direction, alpha=alpha
    )
    try:
        rank = logrank(tt, te, ct, ce)
        said = f"log-rank p = {rank['p']:.3g}, {str(rank['test']).removeprefix('log-rank ')}"
    except RaremixError:
        said = "log-rank undefined: no run learned"
    test = f"restricted mean log10 FLOPs-to-learn (τ = {tau:.3g} FLOPs): {c.test}; {said}"
    return replace(c, test=test)
