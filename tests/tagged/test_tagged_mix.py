"""Tagged data as mixture sources: plans, shards and training-loop adapters, end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from cli_runner import cli
from raremix.errors import RaremixError
from raremix.mixture import MixtureDataset, build_sampler, plan_table, read_shards, resolve
from raremix.tagged import TaggedData, bind_mixture, read_tagged, tagged_sources, write_mixed

ROOT = Path(__file__).resolve().parents[2]
MIX = {
    "strategy": "upweight",
    "params": {"tasks": ["nested_calls"], "floor": 0.05},
    "mode": "stratified",
}


@pytest.fixture(scope="module")
def fcall(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example generator's long-tail data, small: 800 rows, 8 tasks, 3 invalid rows."""
    path = tmp_path_factory.mktemp("fcall") / "fcall.jsonl"
    script = ROOT / "examples" / "make_fcall_data.py"
    args = [sys.executable, str(script), "--out", str(path), "--rows", "800", "--invalid", "3"]
    subprocess.run(args, check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def data(fcall: Path, tmp_path_factory: pytest.TempPathFactory) -> TaggedData:
    rejected = tmp_path_factory.mktemp("rej") / "rejected.jsonl"
    return read_tagged(fcall, skip_invalid=True, rejected_path=rejected)


def test_the_example_generator_is_deterministic_and_long_tailed(
    fcall: Path, data: TaggedData, tmp_path: Path
) -> None:
    again = tmp_path / "again.jsonl"
    script = ROOT / "examples" / "make_fcall_data.py"
    args = [sys.executable, str(script), "--out", str(again), "--rows", "800", "--invalid", "3"]
    subprocess.run(args, check=True, capture_output=True)
    assert again.read_bytes() == fcall.read_bytes()
    counts = list(data.counts().values())
    assert len(counts) == 8 and sum(counts) == 800 and len(data.rejected) == 3
    assert counts == sorted(counts, reverse=True) and counts[0] > 50 * counts[-1]


def test_tagged_sources_hold_each_tasks_rows_in_input_order(data: TaggedData) -> None:
    tables = tagged_sources(data)
    assert tables.sizes == data.counts() | tables.sizes and set(tables.sizes) == set(data.counts())
    rows = data.table.to_pylist()
    for task in ("nested_calls", "single_call"):
        mine = [r for r in rows if r["task"] == task]
        n = len(mine)
        got = tables.rows([task], np.zeros(n, dtype=np.int64), np.arange(n)).to_pylist()
        assert [(g["prompt"], g["response"], g["line"]) for g in got] == [
            (r["prompt"], r["response"], r["line"]) for r in mine
        ]
    with pytest.raises(RaremixError, match="did you mean 'nested_calls'"):
        tagged_sources(data, ["nested_call"])


def test_bind_mixture_fills_sources_from_the_data_and_rejects_unknown_ones(
    data: TaggedData,
) -> None:
    counts = data.counts()
    mix, sizes, unused = bind_mixture(MIX, counts)
    assert [s.name for s in mix.sources] == list(counts) and sizes == counts and unused == []
    explicit = {
        "sources": [{"name": "single_call", "weight": 1}, {"name": "irrelevance", "weight": 1}]
    }
    mix, sizes, unused = bind_mixture(explicit, counts)
    assert sizes == {"single_call": counts["single_call"], "irrelevance": counts["irrelevance"]}
    assert len(unused) == 6
    with pytest.raises(RaremixError) as err:
        bind_mixture({"sources": [{"name": "single_cal"}]}, counts, "cfg: mixture")
    assert str(err.value) == (
        "cfg: mixture: 'sources.0': source 'single_cal' is not a task in the data: "
        "did you mean 'single_call'?"
    )


def test_mixture_dataset_serves_the_data_to_a_training_loop(data: TaggedData) -> None:
    mix, _, _ = bind_mixture(MIX, data.counts())
    ds = MixtureDataset(mix, seed=0, batch_size=16, total_steps=5, tables=tagged_sources(data))
    batches = list(ds)
    assert len(batches) == 5
    rows = batches[0]["rows"].to_pylist()
    by_line = {r["line"]: r for r in data.table.to_pylist()}
    for r in rows:  # each mixed row is the data row it names
        assert by_line[r["line"]]["task"] == r["source"]
        assert by_line[r["line"]]["response"] == r["response"]


def test_write_mixed_resumes_after_an_interruption_to_the_same_shards(
    data: TaggedData, tmp_path: Path
) -> None:
    mix, _, _ = bind_mixture(MIX, data.counts())
    tables = tagged_sources(data)
    kwargs = {"seed": 3, "steps": 40, "batch_size": 16, "shard_rows": 80}
    _, whole = write_mixed(mix, tables, tmp_path / "a", **kwargs)  # type: ignore[arg-type]
    assert len(whole) == 8  # 5 steps × 16 rows per shard

    class Interrupt(Exception):
        pass

    def stop_at_15(step: int) -> None:
        if step >= 15:
            raise Interrupt

    with pytest.raises(Interrupt):
        write_mixed(mix, tables, tmp_path / "b", progress=stop_at_15, **kwargs)  # type: ignore[arg-type]
    (tmp_path / "b" / "part-r000-000000020.parquet").write_bytes(b"PAR1 half-written")
    _, resumed = write_mixed(mix, tables, tmp_path / "b", **kwargs)  # type: ignore[arg-type]
    assert [p.name for p in resumed] == [p.name for p in whole]
    assert read_shards(tmp_path / "b").equals(read_shards(tmp_path / "a"))
    with pytest.raises(RaremixError, match=r"different 'seed' .*write to a new --out folder"):
        write_mixed(mix, tables, tmp_path / "b", **(kwargs | {"seed": 4}))  # type: ignore[arg-type]
    edited = data.table.set_column(2, "response", pa.array(["x"] * data.table.num_rows))
    with pytest.raises(RaremixError, match="different 'data'"):  # same sizes, other rows
        write_mixed(mix, tagged_sources(edited), tmp_path / "b", **kwargs)  # type: ignore[arg-type]


def test_mix_plan_and_write_with_data_end_to_end(
    fcall: Path,
    data: TaggedData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    shutil.copy(fcall, tmp_path / "fcall.jsonl")
    cfg = tmp_path / "mix.yaml"  # data.path is relative to the YAML, not to the working directory
    cfg.write_text(
        yaml.safe_dump({"mixture": MIX, "data": {"path": "fcall.jsonl", "skip_invalid": True}})
    )
    steps, batch = 50, 32
    code, out_text, err = cli(
        capsys,
        monkeypatch,
        "mix",
        "plan",
        str(cfg),
        "--steps",
        str(steps),
        "--batch-size",
        str(batch),
    )
    assert code == 0, err
    assert "3 invalid rows set aside" in out_text and "nested_calls" in out_text

    out = tmp_path / "shards"
    code, out_text, err = cli(
        capsys,
        monkeypatch,
        "mix",
        "write",
        str(cfg),
        "--data",
        str(fcall),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--batch-size",
        str(batch),
        "--shard-rows",
        "400",
    )
    assert code == 0, err
    assert (
        f"mixed stream: {steps} steps, {steps * batch:,} rows in 5 shards" in out_text
    )  # 12 steps of 32 per shard
    frame = read_shards(out)
    assert len(frame) == steps * batch
    assert frame.groupby("step").size().eq(batch).all()
    # stratified: every task's count is within one example of the plan's
    mix, sizes, _ = bind_mixture(MIX, data.counts())
    planned = plan_table(
        resolve(mix, sizes, batch_size=batch, total_steps=steps),
        batch_size=batch,
        total_steps=steps,
    )
    realised = frame["source"].astype(str).value_counts()
    for row in planned.itertuples(index=False):
        assert abs(realised.get(row.source, 0) - row.examples) <= 1, row.source
    assert realised["nested_calls"] >= 0.05 * steps * batch - 1  # the floor holds
    # and it is the sampler's own stream, row for row
    sampler = build_sampler(mix, sizes, seed=0, batch_size=batch, total_steps=steps)
    first_sources, first_index = sampler.next_batch()
    head = frame[frame.step == 0]
    assert head["index"].tolist() == first_index.tolist()
    assert head["source"].astype(str).tolist() == [sampler.names[s] for s in first_sources]
    state = json.loads((out / "state-rank0.json").read_text())
    assert state["step"] == steps

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"mixture": {"sources": [{"name": "nested_call"}]}}))
    code, _, err = cli(
        capsys, monkeypatch, "mix", "plan", str(bad), "--data", str(fcall), "--skip-invalid"
    )
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {bad}: mixture: 'sources.0': source 'nested_call' is not a task in the data: "
        "did you mean 'nested_calls'?"
    ]
