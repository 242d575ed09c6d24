"""`raremix study run|list`: sweep a base config over axes, in parallel and resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from raremix.cli import app
from raremix.configbase import packaged_configs, resolve_config
from raremix.display import safe
from raremix.errors import RaremixError
from raremix.outdir import check_output_dir

study_app = typer.Typer(
    help="Run studies: a base config swept over axes (sizes, mixtures, seeds), resumably.",
    no_args_is_help=True,
)
app.add_typer(study_app, name="study")


@study_app.command("run")
def run(
    spec: Annotated[
        str,
        typer.Argument(help="A study YAML, or the name of a packaged study (see `study list`)."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Study directory (default: studies/<name>[-quick])."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Parallel runs (default: the spec's, else one per core)."),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="local (processes on this machine) or ray (a Ray cluster).")
    ] = "local",
    quick: Annotated[
        bool, typer.Option("--quick", help="Run the study's small 'quick' variant (a smoke test).")
    ] = False,
    run_fn: Annotated[
        str | None,
        typer.Option(help="'module:function' that trains one run (default: the spec's)."),
    ] = None,
) -> None:
    """Run every run of a study not yet done; rerun the same command to resume."""
    from raremix.studies.runner import run_study
    from raremix.studies.spec import expand, load_spec, quick_variant

    if spec == "theory":  # the theory lab is one seconds-long computation, not a sweep of runs
        _run_theory(out, quick)
        return
    study = load_spec(resolve_config(spec, "studies", "study"))
    if quick:
        study = quick_variant(study)
    out_dir = check_output_dir(out or Path("studies") / (study.name + ("-quick" if quick else "")))
    console = Console()
    console.print(f"study [bold]{safe(study.name)}[/]: {len(expand(study))} runs → {safe(out_dir)}")
    outcome = run_study(study, out_dir, run_fn=run_fn, workers=workers, backend=backend)  # type: ignore[arg-type]
    console.print(outcome.summary(), highlight=False)
    if outcome.failed:
        console.print(
            f"[red]{len(outcome.failed)} failed[/]: fix and rerun the same command to retry them"
        )
        raise SystemExit(1)  # not typer.Exit: main() runs click with standalone_mode=False


def _run_theory(out: Path | None, quick: bool) -> None:
    from raremix.report import build_report
    from raremix.studies.analysis import run_theory_study

    out_dir = check_output_dir(out or Path("studies") / ("theory-quick" if quick else "theory"))
    run_theory_study(out_dir, quick=quick)
    html, _ = build_report(out_dir)
    Console().print(f"report: [bold]{html}[/]")


@study_app.command("list")
def list_studies() -> None:
    """List the studies that ship with raremix."""
    from raremix.studies.spec import expand, load_spec

    studies = packaged_configs("studies")
    if not studies:
        typer.echo("no packaged studies yet: run one from a YAML with `raremix study run PATH`")
        return
    table = Table("study", "runs", "description")
    for name, path in studies.items():
        if name == "theory":
            table.add_row(
                name,
                "1",
                "the capacity/interference theory lab (seconds): which features each width learns",
            )
            continue
        try:
            spec = load_spec(path)
            table.add_row(name, str(len(expand(spec))), spec.description)
        except RaremixError as err:
            table.add_row(name, "?", f"[red]{err}[/]")
    Console().print(table)
