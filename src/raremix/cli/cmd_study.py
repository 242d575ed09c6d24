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
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Run the declared confirmation seeds on a fresh held-out draw (the evidence).",
        ),
    ] = False,
    declared_only: Annotated[
        bool,
        typer.Option(
            "--declared-only",
            help="Run only the arms the hypotheses name (the evidence); descriptive arms "
            "(extra sizes or mixes in the report's figures) are skipped.",
        ),
    ] = False,
    trust_run_fn: Annotated[
        bool,
        typer.Option(
            "--trust-run-fn",
            help="Allow a run_fn that is not one of raremix's registered run functions "
            "(it imports and runs that code: only for study files you trust).",
        ),
    ] = False,
) -> None:
    """Run every run of a study not yet done; rerun the same command to resume."""
    from raremix.studies.regime import check_regime, spec_regime, yaml_regime
    from raremix.studies.runner import run_study
    from raremix.studies.spec import expand, load_spec, prepare_study

    path = resolve_config(spec, "studies", "study")
    if execute := _in_process(path):  # a lab computed in seconds, not a sweep of runs
        yaml_regime(path)  # its regime header agrees with its declarations
        _execute(execute, path, out, quick)
        return
    study = prepare_study(load_spec(path), quick, confirm, declared_only)
    if study.regime is not None:  # the header agrees with the declared outcomes
        check_regime(spec_regime(study), str(path))
    suffix = ("-confirm" if confirm else "") + ("-quick" if quick else "")
    out_dir = check_output_dir(out or Path("studies") / (study.name + suffix))
    console = Console()
    console.print(f"study [bold]{safe(study.name)}[/]: {len(expand(study))} runs → {safe(out_dir)}")
    outcome = run_study(
        study,
        out_dir,
        run_fn=run_fn,
        workers=workers,
        backend=backend,  # type: ignore[arg-type]
        trust_run_fn=trust_run_fn,
    )
    console.print(outcome.summary(), highlight=False)
    if outcome.failed:
        console.print(
            f"[red]{len(outcome.failed)} failed[/]: fix and rerun the same command to retry them"
        )
        raise SystemExit(1)  # not typer.Exit: main() runs click with standalone_mode=False


def _in_process(path: Path) -> str | None:
    """The analysis of a study YAML whose record runs in-process (None: a runner study)."""
    from raremix.configbase import read_yaml
    from raremix.studies.registry import STUDIES

    data = read_yaml(path)
    analysis = data.get("analysis") if isinstance(data, dict) else None
    record = STUDIES.get(str(analysis)) if analysis else None
    return record.analysis if record is not None and record.execute else None


def _execute(analysis: str, path: Path, out: Path | None, quick: bool) -> None:
    from raremix.report import build_report
    from raremix.studies.analysis import execute_study

    out_dir = check_output_dir(out or Path("studies") / (path.stem + ("-quick" if quick else "")))
    execute_study(analysis, out_dir, quick=quick)
    html, _ = build_report(out_dir)
    Console().print(f"report: [bold]{html}[/]")


@study_app.command("list")
def list_studies() -> None:
    """List the studies that ship with raremix, each with its regime (the paper's · here)."""
    from raremix.configbase import read_yaml
    from raremix.studies.regime import yaml_regime

    studies = packaged_configs("studies")
    if not studies:
        typer.echo("no packaged studies yet: run one from a YAML with `raremix study run PATH`")
        return
    table = Table("study", "runs", "regime (paper · here)", "description")
    for name, path in studies.items():
        try:
            regime = yaml_regime(path)
        except RaremixError as err:
            table.add_row(name, "?", "", f"[red]{safe(str(err))}[/]")
            continue
        description = str(read_yaml(path).get("description", "")).strip()
        if _in_process(path):  # one in-process computation, no runs
            description += " (in-process, seconds)"
        table.add_row(name, str(regime.here.runs), safe(regime.compact()), safe(description))
    Console().print(table)


@study_app.command("power")
def power(
    study_dir: Annotated[
        Path, typer.Argument(help="A finished study directory (a pilot: e.g. its calibration run).")
    ],
    target: Annotated[
        float, typer.Option("--power", min=0.01, max=0.99, help="Power to plan for.")
    ] = 0.8,
    effect: Annotated[
        float | None,
        typer.Option(help="Effect to detect (default: the published one, else the pilot's)."),
    ] = None,
) -> None:
    """Seeds per arm each declared hypothesis needs, from the pilot's spread (statsmodels)."""
    from rich.text import Text

    from raremix.configbase import load
    from raremix.display import wide_console
    from raremix.studies.analysis_final import load_results
    from raremix.studies.hypotheses import Declaration
    from raremix.studies.outcomes import per_run_metrics
    from raremix.studies.power import seeds_table

    study = load_results(study_dir)
    raw = study.spec.get("hypotheses")
    if not raw:
        raise RaremixError(
            f"{study_dir}: the study declares no hypotheses: add a hypotheses section "
            "to its YAML (docs/statistics.md)"
        )
    declaration = load(Declaration, raw, f"{study_dir}/study.yaml: hypotheses")
    runs = per_run_metrics(study.final, study.curves, study.runs, declaration.learned)
    rows = seeds_table(declaration, runs, power=target, effect=effect)
    table = Table(
        title=f"Seeds per arm for {target:.0%} power (α = {declaration.alpha} split over the "
        f"family), from {study_dir}",
        title_justify="left",
    )
    for col in ("hypothesis", "metric", "pilot seeds", "sd", "effect", "seeds needed"):
        table.add_column(col, justify="left" if col in ("hypothesis", "metric") else "right")
    table.add_column("declared", justify="right")
    for r in rows.to_dict("records"):
        cells = (
            str(r["hypothesis"]),
            str(r["metric"]),
            str(r["pilot seeds"]),
            "–" if r["sd"] != r["sd"] else f"{r['sd']:.3f}",
            f"{r['effect']:+.3f} ({r['source']})",
            "?" if r["seeds needed"] != r["seeds needed"] else str(int(r["seeds needed"])),
            f"{r['seeds declared']}" + ("" if r["enough"] else " (underpowered)"),
        )
        table.add_row(*(Text(c) for c in cells))
    wide_console().print(table)
    for r in rows.to_dict("records"):
        if isinstance(r.get("note"), str):
            typer.echo(f"{r['hypothesis']}: {r['note']}")
