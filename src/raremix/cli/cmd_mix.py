"""`raremix mix CONFIG.yaml`: show a mixture's plan (weights, schedule, epochs) before training."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from raremix.cli import app
from raremix.configbase import load, read_yaml
from raremix.errors import RaremixError


class _PlanByDefault(TyperGroup):
    """`raremix mix CONFIG` means `raremix mix plan CONFIG`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["plan", *args]
        return super().parse_args(ctx, args)


mix_app = typer.Typer(
    cls=_PlanByDefault,
    help="Mixture plans: weights, schedule and epochs per source, before anything trains.",
    no_args_is_help=True,
)
app.add_typer(mix_app, name="mix")


@mix_app.command("plan")
def plan(
    config: Annotated[
        Path, typer.Argument(help="YAML with a 'mixture:' section, or a bare mixture.")
    ],
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Training steps (global batches).")
    ] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Global batch size.")] = 32,
) -> None:
    """Show the plan: per source its target weights, expected examples and epochs."""
    from rich.console import Console
    from rich.table import Table

    from raremix.mixture import MixtureConfig
    from raremix.mixture.plan import phase_table, plan_table
    from raremix.mixture.resolve import resolve

    data = read_yaml(config)
    if isinstance(data, dict) and "mixture" in data:
        data, where = data["mixture"], f"{config}: mixture"
    else:
        where = str(config)
    if data is None:
        raise RaremixError(f"{where}: is empty: write a mixture with 'sources:'")
    mix = load(MixtureConfig, data, where)
    resolved = resolve(mix, batch_size=batch_size, total_steps=steps, where=where)
    frame = plan_table(resolved, batch_size=batch_size, total_steps=steps)

    title = f"mixture plan: {mix.mode}, {steps:,} steps × batch {batch_size:,} = {steps * batch_size:,} examples"
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(
            str(col),
            justify="left" if col in ("source", "given", "exhaustion") else "right",
            no_wrap=True,
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    # piped output defaults to 80 columns, which folds a wide plan beyond reading
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if len(resolved.schedule.starts) > 1:
        phases = Table(title="phases (steps)", title_justify="left")
        for col in ("phase", "start", "end", "anneal"):
            phases.add_column(col, justify="right")
        for row in phase_table(resolved).itertuples(index=False):
            phases.add_row(*(_cell(v) for v in row))
        console.print(phases)
    if resolved.epoch_length is not None:
        console.print(f"one mixture epoch = {resolved.epoch_length:,} examples")


def _cell(value: Any) -> str:
    """A table cell: weights to 4 significant digits, counts with separators, '-' if missing."""
    import numbers

    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):,.0f}" if float(value) >= 100 else f"{float(value):.4g}"
    return str(value)
