"""`to_hf_iterable(..., num_shards=n)`: DataLoader workers and ranks each get a disjoint part
of the mixed stream, and together the whole of it, once."""

from __future__ import annotations

from typing import Any

import pytest
from torch.utils.data import DataLoader

from raremix.errors import RaremixError
from raremix.mixture import TableSources, to_hf_iterable

datasets = pytest.importorskip("datasets")

MIX = {
    "mode": "stratified",
    "sources": [
        {"name": "common", "weight": 5},
        {"name": "rare", "weight": 1, "exhaustion": {"max_epochs": 3}},
    ],
}
TABLES = TableSources(
    {
        "common": [{"prompt": f"c{i}", "response": "yes"} for i in range(50)],
        "rare": [{"prompt": f"r{i}", "response": "abc"} for i in range(7)],
    }
)


def stream(num_shards: int = 1) -> Any:
    return to_hf_iterable(
        MIX, seed=3, batch_size=6, total_steps=11, tables=TABLES, num_shards=num_shards
    )


def key(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows in step order, a step's rows in stream order (sorted() is stable)."""
    out = [(r["step"], r["source"], r["index"], r["prompt"]) for r in rows]
    return sorted(out, key=lambda r: r[0])


ONE = key(list(stream()))


def test_the_union_of_the_shards_is_the_one_shard_stream() -> None:
    ds = stream(4)
    assert ds.num_shards == 4
    parts = [list(ds.shard(num_shards=4, index=k)) for k in range(4)]
    steps = [{r["step"] for r in part} for part in parts]
    assert steps[1] == {1, 5, 9}  # whole steps, round robin
    assert all(a.isdisjoint(b) for i, a in enumerate(steps) for b in steps[i + 1 :])
    assert key([r for part in parts for r in part]) == ONE
    assert len(ONE) == 11 * 6 and ONE[-1][0] == 10


def test_ranks_get_disjoint_parts_whose_union_is_the_stream() -> None:
    from datasets.distributed import split_dataset_by_node

    ds = stream(4)
    ranks = [list(split_dataset_by_node(ds, rank=r, world_size=2)) for r in range(2)]
    assert {r["step"] for r in ranks[0]}.isdisjoint({r["step"] for r in ranks[1]})
    assert key(ranks[0] + ranks[1]) == ONE


def test_dataloader_workers_share_the_shards_without_duplicates() -> None:
    got = list(DataLoader(stream(4), batch_size=None, num_workers=2))
    assert key(got) == ONE


def test_zero_shards_is_one_line() -> None:
    with pytest.raises(RaremixError, match="num_shards is 0: give 1 or more"):
        stream(0)
