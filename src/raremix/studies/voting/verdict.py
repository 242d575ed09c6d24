"""The voting verdict: does first-to-ahead-by-k voting make long chains succeed, as the
closed form from the per-sample accuracy predicts (MAKER)?

Reads the raw metric rows of `voting_run` (task = arm, step = chain length): measured
success pooled over seeds with a Wilson 95% interval, against the closed form
1 / (1 + ((1-p)/p)^k) ^ steps from each seed's calibrated per-sample accuracy p.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import StudyResults
from raremix.studies.voting.lab import wilson

FEASIBLE = 0.5
"""Measured success at which a task length counts as feasible."""
AGREE = 0.8
"""Share of (arm, length) cells whose prediction lies in the 95% interval for 'matches'."""


def arm_order(arms: list[str]) -> list[str]:
    """single first, then k arms by k."""
    return sorted(arms, key=lambda a: (a != "single", int(a[1:]) if a[1:].isdigit() else 0))


def success_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm × length, pooled over seeds: successes, chains, measured rate, its Wilson
    interval, and the mean predicted success (closed form, and per input)."""
    m = rows[rows.metric.isin(["success", "chains", "predicted", "predicted_per_input"])]
    wide = m.pivot_table(index=["run_id", "task", "step"], columns="metric", values="value")
    wide = wide.reset_index()
    wide["wins"] = wide["success"] * wide["chains"]
    agg = {"wins": ("wins", "sum"), "chains": ("chains", "sum"), "seeds": ("run_id", "nunique")}
    for col in ("predicted", "predicted_per_input"):
        if col in wide:
            agg[col] = (col, "mean")
    out = wide.groupby(["task", "step"], as_index=False).agg(**agg)
    out["success"] = out["wins"] / out["chains"]
    out["lo"], out["hi"] = wilson(out["wins"].to_numpy(), out["chains"].to_numpy())
    return out.rename(columns={"task": "arm", "step": "length"})


def _arm_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """The voting arms' step-0 rows (an arm is a task that logged `k`), one row per arm × run
    with a column per metric."""
    arms = set(rows.loc[rows.metric == "k", "task"])
    m = rows[(rows.step == 0) & rows.task.isin(arms)]
    return m.pivot_table(index=["task", "run_id"], columns="metric", values="value").reset_index()


def arm_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm: the step-0 rows (k, p, per-step errors, samples) as mean and per-seed lists."""
    wide = _arm_runs(rows)
    pooled = wide.groupby("task").agg(
        k=("k", "first"),
        red_flags=("red_flags", "first"),
        p=("p_calibration", "mean"),
        p_sample=("p_sample", "mean"),
        flag_rate=("flag_rate", "mean"),
        samples=("samples_per_step", "mean"),
        steps=("steps_executed", "sum"),
        errors=("errors", "sum"),
        predicted=("step_error_predicted", "mean"),
        predicted_per_input=("step_error_predicted_per_input", "mean"),
    )
    pooled["step_error"] = pooled["errors"] / pooled["steps"].clip(lower=1)
    pooled["seed_errors"] = wide.groupby("task")["step_error"].apply(list)
    return pooled.loc[arm_order(list(pooled.index))]


def seed_cells(rows: pd.DataFrame, seeds: dict[str, int] | None = None) -> pd.DataFrame:
    """Per arm × run: measured per-step error (errors / steps executed) with its Wilson
    interval, the closed form's, and whether that is inside, optimistic or pessimistic."""
    w = _arm_runs(rows).rename(columns={"task": "arm", "steps_executed": "steps"})
    w["measured"] = w["errors"] / w["steps"].clip(lower=1)
    w["lo"], w["hi"] = wilson(w["errors"].to_numpy(), w["steps"].to_numpy())
    w["predicted"] = w["step_error_predicted"]
    w["fit"] = [
        "optimistic" if p < lo - 1e-15 else "pessimistic" if p > hi + 1e-15 else "inside"
        for p, lo, hi in zip(w.predicted, w.lo, w.hi, strict=True)
    ]
    w["seed"] = w["run_id"].map(seeds) if seeds else w["run_id"]
    order = {a: i for i, a in enumerate(arm_order(sorted(set(w.arm))))}
    return w.sort_values(["arm", "run_id"], key=lambda c: c.map(order) if c.name == "arm" else c)


def records(df: pd.DataFrame, index: str | None = None) -> list[dict[str, Any]]:
    """The rows of `df` as dicts (the index as column `index` when given)."""
    frame = df.reset_index(names=index) if index else df
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return ""
    if x == 0:
        return "0"
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


def voting_verdict(results: StudyResults, out: Path) -> Verdict:
    """Table per arm, agreement with the closed form, the figure; headline vs MAKER's claim."""
    study = results
    rows = study.metrics
    stats, succ = arm_stats(rows), success_table(rows[rows.task != "whole"])
    if stats.empty:
        raise RaremixError(f"{study.study_dir}: no voting rows in the store: run the voting study")
    stats["lo"], stats["hi"] = wilson(stats["errors"].to_numpy(), stats["steps"].to_numpy())
    whole = success_table(rows[rows.task == "whole"]) if (rows.task == "whole").any() else None
    seeds = int(succ["seeds"].max()) if len(succ) else 0
    longest = int(succ["length"].max())
    marks = [n for n in (9, 100, 1_000, 10_000, 100_000) if n <= longest]
    if longest not in marks:
        marks.append(longest)
    cell = {(str(r["arm"]), int(r["length"])): r for r in records(succ)}

    table_rows = []
    for s in records(stats, "arm"):
        arm = str(s["arm"])
        row = [
            arm,
            "yes" if s["red_flags"] else "no",
            f"{s['p']:.3f}",
            f"{s['samples']:.1f}",
            f"{_fmt(s['step_error'])} [{_fmt(s['lo'])}, {_fmt(s['hi'])}] "
            f"({int(s['errors'])}/{int(s['steps']):,})",
            _fmt(s["predicted"]),
            _fmt(s["predicted_per_input"]),
        ]
        for n in marks:
            c = cell.get((arm, n))
            row.append(
                ""
                if c is None
                else f"{c['success']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}] · {_fmt(c['predicted'])}"
            )
        table_rows.append(row)
    if whole is not None:
        wc = {int(r["length"]): r for r in records(whole)}
        table_rows.append(
            ["whole (greedy)", "no", "", "", "", "", ""]
            + [
                f"{wc[n]['success']:.2f} [{wc[n]['lo']:.2f}, {wc[n]['hi']:.2f}]"
                if n in wc
                else "n/a"
                for n in marks
            ]
        )
    columns = [
        "arm",
        "red flags",
        "p",
        "samples/step",
        "step error [95% CI] (errors/steps)",
        "closed form (mean of seeds)",
        "per input",
    ] + [f"success @{n:,}: measured [95% CI] · closed form" for n in marks]

    # the closed form vs the measured per-step error, per seed (p differs between seeds)
    cells = seed_cells(rows, dict(zip(study.runs.run_id, study.runs.seed, strict=True)))
    voting = [a for a in stats.index if a != "single"]
    vcells = cells[cells.arm.isin(voting)]
    fit = vcells["fit"].value_counts().to_dict()
    inside, optimistic = int(fit.get("inside", 0)), int(fit.get("optimistic", 0))
    pessimistic = int(fit.get("pessimistic", 0))
    informative = succ[(succ.arm != "single") & succ.predicted.between(0.02, 0.98)]
    hits = informative.predicted.between(informative.lo - 1e-12, informative.hi + 1e-12)
    success_share = float(hits.mean()) if len(informative) else math.nan
    matches = optimistic == 0 and len(vcells) > 0 and not success_share < AGREE
    at_end = succ[succ.length == longest].set_index("arm")
    best = at_end.drop(index="single", errors="ignore")["success"]
    best_arm = str(best.idxmax()) if len(best) else ""
    best_val = float(best.max()) if len(best) else math.nan
    single_100 = cell.get(("single", 100))
    single_fail = single_100 is not None and single_100["success"] < FEASIBLE
    feasible = best_val >= FEASIBLE
    word = (  # the outcome vocabulary (raremix.stats.OUTCOMES), never "reproduced"
        "supported"
        if feasible and single_fail and matches
        else "contradicted"
        if not feasible and not matches
        else "inconclusive"
    )
    single_txt = (
        f"single calls {single_100['success']:.2f} at 100 steps" if single_100 is not None else ""
    )
    whole_txt = ""
    if whole is not None and len(whole):
        w = records(whole.sort_values("length"))[-1]
        whole_txt = f", the whole-answer model {w['success']:.2f} at {int(w['length'])}"
    headline = (
        f"{word}: voting ({best_arm}) finishes {best_val:.2f} of chains error-free over {longest:,} steps "
        f"({single_txt}{whole_txt}); closed form vs measured per-step error (arm × seed): "
        f"{inside} inside the 95% interval, {pessimistic} too pessimistic, {optimistic} too optimistic; "
        f"predicted success inside the interval in {int(hits.sum())} of {len(informative)} "
        f"informative cells; {seeds} seeds"
    )
    detail = "; ".join(
        f"{r['arm']} seed {r['seed']}: {_fmt(r['measured'])} [{_fmt(r['lo'])}, {_fmt(r['hi'])}] vs "
        f"{_fmt(r['predicted'])} ({r['fit']})"
        for r in records(vcells)
    )
    lines = [
        "Each chain executes a register program (one update mod 10 per step, every step an input the "
        "step model was trained on) one model call per step; a chain stops at its first wrong step, so "
        "'success at n' = no wrong step in the first n. Measured success is pooled over seeds with a "
        "Wilson 95% interval; 'closed form' is 1/(1+((1-p)/p)^k)^n with p = P(right | well-formed reply) "
        "computed exactly from each seed's model on independent calibration steps (averaged over seeds).",
        "Criterion: supported = the best voting arm finishes at least half its chains at the longest "
        f"length, single calls finish fewer than half at 100 steps, the closed form is never too "
        f"optimistic per seed (it lumps all wrong digits into one answer, so for ten answers it is an "
        f"upper bound on the error), and its success prediction lies in the interval in at least "
        f"{AGREE:.0%} of the cells where it is between 0.02 and 0.98; contradicted = voting does not "
        "finish half its chains and the closed form fails that test; inconclusive otherwise.",
        f"Per-step error per seed, measured [95% CI] vs closed form: {detail}.",
    ]
    for s in records(stats, "arm"):
        errs = ", ".join(_fmt(e) for e in s["seed_errors"])
        lines.append(
            f"{s['arm']}: per-sample p {s['p']:.3f}, {s['samples']:.1f} samples and "
            f"{s['flag_rate']:.1%} red-flagged per step; per-step error {_fmt(s['step_error'])} "
            f"pooled (per seed: {errs}); closed form {_fmt(s['predicted'])}."
        )
    if whole is not None:
        each = ", ".join(f"{int(r['length'])} steps {r['success']:.2f}" for r in records(whole))
        lines.append(
            f"The whole-answer model (same size, trained on 2-9 updates at once, greedy) on programs "
            f"drawn like the chains': {each} (chance 0.10)."
        )
    speed = rows[(rows.task == "") & (rows.step == 0)].groupby("metric")["value"]
    if "calls_per_s" in speed.groups:
        cps = speed.get_group("calls_per_s")
        lines.append(
            f"Throughput of the batched executor: {cps.mean():,.0f} model calls/s "
            f"({cps.min():,.0f}-{cps.max():,.0f} over runs), "
            f"{speed.get_group('samples_per_s').mean():,.0f} sampled replies/s, "
            f"{speed.get_group('chain_steps_per_s').mean():,.0f} chain steps/s (1 thread per run)."
        )
    from raremix.figures.plots import save_figure

    save_figure(_figure(succ, stats, whole, rows), out / "figures" / "voting.png")
    return Verdict(
        study=results.name,
        title="voting: whole-task success of decomposed execution with first-to-ahead-by-k voting",
        headline=headline,
        lines=lines,
        table={"columns": columns, "rows": table_rows},
        finding=word,
        figures=[
            {
                "file": "figures/voting.png",
                "caption": "Success vs number of steps (log x): points = measured (pooled over seeds, "
                "95% Wilson interval); solid lines = closed form from the calibrated per-sample accuracy p; "
                "dotted = the closed form averaged over calibration inputs (p per input); "
                "squares = the whole-answer model (greedy).",
            }
        ],
    )


def _figure(
    succ: pd.DataFrame, stats: pd.DataFrame, whole: pd.DataFrame | None, rows: pd.DataFrame
) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    grid = np.logspace(0, math.log10(max(10, float(succ["length"].max()))), 200)
    per_seed = rows[(rows.step == 0) & rows.metric.str.startswith("step_error_predicted")]
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, len(stats))))
    for color, arm in zip(colors, stats.index, strict=True):
        s = succ[succ.arm == arm].sort_values("length")
        err = np.vstack([s.success - s.lo, s.hi - s.success])
        label = "single call" if arm == "single" else f"vote k={arm[1:]}"
        ax.errorbar(
            s.length, s.success, yerr=err, fmt="o", ms=4, color=color, capsize=2, label=label
        )
        for metric, style in (
            ("step_error_predicted", "-"),
            ("step_error_predicted_per_input", ":"),
        ):
            e = per_seed[(per_seed.task == arm) & (per_seed.metric == metric)]["value"].to_numpy()
            if arm != "single" or style == "-":
                ax.plot(
                    grid,
                    np.mean((1 - e[:, None]) ** grid[None, :], axis=0),
                    style,
                    color=color,
                    lw=1,
                )
    if whole is not None:
        err = np.vstack([whole.success - whole.lo, whole.hi - whole.success])
        ax.errorbar(
            whole.length,
            whole.success,
            yerr=err,
            fmt="s",
            color="crimson",
            ms=5,
            capsize=2,
            label="whole answer at once",
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("steps in the task")
    ax.set_ylabel("P(no wrong step)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
