"""`raremix advise INVENTORY`: pilot runs → laws over share × size × budget → the cheapest of
bigger / longer / remixed that learns the rare tasks while holding the common ones, each
option's FLOPs beside it; `--validate` trains it and measures its FLOPs-to-learn."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from raremix.cli import app

if TYPE_CHECKING:
    from raremix.advise.advisor import Validation
    from raremix.advise.recommend import Advice


@app.command()
def advise(
    inventory: Annotated[
        str,
        typer.Argument(help="Inventory YAML (tasks, counts, targets, goal, budgets), or 'lab'."),
    ],
    from_study: Annotated[
        Path | None,
        typer.Option(
            "--from-study", help="Fit on this finished study's runs instead of training pilots."
        ),
    ] = None,
    pilot_dir: Annotated[
        Path | None,
        typer.Option("--pilot-dir", help="Pilot study directory (default: studies/advise-<name>)."),
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate", help="Train the recommendation with fresh seeds: predicted vs measured."
        ),
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="The inventory's seconds-long pilot (a smoke test).")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Parallel runs (default: one per core).")
    ] = None,
) -> None:
    """Recommend the cheapest of bigger / longer / remixed that learns the rare tasks.

    Trains a small pilot study (sizes × up-weighting factors, each run's evaluations read
    as budgets; resumable), or reads the runs of --from-study, fits the onset law of the
    targets and the accuracy law of the common tasks over share × size × FLOPs, and prices
    every option in the FLOPs that learn the targets with the inventory's probability.
    """
    import numpy as np

    from raremix.advise.advisor import (
        ADVICE_DIR,
        fit_and_recommend,
        goal_of,
        run_pilot,
        save_advice,
        sizes_of,
    )
    from raremix.advise.advisor import validate as run_validation
    from raremix.advise.inventory import load_inventory, resolve_inventory
    from raremix.advise.plot import advice_figure

    console = Console()
    inv, base = load_inventory(resolve_inventory(inventory))
    inv = inv.for_quick() if quick else inv
    if from_study is not None:
        study_dir = from_study
        console.print(f"fitting on the runs of [bold]{study_dir}[/] (no training)")
    else:
        study_dir = pilot_dir or Path("studies") / (
            f"advise-{inv.name}" + ("-quick" if quick else "")
        )
        console.print(f"pilot study → [bold]{study_dir}[/] (finished runs are kept)")
        run_pilot(inv, base, study_dir, quick, workers)
    advice, laws, table = fit_and_recommend(inv, base, study_dir, quick)
    save_advice(advice, laws, study_dir)
    goal = goal_of(inv, base, quick)
    counts = np.array(list(inv.counts().values()), dtype=float)
    fig = advice_figure(
        advice, laws, table, sizes_of(table), counts, goal, study_dir / ADVICE_DIR / "advise.png"
    )
    console.print(advice_table(advice, inv.probability, inv.band, goal.base_steps))
    got = int(table.learned[:, [table.tasks.index(t) for t in inv.targets]].all(axis=1).sum())
    console.print(
        f"laws fitted on {len(table.run_ids)} runs ({got} learned every target) and "
        f"{len(table.point_run)} budget points; learned = accuracy ≥ {inv.learned.threshold:g} at "
        f"{inv.learned.consecutive} evaluation(s) in a row; bands: {inv.band:.0%} bootstrap over runs",
        highlight=False,
    )
    for line in advice.lines:
        console.print(f"• {line}", highlight=False, markup=False)
    console.print(f"figure: {fig}", highlight=False)
    if advice.chosen is None:
        console.print(f"[red]no recommendation[/]: {advice.message}", highlight=False)
        raise SystemExit(1)
    console.print(f"[bold green]recommendation[/]: {advice.message}", highlight=False)
    if validate:
        result = run_validation(inv, base, advice.chosen, study_dir, quick, workers)
        console.print(validation_table(result))
        console.print(result.reason, highlight=False)


def _flops(t: tuple[float, float, float]) -> str:
    return "never" if not math.isfinite(t[0]) else f"{t[0]:.2e} [{t[1]:.2e}, {t[2]:.2e}]"


def _signed(x: float) -> str:
    """'+0.012' / '-0.012'; a zero change is '+0.000', never '-0.000'."""
    return f"{x + 0.0:+.3f}"  # + 0.0 turns -0.0 into 0.0


def advice_table(advice: Advice, probability: float, coverage: float, base_steps: int) -> Table:
    """One row per option (its cheapest candidate), the recommendation starred."""
    table = Table(
        title=f"raremix advise: FLOPs to learn every target with p ≥ {probability:g} "
        f"({coverage:.0%} band); 'longer' = over {base_steps:,} steps",
        title_justify="left",
    )
    for col in (
        "",
        "option",
        "size",
        "mix",
        "steps",
        "FLOPs \\[band]",
        "× cheapest",
        "median FLOPs-to-learn",
        "Δ common",
        "goal",
    ):
        table.add_column(
            col, justify="left" if col in ("", "option", "size", "mix", "goal") else "right"
        )
    best = min((c.flops[0] for c in advice.options if c.feasible), default=float("nan"))
    for c in advice.options:
        star = "★" if c is advice.chosen else ""
        ratio = (
            f"{c.flops[0] / best:.2g}" if math.isfinite(best) and math.isfinite(c.flops[0]) else ""
        )
        table.add_row(
            star,
            c.option,
            c.size,
            c.mix,
            f"{c.steps:,}",
            _flops(c.flops),
            ratio,
            _flops(c.median),
            _signed(-c.drop[0]),
            _short(c.why),
            style="bold" if star else None,
        )
    return table


def _short(why: str) -> str:
    """A table-width reason."""
    if not why:
        return "meets"
    for key, short in (
        ("needs", "beyond pilot"),
        ("over the FLOPs", "over cap"),
        ("over the time", "over time"),
        ("common", "common drop"),
    ):
        if why.startswith(key):
            return short
    return "never learned"


def validation_table(v: Validation) -> Table:
    """Predicted vs measured FLOPs-to-learn, and per seed."""
    table = Table(
        title=f"--validate: {v.size}, factor {v.factor:g}, seeds {v.seeds}", title_justify="left"
    )
    for col in ("", "predicted \\[band]", "measured \\[95% CI]"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row(
        "median FLOPs-to-learn",
        _flops(v.predicted_median),
        _flops(v.measured_median) + " (Kaplan–Meier)",
    )
    k, n, lo, hi = v.by_budget
    table.add_row(
        f"learned by {v.predicted_budget[0]:.2e} FLOPs",
        f"p ≥ {v.probability:g}",
        f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}] (Wilson)",
    )
    per = " ".join(
        f"{o:.2e}" if ok else f">{o:.2e}" for o, ok in zip(v.onset, v.learned, strict=True)
    )
    table.add_row("per seed", "", per)
    return table
