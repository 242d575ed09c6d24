"""The distillation verdict: does a student trained on teacher-labelled data pass its teacher?

Runs come from `distill_run.run_distill`; their facts say what each is (`role` teacher or
student, `pool` teacher-labelled inputs per task, `distill_loss`). Every student arm is
compared with the teacher per task (two-sided exact permutation tests over seeds, Welch t
CIs, Holm within the task: `raremix.stats.judge`): a student *passes* the teacher at pool
size N when it is significantly better, and *ties* it when the 90% interval of the
difference lies inside ±`TIE_MARGIN` (an equivalence test, never a non-significant p).

Each run is scored by its *last* evaluation, not the study-wide mean of the last few:
the teacher that labelled the pool is its final checkpoint, and a run still improving
would be marked down by its earlier evaluations.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.stats import Judged, floor_note, judge
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import StudyResults
from raremix.studies.summary import pm

MEAN = "mean"
"""The pseudo-task averaging a run's accuracy over its tasks."""
TIE_MARGIN = 0.05
"""A student ties its teacher when the 90% interval of student − teacher lies inside ±this."""
LABELLED_ONLY = "labelled only"
UNPAIRED = (
    "unpaired: a student and its seed's teacher differ in size, so they share no "
    "initialisation, and students of different pools see different streams"
)


def last_eval(curves: pd.DataFrame) -> pd.DataFrame:
    """Each run × task's last evaluation: run_id, seed, task, step, acc."""
    ordered = curves.sort_values(["run_id", "task", "step"])
    last = ordered.groupby(["run_id", "task"], sort=False).tail(1)
    return last[["run_id", "seed", "task", "step", "acc"]].reset_index(drop=True)


def with_roles(final: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """`final` (run_id, seed, task, acc) with role, pool and loss per run (from the run
    facts), plus a `mean` task averaging each run's tasks."""
    need = {"role", "pool"}
    if not need <= set(runs.columns):
        raise RaremixError(
            "distillation runs need the facts 'role' and 'pool': run the study with "
            "run_fn raremix.studies.distillation.run:run_distill"
        )
    facts = runs.set_index("run_id")
    out = final.copy()
    out["role"] = out.run_id.map(facts["role"])
    out["pool"] = out.run_id.map(facts["pool"]).fillna(0).astype(int)
    loss = facts["distill_loss"] if "distill_loss" in facts else pd.Series(dtype=object)
    out["loss"] = out.run_id.map(loss).where(out.role == "student", "")
    out.loc[(out.role == "student") & (out.pool == 0), "loss"] = LABELLED_ONLY
    mean = out.groupby(["run_id", "seed", "role", "pool", "loss"], as_index=False)["acc"].mean()
    return pd.concat([out, mean.assign(task=MEAN)], ignore_index=True)


def arm_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per task × arm (role, loss, pool): acc mean, sd and seeds."""
    return table.groupby(["task", "role", "loss", "pool"], as_index=False).agg(
        mean=("acc", "mean"), sd=("acc", "std"), seeds=("seed", "nunique")
    )


def crossings(summary: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, list[Judged]]:
    """Per task × student loss: where the student passes or ties the teacher, and the
    comparisons behind it (every student arm − teacher, Holm within each task).

    Columns: task, loss, teacher (mean), teacher_sd, best_pool, best (mean), best_sd,
    passes_at (smallest pool called 'greater'; NaN if none), ties_at (smallest pool
    called 'equivalent'; NaN if none).
    """
    rows, judged = [], []
    for task, s in summary.groupby("task", sort=False):
        teach = s[s.role == "teacher"]
        if teach.empty:
            continue
        on_task = table[table.task == task]
        teacher = on_task[on_task.role == "teacher"].acc.to_numpy()
        arms = s[s.role == "student"].sort_values(["loss", "pool"])
        keys = list(zip(arms.loss, arms.pool, strict=True))
        pairs = {
            _name(str(task), str(loss), int(pool)): (
                on_task[
                    (on_task.role == "student") & (on_task.loss == loss) & (on_task.pool == pool)
                ].acc.to_numpy(),
                teacher,
            )
            for loss, pool in keys
        }
        family = judge(pairs, family=f"students vs the teacher on {task}", margin=TIE_MARGIN)
        judged += family
        call = {key: j.call for key, j in zip(keys, family, strict=True)}
        t_mean, t_sd = float(teach["mean"].iloc[0]), _finite(teach["sd"].iloc[0])
        for loss, g in arms[arms.pool > 0].groupby("loss", sort=True):
            pools = g.pool.to_numpy()
            passes = [p for p in pools if call[(loss, p)] == "greater"]
            ties = [p for p in pools if call[(loss, p)] == "equivalent"]
            best = g.iloc[int(np.argmax(g["mean"].to_numpy()))]
            rows.append(
                {
                    "task": task,
                    "loss": loss,
                    "teacher": t_mean,
                    "teacher_sd": t_sd,
                    "best_pool": int(best.pool),
                    "best": float(best["mean"]),
                    "best_sd": _finite(best.sd),
                    "passes_at": float(min(passes)) if passes else math.nan,
                    "ties_at": float(min(ties)) if ties else math.nan,
                }
            )
    return pd.DataFrame(rows), judged


def _name(task: str, loss: str, pool: int) -> str:
    arm = loss if loss == LABELLED_ONLY else f"{loss} · {_k(pool)}"
    return f"{task}: {arm} − teacher"


def _finite(v: Any) -> float:
    return float(v) if v is not None and np.isfinite(v) else 0.0


def _k(n: float) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else f"{n:g}"


def distillation_verdict(results: StudyResults, out: Path) -> Verdict:
    """Student vs teacher accuracy over pool size and loss; figure in `out/figures`."""
    final = results.final
    runs = results.runs
    scores = last_eval(results.curves)
    table = with_roles(scores, runs)
    summary = arm_summary(table)
    cross, judged = crossings(summary, table)
    if cross.empty:
        raise RaremixError(
            f"{results.study_dir}: the distillation verdict needs a teacher run and students with pool > 0"
        )
    tasks = list(dict.fromkeys(final.task))
    shown = [MEAN, *tasks] if len(tasks) > 1 else tasks
    params = runs.set_index("run_id")["params"] if "params" in runs else pd.Series(dtype=float)
    role_params = table.assign(params=table.run_id.map(params)).groupby("role")["params"].median()

    lines: list[str] = []
    calls = {j.name: j for j in judged}
    confounds: list[str] = []
    for task in shown:
        c = cross[cross.task == task]
        if c.empty:
            continue
        base = summary[(summary.task == task) & (summary.loss == LABELLED_ONLY)]
        alone = (
            f"; the student on the labelled set alone {pm(base['mean'].iloc[0], base['sd'].iloc[0])}"
            if len(base)
            else ""
        )
        b_mean = float(base["mean"].iloc[0]) if len(base) else math.nan
        parts = []
        for r in c.to_dict("records"):
            where = (
                f"passes it from {_k(r['passes_at'])} inputs"
                if np.isfinite(r["passes_at"])
                else f"ties it from {_k(r['ties_at'])}"
                if np.isfinite(r["ties_at"])
                else "neither passes nor ties it"
            )
            parts.append(
                f"{r['loss']} {where} (highest mean {pm(r['best'], r['best_sd'])} at "
                f"{_k(r['best_pool'])}"
                + (f", {r['best'] - b_mean:+.2f} over labelled only" if np.isfinite(b_mean) else "")
                + ")"
            )
        r0 = c.iloc[0]
        tests = "; ".join(j.text() for j in judged if j.name.startswith(f"{task}: "))
        lines.append(
            f"{task}: teacher {pm(r0.teacher, r0.teacher_sd)}{alone}; student "
            + "; ".join(parts)
            + f". {tests}."
        )
        alone_vs = calls.get(_name(task, LABELLED_ONLY, 0))
        if alone_vs is not None and alone_vs.call == "greater":
            confounds.append(task)
    if confounds:
        lines.append(
            f"The student on the labelled set alone already passes the teacher on {', '.join(confounds)}: "
            "there, passing the teacher is not the teacher labels' doing (compare with labelled only)."
        )
    key = cross[cross.task == shown[0]]
    if note := floor_note([j for j in judged if j.name.startswith(f"{shown[0]}: ")]):
        lines.append(note)
    finding = "supported" if key.passes_at.notna().any() else "inconclusive"
    best = key.iloc[int(np.argmax(key.best.to_numpy()))]
    head_where = (
        f"passes from {_k(key.passes_at.min())} teacher-labelled inputs"
        if key.passes_at.notna().any()
        else "does not pass it"
    )
    headline = (
        f"{finding}: a student passes its teacher — on {shown[0]} accuracy the student "
        f"({role_params.get('student', math.nan):,.0f} params) {head_where}: best "
        f"{pm(best.best, best.best_sd)} ({best.loss}, {_k(best.best_pool)}) vs teacher "
        f"({role_params.get('teacher', math.nan):,.0f} params) {pm(best.teacher, best.teacher_sd)}"
    )
    lines.append(
        "Every student arm − the teacher, per task: two-sided exact permutation tests with Welch "
        f"t 95% CIs ({UNPAIRED}), Holm within the task. A student passes when Holm-adjusted "
        f"p < 0.05 and the effect is positive; it ties when the 90% interval lies inside "
        f"±{TIE_MARGIN} (equivalence). Each run is scored by its last evaluation on the "
        f"true held-out set (the teacher: the checkpoint that labelled the pool); "
        f"{int(summary.seeds.min())}+ seeds per arm."
    )
    from raremix.figures.plots import save_figure

    save_figure(_figure(summary, shown), out / "figures" / "distillation.png")
    return Verdict(
        study=results.name,
        title="distillation: does a smaller student trained on teacher-labelled data pass its teacher?",
        headline=headline,
        lines=lines,
        table=_table(summary, shown),
        finding=finding,
        comparisons=[j.as_dict() for j in judged],
        figures=[
            {
                "file": "figures/distillation.png",
                "caption": "Student held-out accuracy vs teacher-labelled inputs per task, per loss; "
                "the grey band is the teacher (mean ± sd), the dotted line the student on the labelled set alone.",
                "how": "Lines are means over seeds with one-sd error bars. Where a line climbs out of "
                "the grey band the student has passed its teacher.",
            }
        ],
    )


def _table(summary: pd.DataFrame, tasks: list[str]) -> dict[str, list[Any]]:
    arms = summary[summary.task == tasks[0]].copy()
    arms["_o"] = [
        (r != "teacher", lo != "labelled only", lo, p)
        for r, lo, p in zip(arms.role, arms.loss, arms.pool, strict=True)
    ]
    arms = arms.sort_values("_o")
    cols = ["arm", "pool", *tasks, "seeds"]
    cell = summary.set_index(["task", "role", "loss", "pool"])
    rows = []
    for a in arms.to_dict("records"):
        name = "teacher" if a["role"] == "teacher" else f"student · {a['loss']}"
        key = (a["role"], a["loss"], a["pool"])
        vals = [pm(cell.loc[(t, *key), "mean"], cell.loc[(t, *key), "sd"]) for t in tasks]
        rows.append([name, _k(a["pool"]) if a["role"] == "student" else "", *vals, int(a["seeds"])])
    return {"columns": cols, "rows": rows}


def _figure(summary: pd.DataFrame, tasks: list[str]) -> Any:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(tasks), figsize=(4.2 * len(tasks), 3.4), layout="constrained", squeeze=False
    )
    for ax, task in zip(axes.flat, tasks, strict=True):
        s = summary[summary.task == task]
        teach = s[s.role == "teacher"]
        stud = s[(s.role == "student") & (s.pool > 0)]
        if len(teach):
            m, sd = float(teach["mean"].iloc[0]), _finite(teach["sd"].iloc[0])
            ax.axhspan(m - sd, m + sd, color="0.85", label="teacher ± sd")
            ax.axhline(m, color="0.4", lw=1)
        base = s[s.loss == LABELLED_ONLY]
        if len(base):
            ax.axhline(float(base["mean"].iloc[0]), color="k", ls=":", lw=1, label="labelled only")
        for loss, g in stud.groupby("loss"):
            g = g.sort_values("pool")
            ax.errorbar(
                g.pool, g["mean"], yerr=g["sd"].fillna(0), marker="o", capsize=3, label=loss
            )
        ax.set_xscale("log")
        ax.set_xlabel("teacher-labelled inputs per task")
        ax.set_ylabel("held-out accuracy")
        ax.set_title(task)
        ax.set_ylim(-0.02, 1.02)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    return fig
