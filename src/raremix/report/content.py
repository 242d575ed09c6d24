"""What a report says, independent of its format: a title, the verdict and sections.

`study_report` reads a study (read once, `StudyResults`) and its `analysis/`, draws the
figures into `study_dir/figures/` and returns a `Report` that `render` turns into HTML and
Markdown. A study that is not a sweep of runs brings its own (`Study.report`).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from raremix.errors import RaremixError
from raremix.figures.plots import mix_order, save_figure
from raremix.report.evidence import NOT_ABOVE, evidence_table, task_evidence
from raremix.report.plots_curves import (
    flat_probe,
    has_probes,
    probe_figure,
    probe_table,
    probe_text,
    rare_curves_figure,
    task_curves_figure,
)
from raremix.studies.analysis import (
    ANALYSIS_DIR,
    OUTCOME_COLUMNS,
    VERDICT_FILE,
    Verdict,
    outcome_row,
)
from raremix.studies.analysis_final import LAST_EVALS, StudyResults
from raremix.studies.regime import Regime
from raremix.studies.summary import best_designed, group_summary

FIGURES = "figures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL_N = 200
"""Held-out examples per task the protocol asks for where the input space allows (§6)."""


@dataclass
class Figure:
    """A PNG in `study_dir/figures/`, with a caption and a note on how to read it."""

    file: str
    """Path relative to the study dir, e.g. figures/frontier.png."""
    caption: str
    how: str = ""


@dataclass
class Section:
    """A titled part of the report: text, figures, an optional table and a collapsible block."""

    title: str
    text: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    table: dict[str, list[Any]] | None = None
    details: tuple[str, str] | None = None
    """(summary, preformatted text) shown collapsed."""


@dataclass
class Report:
    """A whole report: the regime header (a reproduction's), the verdict, then sections."""

    title: str
    verdict: Verdict
    sections: list[Section]
    regime: Section | None = None
    """The paper's regime beside raremix's, printed first (PROTOCOL §7); None: not a
    reproduction."""


HOW_RARE = (
    "Thick lines are the mean over seeds, thin lines of the same colour and style each single "
    "seed; colour is the mix, line style the model size. The grey dashed line is the strongest "
    "baseline (chance, majority or the task's heuristic rule): accuracy at or under it shows "
    "nothing learned. A late, abrupt rise is a grokking-like onset; thin lines far apart mean "
    "the seeds disagree, so a single run would mislead."
)
HOW_TASKS = (
    "Every task's held-out accuracy for the smallest model under the two mixes named above the "
    "panels (thick: mean over seeds; thin: each seed); the rare task is the thickest line. An × "
    "marks a run where a task fell more than 0.2 below an earlier peak: acquire-then-forget."
)
HOW_PROBE = (
    "Left: the probe over training, one thick line per group (mean over seeds) and a thin one "
    "per seed; right: its final value (mean of the last {n} measurements) against model size, "
    "one line per mix, each seed a circle beside it. Both show the rare task's rows when the "
    "probe has them, else the run-level ones."
)
HOW_EVIDENCE = (
    "Per group and task: accuracy as mean ± sd over seeds (each seed the mean of its last {n} "
    "evaluations), the held-out examples each seed was scored on, and a 95% Wilson interval "
    "on the answers pooled over seeds (round(acc × n) right of n per seed). The interval is "
    "how far the held-out sample alone could move the accuracy; how far seeds disagree is "
    "the sd. Baselines on the same held-out set: chance (a uniformly random answer in the "
    "output space), majority (always the most common answer), heuristic (the simplest rule "
    "that does well; — where the task has none). ‘above’: the interval clears the strongest "
    "baseline; ‘≈ within CI’: the mean does but the interval reaches it; ‘⚠ not above’ "
    "(red): the accuracy does not beat a trivial rule, so nothing was shown to be learned."
)


def study_file(study_dir: Path, rel: str | Path, what: str = "", fix: str = "") -> Path:
    """`study_dir/rel`, refused unless it is a file inside the study folder (links followed).

    A report reads only its study's files: a path that escapes (`../..`, absolute, or a
    symbolic link out) would copy a private file into a report meant to be shared.
    `what` names the path in the error (default: `rel`), `fix` says what to do.
    """
    root = Path(study_dir).resolve()
    path = (root / rel).resolve()
    what = what or str(rel)
    fix = fix or "replace it with a plain file inside the study folder"
    if not path.is_relative_to(root):
        raise RaremixError(
            f"{what} is outside the study folder {root} (a report reads only the study's "
            f"own files): {fix}"
        )
    if not path.is_file():
        raise RaremixError(f"{what} is not a file in the study folder {root}: {fix}")
    return path


def copy_analysis_figure(study_dir: Path, rel: str) -> str:
    """Copy `analysis/<rel>` (a PNG inside the study) to `figures/<name>`; the new path
    relative to the study dir."""
    verdict = Path(study_dir) / ANALYSIS_DIR / VERDICT_FILE
    what = f"figure {rel!r} named in {verdict}"
    fix = f"delete {verdict} and rerun `raremix report` to analyse the study again"
    src = study_file(study_dir, Path(ANALYSIS_DIR) / rel, what, fix)
    with src.open("rb") as f:
        if f.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            raise RaremixError(f"{what} is not a PNG image: {fix}")
    dest = study_dir / FIGURES / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)  # a planted link there would make the copy write through it
    shutil.copyfile(src, dest)
    return f"{FIGURES}/{dest.name}"


def _draw(study_dir: Path, name: str, fig: Any) -> str:
    dest = study_dir / FIGURES / name
    dest.unlink(missing_ok=True)  # as in `copy_analysis_figure`: never write through a link
    save_figure(fig, dest)
    return f"{FIGURES}/{name}"


def regime_section(regime: Regime | None) -> Section | None:
    """The regime header as the report's first section (None when no paper is declared)."""
    if regime is None or regime.paper is None:
        return None
    return Section("Regime", text=regime.lines())


def runs_regime_section(results: StudyResults) -> Section | None:
    """The header of a runner study: its `study.yaml`'s declared regime beside the configs
    of the runs it reports."""
    raw = results.spec.get("regime")
    if not raw:
        return None
    import json

    from raremix.configbase import load
    from raremix.studies.regime import PaperRegime, runs_regime
    from raremix.studies.registry import study_record

    where = f"{results.study_dir}/study.yaml"
    paper = load(PaperRegime, raw, f"{where}: regime")
    tests = (results.spec.get("hypotheses") or {}).get("tests") or []
    configs = [json.loads(c) for c in results.runs["config"] if isinstance(c, str) and c != "{}"]
    if not configs:  # runs recorded without their config: nothing to compute raremix's side from
        return None
    models = study_record(results.spec.get("analysis")).models_fn()
    return regime_section(runs_regime(paper, configs, models, [t.get("regime") for t in tests]))


def study_report(study_dir: Path, verdict: Verdict, results: StudyResults) -> Report:
    """The report of a runner study, from the study read once (`load_results`)."""
    from raremix.studies.registry import study_record

    study, final, curves = results, results.final, results.curves
    groups = group_summary(final)
    mixes = mix_order(groups)
    sections = [_about(study.description, study.spec, study.runs, final)]
    if verdict.outcomes:
        sections.append(_hypotheses(verdict))

    record = study_record(verdict.analysis or None)
    main_figs = [
        Figure(
            copy_analysis_figure(study_dir, f["file"]),
            f["caption"],
            f.get("how", record.figure_how),
        )
        for f in verdict.figures
    ]
    if main_figs:
        sections.append(Section(record.figures_title, figures=main_figs))
    sections.append(_evidence(final, list(groups.group)))

    figs = []
    if (curves.role == "rare").any():  # a study may have no rare target (e.g. ordering only)
        figs.append(
            Figure(
                _draw(study_dir, "rare_curves.png", rare_curves_figure(curves, mixes)),
                "Rare-task accuracy over training, per group.",
                HOW_RARE,
            )
        )
    pair = _curve_pair(groups)
    if pair:
        fig = task_curves_figure(curves[curves.group.isin(pair)], pair)
        caption = (
            "Per-task accuracy over training of the smallest model: " + " vs ".join(pair) + "."
        )
        figs.append(Figure(_draw(study_dir, "task_curves.png", fig), caption, HOW_TASKS))
    if figs:
        sections.append(Section("Learning curves", figures=figs))

    if probes := has_probes(study.metrics):
        sections.append(_probes(study_dir, probe_table(study.metrics, study.runs), probes, mixes))
    if mechanism := _mechanism(study_dir, study.metrics, study.runs):
        if sections[-1].title != "Probes":
            sections.append(Section("Probes"))
        sections[-1].figures[:0] = mechanism  # the mechanism figures lead the probe section

    sections.append(_runs_section(study.runs, study_dir))
    base = study.spec.get("base", {})
    if base:
        dump = yaml.safe_dump(base, sort_keys=False, allow_unicode=True)
        sections.append(
            Section("Base run config", details=("the study's base config (YAML)", dump))
        )
    regime = runs_regime_section(study)
    return Report(f"raremix report: {study.name}", verdict, sections, regime)


def _mechanism(study_dir: Path, metrics: pd.DataFrame, runs: pd.DataFrame) -> list[Figure]:
    """The interference ledger and the common gradient norm by size, where the runs have them."""
    from raremix.report import ledger_figures as lf

    out = []
    for name, fig, title, how in (
        ("ledger.png", lf.ledger_figure(metrics, runs), lf.LEDGER_TITLE, lf.LEDGER_HOW),
        ("satisfied.png", lf.satisfied_figure(metrics, runs), lf.SATISFIED_TITLE, lf.SATISFIED_HOW),
    ):
        if fig is not None:
            out.append(Figure(_draw(study_dir, name, fig), title + ".", how))
    return out


def _probes(study_dir: Path, p: pd.DataFrame, probes: list[str], mixes: list[str]) -> Section:
    """One figure per probe metric, titled by what it measures; flat ones named, not drawn."""
    figs, flat = [], []
    for metric in probes:
        name = "probe_" + metric.removeprefix("probe/").replace("/", "_") + ".png"
        value = flat_probe(p, metric)
        if value is not None:
            flat.append(f"{metric} ({'no finite value' if math.isnan(value) else f'{value:g}'})")
            (study_dir / FIGURES / name).unlink(missing_ok=True)  # an earlier report's plot
            continue
        title, how = probe_text(metric)
        how = f"{how} {HOW_PROBE.format(n=LAST_EVALS)}".strip()
        figs.append(
            Figure(
                _draw(study_dir, name, probe_figure(p, metric, mixes)), f"{title} ({metric}).", how
            )
        )
    text = []
    if flat:
        text.append(
            f"Not drawn, the same value in every run and step shown: {', '.join(flat)}: a flat "
            "probe cannot tell the runs apart."
        )
    return Section("Probes", text=text, figures=figs)


def _evidence(final: pd.DataFrame, order: list[str]) -> Section:
    """The per-task final accuracy with its n, Wilson interval and baselines."""
    ev = task_evidence(final, order)
    text = [HOW_EVIDENCE.format(n=LAST_EVALS)]
    below = ev[ev.verdict == NOT_ABOVE]
    if len(below):
        groups = ev.groupby("task", sort=False).group.nunique().to_dict()
        counts = below.groupby("task", sort=False).group.nunique().to_dict()
        shown = "; ".join(f"{t} in {k} of {groups[t]} groups" for t, k in counts.items())
        text.append(f"Not above the strongest baseline: {shown}.")
    return Section("Per-task accuracy and baselines", text=text, table=evidence_table(ev))


def _hypotheses(verdict: Verdict) -> Section:
    """The declared hypotheses, each with its effect, CI, n, Holm-adjusted p and outcome."""
    kind = verdict.evidence or "undeclared"
    text = [
        f"Evaluated on {kind} runs. Each hypothesis was declared in the study YAML before "
        "its runs (declaration " + str(verdict.provenance.get("declaration_hash", "?")) + "); "
        "effects are treatment − control with a 95% CI; p is Holm-adjusted within the study "
        "(docs/statistics.md)."
    ]
    if verdict.provenance.get("changed_after_runs"):
        text.append(
            "The hypotheses were edited after runs existed: declared "
            f"{verdict.provenance.get('declared_at_first_run')}, now "
            f"{verdict.provenance.get('declaration_hash')}."
        )
    text += [f"{o['id']}: {o['outcome']} — {o['reason']}" for o in verdict.outcomes]
    rows = [outcome_row(o) for o in verdict.outcomes]
    return Section(
        "Declared hypotheses", text=text, table={"columns": OUTCOME_COLUMNS, "rows": rows}
    )


def _curve_pair(groups: pd.DataFrame) -> list[str]:
    """Groups whose per-task curves are compared: natural vs the best designed mix at the
    smallest size, else the worst vs the best mix there by rare acc."""
    nat, best = best_designed(groups)
    if nat is not None and best is not None:
        return [str(nat.group), str(best.group)]
    smallest = groups[groups.params == groups.params.min()].sort_values("rare_mean")
    picks = [smallest.iloc[0].group, smallest.iloc[-1].group] if len(smallest) else []
    return list(dict.fromkeys(str(g) for g in picks))


def _about(
    description: str, spec: dict[str, Any], runs: pd.DataFrame, final: pd.DataFrame
) -> Section:
    axes = spec.get("axes") or {}
    text = [description] if description else []
    if axes:
        shown = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in axes.items())
        text.append(f"Axes: {shown} — {len(runs)} runs.")
    rare = sorted(set(final[final.role == "rare"].task))
    common = sorted(set(final[final.role == "common"].task))
    text.append(
        f"Rare task{'s' if len(rare) > 1 else ''}: {', '.join(rare)}; common tasks: "
        f"{', '.join(common)}. Accuracy is exact match on held-out examples; each run is "
        f"summarised by the mean of its last {LAST_EVALS} evaluations (single checkpoints are "
        "noisy), and groups by mean ± sd over seeds."
    )
    text.append(_evidence_size(final))
    return Section("About this study", text=text)


def _evidence_size(final: pd.DataFrame) -> str:
    """How many scored answers the accuracies rest on: seeds per group, n per task."""
    seeds = final.groupby("group").seed.nunique()
    span = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    if "n" not in final or final["n"].isna().all():
        return (
            f"Evidence: {span} seed{'s' if seeds.max() > 1 else ''} per group; the held-out size "
            "was not recorded by these runs (written before raremix stored n)."
        )
    n = final.groupby(["role", "task"])["n"].median().reset_index()
    n = n.sort_values(["role", "task"], ascending=[False, True])  # rare first
    tasks = ", ".join(f"{t} {v:.0f}" for t, v in zip(n.task, n["n"], strict=True))
    rare = float(n.loc[n.role == "rare", "n"].sum()) if (n.role == "rare").any() else math.nan
    pooled = (
        f"; a group's rare accuracy rests on {span} × {rare:.0f} scored answers"
        if np.isfinite(rare)
        else ""
    )
    small = sorted(str(t) for t in n.task[n["n"] < SMALL_N])
    note = ""
    if small:
        which = "all" if len(small) == len(n) else ", ".join(small)
        note = f" ({which} under the {SMALL_N} the protocol asks for where inputs allow)"
    return (
        f"Evidence: {span} seed{'s' if seeds.max() > 1 else ''} per group; held-out examples per "
        f"seed (rare first): {tasks}{note}{pooled}. Intervals are in the per-task table."
    )


def _runs_section(runs: pd.DataFrame, study_dir: Path) -> Section:
    cols = ["run_id", "group", "seed", "status", "wall_s", "params", "steps"]
    rows = [
        [
            r["run_id"],
            r["group"],
            int(r["seed"]),
            r["status"],
            f"{r['wall_s']:.1f}" if pd.notna(r["wall_s"]) else "",
            f"{r['params']:,.0f}" if pd.notna(r["params"]) else "",
            int(r["steps"]) if "steps" in r and pd.notna(r["steps"]) else "",
        ]
        for r in runs.sort_values(["params", "mix", "group", "seed"]).to_dict("records")
    ]
    total = runs["wall_s"].sum()
    text = [f"{len(runs)} finished runs, {total:,.0f} s of run time in all (wall time per run)."]
    return Section("Runs", text=text, table={"columns": cols, "rows": rows})
