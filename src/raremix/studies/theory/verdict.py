"""The theory lab as a study: run it from the packaged YAML, write `analysis/` and a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from raremix.configbase import load, read_yaml
from raremix.errors import RaremixError
from raremix.studies.analysis import ANALYSIS_DIR, Verdict
from raremix.studies.analysis_final import StudyResults
from raremix.studies.regime import Trained
from raremix.studies.theory.lab import TheoryConfig, TheoryResult, fit_outcome, run_theory
from raremix.studies.theory.plot import plot_theory

SPEC_KEYS = (
    "name",
    "analysis",
    "description",
    "quick",
    "regime",
)  # in the YAML, but not TheoryConfig fields
CONFIG_FILE = "theory.yaml"
"""Written into the study dir: name, description and the resolved TheoryConfig."""


def theory_yaml() -> Path:
    """The packaged `theory.yaml` beside this module (the lab's one config file)."""
    return Path(__file__).with_name("theory.yaml")


def theory_config(quick: bool = False, path: Path | None = None) -> tuple[TheoryConfig, str]:
    """The lab's config (its `quick` overrides applied if asked) and its description."""
    path = path or theory_yaml()
    data = read_yaml(path)
    spec = {k: data.pop(k) for k in SPEC_KEYS if k in data} if isinstance(data, dict) else {}
    if quick:
        data = {**data, **(spec.get("quick") or {})}
    return load(TheoryConfig, data, str(path)), str(spec.get("description", "")).strip()


def theory_models(data: dict[str, Any]) -> list[Trained]:
    """The lab's models for the regime header (its whole YAML is one study): a width-N
    linear bottleneck W2·W1 has 2·N·D parameters; each run sees steps × batch examples."""
    cfg = load(TheoryConfig, {k: v for k, v in data.items() if k not in SPEC_KEYS}, "theory")
    return [
        Trained(2 * w * cfg.D, cfg.steps * cfg.batch_size, "synthetic", unit="examples")
        for w in cfg.widths
    ]


def theory_study(out_dir: Path, quick: bool = False) -> Verdict:
    """Run the lab (the record's `execute`); write features, summary, the figure and
    verdict.json under `analysis/`."""
    cfg, description = theory_config(quick)
    result = run_theory(cfg)
    out = out_dir / ANALYSIS_DIR
    (out / "figures").mkdir(parents=True, exist_ok=True)
    result.features.to_parquet(out / "theory_features.parquet", index=False)
    result.summary.to_parquet(out / "theory_summary.parquet", index=False)
    result.runs.to_parquet(out / "theory_runs.parquet", index=False)
    from raremix.figures.plots import save_figure

    save_figure(plot_theory(result), out / "figures" / "theory.png")
    record = {"name": "theory", "description": description, "quick": quick}
    record["regime"] = read_yaml(theory_yaml()).get("regime")  # the report's header
    record["wall_s"] = round(result.wall_s, 2)
    record["config"] = cfg.model_dump(mode="json")
    (out_dir / CONFIG_FILE).write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    verdict = theory_verdict(result)
    verdict.save(out)
    return verdict


def swept_runs_verdict(results: StudyResults, out: Path) -> Verdict:
    """The record's verdict for a sweep of runs that names `analysis: theory`: refused, the
    lab computes its verdict in-process (`theory_study`)."""
    raise RaremixError(
        f"{results.study_dir}: analysis 'theory' is the in-process theory lab, not a sweep of "
        "runs: run it with `raremix study run theory`, or name another analysis"
    )


def theory_verdict(result: TheoryResult) -> Verdict:
    """The lab's own verdict lines, with its summary as the table."""
    lines = result.verdict().splitlines()
    cols = ["arm", "width", "precision", "recall", "rank τ", "rare coverage", "predicted", "seeds"]
    rows: list[list[Any]] = []
    for r in result.summary.to_dict("records"):
        rows.append(
            [
                r["arm"],
                int(r["width"]),
                _pm(r, "precision"),
                _pm(r, "recall"),
                _pm(r, "rank_agreement"),
                _pm(r, "rare_coverage"),
                f"{r['predicted_rare_coverage']:.2f}",
                int(r["n_seeds"]),
            ]
        )
    return Verdict(
        study="theory",
        title="theory lab: does a width-N model learn the top-N features by utility?",
        headline=lines[0] if lines else "",
        finding=fit_outcome(result),
        lines=lines,
        table={"columns": cols, "rows": rows},
        figures=[
            {
                "file": "figures/theory.png",
                "caption": "Learned overlap per task × feature (colour) vs the predicted top-N "
                "(red boxes), per width and arm; rare-task coverage vs width; learn step vs utility.",
            }
        ],
    )


def _pm(r: dict[Any, Any], m: str) -> str:
    mean, sd = r[f"{m}_mean"], r[f"{m}_sd"]
    return "" if not np.isfinite(mean) else f"{mean:.2f} ± {sd:.2f}"
