"""`raremix advise INVENTORY`: pilot runs → a data-mixing law → the cheapest (size, mixture)
predicted to teach the rare tasks while holding the common ones; `--validate` trains it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from raremix.cli import app

if TYPE_CHECKING:
    from raremix.advise.advisor import Validation
    from raremix.advise.recommend import Advice, Candidate


@app.command()
def advise(
    inventory: Annotated[
        str, typer.Argument(help="Inventory YAML (tasks, counts, targets, goal, budget), or 'lab'.")
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
    """Recommend the cheapest model size and mixture that reach a target on the rare tasks.

    Trains a small pilot study (sizes × up-weighting factors; resumable), or reads the runs
    of --from-study, fits per-task accuracy ~ share of the mix and model size with a
    bootstrap band, and searches the piloted sizes and factors.
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
    advice, law, table = fit_and_recommend(inv, study_dir)
    save_advice(advice, law, study_dir)
    sizes = sizes_of(table)
    counts = np.array(list(inv.counts().values()), dtype=float)
    fig = advice_figure(
        advice, law, table, sizes, counts, goal_of(inv), study_dir / ADVICE_DIR / "advise.png"
    )
    console.print(advice_table(advice, inv.target_acc, inv.band))
    resid = float(np.mean([law.resid_sd[law.tasks.index(t)] for t in inv.targets]))
    console.print(
        f"law fitted on {len(table.run_ids)} runs; a single run scatters ±{resid:.2f} (sd) around "
        f"the target prediction; the band is the {inv.band:.0%} bootstrap interval of the mean",
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
        console.print(result.verdict(), highlight=False)


def _fmt(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.2f} [{t[1]:.2f}, {t[2]:.2f}]"


def _signed(x: float) -> str:
    """'+0.012' / '-0.012'; a zero change is '+0.000', never '-0.000'."""
    return f"{x + 0.0:+.3f}"  # + 0.0 turns -0.0 into 0.0


def advice_table(advice: Advice, target: float, coverage: float) -> Table:
    """The alternatives per size (natural vs designed mix), the recommendation starred."""
    table = Table(
        title=f"raremix advise: target rare acc ≥ {target:g} (band low), {coverage:.0%} band",
        title_justify="left",
    )
    for col in ("", "size", "mix", "rare share", "rare acc \\[band]", "common acc \\[band]", "Δ common", "FLOPs", "goal"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("", "size", "mix", "goal") else "right")
    rows: list[Candidate] = list(advice.alternatives)
    if advice.chosen is not None and advice.chosen not in rows:
        rows.append(advice.chosen)
    for c in rows:
        star = "★" if c is advice.chosen else ""
        table.add_row(
            star, c.size, c.mix, f"{c.target_share:.1%}", _fmt(c.rare), _fmt(c.common),
            _signed(-c.drop[0]), f"{c.flops:.1e}", _short(c.why), style="bold" if star else None,
        )  # fmt: skip
    return table


def _short(why: str) -> str:
    """A table-width reason: 'meets', 'rare < target', 'common drop', 'over budget'."""
    if not why:
        return "meets"
    if why.startswith("over the"):
        return "over budget"
    return "rare < target" if why.startswith("rare") else "common drop"


def validation_table(v: Validation) -> Table:
    """Predicted (with band) vs measured (seed mean ± sd, per seed)."""
    import numpy as np

    table = Table(
        title=f"--validate: {v.size}, factor {v.factor:g}, seeds {v.seeds}", title_justify="left"
    )
    for col in ("", "predicted \\[band]", "measured mean ± sd", "per seed"):
        table.add_column(col, justify="left" if not col else "right")
    for name, pred, runs in (
        ("rare acc", v.rare_predicted, v.rare_measured),
        ("common acc", v.common_predicted, v.common_measured),
    ):
        sd = float(np.std(runs, ddof=1)) if len(runs) > 1 else float("nan")
        table.add_row(
            name, _fmt(pred), f"{np.mean(runs):.2f} ± {sd:.2f}", " ".join(f"{r:.2f}" for r in runs)
        )
    return table
