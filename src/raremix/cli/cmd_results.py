"""`raremix results show|sql|export`: read a study's results store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from raremix.cli import app
from raremix.configbase import read_yaml
from raremix.errors import RaremixError

results_app = typer.Typer(
    help="Query and export a study's results (runs and metric rows).", no_args_is_help=True
)
app.add_typer(results_app, name="results")

StudyDir = Annotated[
    Path, typer.Argument(help="A study directory (written by `raremix study run`).")
]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def frame_table(frame: Any, title: str | None = None, limit: int = 100) -> Table:
    """A DataFrame as a rich table (the first `limit` rows)."""
    table = Table(*[str(c) for c in frame.columns], title=title)
    for row in frame.head(limit).itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    if len(frame) > limit:
        table.caption = f"first {limit} of {len(frame)} rows"
    return table


@results_app.command("show")
def show(study_dir: StudyDir) -> None:
    """The study's runs: labels, status, wall time and errors."""
    from raremix.results.store import ResultStore, label_column

    runs = ResultStore.open(study_dir).runs()
    spec_file = study_dir / "study.yaml"
    spec = (read_yaml(spec_file) if spec_file.exists() else None) or {}
    if not isinstance(spec, dict):
        raise RaremixError(f"{spec_file}: expected a mapping (name, axes, …): fix the file")
    axes = spec.get("axes")
    axes = axes if isinstance(axes, dict) else {}
    labels = [label_column(a) for a in axes if label_column(a) in runs]
    columns = ["run_id", *labels, "status", "wall_s", "error"]
    runs = runs.sort_values(labels or ["run_id"])[columns]
    done = int((runs["status"] == "done").sum())
    title = f"{spec.get('name', study_dir.name)}: {done} done, {len(runs) - done} failed"
    Console().print(frame_table(runs, title, limit=len(runs)))


@results_app.command("sql")
def sql(
    study_dir: StudyDir,
    query: Annotated[
        str, typer.Argument(help="SQL over the tables `runs` and `metrics` (DuckDB dialect).")
    ],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many rows.")] = 100,
) -> None:
    """Run a SQL query over the study's `runs` and `metrics` tables."""
    from raremix.results.store import ResultStore

    Console().print(frame_table(ResultStore.open(study_dir).sql(query), limit=limit))


@results_app.command("export")
def export(
    study_dir: StudyDir,
    to: Annotated[Path, typer.Option("--to", help="Output file: *.parquet or *.csv.")],
    table: Annotated[
        str, typer.Option(help="metrics (one row per metric value) or runs (one row per run).")
    ] = "metrics",
) -> None:
    """Write a table of the study's results to one Parquet or CSV file."""
    from raremix.results.store import ResultStore

    store = ResultStore.open(study_dir)
    path = store.export(to, table=table)  # type: ignore[arg-type]
    rows = store.sql(f"select count(*) as n from {table}")["n"][0]
    typer.echo(f"wrote {rows} {table} rows to {path}")
