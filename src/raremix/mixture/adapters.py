"""Adapters: the mixed stream as a PyTorch dataset, a Hugging Face dataset, or shards.

* `MixtureDataset` — a torch `IterableDataset` of whole batches. Use it with
  `DataLoader(ds, batch_size=None, num_workers=W)`: worker w draws global steps
  w, w+W, …, and the loader's round-robin puts them back in step order. It has
  `state_dict`/`load_state_dict`, so torchdata's `StatefulDataLoader` resumes it;
  `MixtureLoader` (raremix.mixture.loader) resumes it exactly even when the mixture
  changed in between, for any number of workers.
* `TableSources` — in-memory sources (HF `datasets.Dataset`, Arrow tables, pandas
  frames, lists of dicts) whose rows are fetched by (source, index) in one `take`.
* `to_hf_iterable` — the mixed stream as a `datasets.IterableDataset` of rows, in
  shards of whole steps for DataLoader workers and ranks.
* `write_shards` / `read_shards` — the mixed stream as JSONL or Parquet shards.

torch is a core dependency; `datasets` is an optional extra, imported on use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import torch.utils.data

from raremix.errors import RaremixError
from raremix.mixture.sampler import MixtureSampler
from raremix.mixture.spec import MixtureConfig

if TYPE_CHECKING:
    import datasets
    import pandas as pd

RESERVED = ("step", "source", "index")


class TableSources:
    """Rows of in-memory sources, fetched for a batch with one vectorised Arrow `take`.

    Accepts per source a `datasets.Dataset`, a `pyarrow.Table`, a pandas DataFrame or
    a list of dicts. Columns missing from some sources are filled with nulls.
    """

    def __init__(self, sources: Mapping[str, Any]) -> None:
        tables = {name: _to_arrow(name, data) for name, data in sources.items()}
        for name, t in tables.items():
            clash = [c for c in RESERVED if c in t.column_names]
            if clash:
                raise RaremixError(
                    f"source '{name}' has a column named '{clash[0]}', which the mixed stream adds: rename it"
                )
        self.names = tuple(tables)
        self.sizes = {name: t.num_rows for name, t in tables.items()}
        self.table = pa.concat_tables(
            list(tables.values()), promote_options="default"
        ).combine_chunks()
        self.offsets = np.cumsum([0, *self.sizes.values()])[:-1].astype(np.int64)
        self._ids: dict[tuple[str, ...], np.ndarray] = {}  # sampler order → table order

    def rows(self, names: Sequence[str], sources: np.ndarray, indices: np.ndarray) -> pa.Table:
        """The rows for a batch: `sources` index into `names` (the sampler's order)."""
        ids = self._ids.get(tuple(names))
        if ids is None:
            missing = [n for n in names if n not in self.sizes]
            if missing:
                raise RaremixError(f"source '{missing[0]}' is not in these tables: add its data")
            position = {n: i for i, n in enumerate(self.names)}
            ids = self._ids[tuple(names)] = np.array([position[n] for n in names], dtype=np.int64)
        taken = self.table.take(pa.array(self.offsets[ids[sources]] + indices))
        return taken.add_column(0, "source", _labels(names, sources)).add_column(
            1, "index", pa.array(indices, pa.int64())
        )


def _labels(names: Sequence[str], sources: np.ndarray) -> pa.DictionaryArray:
    """Source names for a batch as a dictionary column: no per-row string objects."""
    return pa.DictionaryArray.from_arrays(
        pa.array(sources, pa.int32()), pa.array(list(names), pa.string())
    )


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    """`table.to_pylist()`, several times faster: columns convert at once, and a
    dictionary column (the source names) decodes through numpy instead of per value."""
    columns = []
    for col in table.itercolumns():
        if pa.types.is_dictionary(col.type):
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            labels = np.asarray(col.dictionary.to_pylist(), dtype=object)
            columns.append(labels[col.indices.to_numpy(zero_copy_only=False)].tolist())
        else:
            columns.append(col.to_pylist())
    keys = table.column_names
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]


def _to_arrow(name: str, data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if hasattr(data, "with_format") and hasattr(data, "features"):  # a datasets.Dataset
        return data.with_format("arrow")[:]
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(data, preserve_index=False)
    raise RaremixError(
        f"source '{name}' is a {type(data).__name__}: pass a datasets.Dataset, pyarrow.Table, "
        "pandas.DataFrame or list of dicts"
    )


def iter_shard(
    sampler: MixtureSampler,
    worker: int = 0,
    num_workers: int = 1,
    total_steps: int | None = None,
    base: int = 0,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(step, sources, indices) for the steps this worker owns: (step - base) % num_workers == worker.

    Every worker advances through every step (cheaply, without indices) so that
    cursors stay exact; union over workers × ranks is the single-process stream.
    `base` is the step the loader's round-robin started at (its worker 0's first step).
    """
    while total_steps is None or sampler.step < total_steps:
        step = sampler.step
        try:
            if (step - base) % num_workers == worker:
                sources, indices = sampler.next_batch()
                yield step, sources, indices
            else:
                sampler.skip_batch()
        except StopIteration:
            return


class MixtureDataset(torch.utils.data.IterableDataset):
    """The mixed stream as a torch `IterableDataset` of batches (use `batch_size=None`).

    Each item is `{"step": int, "source": int64 array, "index": int64 array}` for this
    rank's part of global batch `step`, plus `"rows"` (a `pyarrow.Table`) when
    `tables` is given, or whatever `fetch(sources, indices)` returns as `"data"`.

    In a DataLoader worker `state_dict()` is that worker's sampler, which lags the
    steps the other workers delivered since. Resuming such per-worker states under a
    *changed* mixture cannot be exact (the lagging worker would replay the others'
    steps under the new weights), so it is refused; `MixtureLoader` aligns the
    workers' states on the loader's last delivered step and resumes exactly.
    """

    def __init__(
        self,
        mix: MixtureConfig | Mapping[str, Any],
        sizes: Mapping[str, int] | None = None,
        *,
        seed: int,
        batch_size: int,
        total_steps: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        tables: TableSources | None = None,
        fetch: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    ) -> None:
        if tables is not None and sizes is None:
            sizes = dict(tables.sizes)
        # plain values only: the dataset is pickled into each DataLoader worker
        self._args = (mix, dict(sizes or {}))
        self._kwargs: dict[str, Any] = {
            "seed": seed,
            "batch_size": batch_size,
            "total_steps": total_steps,
            "rank": rank,
            "world_size": world_size,
        }
        plan = self._build().plan  # validates the config now, not in a worker
        self.names = plan.names
        self.total_steps = total_steps
        self.tables, self.fetch = tables, fetch
        self._mixture = _fingerprint(plan.spec.model_dump(mode="json"), self._args[1], self._kwargs)
        self._state: dict[str, Any] = {}
        self._sampler: MixtureSampler | None = None
        self._base, self._workers = 0, 1

    def _build(self) -> MixtureSampler:
        from raremix.mixture import build_sampler

        return build_sampler(*self._args, **self._kwargs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        sampler = self._build()
        state = self._state
        if state.get("sampler") is not None:
            self._check_resumable(state)
            sampler.load_state_dict(state["sampler"])
        self._sampler, self._base, self._workers = sampler, int(state.get("base", 0)), workers
        for step, sources, indices in iter_shard(
            sampler, worker, workers, self.total_steps, self._base
        ):
            item: dict[str, Any] = {"step": step, "source": sources, "index": indices}
            if self.tables is not None:
                item["rows"] = self.tables.rows(self.names, sources, indices)
            if self.fetch is not None:
                item["data"] = self.fetch(sources, indices)
            yield item

    def state_dict(self) -> dict[str, Any]:
        """The live sampler's state (in a worker: that worker's), for StatefulDataLoader.

        Beside the sampler: `base` (the step the round-robin started at), `workers`
        (how many shared the stream) and `mixture` (a fingerprint of the plan).
        """
        if self._sampler is None:
            return dict(self._state) if self._state else {"sampler": None}
        return {
            "sampler": self._sampler.state_dict(),
            "base": self._base,
            "workers": self._workers,
            "mixture": self._mixture,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from `state_dict()` (or `{"sampler": sampler.state_dict()}`) at the next `iter`."""
        self._state = dict(state) if state.get("sampler") is not None else {}
        self._sampler = None

    def _check_resumable(self, state: Mapping[str, Any]) -> None:
        """Refuse a per-worker state that cannot resume exactly: several workers, a changed mixture."""
        workers, mixture = int(state.get("workers", 1)), state.get("mixture", self._mixture)
        if workers > 1 and not state.get("aligned") and mixture != self._mixture:
            raise RaremixError(
                f"this loader state was saved per worker ({workers} workers) and the mixture has "
                "changed since: resume through raremix.mixture.loader.MixtureLoader, which aligns "
                "the workers on the last delivered step"
            )


def _fingerprint(
    spec: Mapping[str, Any], sizes: Mapping[str, int], kwargs: Mapping[str, Any]
) -> str:
    """A short hash of what decides the stream's batches (the plan, sizes, batch, steps)."""
    keys = ("seed", "batch_size", "total_steps")
    text = json.dumps([spec, sizes, {k: kwargs[k] for k in keys}], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _hf_rows(
    shards: list[int],
    num_shards: int,
    spec: dict[str, Any],
    sizes: dict[str, int],
    seed: int,
    batch_size: int,
    total_steps: int | None,
    rank: int,
    world_size: int,
    tables: TableSources | None,
) -> Iterator[dict[str, Any]]:
    from raremix.mixture import build_sampler

    for shard in shards:  # the shards `datasets` gave this worker: steps shard, shard + n, …
        sampler = build_sampler(
            spec,
            sizes,
            seed=seed,
            batch_size=batch_size,
            total_steps=total_steps,
            rank=rank,
            world_size=world_size,
        )
        for step, sources, indices in iter_shard(sampler, shard, num_shards, total_steps):
            if tables is not None:
                batch = tables.rows(sampler.names, sources, indices)
                for row in table_rows(batch):
                    yield {"step": step, **row}
            else:
                for s, i in zip(sources.tolist(), indices.tolist(), strict=True):
                    yield {"step": step, "source": sampler.names[s], "index": i}


def to_hf_iterable(
    mix: MixtureConfig | Mapping[str, Any],
    sizes: Mapping[str, int] | None = None,
    *,
    seed: int,
    batch_size: int,
    total_steps: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    tables: TableSources | None = None,
    num_shards: int = 1,
) -> datasets.IterableDataset:
    """The mixed stream as a Hugging Face `datasets.IterableDataset` of rows.

    Rows are `{"step", "source", "index"}` plus the source's columns when `tables`
    is given. With `num_shards` = n, shard k holds the whole batches of steps k, k + n,
    …: `datasets` hands DataLoader workers and `split_dataset_by_node` ranks disjoint
    shards, and their union is the one-shard stream. HF's own `state_dict` resumes it
    by re-reading rows; for an O(1) resume keep the sampler state (`MixtureDataset`).
    """
    from datasets import IterableDataset

    if num_shards < 1:
        raise RaremixError(f"num_shards is {num_shards}: give 1 or more")
    spec = mix.model_dump() if isinstance(mix, MixtureConfig) else dict(mix)
    if tables is not None and sizes is None:
        sizes = dict(tables.sizes)
    kwargs = {
        "shards": list(range(num_shards)),  # a list: `datasets` splits it between workers
        "num_shards": num_shards,
        "spec": spec,
        "sizes": dict(sizes or {}),
        "seed": seed,
        "batch_size": batch_size,
        "total_steps": total_steps,
        "rank": rank,
        "world_size": world_size,
        "tables": tables,
    }
    return IterableDataset.from_generator(_hf_rows, gen_kwargs=kwargs)


def write_shards(
    sampler: MixtureSampler,
    out_dir: str | Path,
    *,
    steps: int,
    fmt: Literal["jsonl", "parquet"] = "parquet",
    rows_per_shard: int = 100_000,
    tables: TableSources | None = None,
) -> list[Path]:
    """Write up to `steps` batches of this rank's stream as shards; returns their paths.

    Rows are `step, source, index` (+ the source's columns with `tables`). The
    sampler's state after the last batch goes to `state-rank{r}.json` beside the
    shards, so a later call can continue the same stream.
    """
    if fmt not in ("jsonl", "parquet"):
        raise RaremixError(f"unknown shard format '{fmt}': use jsonl or parquet")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    pending: list[pa.Table] = []
    buffered = 0

    def flush() -> None:
        nonlocal pending, buffered
        if not pending:
            return
        table = pa.concat_tables(pending)
        path = out / f"part-r{sampler.rank:03d}-{sampler.step:09d}.{fmt}"
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        else:
            with path.open("w") as f:
                f.writelines(json.dumps(row) + "\n" for row in table_rows(table))
        paths.append(path)
        pending, buffered = [], 0

    last = sampler.step + steps
    for step, sources, indices in iter_shard(sampler, total_steps=last):
        if tables is not None:
            batch = tables.rows(sampler.names, sources, indices)
        else:
            batch = pa.table({"source": _labels(sampler.names, sources), "index": indices})
        pending.append(
            batch.add_column(0, "step", pa.array(np.full(len(sources), step, dtype=np.int64)))
        )
        buffered += len(sources)
        if buffered >= rows_per_shard:
            flush()
    flush()
    state = out / f"state-rank{sampler.rank}.json"
    tmp = state.with_name(f".{state.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sampler.state_dict()))
    os.replace(tmp, state)  # killed mid-write: the previous state stays whole
    return paths


def read_shards(paths: Sequence[str | Path] | str | Path) -> pd.DataFrame:
    """Read shards written by `write_shards` (a folder or a list of files), in order."""
    import pandas as pd
    import pyarrow.parquet as pq

    if isinstance(paths, str | Path):
        folder = Path(paths)
        paths = sorted(
            p
            for p in folder.iterdir()
            if p.suffix in (".parquet", ".jsonl") and p.name.startswith("part-")
        )
    frames = [
        pq.read_table(p).to_pandas()
        if Path(p).suffix == ".parquet"
        else pd.read_json(p, lines=True)
        for p in paths
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RESERVED))
