"""The instructions verdict (Kung & Peng 2023): on tasks held out of training, do correct
instructions beat empty ones, wrong ones and a bare output-space description, and does
the trained model beat answering with a random element of the right output space?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.stats import Judged, claim_outcome, judge, mean_sd
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults

CORRECT = "instruction"
FRAMING_ORDER = ("instruction", "empty", "wrong", "output_space", "token")
MARGIN = 0.05
"""Equivalence margin: two held-out accuracies 'match' when the 90% interval of their
difference lies inside ±MARGIN (TOST at α = 0.05). Kung & Peng's gap (42.6% vs 43%) is a
tenth of it; a 5-point difference on tasks near chance is one a reader would act on."""
LEARNED_MIN = 0.5
"""Trained-task accuracy under correct instructions below which the comparison says nothing."""
CLAIM = (
    "Kung & Peng (2023): empty or wrong instructions, or only the output space, match correct "
    "instructions on held-out tasks, and answering with a random element of the right output "
    "space scores about as well (42.6% vs 43% exact match)"
)


def run_table(final: pd.DataFrame, extra: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run × task: framing, held_out (bool), acc, format (mean of the last
    `LAST_EVALS` evaluations) and random_acc (the output-space baseline)."""
    last = extra[extra.metric == "format"].sort_values("step")
    last = last.groupby(["run_id", "task"]).tail(LAST_EVALS)
    fmt = last.groupby(["run_id", "task"])["value"].mean().rename("format")
    base = extra[extra.metric == "random_acc"].groupby("task")["value"].mean()
    t = final[["run_id", "seed", "task", "acc"]].merge(
        fmt.reset_index(), on=["run_id", "task"], how="left"
    )
    info = runs.set_index("run_id")
    t["framing"] = t.run_id.map(info["framing"]).astype(str)
    held = {r: set(str(h).split(",")) for r, h in info["heldout_tasks"].items()}
    t["held_out"] = [task in held[r] for r, task in zip(t.run_id, t.task, strict=True)]
    t["random_acc"] = t.task.map(base)
    return t


def instructions_verdict(results: StudyResults, out: Path) -> Verdict:
    """Held-out-task accuracy and format per framing vs the random baseline; a figure."""
    final = results.final
    study = results
    if "framing" not in study.runs or "heldout_tasks" not in study.runs:
        raise RaremixError(
            "instructions analysis needs a 'framing' axis and runs of "
            "raremix.studies.instructions.run:run_instructions: check the study YAML"
        )
    t = run_table(final, study.metrics, study.runs)
    per_run = (
        t.groupby(["run_id", "framing", "held_out"])
        .agg(acc=("acc", "mean"), format=("format", "mean"), random_acc=("random_acc", "mean"))
        .reset_index()
    )
    held = per_run[per_run.held_out]
    if held.empty:
        raise RaremixError(
            "instructions analysis: no held-out task (a task under 'tasks' but not in the "
            "mixture): add one"
        )
    framings = [f for f in FRAMING_ORDER if f in set(per_run.framing)]
    framings += sorted(set(per_run.framing) - set(framings))
    baseline = float(held.random_acc.mean())
    held_tasks = sorted(set(t[t.held_out].task))
    lines = [f"Claim tested: {CLAIM}."]
    judged: list[Judged] = []
    if CORRECT in framings:
        ref = held[held.framing == CORRECT].acc.to_numpy()
        judged = judge(
            {
                f"{f} − {CORRECT}, held-out acc": (held[held.framing == f].acc, ref)
                for f in framings
                if f != CORRECT
            },
            family="other framings match correct instructions",
            margin=MARGIN,
        )
        # one sample against a fixed number: sign flips of (acc − baseline) per run
        judged += judge(
            {
                f"{CORRECT} − random output-space answer, held-out acc": (
                    ref,
                    np.full(len(ref), baseline),
                )
            },
            family="the trained model scores as a random output-space answer",
            paired=True,
            margin=MARGIN,
        )
        finding, why = claim_outcome(judged, "equivalent")
        trained = float(per_run[(per_run.framing == CORRECT) & ~per_run.held_out].acc.mean())
        if trained < LEARNED_MIN:
            finding, why = "inconclusive", f"trained-task accuracy {trained:.2f} < {LEARNED_MIN}"
        lines += [j.text() + "." for j in judged]
        lines.append(
            f"'equivalent' = the 90% interval of the difference lies inside ±{MARGIN} (two "
            "one-sided tests at α = 0.05; every comparison must pass, so no correction is "
            "needed); a non-significant difference is never read as a match. Framings are "
            "compared unpaired (each framing changes the token stream); correct instructions "
            f"vs the random answer is a one-sample test of acc − {baseline:.3f} per run "
            "(sign flips, paired t CI)."
        )
    else:
        finding, why = "inconclusive", "no run with correct instructions"
        lines.append(
            "No run with correct instructions: the comparison needs the 'instruction' framing."
        )
    fmt_parts = [f"{f} {mean_sd(held[held.framing == f].format)}" for f in framings]
    lines.append(
        "Held-out-task format correctness (answers in the task's output space): "
        + ", ".join(fmt_parts)
        + "."
    )
    per_task = t[t.held_out].groupby(["task", "framing"])["acc"].mean().unstack()
    for task in held_tasks:
        row = per_task.loc[task]
        lines.append(
            f"{task}: "
            + ", ".join(f"{f} {row[f]:.2f}" for f in framings if f in row)
            + f"; random {float(t[t.task == task].random_acc.iloc[0]):.3f}."
        )
    lines.append(
        f"Held-out tasks ({', '.join(held_tasks)}) are never trained on; each run's accuracy and "
        f"format are the means of its last {LAST_EVALS} evaluations; mean ± sd over seeds."
    )
    headline = (
        f"{finding}: other framings and a random output-space answer match correct "
        f"instructions ({why}) — held-out-task accuracy "
        + ", ".join(f"{f} {mean_sd(held[held.framing == f].acc)}" for f in framings)
        + f"; random output-space answer {baseline:.3f}"
    )
    from raremix.figures.plots import save_figure

    save_figure(
        _figure(per_run, framings, baseline, study.name), out / "figures" / "instructions.png"
    )
    return Verdict(
        study=results.name,
        title="instructions: what transfers to held-out tasks, the instruction or the output space?",
        headline=headline,
        lines=lines,
        table=_table(per_run, framings, baseline),
        finding=finding,
        comparisons=[j.as_dict() for j in judged],
        figures=[
            {
                "file": "figures/instructions.png",
                "caption": "Exact match (left) and format correctness (right) per framing, on "
                "held-out and trained tasks; dashed: random element of the output space.",
            }
        ],
    )


def _table(per_run: pd.DataFrame, framings: list[str], baseline: float) -> dict[str, list[Any]]:
    rows: list[list[Any]] = []
    for f in framings:
        h, s = (
            per_run[(per_run.framing == f) & per_run.held_out],
            per_run[(per_run.framing == f) & ~per_run.held_out],
        )
        rows.append(
            [
                f,
                mean_sd(h.acc),
                mean_sd(h.format),
                mean_sd(s.acc),
                mean_sd(s.format),
                h.run_id.nunique(),
            ]
        )
    rows.append(["random output-space answer", f"{baseline:.3f}", "1.00", "", "", ""])
    cols = ["group", "held-out acc", "held-out format", "trained acc", "trained format", "seeds"]
    return {"columns": cols, "rows": rows}


def _figure(per_run: pd.DataFrame, framings: list[str], baseline: float, study: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raremix.figures.bars import seed_bars

    d = per_run.assign(tasks=np.where(per_run.held_out, "held-out tasks", "trained tasks"))
    hues = ["held-out tasks", "trained tasks"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, value, label in (
        (axes[0], "acc", "exact match"),
        (axes[1], "format", "answers in the output space"),
    ):
        seed_bars(ax, d, "framing", "tasks", value, framings, hues)
        ax.set_ylabel(label)
        ax.set_xlabel("framing (training and test)")
    axes[0].axhline(baseline, ls="--", color="black", lw=1, label="random output-space answer")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"{study}: held-out tasks vs framing (bars: mean, error: sd, dots: seeds)", fontsize=10
    )
    return fig
