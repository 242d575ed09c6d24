"""Study reports: one self-contained HTML page and a Markdown summary per study directory.

    from raremix.report import build_report
    html, md = build_report(Path("studies/scale-vs-mix"))

Reports only read: the results store and `analysis/` (computed first if missing, which
also only reads the store). They never train.
"""

from __future__ import annotations

from raremix.report.build import build_report

__all__ = ["build_report"]
