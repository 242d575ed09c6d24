"""Study analysis: read a finished study's results store, write `analysis/` and a verdict.

`analyze_study(study_dir)` writes `analysis/final.parquet` (one row per run × task: the
mean of the last 3 evaluations), `analysis/verdict.json` and the headline figure, and
prints the verdict table. Which verdict is computed is chosen by the YAML's `analysis:`
from the study registry (`raremix.studies.registry`); a study that names none gets the
scale-vs-mix one, which degrades to a per-group table when it has one size or one mix.
A study that declares hypotheses also gets one typed outcome per hypothesis
(`raremix.studies.outcomes`), and its headline is the primary hypothesis's outcome.

A study whose record has an `execute` (the theory lab) is not a sweep of runs:
`execute_study(analysis, out_dir)` runs it in-process and writes the same kind of
`analysis/` directory.

This module is imported with `raremix.studies` (it registers the analyzers in
`runner.ANALYZERS`), and the runner's worker processes import that package: it keeps
pandas, DuckDB, matplotlib and rich out of its top level.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raremix.studies.record import VerdictFn
from raremix.studies.runner import ANALYZERS, DEFAULT_ANALYZER

if TYPE_CHECKING:
    from rich.table import Table

    from raremix.studies.analysis_final import StudyResults

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
    analysis: str = ""
    """The registered analysis that computed it."""
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    """One `HypothesisResult.as_dict()` per declared hypothesis, primary first."""
    evidence: str = ""
    """'confirmation' (declared fresh seeds and held-out draw), 'calibration' or '' (undeclared)."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Declaration hash as first run and now, the code's commit, and whether it changed."""
    finding: str = ""
    """The study's own answer to its question, from `comparisons`: an `raremix.stats.OUTCOMES`
    word ('' for studies that compute none). Declared hypotheses still lead the headline."""
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    """The study's own comparisons (`raremix.stats.Judged.as_dict()`): effect, CI, p,
    Holm-adjusted p within its family, and the call."""

    def outcome(self, hypothesis: str) -> str:
        """The outcome of one declared hypothesis (by id)."""
        for o in self.outcomes:
            if o["id"] == hypothesis:
                return str(o["outcome"])
        raise KeyError(f"no declared hypothesis '{hypothesis}' in this verdict")

    def comparison(self, name: str) -> dict[str, Any]:
        """One of the study's own comparisons (by name)."""
        for c in self.comparisons:
            if c["name"] == name:
                return c
        raise KeyError(f"no comparison '{name}' in this verdict")

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
            if not (
                isinstance(fig, dict)
                and isinstance(fig.get("file"), str)
                and isinstance(fig.get("caption"), str)
            ):
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
        if self.outcomes:
            console.print(self.outcome_table())
        for line in self.lines:
            console.print(f"• {line}", highlight=False, markup=False)

    def outcome_table(self) -> Table:
        """The declared hypotheses and their outcomes, for the console."""
        from rich.table import Table
        from rich.text import Text

        title = "Declared hypotheses" + (f" ({self.evidence} runs)" if self.evidence else "")
        table = Table(title=title, title_justify="left")
        for col in OUTCOME_COLUMNS:
            table.add_column(col, justify="left" if col in ("hypothesis", "outcome") else "right")
        for o in self.outcomes:
            table.add_row(*(Text(str(v)) for v in outcome_row(o)))
        return table


OUTCOME_COLUMNS = [
    "hypothesis",
    "treatment − control",
    "train FLOPs per run",
    "effect [95% CI]",
    "n",
    "p (Holm)",
    "outcome",
]
"""The columns of a declared-hypotheses table (console and report alike)."""


def outcome_row(o: dict[str, Any]) -> list[str]:
    """A hypothesis outcome as `OUTCOME_COLUMNS` cells: claim, arms, FLOPs, effect, n, p, outcome."""
    import math

    effect, (lo, hi), p = o["effect"], o["ci"], o["p_adjusted"]
    shown = f"{effect:+.2f} [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(effect) else "n/a"
    n = f"{o['n'][0]} vs {o['n'][1]}" if o["n"][0] else "–"
    flops = [f"{f:.2g}" if f is not None and math.isfinite(f) else "?" for f in o.get("flops", ())]
    return [
        f"{o['id']}: {o['claim']}",
        f"{o['treatment']} − {o['control']} ({o['metric']})",
        " vs ".join(flops) or "?",
        shown,
        n,
        f"{p:.3g}" if math.isfinite(p) else "–",
        o["outcome"],
    ]


def verdict_fn(analysis: str | None) -> VerdictFn:
    """The verdict function of a registered analysis (scale-vs-mix's when None)."""
    from raremix.studies.registry import study_record

    return study_record(analysis).verdict_fn()


def analyze_study(
    study_dir: Path, *, echo: bool = True, results: StudyResults | None = None
) -> Verdict:
    """Analyse the finished runs in `study_dir`'s store; write and return the verdict.

    Only reads the store (never trains), once: pass `results` (`load_results`) to reuse a
    read the caller already made. Writes `analysis/final.parquet`, `analysis/verdict.json`
    and `analysis/figures/`; prints the verdict when `echo`.
    """
    from raremix.studies.analysis_final import load_results

    results = results or load_results(Path(study_dir))
    out = Path(study_dir) / ANALYSIS_DIR
    out.mkdir(parents=True, exist_ok=True)
    results.final.to_parquet(out / FINAL_FILE, index=False)
    verdict = verdict_fn(results.analysis)(results, out)
    verdict.analysis = results.analysis or ""
    judge_declared(verdict, results)
    verdict.save(out)
    if echo:
        verdict.print()
    return verdict


def judge_declared(verdict: Verdict, study: StudyResults) -> None:
    """Add the declared hypotheses' outcomes to `verdict` and lead its headline with the primary.

    Runs on calibration seeds (or the calibration held-out draw) are labelled as such: they
    are not evidence (PROTOCOL §3). A declaration edited after runs existed is named.
    """
    from raremix.configbase import load
    from raremix.studies.hypotheses import (
        DECLARED_FILE,
        Declaration,
        declaration_hash,
        git_commit,
    )
    from raremix.studies.outcomes import evaluate, per_run_metrics

    raw = study.spec.get("hypotheses")
    if not raw:
        return
    declaration = load(Declaration, raw, f"{study.study_dir}/study.yaml: hypotheses")
    table = per_run_metrics(study.final, study.curves, study.runs, declaration.learned)
    verdict.outcomes = [r.as_dict() for r in evaluate(declaration, table)]
    seeds = set(int(s) for s in study.runs["seed"])
    eval_seeds = {_eval_seed(c) for c in study.runs.get("config", [])}
    fresh = seeds <= set(declaration.confirmation_seeds) and eval_seeds == {declaration.eval_seed}
    verdict.evidence = "confirmation" if fresh else "calibration"
    now = declaration_hash(declaration)
    first: dict[str, Any] = {}
    path = Path(study.study_dir) / DECLARED_FILE
    if path.exists():
        first = json.loads(path.read_text())
    changed = bool(first) and first.get("hash") != now
    verdict.provenance = {
        "declaration_hash": now,
        "declared_at_first_run": first.get("hash", ""),
        "declared_commit": first.get("commit", ""),
        "analysed_commit": git_commit(),
        "changed_after_runs": changed,
    }
    primary = verdict.outcomes[0]
    head = f"{primary['outcome'].upper()} — {primary['claim']}: {primary['reason']}"
    if verdict.evidence == "calibration":
        head = (
            "CALIBRATION RUNS, NOT EVIDENCE (seeds or held-out draw are not the declared "
            f"confirmation ones; run with --confirm). {head}"
        )
    if changed:
        head = (
            f"HYPOTHESES EDITED AFTER RUNS EXISTED (declared {first.get('hash')}, now {now}). "
            + head
        )
    verdict.headline = head


def _eval_seed(config: Any) -> int:
    data = json.loads(config) if isinstance(config, str) else (config or {})
    return int(data.get("eval_seed", 0) or 0) if isinstance(data, dict) else 0


def execute_study(
    analysis: str, out_dir: Path, quick: bool = False, *, echo: bool = True
) -> Verdict:
    """Run an in-process study (a record with an `execute`, e.g. the theory lab) into
    `out_dir/analysis/`; write and return its verdict."""
    from raremix.errors import RaremixError
    from raremix.studies.registry import study_record

    record = study_record(analysis)
    execute = record.execute_fn()
    if execute is None:
        raise RaremixError(
            f"analysis '{analysis}' is a sweep of runs, not an in-process lab: run it with "
            "`raremix study run`"
        )
    verdict = execute(Path(out_dir), quick)
    verdict.analysis = record.analysis
    verdict.save(Path(out_dir) / ANALYSIS_DIR)
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


ANALYZERS[DEFAULT_ANALYZER] = _analyzer
