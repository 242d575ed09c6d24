"""`raremix mix`: a mixture's plan before training, and the mixed stream of your data as shards.

raremix mix CONFIG.yaml                          # = mix plan: synthetic-task sizes from the config
raremix mix plan CONFIG.yaml --data fcall.jsonl  # sizes are the data's per-task row counts
raremix mix write CONFIG.yaml --data fcall.jsonl --out shards/ --steps 2000 --batch-size 32
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

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
from raremix.configbase import load, read_yaml
from raremix.display import safe, wide_console
from raremix.errors import RaremixError
from raremix.outdir import check_output_dir
from raremix.tagged.spec import path_beside

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from raremix.mixture import MixtureConfig, Plan


class _PlanByDefault(TyperGroup):
    """`raremix mix CONFIG` means `raremix mix plan CONFIG`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["plan", *args]
        return super().parse_args(ctx, args)


mix_app = typer.Typer(
    cls=_PlanByDefault,
    help="Mixture plans (weights, schedule, epochs per source), and mixed shards of your data.",
    no_args_is_help=True,
)
app.add_typer(mix_app, name="mix")

Config = Annotated[
    Path,
    typer.Argument(
        help="YAML with a 'mixture:' section (and optionally 'data:'), or a bare mixture."
    ),
]
Steps = Annotated[
    int | None,
    typer.Option(
        "--steps", min=1, help="Training steps (global batches); default: the config's, else 1000."
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Global batch size; default: the config's, else 32."),
]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Task-tagged data (file, folder, save_to_disk folder or hf:NAME): one source "
        "per task, sized by its rows. Overrides the config's data.path.",
    ),
]


def _sections(config: Path) -> tuple[Any, str, dict[str, Any] | None]:
    """(mixture section, where, data section with its path made relative to the config)."""
    raw = read_yaml(config)
    if not (isinstance(raw, dict) and "mixture" in raw):
        return raw, str(config), None
    section = raw.get("data")
    if section is not None and not isinstance(section, dict):
        raise RaremixError(f"{config}: data: expected a mapping (path, task, prompt, …)")
    if section:
        section = path_beside(section, config.parent)
    return raw["mixture"], f"{config}: mixture", section


def _run_length(config: Path, steps: int | None, batch_size: int | None) -> tuple[int, int]:
    """Steps and batch size: the flags, else the config's (with a training config's defaults
    when it has `tasks:`), else 1000 × 32 for a bare mixture."""
    from pydantic import create_model
    from pydantic.fields import FieldInfo

    from raremix.config import TrainConfig
    from raremix.configbase import Config

    raw = read_yaml(config)
    raw = raw if isinstance(raw, dict) and "mixture" in raw else {}
    training = "tasks" in raw
    fields = {  # TrainConfig's two fields, bounds and messages included
        key: FieldInfo.merge_field_infos(
            TrainConfig.model_fields[key],
            default=TrainConfig.model_fields[key].default if training else fallback,
        )
        for key, fallback in (("steps", 1000), ("batch_size", 32))
    }
    length = create_model(
        "RunLength",
        __base__=Config,
        steps=(int, fields["steps"]),
        batch_size=(int, fields["batch_size"]),
    )
    run: Any = load(length, {k: raw[k] for k in fields if k in raw}, str(config))
    return steps or run.steps, batch_size or run.batch_size


def _bind(
    config: Path, console: Console, data: str | None, **flags: Any
) -> tuple[MixtureConfig, dict[str, int] | None, Any, str]:
    """The mixture, source sizes from the data (None: no data), the data, and where it was."""
    from raremix.mixture import MixtureConfig

    section, where, data_section = _sections(config)
    if data is None and not (data_section and data_section.get("path")):
        if section is None:
            raise RaremixError(f"{where}: is empty: write a mixture with 'sources:'")
        return load(MixtureConfig, section, where), None, None, where
    from raremix.tagged import bind_mixture

    spec = data_spec(data_section, f"{config}: data", path=data, **flags)
    tagged = read_data(spec, console)
    mix, sizes, unused = bind_mixture(section, tagged.counts(), where)
    if unused:
        console.print(
            f"note: {len(unused)} task(s) of the data are not in the mixture and are never drawn: "
            + ", ".join(safe(u, markup=False) for u in unused[:10])
            + (", …" if len(unused) > 10 else ""),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return mix, sizes, tagged, where


@mix_app.command("plan")
def plan(
    config: Config,
    steps: Steps = None,
    batch_size: BatchSize = None,
    data: Data = None,
    format: Format = None,
    task_col: TaskCol = None,
    prompt_col: PromptCol = None,
    response_col: ResponseCol = None,
    messages_col: MessagesCol = None,
    chat_template: ChatTemplate = None,
    split: Split = None,
    skip_invalid: SkipInvalid = False,
    rejected: Rejected = None,
) -> None:
    """Show the plan: per source its target weights, expected examples and epochs."""
    from raremix.mixture.plan import plan_table
    from raremix.mixture.resolve import resolve

    steps, batch_size = _run_length(config, steps, batch_size)
    console = wide_console()
    mix, sizes, _, where = _bind(
        config,
        console,
        data,
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
    resolved = resolve(mix, sizes, batch_size=batch_size, total_steps=steps, where=where)
    frame = plan_table(resolved, batch_size=batch_size, total_steps=steps)
    title = f"mixture plan: {mix.mode}, {steps:,} steps × batch {batch_size:,} = {steps * batch_size:,} examples"
    _print_plan(console, title, frame, resolved)


@mix_app.command("write")
def write(
    config: Config,
    out: Annotated[Path, typer.Option("--out", help="Folder for the shards (resumes if rerun).")],
    steps: Steps = None,
    batch_size: BatchSize = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mixed stream.")] = 0,
    shard_rows: Annotated[
        int, typer.Option("--shard-rows", min=1, help="Rows per shard (whole batches).")
    ] = 100_000,
    shard_format: Annotated[
        str, typer.Option("--shard-format", help="parquet | jsonl.")
    ] = "parquet",
    data: Data = None,
    format: Format = None,
    task_col: TaskCol = None,
    prompt_col: PromptCol = None,
    response_col: ResponseCol = None,
    messages_col: MessagesCol = None,
    chat_template: ChatTemplate = None,
    split: Split = None,
    skip_invalid: SkipInvalid = False,
    rejected: Rejected = None,
) -> None:
    """Write the mixed stream of the data (steps × batch rows) as shards; rerun to resume."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from raremix.mixture.plan import realised_report
    from raremix.tagged import tagged_sources, write_mixed

    if shard_format not in ("parquet", "jsonl"):
        raise RaremixError(f"--shard-format '{shard_format}': use parquet or jsonl")
    check_output_dir(out)
    steps, batch_size = _run_length(config, steps, batch_size)
    console = wide_console()
    mix, sizes, tagged, _ = _bind(
        config,
        console,
        data,
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
    if tagged is None:
        raise RaremixError(
            f"{config}: no data to mix: pass --data PATH (or give the config a data: path)"
        )
    assert sizes is not None
    tables = tagged_sources(tagged, list(sizes))
    columns = (
        TextColumn("[bold]write"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        job = bar.add_task("write", total=steps)
        sampler, shards = write_mixed(
            mix,
            tables,
            out,
            seed=seed,
            steps=steps,
            batch_size=batch_size,
            shard_rows=shard_rows,
            fmt=shard_format,  # type: ignore[arg-type]
            progress=lambda step: bar.update(job, completed=step),
        )
    frame = realised_report(sampler)[
        ["source", "target share", "realised share", "drawn", "epochs"]
    ]
    rows = int(sampler.counts.sum())
    n = len(shards)
    title = (
        f"mixed stream: {sampler.step:,} steps, {rows:,} rows in {n} shard{'s' if n != 1 else ''}"
    )
    _print_plan(console, title, frame, None)
    console.print(
        f"shards in {safe(out, markup=False)} (read them with raremix.mixture.read_shards); "
        "state-rank0.json there continues the stream",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _print_plan(console: Console, title: str, frame: pd.DataFrame, resolved: Plan | None) -> None:
    from rich.table import Table

    from raremix.mixture.plan import phase_table

    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(
            str(col),
            justify="left" if col in ("source", "given", "exhaustion") else "right",
            no_wrap=True,
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    if resolved is None:
        return
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
    return safe(value)
