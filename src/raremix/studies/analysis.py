"""Study analysis: read a finished study's results store, write `analysis/` and a verdict.

`analyze_study(study_dir)` writes `analysis/final.parquet` (one row per run × task: the
mean of the last 3 evaluations), `analysis/verdict.json` and the headline figure, and
prints the verdict table. Which verdict is computed is chosen by the study's name from
`VERDICTS` (demo, scale-vs-mix, injection, and the studies of issues #6/#7); any other study gets the scale-vs-mix one,
which degrades to a per-group table when it has one size or one mix.

The theory lab is not a runner study: `run_theory_study(out_dir)` runs it and writes the
same kind of `analysis/` directory.

This module is imported with `raremix.studies` (it registers the analyzers in
`runner.ANALYZERS`), and the runner's worker processes import that package: it keeps
pandas, DuckDB, matplotlib and rich out of its top level.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raremix.studies.runner import ANALYZERS, DEFAULT_ANALYZER

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

ANALYSIS_DIR = "analysis"
VERDICT_FILE = "verdict.json"
FINAL_FILE = "final.parquet"


@dataclass
class Verdict:
    """What a study showed, in words and one table, computed only from its runs."""

    study: str
    title: str
    headline: str
    """One line: the answer, with its numbers."""
    lines: list[str] = field(default_factory=list)
    """The findings and how they were computed, one sentence each."""
    table: dict[str, list[Any]] = field(default_factory=lambda: {"columns": [], "rows": []})
    """{"columns": [...], "rows": [[...], ...]}: display strings and numbers."""
    figures: list[dict[str, str]] = field(default_factory=list)
    """[{"file": "figures/x.png", "caption": "...", "how": "how to read it (optional)"}], files
    relative to `analysis/`."""

    def save(self, analysis_dir: Path) -> Path:
        """Write `verdict.json` into `analysis_dir`."""
        analysis_dir.mkdir(parents=True, exist_ok=True)
        path = analysis_dir / VERDICT_FILE
        path.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False, default=str))
        return path

    @classmethod
    def load(cls, analysis_dir: Path) -> Verdict:
        """Read `verdict.json` from `analysis_dir`; a malformed one is one `RaremixError`."""
        from raremix.errors import RaremixError

        path = analysis_dir / VERDICT_FILE
        fix = f"delete {path} and rerun `raremix report` to analyse the study again"
        try:
            verdict = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise RaremixError(f"{path} is unreadable ({str(err)[:160]}): {fix}") from None
        for fig in verdict.figures:
            if not (isinstance(fig, dict) and isinstance(fig.get("file"), str)
                    and isinstance(fig.get("caption"), str)):  # fmt: skip
                raise RaremixError(
                    f"{path}: a figure needs a file and a caption, not {fig!r}: {fix}"
                )
        return verdict

    def rich_table(self) -> Table:
        """The verdict table for the console."""
        from rich.table import Table

        table = Table(title=f"{self.title}\n{self.headline}", title_justify="left")
        for col in self.table["columns"]:
            table.add_column(str(col), justify="left" if col in ("group", "task") else "right")
        for row in self.table["rows"]:
            table.add_row(*(str(v) for v in row))
        return table

    def print(self) -> None:
        """Print the table and the verdict lines to the console."""
        from raremix.display import wide_console

        console = wide_console()
        console.print(self.rich_table())
        for line in self.lines:
            console.print(f"• {line}", highlight=False, markup=False)


VerdictFn = Callable[["pd.DataFrame", dict[str, Any], Path], Verdict]

VERDICTS: dict[str, str] = {
    "demo": "raremix.studies.analysis_scale:scale_verdict",
    "scale-vs-mix": "raremix.studies.analysis_scale:scale_verdict",
    "injection": "raremix.studies.analysis_injection:injection_verdict",
    "strategies": "raremix.studies.analysis_strategies:strategies_verdict",
    "rarity-first": "raremix.studies.analysis_ordering:rarity_first_verdict",
    "structured-first": "raremix.studies.analysis_ordering:structured_first_verdict",
    "decomposition": "raremix.studies.analysis_decomposition:decomposition_verdict",
    "distillation": "raremix.studies.analysis_distillation:distillation_verdict",
    "depth-width": "raremix.studies.analysis_depth_width:depth_width_verdict",
    "instructions": "raremix.studies.analysis_instructions:instructions_verdict",
    "voting": "raremix.studies.analysis_voting:voting_verdict",
}
"""Study name → 'module:function' computing its Verdict from (final table, context, analysis
dir); imported only when that study is analysed. Other studies get the scale-vs-mix verdict."""


def verdict_fn(name: str) -> VerdictFn:
    """The verdict function for study `name` (scale-vs-mix's for studies not listed)."""
    import importlib

    module, _, func = VERDICTS.get(name, VERDICTS["scale-vs-mix"]).partition(":")
    fn: VerdictFn = getattr(importlib.import_module(module), func)
    return fn


def analyze_study(study_dir: Path, *, echo: bool = True) -> Verdict:
    """Analyse the finished runs in `study_dir`'s store; write and return the verdict.

    Only reads the store (never trains). Writes `analysis/final.parquet`,
    `analysis/verdict.json` and `analysis/figures/`; prints the verdict when `echo`.
    """
    from raremix.studies.analysis_final import final_table, load_study, task_curves

    study = load_study(Path(study_dir))
    curves = task_curves(study)
    final = final_table(study, curves)
    out = Path(study_dir) / ANALYSIS_DIR
    out.mkdir(parents=True, exist_ok=True)
    final.to_parquet(out / FINAL_FILE, index=False)
    ctx = {"name": study.name, "description": study.description, "curves": curves}
    verdict = verdict_fn(study.name)(final, ctx, out)
    verdict.save(out)
    if echo:
        verdict.print()
    return verdict


def run_theory_study(out_dir: Path, quick: bool = False, *, echo: bool = True) -> Verdict:
    """Run the theory lab (configs/studies/theory.yaml; `quick`: its small variant) into
    `out_dir/analysis/`: features, summary, `figures/theory.png` and the verdict."""
    from raremix.studies.analysis_theory import theory_study

    verdict = theory_study(Path(out_dir), quick)
    if echo:
        verdict.print()
    return verdict


def _analyzer(study_dir: Path) -> None:
    """The runner's hook: a study whose runs cannot be analysed (e.g. no per-task accuracy)
    still finished; say why in one line instead of failing it."""
    from raremix.errors import RaremixError

    try:
        analyze_study(study_dir)
    except RaremixError as err:
        from rich.console import Console

        Console(stderr=True).print(f"no analysis: {err}", style="yellow", markup=False)


def _theory_analyzer(study_dir: Path) -> None:
    run_theory_study(study_dir)


for _name in [*VERDICTS, DEFAULT_ANALYZER]:
    ANALYZERS[_name] = _analyzer
ANALYZERS["theory"] = _theory_analyzer  # runs the lab itself: it has no runner runs
