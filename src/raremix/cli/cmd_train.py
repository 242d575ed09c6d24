"""`raremix train CONFIG.yaml [key=value …]`: train one run with a progress bar.

Data-parallel on several processes: `torchrun --nproc_per_node=N -m raremix train CONFIG.yaml`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from raremix.cli import app
from raremix.display import safe, wide_console


@app.command(context_settings={"allow_extra_args": False})
def train(
    config: Annotated[Path, typer.Argument(help="Training config YAML.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. steps=500 model.size=200k")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory (default: runs/<config name>-<hash>)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Continue from the run directory's checkpoint if there is one.",
        ),
    ] = True,
    logger: Annotated[
        list[str] | None,
        typer.Option("--logger", help="Also log to tensorboard, mlflow or wandb (repeatable)."),
    ] = None,
) -> None:
    """Train a GPT on a task mixture; evaluate every task on held-out data as it trains."""
    from raremix.callbacks.loggers import make_loggers
    from raremix.callbacks.progress import ProgressBar
    from raremix.config import load_config
    from raremix.outdir import check_output_dir
    from raremix.trainer import resolve_device
    from raremix.trainer import train as run_training

    cfg = load_config(config, overrides or [])
    run_dir = check_output_dir(out or Path("runs") / f"{config.stem}-{cfg.hash()}")
    resolve_device(cfg.device)  # refuse an absent GPU before printing anything
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 alone reports
    console = wide_console()
    console.quiet = not main
    header = f"run dir [bold]{safe(run_dir)}[/]  (config hash {cfg.hash()})"
    callbacks = [ProgressBar(console=console, header=header), *make_loggers(logger or [])]
    state = run_training(cfg, run_dir, callbacks=callbacks, resume=resume)
    console.print(final_table(state.last_eval, cfg.rare, state.facts))


def final_table(metrics: dict[str, dict[str, float]], rare: list[str], facts: dict) -> Table:
    """Per-task held-out accuracy and loss at the end of the run, rare tasks marked, beside
    the held-out size n and the best baseline (chance, majority answer or simple rule)."""
    table = Table(
        title="held-out accuracy",
        caption=f"{facts['params']:,} params · {facts['flops']:.2e} training FLOPs",
    )
    table.add_column("task")
    for col in ("acc", "loss", "n", "best baseline"):
        table.add_column(col, justify="right")
    for task in sorted(metrics, key=lambda t: (t not in rare, t)):
        m = metrics[task]
        base = [m[k] for k in ("chance", "majority", "heuristic") if k in m]
        table.add_row(
            f"[bold yellow]{safe(task)} (rare)[/]" if task in rare else safe(task),
            f"{m['acc']:.3f}",
            f"{m['loss']:.3f}",
            f"{m['n']:.0f}" if "n" in m else "-",
            f"{max(base):.3f}" if base else "-",
        )
    return table
