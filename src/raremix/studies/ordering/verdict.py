"""Verdicts of the ordering studies: rarity-first (CTFT) and structured-first (Omni-Thinker).

Both read, besides the final table, the run table (each run's `arm` label and the order
its curriculum took, recorded by `ordering_run.run_ordering`) and, for structured-first,
the output-entropy probe rows. BWT is computed per run over the curriculum's stages:
the mean over the tasks of every stage but the last of (final accuracy − accuracy at the
end of the task's own stage), from the evaluation at or before each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.stats import Judged, claim_outcome, floor_note, judge, mean_sd
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults

ENTROPY = "probe/entropy"


# --- shared --------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderedRun:
    """One finished run of an ordering study: its arm, curriculum order and stages."""

    run_id: str
    arm: str
    order: str | None
    """The order its curriculum took ('a b | c d'); None without a curriculum."""
    groups: list[list[str]]
    """Its stages as task groups (without a curriculum: structured, then open)."""
    stage_ends: list[int]
    """Last step of each stage."""
    base_end: int
    """Last step of the base phase (0: none)."""
    config: dict[str, Any]


def ordered_runs(runs: pd.DataFrame) -> list[OrderedRun]:
    """The study's finished runs (`StudyResults.runs`) with their arm, order and stage layout."""
    import json

    out = []
    for r in runs[runs["status"] == "done"].to_dict("records"):
        config = json.loads(str(r["config"]))
        order = r.get("order")
        order = order if isinstance(order, str) and order else None
        groups = _groups(order, config)
        cur = (config.get("mixture") or {}).get("curriculum") or {}
        base_end = round(float(cur.get("base_fraction", 0.0)) * int(config["steps"]))
        ends = _stage_ends(config, len(groups))
        out.append(
            OrderedRun(
                str(r["run_id"]),
                str(r.get("curriculum", "")),
                order,
                groups,
                ends,
                base_end,
                config,
            )
        )
    return out


def arm_frame(runs: list[OrderedRun]) -> pd.DataFrame:
    """run_id → arm, for merging into the final table and the curves."""
    return pd.DataFrame({"run_id": [r.run_id for r in runs], "arm": [r.arm for r in runs]})


def kinds_of(config: dict[str, Any]) -> dict[str, str]:
    """Each task's kind (structured | open) from the run config's task inventory."""
    from raremix.tasks import make_task

    return {
        n: make_task(s.get("task") or n, s.get("complexity")).kind
        for n, s in config["tasks"].items()
    }


def _groups(order: str | None, config: dict[str, Any]) -> list[list[str]]:
    """The run's stages as task groups; without a curriculum: structured, then open."""
    if order:
        return [g.split() for g in order.split(" | ")]
    kinds = kinds_of(config)
    return [[t for t in kinds if kinds[t] == k] for k in ("structured", "open")]


def _stage_ends(config: dict[str, Any], stages: int) -> list[int]:
    """Last step of each stage (runs without a curriculum: equal stages from step 0)."""
    cur = (config.get("mixture") or {}).get("curriculum") or {}
    bf, steps = float(cur.get("base_fraction", 0.0)), int(config["steps"])
    return [round((bf + (1 - bf) * (k + 1) / stages) * steps) for k in range(stages)]


def acc_at(curves: pd.DataFrame, run: str, task: str, step: int, value: str = "acc") -> float:
    """The run's `value` for `task` at the last evaluation at or before `step`."""
    c = curves[(curves.run_id == run) & (curves.task == task) & (curves.step <= step)]
    return float(c.sort_values("step")[value].iloc[-1]) if len(c) else math.nan


def run_bwt(curves: pd.DataFrame, run: str, groups: list[list[str]], ends: list[int]) -> float:
    """Mean over tasks of stages before the last of (final acc − acc at their stage's end)."""
    final = max(ends)
    diffs = [
        acc_at(curves, run, t, final) - acc_at(curves, run, t, end)
        for group, end in zip(groups[:-1], ends[:-1], strict=True)
        for t in group
    ]
    return float(np.mean(diffs)) if diffs else math.nan


UNPAIRED = (
    "unpaired: the arms share each seed's initialisation but not its data stream, which the "
    "order changes"
)


def _curve_panel(
    ax: Any,
    curves: pd.DataFrame,
    arms: list[str],
    colors: dict[str, Any],
    value: str,
    title: str,
    ends: list[int],
) -> None:
    for arm in arms:
        g = curves[curves.arm == arm].groupby(["run_id", "step"])[value].mean().reset_index()
        s = g.groupby("step")[value].agg(["mean", "min", "max"])
        ax.plot(s.index, s["mean"], color=colors[arm], label=arm)
        ax.fill_between(s.index, s["min"], s["max"], color=colors[arm], alpha=0.15, lw=0)
    for end in ends[:-1]:  # stage ends, and the base phase's end when there is one
        ax.axvline(end, color="0.6", lw=0.8, ls=":")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")


# --- rarity-first ----------------------------------------------------------------------


def rarity_first_verdict(results: StudyResults, out: Path) -> Verdict:
    """CTFT: does ordering the fine-tune rarest-first beat easy-to-hard and random orders?"""
    final = results.final
    runs = ordered_runs(results.runs)
    f = final.merge(arm_frame(runs), on="run_id")
    rows = []
    for r in runs:
        g = f[f.run_id == r.run_id]
        if len(g):
            rows.append(
                {
                    "run_id": r.run_id,
                    "arm": r.arm,
                    "seed": int(g.seed.iloc[0]),
                    "rare": g[g.role == "rare"].acc.mean(),
                    "common": g[g.role == "common"].acc.mean(),
                    "all": g.acc.mean(),
                    "bwt": run_bwt(results.curves, r.run_id, r.groups, r.stage_ends),
                }
            )
    per_run = pd.DataFrame(rows)
    arms = [a for a in _arm_order(runs, results.spec) if a in set(per_run.arm)]
    rf = [a for a in arms if a.startswith("rarity-first")]
    rest = [a for a in arms if not a.startswith("rarity-first")]
    by_arm = {a: per_run[per_run.arm == a] for a in arms}
    judged = judge(
        {f"{a} − {b}, rare acc": (by_arm[a].rare, by_arm[b].rare) for a in rf for b in rest},
        family="rarity-first beats every other order",
        direction="greater",
    )
    finding, why = claim_outcome(judged, "greater")
    top = max(arms, key=lambda a: by_arm[a].rare.mean())
    headline = (
        f"{finding}: rarity-first beats every other order on the rare tasks ({why}) — "
        + ", ".join(f"{a} {mean_sd(by_arm[a].rare)}" for a in arms)
        + f"; highest mean: {top}."
    )
    lines = [j.text() + "." for j in judged]
    if note := floor_note(judged):
        lines.append(note)
    orders = {r.run_id: r.order for r in runs}
    seeds0 = per_run.sort_values("seed").groupby("arm").run_id.first().to_dict()
    lines += [
        "Each arm orders the same 8 tasks into 4 stages of 2 after a base phase on the 4 common "
        "tasks; every order gives each task the same share of the run, so only the order differs.",
        "Orders (first seed): " + "; ".join(f"{a}: {orders.get(seeds0[a])}" for a in arms) + ".",
        "Common tasks (trained in the base phase): "
        + ", ".join(f"{a} {mean_sd(by_arm[a].common)}" for a in arms)
        + "; BWT over the stages (negative = forgetting): "
        + ", ".join(f"{a} {mean_sd(by_arm[a].bwt, 3)}" for a in arms)
        + ".",
        f"Each run's rare accuracy is the mean of its last {LAST_EVALS} evaluations. Every "
        "rarity-first arm is compared with every other order by a one-sided exact permutation "
        f"test with a Welch t 95% CI ({UNPAIRED}), Holm-adjusted over the {len(judged)} "
        "comparisons; the claim is supported only if every one is significant (docs/statistics.md).",
    ]
    table: dict[str, list[Any]] = {
        "columns": ["arm", "rare acc", "common acc", "all acc", "BWT", "seeds"],
        "rows": [
            [a, mean_sd(g.rare), mean_sd(g.common), mean_sd(g["all"]), mean_sd(g.bwt, 3), len(g)]
            for a, g in by_arm.items()
        ],
    }
    _rf_figure(results.curves, runs, f, arms, out / "figures" / "rarity_first.png")
    return Verdict(
        study=results.name,
        title="rarity-first: does fine-tuning rarest-first (CTFT) beat easy-to-hard and random orders?",
        headline=headline,
        lines=lines,
        table=table,
        finding=finding,
        comparisons=[j.as_dict() for j in judged],
        figures=[
            {
                "file": "figures/rarity_first.png",
                "caption": "Left: mean rare-task accuracy over training per order (mean over seeds, band "
                "min–max; dotted: stage ends). Right: final accuracy per task and order (mean over seeds).",
            }
        ],
    )


def _arm_order(runs: list[OrderedRun], spec: dict[str, Any]) -> list[str]:
    """Arms in the order the study's `curriculum` axis lists them."""
    listed = list((spec.get("axes") or {}).get("curriculum") or {})
    arms = list(dict.fromkeys(r.arm for r in runs))
    return [a for a in listed if a in arms] or arms


def _rf_figure(
    curves: pd.DataFrame, runs: list[OrderedRun], final: pd.DataFrame, arms: list[str], path: Path
) -> None:
    import matplotlib.pyplot as plt

    from raremix.figures.plots import mix_colors, save_figure

    colors = mix_colors(arms)
    c = curves.merge(arm_frame(runs), on="run_id")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    ends = sorted({runs[0].base_end, *runs[0].stage_ends} - {0})
    _curve_panel(ax, c[c.role == "rare"], arms, colors, "acc", "rare tasks: mean accuracy", ends)
    ax.set_ylabel("held-out accuracy")
    ax.legend(fontsize=8)
    tasks = list(dict.fromkeys(final.sort_values("role", ascending=False).task))
    m = final.groupby(["arm", "task"]).acc.mean()
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        xs = np.arange(len(tasks)) + (i - (len(arms) - 1) / 2) * width
        bx.bar(xs, [m.get((arm, t), np.nan) for t in tasks], width, color=colors[arm], label=arm)
    bx.set_xticks(np.arange(len(tasks)), tasks, rotation=30, fontsize=8)
    rare = set(final[final.role == "rare"].task)
    for tick in bx.get_xticklabels():
        tick.set_fontweight("bold" if tick.get_text() in rare else "normal")
    bx.set_title("final accuracy per task (rare tasks in bold)", fontsize=10)
    save_figure(fig, path)


# --- structured-first ----------------------------------------------------------------


def structured_first_verdict(results: StudyResults, out: Path) -> Verdict:
    """Omni-Thinker: structured-first vs joint vs open-first; entropy on open tasks; BWT."""
    final = results.final
    runs = ordered_runs(results.runs)
    kinds = kinds_of(runs[0].config)
    curves = results.curves.merge(arm_frame(runs), on="run_id")
    curves["kind"] = curves.task.map(kinds)
    ent = results.metrics
    ent = ent[(ent.metric == ENTROPY) & ent.run_id.isin([r.run_id for r in runs])]
    ent = ent.rename(columns={"value": "entropy"}).merge(arm_frame(runs), on="run_id")
    ent["kind"] = ent.task.map(kinds)
    mid = {r.run_id: r.stage_ends[0] for r in runs}
    f = final.merge(arm_frame(runs), on="run_id")
    f["kind"] = f.task.map(kinds)
    rows = []
    for r in runs:
        g = f[f.run_id == r.run_id]
        if g.empty:
            continue
        e = ent[ent.run_id == r.run_id]
        rows.append(
            {
                "run_id": r.run_id,
                "arm": r.arm,
                "seed": int(g.seed.iloc[0]),
                "all": g.acc.mean(),
                "structured": g[g.kind == "structured"].acc.mean(),
                "open": g[g.kind == "open"].acc.mean(),
                "open_ent_mid": _entropy_at(e, "open", mid[r.run_id]),
                "struct_ent_mid": _entropy_at(e, "structured", mid[r.run_id]),
                "open_ent_final": _entropy_at(e, "open", max(r.stage_ends)),
                "struct_ent_final": _entropy_at(e, "structured", max(r.stage_ends)),
                "bwt": run_bwt(results.curves, r.run_id, r.groups, r.stage_ends),
            }
        )
    per_run = pd.DataFrame(rows)
    arms = [a for a in _arm_order(runs, results.spec) if a in set(per_run.arm)]
    by = {a: per_run[per_run.arm == a] for a in arms}
    have = {"joint", "structured-first", "open-first"} <= set(arms)
    judged: list[Judged] = []
    if have:
        sf, joint, of = by["structured-first"], by["joint"], by["open-first"]
        claim = judge(
            {
                "structured-first − joint, all acc": (sf["all"], joint["all"]),
                "structured-first − open-first, all acc": (sf["all"], of["all"]),
            },
            family="structured-first beats joint and open-first",
            direction="greater",
        )
        finding, why = claim_outcome(claim, "greater")
        collapse = judge(
            {
                "joint − structured-first, open-task entropy at stage 1 end": (
                    joint.open_ent_mid,
                    sf.open_ent_mid,
                )
            },
            family="structured training collapses open-task entropy",
        )
        protect = judge(
            {"structured-first − open-first, open acc": (sf.open, of.open)},
            family="ordering protects the open tasks",
        )
        judged = [*claim, *collapse, *protect]
        gain = sf["all"].mean() - joint["all"].mean()
        headline = (
            f"{finding}: structured-first beats joint and open-first ({why}) — mean accuracy "
            f"over all tasks structured-first {mean_sd(sf['all'])}, joint {mean_sd(joint['all'])}, "
            f"open-first {mean_sd(of['all'])} (structured-first − joint: {100 * gain:+.1f} points; "
            "Omni-Thinker: +6.2% after RL post-training of a pretrained model)."
        )
        entropy_word = {
            "greater": "lower after structured training: it collapses",
            "less": "higher after structured training: no collapse",
        }.get(collapse[0].call, "not distinguishable from joint's")
        lines = [
            *(j.text() + "." for j in claim),
            *filter(None, [floor_note(claim)]),
            "Entropy collapse on open tasks after the structured stage (step "
            f"{mid[sf.run_id.iloc[0]]}): open-task answer entropy structured-first "
            f"{mean_sd(sf.open_ent_mid)} vs joint {mean_sd(joint.open_ent_mid)} nats at the same step — "
            f"structured-first's is {entropy_word}: {collapse[0].text()}.",
            "Does ordering protect the open tasks? final open-task accuracy: "
            + ", ".join(f"{a} {mean_sd(by[a].open)}" for a in arms)
            + f"; {protect[0].text()}.",
            "Does open-task training raise the structured tasks' entropy? structured-task entropy "
            "at the stage boundary → final: "
            + ", ".join(
                f"{a} {mean_sd(by[a].struct_ent_mid)} → {mean_sd(by[a].struct_ent_final)}"
                for a in arms
            )
            + " nats.",
            "Structured-task accuracy: "
            + ", ".join(f"{a} {mean_sd(by[a].structured)}" for a in arms)
            + ".",
            "BWT over the two stages (first stage's tasks: final − end of stage 1; for joint the "
            "structured tasks at the same step): "
            + ", ".join(f"{a} {mean_sd(by[a].bwt, 3)}" for a in arms)
            + ".",
            f"Each run's accuracy is the mean of its last {LAST_EVALS} evaluations. The claim's "
            "two comparisons are one-sided exact permutation tests with Welch t 95% CIs "
            f"({UNPAIRED}), Holm-adjusted together; it is supported only if both are "
            "significant. Entropy and open-task accuracy are two-sided tests of their own.",
        ]
    else:
        finding = "inconclusive"
        headline = "inconclusive: the study needs the joint, structured-first and open-first arms to compare"
        lines = []
    table: dict[str, list[Any]] = {
        "columns": [
            "arm",
            "all acc",
            "structured acc",
            "open acc",
            "open entropy @ stage 1 end",
            "structured entropy @ stage 1 end",
            "open entropy final",
            "BWT",
            "seeds",
        ],
        "rows": [
            [
                a,
                mean_sd(g["all"]),
                mean_sd(g.structured),
                mean_sd(g.open),
                mean_sd(g.open_ent_mid),
                mean_sd(g.struct_ent_mid),
                mean_sd(g.open_ent_final),
                mean_sd(g.bwt, 3),
                len(g),
            ]
            for a, g in by.items()
        ],
    }
    _sf_figure(curves, ent, arms, runs[0].stage_ends, out / "figures" / "structured_first.png")
    return Verdict(
        study=results.name,
        title="structured-first: does training structured tasks first (Omni-Thinker) beat joint training?",
        headline=headline,
        lines=lines,
        table=table,
        finding=finding,
        comparisons=[j.as_dict() for j in judged],
        figures=[
            {
                "file": "figures/structured_first.png",
                "caption": "Output entropy at answer tokens on open and structured tasks, and mean accuracy, "
                "over training per arm (mean over seeds, band min–max; dotted: the stage boundary; "
                "entropy axes cut above the later steps: the untrained model starts near 4.3 nats).",
            }
        ],
    )


def _entropy_at(e: pd.DataFrame, kind: str, step: int) -> float:
    g = e[(e.kind == kind) & (e.step <= step)]
    if g.empty:
        return math.nan
    return float(g[g.step == g.step.max()].entropy.mean())


def _sf_figure(
    curves: pd.DataFrame, ent: pd.DataFrame, arms: list[str], ends: list[int], path: Path
) -> None:
    import matplotlib.pyplot as plt

    from raremix.figures.plots import mix_colors, save_figure

    colors = mix_colors(arms)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    _curve_panel(
        axes[0],
        ent[ent.kind == "open"],
        arms,
        colors,
        "entropy",
        "open tasks: answer entropy (nats)",
        ends,
    )
    _curve_panel(
        axes[1],
        ent[ent.kind == "structured"],
        arms,
        colors,
        "entropy",
        "structured tasks: answer entropy (nats)",
        ends,
    )
    _curve_panel(axes[2], curves, arms, colors, "acc", "all tasks: mean accuracy", ends)
    later = ent[ent.step > 0]
    for ax, kind in zip(axes[:2], ("open", "structured"), strict=True):
        top = later[later.kind == kind].entropy.max()
        if np.isfinite(top):  # the untrained model's ~4.3 nats at step 0 would flatten the rest
            ax.set_ylim(0, 1.15 * float(top))
    axes[2].legend(fontsize=8)
    save_figure(fig, path)
