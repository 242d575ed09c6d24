"""Adapters: torch DataLoader workers, torchdata StatefulDataLoader, Hugging Face in/out, shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from torch.utils.data import DataLoader

from raremix.errors import RaremixError
from raremix.mixture import (
    MixtureDataset,
    TableSources,
    build_sampler,
    read_shards,
    to_hf_iterable,
    write_shards,
)
from raremix.mixture.adapters import table_rows

MIX = {
    "mode": "stratified",
    "sources": [
        {"name": "copy", "size": 60, "weight": 3},
        {"name": "modadd", "size": 9, "weight": 1, "exhaustion": {"max_epochs": 2}},
        {"name": "sort", "size": 40, "weight": 2},
    ],
}


def reference(
    steps: int, batch: int = 8, mix: dict = MIX, sizes: dict | None = None
) -> list[tuple[list, list]]:
    sampler = build_sampler(mix, sizes, seed=4, batch_size=batch)
    return [tuple(x.tolist() for x in sampler.next_batch()) for _ in range(steps)]  # type: ignore[misc]


def as_lists(batch: dict) -> tuple[list, list]:
    return batch["source"].tolist(), batch["index"].tolist()


def test_dataloader_with_two_workers_yields_the_single_process_stream_in_order() -> None:
    ds = MixtureDataset(MIX, seed=4, batch_size=8, total_steps=12)
    got = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert [int(b["step"]) for b in got] == list(range(12))
    assert [as_lists(b) for b in got] == reference(12)


@pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")  # torchdata's own call
@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_exactly(workers: int) -> None:
    from torchdata.stateful_dataloader import StatefulDataLoader

    ds = MixtureDataset(MIX, seed=4, batch_size=8, total_steps=15)
    loader = StatefulDataLoader(ds, batch_size=None, num_workers=workers)
    it = iter(loader)
    head = [next(it) for _ in range(5)]
    state = loader.state_dict()
    resumed = StatefulDataLoader(
        MixtureDataset(MIX, seed=4, batch_size=8, total_steps=15),
        batch_size=None,
        num_workers=workers,
    )
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert [int(b["step"]) for b in head + tail] == list(range(15))
    assert [as_lists(b) for b in head + tail] == reference(15)


def hf_sources() -> dict:
    import datasets

    return {
        "copy": datasets.Dataset.from_dict(
            {"text": [f"copy {i}" for i in range(60)], "n": list(range(60))}
        ),
        "modadd": datasets.Dataset.from_dict(
            {"text": [f"mod {i}" for i in range(9)], "answer": list(range(9))}
        ),
        "sort": pa.table({"text": [f"sort {i}" for i in range(40)]}),
    }


def test_hf_datasets_as_sources() -> None:
    tables = TableSources(hf_sources())
    assert tables.sizes == {"copy": 60, "modadd": 9, "sort": 40}
    ds = MixtureDataset(MIX, seed=4, batch_size=8, total_steps=3, tables=tables)
    batch = next(iter(ds))
    rows = batch["rows"].to_pylist()
    for row, s, i in zip(rows, batch["source"], batch["index"], strict=True):
        assert row["source"] == ds.names[s] and row["index"] == i
        assert (
            row["text"]
            == f"{ {'copy': 'copy', 'modadd': 'mod', 'sort': 'sort'}[row['source']] } {i}"
        )
    # columns missing from a source are null, not an error
    assert any(r["answer"] is None for r in rows) and any(r["answer"] is not None for r in rows)


def test_hf_iterable_out_is_the_mixed_stream() -> None:
    tables = TableSources(hf_sources())
    out = to_hf_iterable(MIX, seed=4, batch_size=8, total_steps=4, tables=tables)
    rows = list(out)
    ref = reference(4, sizes=tables.sizes)
    names = ["copy", "modadd", "sort"]
    assert [(r["source"], r["index"]) for r in rows] == [
        (names[s], i) for src, idx in ref for s, i in zip(src, idx, strict=True)
    ]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 3
    bare = list(to_hf_iterable(MIX, seed=4, batch_size=8, total_steps=2))
    assert [r["index"] for r in bare] == [i for _, idx in ref[:2] for i in idx]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_shards_round_trip_and_continue(tmp_path: Path, fmt: str) -> None:
    sampler = build_sampler(MIX, seed=4, batch_size=8)
    paths = write_shards(
        sampler, tmp_path, steps=7, fmt=fmt, rows_per_shard=20, tables=TableSources(hf_sources())
    )
    assert len(paths) == 3 and all(p.suffix == f".{fmt}" for p in paths)
    # continue the same stream from the state written beside the shards
    more = build_sampler(MIX, seed=4, batch_size=8)
    more.load_state_dict(json.loads((tmp_path / "state-rank0.json").read_text()))
    write_shards(more, tmp_path, steps=3, fmt=fmt)
    frame = read_shards(tmp_path)
    ref = reference(10)
    names = ["copy", "modadd", "sort"]
    assert frame["step"].tolist() == [s for s, (src, _) in enumerate(ref) for _ in src]
    assert frame["source"].tolist() == [names[s] for src, _ in ref for s in src]
    assert frame["index"].tolist() == [i for _, idx in ref for i in idx]
    assert frame["text"].iloc[0].endswith(str(frame["index"].iloc[0]))


def test_table_sources_errors() -> None:
    with pytest.raises(RaremixError, match="has a column named 'source'"):
        TableSources({"a": pd.DataFrame({"source": [1]})})
    with pytest.raises(RaremixError, match=r"pass a datasets\.Dataset, pyarrow\.Table"):
        TableSources({"a": 42})
    with pytest.raises(RaremixError, match="unknown shard format 'csv'"):
        write_shards(build_sampler(MIX, seed=0, batch_size=8), "unused", steps=1, fmt="csv")  # type: ignore[arg-type]
    tables = TableSources({"a": [{"x": 1}]})
    with pytest.raises(RaremixError, match="source 'b' is not in these tables"):
        tables.rows(("b",), np.array([0]), np.array([0]))


def test_table_rows_matches_arrow_to_pylist() -> None:
    tables = TableSources(hf_sources())
    sampler = build_sampler(MIX, tables.sizes, seed=1, batch_size=16)
    batch = pa.concat_tables([tables.rows(sampler.names, *sampler.next_batch()) for _ in range(3)])
    assert table_rows(batch) == batch.to_pylist()
