"""The results store: atomic per-run Parquet files, DuckDB/pandas queries, export."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from raremix.errors import RaremixError
from raremix.results.store import ResultStore


def _rows(n: int, scale: float = 1.0) -> list[dict]:
    return [
        {"step": s, "task": t, "metric": "loss", "value": scale / (s + 1)}
        for s in range(n)
        for t in ("common", "rare")
    ]


def _fill(store: ResultStore) -> None:
    store.add_run(
        "a1",
        {"study": "s", "mixture": "natural", "seed": "0", "config": {"lr": 0.1}, "params": 100},
        _rows(3),
    )
    store.add_run(
        "b2",
        {"study": "s", "mixture": "upweight", "seed": "0", "params": 100.5, "wall_s": 1.5},
        _rows(3, 2),
    )
    store.add_run(
        "c3", {"study": "s", "mixture": "natural", "seed": "1", "status": "failed", "error": "boom"}
    )


def test_runs_metrics_and_sql(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "store")
    _fill(store)
    runs = store.runs()
    assert runs["run_id"].tolist() == ["a1", "b2", "c3"]
    assert runs["status"].tolist() == ["done", "done", "failed"]
    assert json.loads(runs.loc[0, "config"]) == {"lr": 0.1} and runs.loc[2, "error"] == "boom"
    assert runs["params"].tolist()[:2] == [100.0, 100.5]
    metrics = store.metrics()
    assert len(metrics) == 12 and set(metrics["run_id"]) == {"a1", "b2"}
    assert store.finished_ids() == {"a1", "b2"}
    assert store.has_run("a1") and not store.has_run("c3") and not store.has_run("zz")
    best = store.sql(
        "select mixture, min(value) as v from metrics join runs using (run_id) "
        "where task = 'rare' group by mixture order by mixture"
    )
    assert best["v"].tolist() == [pytest.approx(1 / 3), pytest.approx(2 / 3)]


def test_re_adding_a_run_replaces_it(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.add_run("a1", {"status": "failed", "error": "x"})
    store.add_run("a1", {"status": "done"}, pd.DataFrame(_rows(2)))
    assert store.finished_ids() == {"a1"} and len(store.metrics()) == 4


def test_crash_leftovers_are_invisible(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert store.runs().empty and store.metrics().empty and store.finished_ids() == set()
    _fill(store)
    # a writer killed mid-write leaves a temp file; one killed between its two renames
    # leaves metrics without a run file: neither may show up
    (tmp_path / "runs" / ".d4.parquet.123.abcd.tmp").write_bytes(b"PAR1 half a file")
    (tmp_path / "metrics" / ".d4.parquet.123.abcd.tmp").write_bytes(b"PAR1")
    ResultStore(tmp_path / "other").add_run("d4", {}, _rows(5))
    (tmp_path / "other" / "metrics" / "d4.parquet").rename(tmp_path / "metrics" / "d4.parquet")
    assert set(store.runs()["run_id"]) == {"a1", "b2", "c3"}
    assert set(store.metrics()["run_id"]) == {"a1", "b2"} and not store.has_run("d4")


WRITER = textwrap.dedent(
    """
    import sys
    from raremix.results.store import ResultStore
    store, w = ResultStore(sys.argv[1]), int(sys.argv[2])
    rows = lambda n: [{"step": s, "task": "t", "metric": "m", "value": w + s} for s in range(n)]
    for i in range(8):
        store.add_run(f"w{w}-{i}", {"writer": w}, rows(50))
        store.add_run("shared", {"writer": w}, rows(50))
    """
)


def test_concurrent_writers_all_land_none_torn(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w)]) for w in range(4)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    store = ResultStore(tmp_path)
    runs = store.runs()
    assert len(runs) == 33 and store.finished_ids() == {
        *(f"w{w}-{i}" for w in range(4) for i in range(8)),
        "shared",
    }
    counts = store.sql(
        "select run_id, count(*) as n, min(value) as lo from metrics group by run_id"
    )
    assert (counts["n"] == 50).all()
    shared = counts.set_index("run_id").loc["shared", "lo"]  # one writer's complete version
    assert shared == runs.set_index("run_id").loc["shared", "writer"]
    assert not [p for p in tmp_path.rglob("*") if p.suffix == ".tmp"]


@pytest.mark.parametrize("table", ["metrics", "runs"])
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_round_trip(tmp_path: Path, table: str, suffix: str) -> None:
    store = ResultStore(tmp_path / "store")
    _fill(store)
    path = store.export(tmp_path / "out" / f"{table}{suffix}", table=table)  # type: ignore[arg-type]
    back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    want = store.metrics() if table == "metrics" else store.runs()
    assert list(back.columns) == list(want.columns) and len(back) == len(want)
    pd.testing.assert_series_equal(back.iloc[:, 0], want.iloc[:, 0], check_dtype=False)
    if table == "metrics":
        assert back["value"].tolist() == want["value"].tolist()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    for call, match in [
        (lambda: store.export(tmp_path / "x.txt"), "name it"),
        (lambda: store.export(tmp_path / "x.csv", table="run"), "did you mean 'runs'"),  # type: ignore[arg-type]
        (lambda: store.sql("selec 1"), "SQL error"),
        (lambda: store.add_run("a/b", {}), "file-safe"),
        (lambda: store.add_run("a", {"status": "ok"}), "unknown run status"),
        (lambda: ResultStore.open(tmp_path / "nothing"), "no results store"),
    ]:
        with pytest.raises(RaremixError, match=match) as err:
            call()
        assert "\n" not in str(err.value)


def test_rows_naming_another_run_are_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    rows = [{**r, "run": "a1"} for r in _rows(2)]
    store.add_run("a1", {}, rows)  # its own id: stored
    with pytest.raises(
        RaremixError, match=r"run 'b2': 1 other run id\(s\) in its metric rows \('a1'\)"
    ):
        store.add_run("b2", {}, rows)
    assert store.finished_ids() == {"a1"}


def test_a_store_with_the_old_run_column_is_read(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.add_run("new", {}, _rows(2))
    store.add_run("old", {}, _rows(3))
    # rewrite one run's metrics as stores before `run_id` wrote them: the column was `run`
    old = tmp_path / "metrics" / "old.parquet"
    pq.write_table(
        pq.read_table(old).rename_columns(["run", "step", "task", "metric", "value"]), old
    )
    counts = store.sql("select run_id, count(*) as n from metrics group by run_id order by run_id")
    assert counts.to_dict("list") == {"run_id": ["new", "old"], "n": [4, 6]}
    (tmp_path / "metrics" / "new.parquet").unlink()  # a store of old files only reads too
    assert set(store.metrics()["run_id"]) == {"old"}


def test_racing_re_adds_of_one_run_never_pair_two_writers_files(tmp_path: Path) -> None:
    # four writers re-add the same run at once, round after round: the stored metrics are
    # always those of the writer whose run row is stored (their commits cannot interleave)
    import threading

    def add(w: int, barrier: threading.Barrier) -> None:
        rows = [{"step": s, "task": "t", "metric": "m", "value": w + s} for s in range(50)]
        barrier.wait()
        ResultStore(tmp_path).add_run("shared", {"writer": w}, rows)

    store = ResultStore(tmp_path)
    for _ in range(40):
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=add, args=(w, barrier)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lo = store.sql("select min(value) as lo from metrics")["lo"][0]
        assert lo == store.runs()["writer"][0]
