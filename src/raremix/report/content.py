"""What a report says, independent of its format: a title, the verdict and sections.

`study_report` and `theory_report` read a study directory (store and `analysis/`), draw
the figures into `study_dir/figures/` and return a `Report` that `render` turns into
HTML and Markdown.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from raremix.errors import RaremixError
from raremix.report.plots import mix_order, save_figure
from raremix.report.plots_curves import (
    has_probes,
    probe_figure,
    probe_table,
    rare_curves_figure,
    task_curves_figure,
)
from raremix.studies.analysis import ANALYSIS_DIR, FINAL_FILE, VERDICT_FILE, Verdict, outcome_row
from raremix.studies.analysis_final import LAST_EVALS, load_study, task_curves
from raremix.studies.analysis_scale import best_designed, group_summary

FIGURES = "figures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    """A whole report: the verdict first, then sections."""

    title: str
    verdict: Verdict
    sections: list[Section]


HOW_FRONTIER = (
    "Each point is one model size under one mix: the mean over seeds of the rare task's "
    "held-out accuracy (left) and of the common tasks' (right); error bars are one sd over "
    "seeds. A mix that lifts the left panel without lowering the right one protects the rare "
    "task at no cost. The dotted line is the smallest model's rare accuracy under the best "
    "designed mix; where it meets the natural-mix line (★) is the natural-mix model size that "
    "matches it: the scale-equivalence factor."
)
HOW_RARE = (
    "Lines are the mean over seeds, shaded bands the min–max across seeds; colour is the mix, "
    "line style the model size. A late, abrupt rise is a grokking-like onset; a wide band means "
    "the seeds disagree, so a single run would mislead."
)
HOW_TASKS = (
    "Every task's held-out accuracy for the smallest model under the two mixes named above the "
    "panels (mean over seeds); the rare task is the thick line. An × marks a run where a task "
    "fell more than 0.2 below an earlier peak: acquire-then-forget."
)
HOW_HEATMAP = (
    "Each cell is the final accuracy (mean over seeds) of one injected task at one injection "
    "rate (row, highest at the top) and model size (column); red boxes reach 0.8. If larger "
    "models learn at lower rates, the boxed region reaches further down in the right-hand "
    "columns."
)
HOW_PROBE = (
    "Left: the probe over training, one line per group (mean over seeds, band min–max); "
    "right: its final value (mean of the last {n} measurements) against model size, one line "
    "per mix. Both show the rare task's rows when the probe has them, else the run-level ones."
)
PROBE_NOTES = {
    "probe/interference": "Interference is the cosine between the rare task's gradient and the "
    "common tasks': positive, they pull together; negative, the common tasks undo the rare "
    "task's updates; near 0, they no longer interact. The interference account expects more "
    "conflict, for longer, in small models on the natural mix.",
    "probe/neuron_share": "Neuron share is the fraction of units the task relies on: a rare "
    "task that is starved of capacity keeps a small share.",
    "probe/grad_norm": "Gradient norm per task: large common-task gradients that stay large "
    "are what keeps overwriting a rare task's features.",
}


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


def study_report(study_dir: Path, verdict: Verdict) -> Report:
    """The report of a runner study (scale-vs-mix, demo, injection or any other)."""
    study = load_study(study_dir)
    final = pd.read_parquet(study_file(study_dir, Path(ANALYSIS_DIR) / FINAL_FILE))
    curves = task_curves(study)
    groups = group_summary(final)
    mixes = mix_order(groups)
    sections = [_about(study.description, study.spec, study.runs, final)]
    if verdict.outcomes:
        sections.append(_hypotheses(verdict))

    main_figs = []
    # studies judged by the scale verdict (unregistered ones default to it) draw a frontier
    scale = verdict.analysis in ("", "scale")
    for f in verdict.figures:
        # a study's verdict may say how to read its figure; the two generic kinds are known here
        default = HOW_HEATMAP if "heatmap" in f["file"] else HOW_FRONTIER if scale else ""
        how = f.get("how", default)
        main_figs.append(Figure(copy_analysis_figure(study_dir, f["file"]), f["caption"], how))
    if main_figs:
        title = "Frontier" if scale else "Results"
        if verdict.analysis == "injection":
            title = "Injection rate × model size"
        sections.append(Section(title, figures=main_figs))

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
        p = probe_table(study.metrics, study.runs)
        figs = []
        for metric in probes:
            name = "probe_" + metric.removeprefix("probe/").replace("/", "_") + ".png"
            fig = probe_figure(p, metric, mixes)
            figs.append(
                Figure(_draw(study_dir, name, fig), f"{metric}.", HOW_PROBE.format(n=LAST_EVALS))
            )
        sections.append(Section("Probes", figures=figs))

    sections.append(_runs_section(study.runs, study_dir))
    base = study.spec.get("base", {})
    if base:
        dump = yaml.safe_dump(base, sort_keys=False, allow_unicode=True)
        sections.append(
            Section("Base run config", details=("the study's base config (YAML)", dump))
        )
    return Report(f"raremix report: {study.name}", verdict, sections)


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
    columns = ["hypothesis", "treatment − control", "effect [95% CI]", "n", "p (Holm)", "outcome"]
    rows = [outcome_row(o) for o in verdict.outcomes]
    return Section("Declared hypotheses", text=text, table={"columns": columns, "rows": rows})


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
    return Section("About this study", text=text)


def _runs_section(runs: pd.DataFrame, study_dir: Path) -> Section:
    cols = ["run_id", "group", "seed", "status", "wall_s", "params", "steps"]
    rows = [
        [
            r["run_id"], r["group"], int(r["seed"]), r["status"],
            f"{r['wall_s']:.1f}" if pd.notna(r["wall_s"]) else "",
            f"{r['params']:,.0f}" if pd.notna(r["params"]) else "",
            int(r["steps"]) if "steps" in r and pd.notna(r["steps"]) else "",
        ]
        for r in runs.sort_values(["params", "mix", "group", "seed"]).to_dict("records")
    ]  # fmt: skip
    total = runs["wall_s"].sum()
    text = [f"{len(runs)} finished runs, {total:,.0f} s of run time in all (wall time per run)."]
    return Section("Runs", text=text, table={"columns": cols, "rows": rows})


def theory_report(study_dir: Path, verdict: Verdict) -> Report:
    """The report of a theory-lab directory written by `run_theory_study`."""
    from raremix.studies.analysis_theory import CONFIG_FILE

    record_path = study_dir / CONFIG_FILE
    record = (
        yaml.safe_load(study_file(study_dir, CONFIG_FILE).read_text())
        if record_path.exists()
        else {}
    )
    text = [str(record.get("description", ""))] if record.get("description") else []
    if "wall_s" in record:
        text.append(
            f"The whole lab ran in {record['wall_s']} s{' (quick variant)' if record.get('quick') else ''}."
        )
    summary = pd.read_parquet(study_file(study_dir, Path(ANALYSIS_DIR) / "theory_summary.parquet"))
    shown = summary.drop(columns=[c for c in summary.columns if c.endswith("_sd")])
    table: dict[str, list[Any]] = {
        "columns": list(shown.columns),
        "rows": [[_cell(v) for v in row] for row in shown.itertuples(index=False)],
    }
    fig = Figure(
        copy_analysis_figure(study_dir, "figures/theory.png"),
        verdict.figures[0]["caption"] if verdict.figures else "Theory lab.",
        "Top row: per width N on the natural mix, the learned overlap of each feature (colour, "
        "mean over seeds) with the N features of largest utility outlined in red: if theory "
        "holds, colour fills the boxes and nothing else. Bottom: the same with the rarest task "
        "up-weighted; its coverage vs width (solid: learned, dashed: predicted); and the step "
        "at which each feature was learned vs its utility (theory: ∝ 1/utility).",
    )
    sections = [
        Section("About this study", text=text),
        Section("Features learned vs predicted", figures=[fig]),
        Section("Summary (means over seeds)", table=table),
    ]
    if record.get("config"):
        dump = yaml.safe_dump(record["config"], sort_keys=False)
        sections.append(Section("Config", details=("the lab's config (YAML)", dump)))
    return Report("raremix report: theory lab", verdict, sections)


def _cell(v: Any) -> Any:
    return f"{v:.3g}" if isinstance(v, float) else v
