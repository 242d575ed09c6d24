"""`TaggedSpec`: where task-tagged data lives and which fields hold its task, prompt and response.

It is the `data:` section of a YAML config, and what the CLI's `--data`, `--task-col`,
… flags fill in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from raremix.configbase import Config

FORMATS = ("auto", "jsonl", "parquet", "csv", "hf")


class TaggedSpec(Config):
    """Task-tagged data: a path and its column mapping."""

    path: str | None = None
    """A .jsonl/.json, .parquet or .csv file, a folder of them, a folder written by
    datasets' save_to_disk, or hf:NAME for a Hugging Face hub dataset."""
    format: Literal["auto", "jsonl", "parquet", "csv", "hf"] = "auto"
    """File format; auto goes by suffix (a save_to_disk folder or hf:NAME is hf)."""
    task: str = Field("task", min_length=1)
    """Field holding each row's task name."""
    prompt: str = Field("prompt", min_length=1)
    """Field holding the prompt (the model's input); may be an empty string."""
    response: str = Field("response", min_length=1)
    """Field holding the response (the training target); must not be empty."""
    messages: str | None = None
    """Field holding chat messages [{role, content}, …]; when set, the prompt is every
    turn before the last (an assistant turn) and the response is that turn."""
    chat_template: str | None = None
    """HF tokenizer (path or hub name) whose chat template renders message prompts;
    unset: plain 'role: content' lines ending in 'assistant:'."""
    split: str | None = None
    """Split of a saved DatasetDict or a hub dataset (default: train, or the only one)."""
    skip_invalid: bool = False
    """Set invalid rows aside (written to `rejected`, counted) instead of stopping at the first."""
    rejected: str | None = None
    """Where skip_invalid writes the rejected rows as JSONL (default:
    <data name>.rejected.jsonl in the working directory); never an input file."""


def path_beside(section: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A `data:` section whose relative `path` and `rejected` are read as relative to
    `folder` (the YAML's own folder); hub names (`hf:NAME`) and absolute paths are left
    as they are."""
    out = dict(section)
    for key in ("path", "rejected"):
        value = out.get(key)
        if isinstance(value, str) and not value.startswith("hf:"):
            out[key] = str(folder / value)
    return out
