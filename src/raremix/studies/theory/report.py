"""The theory lab's report: its summary table and figure (it has no store of runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from raremix.configbase import read_yaml
from raremix.report.content import (
    Figure,
    Report,
    Section,
    copy_analysis_figure,
    regime_section,
    study_file,
)
from raremix.studies.analysis import ANALYSIS_DIR, Verdict
from raremix.studies.regime import lab_regime
from raremix.studies.theory.verdict import CONFIG_FILE, theory_models


def theory_report(study_dir: Path, verdict: Verdict) -> Report:
    """The report of a theory-lab directory written by `theory_study`."""
    record_path = study_dir / CONFIG_FILE
    record = read_yaml(study_file(study_dir, CONFIG_FILE)) if record_path.exists() else {}
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
    header = None
    if record.get("config"):
        data = {**record["config"], "regime": record.get("regime")}
        header = regime_section(lab_regime(data, theory_models, str(record_path)))
    sections = [
        Section("About this study", text=text),
        Section("Features learned vs predicted", figures=[fig]),
        Section("Summary (means over seeds)", table=table),
    ]
    if record.get("config"):
        dump = yaml.safe_dump(record["config"], sort_keys=False)
        sections.append(Section("Config", details=("the lab's config (YAML)", dump)))
    return Report("raremix report: theory lab", verdict, sections, header)


def _cell(v: Any) -> Any:
    return f"{v:.3g}" if isinstance(v, float) else v
