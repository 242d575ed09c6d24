"""`raremix hf-train CONFIG.yaml [key=value …]` and `raremix export-lmeval RUN_DIR`.

Train or fine-tune a Hugging Face causal LM on a raremix mixture (data-parallel under
`torchrun --nproc_per_node=N -m raremix hf-train CONFIG.yaml`); write a `raremix train`
run's last evaluation in the lm-evaluation-harness layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from raremix.cli import app


@app.command("hf-train", context_settings={"allow_extra_args": False})
def hf_train(
    config: Annotated[Path, typer.Argument(help="HF training config YAML (see docs/hf.md).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. steps=200 optim.lr=1e-4")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Another key=value override (repeatable).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory (default: runs/<config name>-<hash>)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume/--no-resume", help="Continue from the run directory's checkpoint."),
    ] = True,
) -> None:
    """Train a Hugging Face causal LM on a task mixture; evaluate each task by generation."""
    from raremix.callbacks.loggers import make_loggers
    from raremix.callbacks.progress import ProgressBar
    from raremix.cli.cmd_train import final_table
    from raremix.hf.config import load_hf_config
    from raremix.hf.train import train_hf

    cfg = load_hf_config(config, [*(overrides or []), *(sets or [])])
    run_dir = out or Path("runs") / f"{config.stem}-{cfg.hash()}"
    console = Console(quiet=int(os.environ.get("RANK", "0")) != 0)  # rank 0 alone reports
    console.print(f"run dir [bold]{run_dir}[/]  (config hash {cfg.hash()})")
    callbacks = [ProgressBar(), *make_loggers(cfg.loggers)]
    state = train_hf(cfg, run_dir, callbacks=callbacks, resume=resume)
    table = final_table(state.last_eval, cfg.rare, {**state.facts, "flops": 0.0})
    table.caption = f"{state.facts['params']:,} params · {cfg.model}"
    console.print(table)
    if "lm_eval" in state.facts:
        console.print(f"lm-eval results: {state.facts['lm_eval']}")


@app.command("export-lmeval")
def export_lmeval(
    run_dir: Annotated[Path, typer.Argument(help="A `raremix train` run directory.")],
) -> None:
    """Write a run's last evaluation as lm-evaluation-harness results JSON (RUN_DIR/lm_eval/)."""
    from raremix.hf.lmeval import export_run

    Console().print(f"wrote {export_run(run_dir)}")
