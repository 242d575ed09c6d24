"""`raremix report STUDY_DIR`: write a study's HTML report and Markdown summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raremix.cli import app


@app.command()
def report(
    study_dir: Annotated[
        Path, typer.Argument(help="A study directory written by `raremix study run`.")
    ],
) -> None:
    """Write report.html (self-contained, plots inline) and report.md into a study directory."""
    from raremix.report import build_report

    html, md = build_report(study_dir)
    typer.echo(f"report: {html}\nsummary: {md}")
