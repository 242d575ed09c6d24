"""`build_report(study_dir)`: analyse if needed, draw the figures, write HTML and Markdown."""

from __future__ import annotations

import os
from pathlib import Path

from raremix.errors import RaremixError
from raremix.studies.analysis import ANALYSIS_DIR, VERDICT_FILE, Verdict, analyze_study

HTML_FILE = "report.html"
MD_FILE = "report.md"


def build_report(study_dir: Path) -> tuple[Path, Path]:
    """Write `study_dir/report.html` (self-contained) and `study_dir/report.md`.

    Reads the study's store once (`load_results`) and `analysis/`; runs `analyze_study` on
    that read first when `analysis/verdict.json` is missing or older than the store's runs.
    The study's record may supply its own report (`Study.report`). Figures go to
    `study_dir/figures/`.
    """
    from raremix.report.content import study_file, study_report
    from raremix.report.render import to_html, to_markdown
    from raremix.studies.analysis_final import load_results
    from raremix.studies.registry import study_record

    root = Path(study_dir)
    if not root.is_dir() or not any(root.iterdir()):
        raise RaremixError(
            f"{root}: no study here (missing or empty): pass a directory written by "
            "`raremix study run`"
        )
    analysis = root / ANALYSIS_DIR
    results = None  # read once: the analysis and the report share it
    if _stale(root):
        results = load_results(root)
        analyze_study(root, echo=False, results=results)
    study_file(root, Path(ANALYSIS_DIR) / VERDICT_FILE)  # a link out of the study is refused
    verdict = Verdict.load(analysis)
    own = study_record(verdict.analysis or None).report_fn()
    if own is not None:  # a study that is not a sweep of runs (e.g. the theory lab)
        report = own(root, verdict)
    else:
        report = study_report(root, verdict, results or load_results(root))
    html, md = root / HTML_FILE, root / MD_FILE
    _write(html, to_html(report, root))
    _write(md, to_markdown(report))
    return html, md


def _stale(root: Path) -> bool:
    """Whether `analysis/` is missing or older than a run in the store (e.g. runs added)."""
    verdict = root / ANALYSIS_DIR / VERDICT_FILE
    if not verdict.exists():
        return True
    runs = list((root / "store" / "runs").glob("*.parquet"))
    return any(p.stat().st_mtime > verdict.stat().st_mtime for p in runs)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
