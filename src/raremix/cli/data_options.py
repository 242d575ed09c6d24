"""Options and helpers for reading task-tagged data, shared by `raremix inspect` and
`raremix mix plan/write --data`: the column flags, the `TaggedSpec` they build, and
reading with a one-line summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from raremix.tagged import TaggedData, TaggedSpec

Format = Annotated[
    str | None,
    typer.Option("--format", help="auto | jsonl | parquet | csv | hf (default: auto, by suffix)."),
]
TaskCol = Annotated[
    str | None, typer.Option("--task-col", help="Field with the task name (default: task).")
]
PromptCol = Annotated[
    str | None, typer.Option("--prompt-col", help="Field with the prompt (default: prompt).")
]
ResponseCol = Annotated[
    str | None,
    typer.Option("--response-col", help="Field with the response (default: response)."),
]
MessagesCol = Annotated[
    str | None,
    typer.Option(
        "--messages-col",
        help="Field with chat messages [{role, content}]: prompt = turns before the last, "
        "response = the last (assistant) turn.",
    ),
]
ChatTemplate = Annotated[
    str | None,
    typer.Option(
        "--chat-template",
        help="HF tokenizer whose chat template renders message prompts (default: plain).",
    ),
]
Split = Annotated[
    str | None, typer.Option("--split", help="Split of a HF dataset (default: train).")
]
SkipInvalid = Annotated[
    bool,
    typer.Option(
        "--skip-invalid", help="Set invalid rows aside in a rejected-rows file instead of stopping."
    ),
]
Rejected = Annotated[
    Path | None,
    typer.Option("--rejected", help="Rejected-rows JSONL (default: ./<data name>.rejected.jsonl)."),
]


def data_spec(
    base: Mapping[str, Any] | None,
    where: str,
    *,
    path: str | None = None,
    format: str | None = None,
    task_col: str | None = None,
    prompt_col: str | None = None,
    response_col: str | None = None,
    messages_col: str | None = None,
    chat_template: str | None = None,
    split: str | None = None,
    skip_invalid: bool = False,
    rejected: Path | None = None,
) -> TaggedSpec:
    """A `TaggedSpec` from a YAML `data:` section (`base`) with the command-line flags on top."""
    from raremix.configbase import load
    from raremix.tagged import TaggedSpec

    flags = {
        "path": path,
        "format": format,
        "task": task_col,
        "prompt": prompt_col,
        "response": response_col,
        "messages": messages_col,
        "chat_template": chat_template,
        "split": split,
        "skip_invalid": skip_invalid or None,
        "rejected": None if rejected is None else str(rejected),
    }
    merged = {**(base or {}), **{k: v for k, v in flags.items() if v is not None}}
    return load(TaggedSpec, merged, where)


def read_data(spec: TaggedSpec, console: Console) -> TaggedData:
    """Read the data, and say in one line what was read and what was set aside."""
    from rich.markup import escape

    from raremix.tagged import read_spec

    with console.status(f"reading {escape(str(spec.path))} …"):
        data = read_spec(spec)
    what = data.files[0] if len(data.files) == 1 else f"{len(data.files)} files in {spec.path}"
    k = len(data.counts())
    line = f"read {data.rows_read:,} rows from {what}: {k} task{'s' if k != 1 else ''}"
    if data.rejected:
        line += f"; [bold yellow]{len(data.rejected):,} invalid rows set aside[/] → {escape(str(data.rejected_path))}"
    console.print(line, highlight=False, soft_wrap=True)
    if data.not_read:
        kind = ".jsonl, .parquet or .csv" if spec.format == "auto" else f"--format {spec.format}"
        shown = ", ".join(escape(f) for f in data.not_read[:5])
        more = ", …" if len(data.not_read) > 5 else ""
        console.print(
            f"[yellow]note:[/] {len(data.not_read)} file(s) in {escape(str(spec.path))} were "
            f"not read (not {kind}): {shown}{more}",
            highlight=False,
            soft_wrap=True,
        )
    return data
