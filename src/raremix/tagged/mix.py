"""Tagged data as mixture sources: one source per task, planned, served or written as shards.

    data = read_tagged("fcall.jsonl")
    mix, sizes, unused = bind_mixture({"strategy": "temperature", "params": {"tau": 3}}, data.counts())
    tables = tagged_sources(data)                      # a raremix.mixture.TableSources
    ds = MixtureDataset(mix, seed=0, batch_size=32, total_steps=1000, tables=tables)

Nothing here samples: the stream is raremix.mixture's one sampler, and the shards are
its `write_shards`, called a shard at a time so that a killed write resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from raremix.configbase import load
from raremix.dirlock import dir_lock
from raremix.errors import RaremixError, did_you_mean
from raremix.mixture import MixtureConfig, MixtureSampler, build_sampler
from raremix.tagged.reader import TaggedData

if TYPE_CHECKING:  # adapters import torch: only on use
    from raremix.mixture.adapters import TableSources

MANIFEST = "manifest.json"
STATE = "state-rank0.json"


def tagged_sources(data: TaggedData | pa.Table, tasks: Sequence[str] | None = None) -> TableSources:
    """One source per task (all tasks, or `tasks`): its rows in input order.

    Each source's columns are prompt, response, file and line, so every row of the
    mixed stream can be traced back to its input.
    """
    from raremix.mixture.adapters import TableSources

    table = data.table if isinstance(data, TaggedData) else data
    ordered = table.take(pc.sort_indices(table, sort_keys=[("task", "ascending")]))  # stable
    counts = pc.value_counts(ordered.column("task")).to_pylist()
    slices, offset = {}, 0
    for item in counts:
        name, n = str(item["values"]), int(item["counts"])
        slices[name] = ordered.slice(offset, n).drop_columns(["task"])
        offset += n
    chosen = list(slices) if tasks is None else list(tasks)
    for name in chosen:
        if name not in slices:
            raise RaremixError(f"task '{name}' is not in the data: {did_you_mean(name, slices)}")
    return TableSources({name: slices[name] for name in chosen})


def bind_mixture(
    mix: Mapping[str, Any] | None, counts: Mapping[str, int], where: str = "mixture"
) -> tuple[MixtureConfig, dict[str, int], list[str]]:
    """Validate a mixture against the data's tasks: (config, sizes, tasks left out).

    A mixture without `sources` gets one per task in the data; a source that names no
    task in the data is an error. Sizes are the tasks' row counts.
    """
    spec = dict(mix or {})
    if not spec.get("sources"):
        spec["sources"] = [{"name": t} for t in counts]
    for k, source in enumerate(spec["sources"]):
        name = source.get("name") if isinstance(source, dict) else None
        if isinstance(name, str) and name not in counts:
            raise RaremixError(
                f"{where}: 'sources.{k}': source '{name}' is not a task in the data: "
                f"{did_you_mean(name, counts)}"
            )
    config = load(MixtureConfig, spec, where)
    names = [s.name for s in config.sources]
    sizes = {name: int(counts[name]) for name in names}
    return config, sizes, [t for t in counts if t not in names]


def write_mixed(
    mix: MixtureConfig,
    tables: TableSources,
    out: str | Path,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    shard_rows: int = 100_000,
    fmt: Literal["jsonl", "parquet"] = "parquet",
    progress: Callable[[int], None] | None = None,
) -> tuple[MixtureSampler, list[Path]]:
    """Write `steps` batches of the mixed stream to `out` as shards; resume if interrupted.

    Each shard holds `shard_rows // batch_size` steps (at least one) and is followed
    by the sampler's state, so a rerun with the same arguments continues after the last
    complete shard (a partial one is rewritten) and yields the same files as an
    uninterrupted write. `out/manifest.json` records the arguments; a rerun with
    different ones is refused. Returns the sampler (for `realised_report`) and the shards.
    `out` is locked while it is written: a second process on it fails at once.
    """
    folder = Path(out)
    with dir_lock(folder, "output folder"):
        return _write_mixed(mix, tables, folder, seed, steps, batch_size, shard_rows, fmt, progress)


def _write_mixed(
    mix: MixtureConfig,
    tables: TableSources,
    folder: Path,
    seed: int,
    steps: int,
    batch_size: int,
    shard_rows: int,
    fmt: Literal["jsonl", "parquet"],
    progress: Callable[[int], None] | None,
) -> tuple[MixtureSampler, list[Path]]:
    from raremix.mixture.adapters import write_shards

    manifest = {
        "mixture": mix.model_dump(mode="json"),
        "sizes": dict(tables.sizes),
        "data": _digest(tables.table),
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "shard_rows": shard_rows,
        "format": fmt,
    }
    _claim(folder, manifest)
    sampler = build_sampler(mix, tables.sizes, seed=seed, batch_size=batch_size, total_steps=steps)
    for leftover in folder.glob(".*.tmp"):  # a killed write's half-written state or manifest
        leftover.unlink(missing_ok=True)
    state = folder / STATE
    if state.is_file():
        try:
            sampler.load_state_dict(json.loads(state.read_text()))
        except (ValueError, KeyError, TypeError, AttributeError, RaremixError) as err:
            raise RaremixError(
                f"{state}: damaged sampler state ({_short(err)}): delete that file and rerun; "
                "the write restarts from step 0 and rewrites the shards"
            ) from None
    for shard in _shards(folder, fmt):
        if _shard_step(shard) > sampler.step:  # written after the last saved state
            shard.unlink()
    per_shard = max(1, shard_rows // batch_size)
    while sampler.step < steps:
        before = sampler.step
        write_shards(
            sampler,
            folder,
            steps=min(per_shard, steps - before),
            fmt=fmt,
            rows_per_shard=shard_rows,
            tables=tables,
        )
        if progress is not None:
            progress(sampler.step)
        if sampler.step == before:  # every source exhausted: the stream has ended
            break
    return sampler, _shards(folder, fmt)


def _digest(table: pa.Table) -> str:
    """A fingerprint of the rows, so that a resume never mixes two versions of the data."""
    import hashlib

    h = hashlib.sha256(str(table.schema).encode())
    for column in table.itercolumns():
        for chunk in column.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(buf)
    return h.hexdigest()[:16]


def _shards(folder: Path, fmt: str) -> list[Path]:
    return sorted(folder.glob(f"part-r000-*.{fmt}"))


def _shard_step(path: Path) -> int:
    """The sampler step after a shard's last batch, from its name part-r000-{step}.ext."""
    return int(path.name.split(".")[0].rsplit("-", 1)[1])


def _claim(folder: Path, manifest: dict[str, Any]) -> None:
    """Check that `folder` is empty or holds this very write; record it."""
    path = folder / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if not isinstance(old, dict):
                raise ValueError(f"a JSON {type(old).__name__}, not an object")
        except ValueError as err:
            raise RaremixError(
                f"{path}: damaged manifest ({_short(err)}): delete the folder {folder} and "
                "rerun (the write starts over)"
            ) from None
        changed = [k for k in manifest if old.get(k) != manifest[k]]
        if changed:
            raise RaremixError(
                f"{folder}: holds a stream written with a different '{changed[0]}' (see its "
                f"{MANIFEST}): "
                "write to a new --out folder, or delete this one"
            )
        return
    if any(folder.glob("part-*")) or (folder / STATE).exists():
        raise RaremixError(
            f"{folder}: holds shards that no manifest describes: write to a new --out folder"
        )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)  # never a torn manifest


def _short(err: BaseException) -> str:
    """An exception as one short line (a KeyError's message is just the key)."""
    text = (str(err).strip().splitlines() or [""])[0][:160]
    return (
        f"{type(err).__name__}: {text}"
        if isinstance(err, KeyError | TypeError)
        else text or type(err).__name__
    )
