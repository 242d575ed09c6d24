"""Bring your own data: task-tagged rows from JSONL, Parquet, CSV or Hugging Face datasets.

Data flow: `spec` (the column mapping) → `reader` (files and datasets, each read by
its `formats` reader; `rows` checks each row, `chat` turns messages into prompt and
response: task, prompt, response, file, line) → `stats` + `plot` (per-task counts,
shares, lengths, rarity, starvation; the long-tail plot) and `mix` (one mixture source
per task: plans, training-loop adapters, shards).

    from raremix.tagged import read_tagged, tagged_sources
    data = read_tagged("fcall.jsonl", skip_invalid=True, rejected_path="rejected.jsonl")
    tables = tagged_sources(data)   # → MixtureDataset / to_hf_iterable / write_shards
"""

from __future__ import annotations

from raremix.tagged.mix import bind_mixture, tagged_sources, write_mixed
from raremix.tagged.reader import (
    TaggedData,
    TaggedStream,
    read_spec,
    read_tagged,
    stream_tagged,
    write_rejected,
)
from raremix.tagged.spec import TaggedSpec
from raremix.tagged.stats import starvation_lines, task_stats

__all__ = [
    "TaggedData",
    "TaggedSpec",
    "TaggedStream",
    "bind_mixture",
    "read_spec",
    "read_tagged",
    "starvation_lines",
    "stream_tagged",
    "tagged_sources",
    "task_stats",
    "write_mixed",
    "write_rejected",
]
