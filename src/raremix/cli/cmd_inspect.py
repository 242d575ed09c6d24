"""`raremix inspect DATA`: per-task counts, shares, lengths, rarity, and starved tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from raremix.cli import app
from raremix.cli.data_options import (
    ChatTemplate,
    Format,
    MessagesCol,
    PromptCol,
    Rejected,
    ResponseCol,
    SkipInvalid,
    Split,
    TaskCol,
    data_spec,
    read_data,
)
from raremix.display import safe, wide_console
from raremix.errors import RaremixError


@app.command()
def inspect(
    data: Annotated[
        str,
        typer.Argument(
            help="A .jsonl/.parquet/.csv file, a folder of them, a save_to_disk folder, or hf:NAME."
        ),
    ],
    format: Format = None,
    task_col: TaskCol = None,
    prompt_col: PromptCol = None,
    response_col: ResponseCol = None,
    messages_col: MessagesCol = None,
    chat_template: ChatTemplate = None,
    split: Split = None,
    skip_invalid: SkipInvalid = False,
    rejected: Rejected = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", min=1, help="Planned training steps (with --batch-size)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Planned global batch size.")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option("--tokenizer", help="HF tokenizer (path or name) for lengths in tokens."),
    ] = None,
    min_examples: Annotated[
        float, typer.Option("--min-examples", min=0, help="Starved below this many examples.")
    ] = 100,
    min_share: Annotated[
        float, typer.Option("--min-share", min=0, max=1, help="Starved below this share.")
    ] = 0.01,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the long-tail plot here (.png, .svg, .pdf…)."),
    ] = None,
) -> None:
    """Per task: rows, share, rarity rank, lengths, and whether the natural mix starves it."""
    from rich.table import Table

    from raremix.tagged import starvation_lines, task_stats

    if (steps is None) != (batch_size is None):
        raise RaremixError("give --steps and --batch-size together (or neither: one pass)")
    if plot is not None:
        from raremix.figures.plots import check_figure_path

        check_figure_path(plot, "--plot")  # before the data is read, not after
    spec = data_spec(
        None,
        "data",
        path=data,
        format=format,
        task_col=task_col,
        prompt_col=prompt_col,
        response_col=response_col,
        messages_col=messages_col,
        chat_template=chat_template,
        split=split,
        skip_invalid=skip_invalid,
        rejected=rejected,
    )
    console = wide_console()
    tagged = read_data(spec, console)
    tok = _tokenizer(tokenizer) if tokenizer else None
    budget = steps * batch_size if steps is not None and batch_size is not None else None
    frame = task_stats(
        tagged.table,
        budget=budget,
        batch_size=batch_size,
        tokenizer=tok,
        min_examples=min_examples,
        min_share=min_share,
    )
    run = (
        f"{steps:,} steps × batch {batch_size:,}"
        if steps is not None and batch_size is not None
        else "one pass over the data"
    )
    table = Table(title=f"tasks by rows (natural mix over {run})", title_justify="left")
    for col in frame.columns:
        table.add_column(str(col), justify="left" if col in ("task", "starved") else "right")
    for row in frame.to_dict("records"):
        table.add_row(*(_cell(str(col), v) for col, v in row.items()))
    console.print(table)
    for line in starvation_lines(frame, run=run):
        console.print(f"[yellow]warning:[/] {safe(line)}", highlight=False, soft_wrap=True)
    if plot is not None:
        from raremix.figures.plots import save_figure
        from raremix.tagged.plot import longtail_figure

        save_figure(longtail_figure(frame), plot)
        console.print(f"long-tail plot → {safe(plot)}", highlight=False, soft_wrap=True)


def _tokenizer(name: str) -> Any:
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except ImportError:
        raise RaremixError("--tokenizer needs transformers: pip install 'raremix[hf]'") from None
    except (OSError, ValueError) as err:
        raise RaremixError(
            f"--tokenizer: cannot load '{name}' ({str(err).splitlines()[0]}): "
            "give a local tokenizer folder or a reachable hub name"
        ) from None


def _cell(col: str, value: Any) -> str:
    if col == "share":
        return f"{value:.2%}"
    if col == "per batch":
        return f"{value:.3g}"
    if isinstance(value, float):
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return safe(value)
