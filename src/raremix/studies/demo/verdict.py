"""The demo's verdict: FLOPs-to-learn of the rare task per arm, as Kaplan–Meier curves.

The demo trains three runs per seed, all budgeted to the larger model's FLOPs and ended
once the rare task is learned (`stop_when_learned`): the small model on the natural
mix, the larger model on the natural mix, the small model on a designed mix. Its
schedule does not depend on the budget (constant learning rate), so the small natural
run *is* two arms: its declared view (`hypotheses.views`, `steps_of` the larger arm) cuts
it at the larger model's steps — "natural" —, and followed to the larger model's FLOPs it
is "longer", its continuation, not a second run. No test sets these two against each
other (they are the same runs; the continuation can only add onsets): the declared
hypotheses compare arms at equal FLOPs.

Per arm the verdict reports the learned fraction at its cap (Kaplan–Meier, 95% band),
the median FLOPs-to-learn, the common-task accuracy where the runs ended, and draws the
curves in `figures/flops_to_learn.png`. The times come from the one FLOPs-to-learn table
(`studies.flops_to_learn.onset_table`), the same one the declared tests use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from raremix.errors import RaremixError
from raremix.figures.km import KmArm, save_km_figure
from raremix.results.onset import LearnedRule
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import StudyResults, common_accuracy
from raremix.studies.flops_to_learn import all_learned, onset_table, run_caps

NATURAL = "natural"


@dataclass(frozen=True)
class Arm:
    """One arm's FLOPs-to-learn, followed to `cap`."""

    name: str
    size: str
    mix: str
    params: float
    cap: float
    """FLOPs every run of the arm was followed to (runs that learned stopped earlier)."""
    runs: pd.DataFrame
    """One row per seed: flops_to_learn, learned (False: censored at `cap`), common_acc."""

    @property
    def n_learned(self) -> int:
        return int(self.runs.learned.sum())

    def curve(self) -> pd.DataFrame:
        """The Kaplan–Meier curve as the learned fraction (1 − survival) with its band."""
        from raremix.stats.survival import kaplan_meier

        km = kaplan_meier(self.runs.flops_to_learn.to_numpy(), self.runs.learned.to_numpy(bool))
        return pd.DataFrame(
            {
                "flops": km.timeline,
                "learned": 1 - km.survival,
                "low": 1 - km.ci_upper,
                "high": 1 - km.ci_lower,
            }
        )

    def km_arm(self) -> KmArm:
        """The arm as the shared Kaplan–Meier figure draws it."""
        return KmArm(
            self.name,
            self.runs.flops_to_learn.to_numpy(float),
            self.runs.learned.to_numpy(bool),
            self.cap,
        )

    def at_cap(self) -> tuple[float, float, float]:
        """Learned fraction by the cap with its 95% band (Kaplan–Meier)."""
        c = self.curve()
        row = c[c.flops <= self.cap].iloc[-1]
        return float(row.learned), float(row.low), float(row.high)

    def median(self) -> float:
        """Median FLOPs-to-learn (inf when fewer than half the seeds learned by the cap)."""
        c = self.curve()
        hit = c[c.learned >= 0.5]
        return float(hit.flops.iloc[0]) if len(hit) else math.inf


def demo_arms(
    runs: pd.DataFrame, curves: pd.DataFrame, final: pd.DataFrame, rule: LearnedRule
) -> list[Arm]:
    """One arm per group of runs (declared views included), each followed to its cap:
    natural mixes first by size, a view before the run it cuts, then the designed mixes."""
    rare = sorted({t for tasks in runs.rare for t in tasks})
    times = all_learned(onset_table(curves, runs, rule), rare)
    if not rare or times.empty:
        raise RaremixError(
            "the demo's runs have no rare task with learning curves: rerun them with raremix's trainer"
        )
    caps = run_caps(runs)
    common = common_accuracy(final, "common").set_index("run_id")["acc"]
    table = runs.set_index("run_id").join(times.set_index("run_id"), how="inner")
    table = table.assign(common_acc=common, cap=[caps[str(i)] for i in table.index])
    arms = [
        Arm(
            str(group),
            str(t["size"].iloc[0]),
            str(t["mix"].iloc[0]),
            float(t.params.median()),
            float(t.cap.max()),
            t.reset_index(),
        )
        for group, t in table.groupby("group", sort=False)
    ]
    return sorted(arms, key=lambda a: (a.mix != NATURAL, a.params, a.cap, a.name))


def flops_text(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:.2g}"


def demo_verdict(results: StudyResults, out: Path) -> Verdict:
    """The demo's verdict: per-arm FLOPs-to-learn, KM curves; the declared tests lead it."""
    from raremix.configbase import load
    from raremix.studies.views import declared_views

    spec = results.spec
    rule = load(
        LearnedRule, (spec.get("hypotheses") or {}).get("learned") or {}, "hypotheses.learned"
    )
    arms = demo_arms(results.runs, results.curves, results.final, rule)
    name = results.name or "demo"
    rows, lines = [], []
    for a in arms:
        frac, low, high = a.at_cap()
        med = a.median()
        rows.append(
            [
                a.name,
                f"{a.params:,.0f}",
                f"{a.cap:.2g}",
                f"{a.n_learned} of {len(a.runs)}",
                f"{frac:.2f} [{low:.2f}, {high:.2f}]",
                "> cap" if not math.isfinite(med) else f"{med:.2g}",
                f"{a.runs.common_acc.mean():.2f}",
            ]
        )
    lines.append(
        "FLOPs-to-learn = the training FLOPs at the first of "
        f"{rule.consecutive} consecutive evaluations with rare-task accuracy ≥ {rule.threshold}, "
        "right-censored at the arm's cap; runs end once it holds. Learned by cap: the "
        "Kaplan–Meier estimate with its 95% band (exponential Greenwood, lifelines)."
    )
    by_name = {a.name: a for a in arms}
    for view in declared_views(spec):
        base, lo = by_name.get(view.name), by_name.get(view.of.get("arm", ""))
        if base is None or lo is None:
            continue
        lines.append(
            f"{base.name} and {lo.name} are the same runs (a constant learning rate: a longer "
            f"run continues a shorter one exactly), cut at {base.cap:.2g} FLOPs (the larger "
            f"model's steps) and followed to {lo.cap:.2g} (the larger model's FLOPs): "
            f"{base.n_learned} of {len(base.runs)} seeds learned by the first, {lo.n_learned} by "
            "the second. They are not tested against each other."
        )
    lines.append(
        "Common acc: the common tasks' held-out accuracy (weighted by n) where each run "
        "ended — runs that learned early stop early, so it is not a comparison at equal training."
    )
    fig_file = "figures/flops_to_learn.png"
    save_km_figure(
        [(f"{name}: FLOPs to learn (ticks: each seed's onset)", [a.km_arm() for a in arms])],
        out / fig_file,
        ylabel="seeds that learned the rare task",
    )
    cols = [
        "arm",
        "params",
        "FLOPs cap",
        "learned",
        "learned by cap [95%]",
        "median FLOPs-to-learn",
        "common acc",
    ]
    summary = "; ".join(f"{a.name} {a.n_learned}/{len(a.runs)} by {a.cap:.2g} FLOPs" for a in arms)
    return Verdict(
        study=name,
        title=f"{name}: FLOPs to learn the rare task, by arm",
        headline=summary,
        lines=lines,
        table={"columns": cols, "rows": rows},
        figures=[
            {
                "file": fig_file,
                "caption": "Kaplan–Meier curves: share of seeds that have learned the rare task "
                "by each training FLOPs count (95% band), per arm.",
                "how": "Up and left is better: more seeds learned, with less compute. A curve "
                "ends at its arm's cap; 'longer' continues 'natural' past the equal-steps point.",
            }
        ],
    )
