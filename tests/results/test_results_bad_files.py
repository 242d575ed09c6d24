"""A damaged results store and write attempts through `results sql`: one line, exit 2."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_runner import Result, cli
from raremix.errors import RaremixError
from raremix.results.store import ResultStore


@pytest.fixture
def raremix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    return lambda *args: cli(capsys, monkeypatch, *args)


def one_line(result: Result, *needles: str) -> None:
    assert result.code == 2, result
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in result.err, result.err


def study(root: Path) -> Path:
    store = ResultStore(root / "store")
    (root / "study.yaml").write_text("name: toy\naxes: {seed: [0, 1, 2]}\n")
    for seed in range(3):
        rows = [
            {"step": s, "task": "rare", "metric": "acc", "value": s / 100 + seed}
            for s in range(300)  # enough rows for a data page worth corrupting
        ]
        store.add_run(f"run{seed}", {"study": "toy", "seed": str(seed)}, rows)
    return root


def _flip(b: bytes) -> bytes:
    mid = len(b) // 3
    return b[:mid] + bytes(x ^ 0xFF for x in b[mid : mid + 64]) + b[mid + 64 :]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "garbage": lambda b: b"not parquet at all " * 10,
    "truncated": lambda b: b[: len(b) // 2],
    "flipped bytes": _flip,
}


@pytest.mark.parametrize("table", ["runs", "metrics"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_file_is_named_with_the_fix(
    tmp_path: Path, raremix, table: str, damage: str
) -> None:
    root = study(tmp_path / "s")
    bad = root / "store" / table / "run1.parquet"
    bad.write_bytes(DAMAGE[damage](bad.read_bytes()))
    store = ResultStore.open(root)
    with pytest.raises(RaremixError) as err:
        store.runs() if table == "runs" else store.metrics()
    message = str(err.value)
    assert message.startswith(f"{bad}: damaged results file") and "\n" not in message
    assert "rerun the study" in message and "redo run 'run1'" in message
    commands = [
        ["sql", str(root), "select sum(value), max(task), max(step) from metrics"],
        ["export", str(root), "--to", str(tmp_path / "m.csv")],
    ]
    if table == "runs":  # show reads only the run table
        commands.append(["show", str(root)])
    for args in commands:
        one_line(raremix("results", *args), str(bad), "damaged results file")
    assert not (tmp_path / "m.csv").exists()
    # the fix the line names: delete the run's files; the other runs read again
    for sub in ("runs", "metrics"):
        (root / "store" / sub / "run1.parquet").unlink()
    assert store.runs()["run_id"].tolist() == ["run0", "run2"]
    assert len(store.metrics()) == 600
    assert raremix("results", "show", str(root)).code == 0


def test_has_run_names_a_damaged_run_file(tmp_path: Path) -> None:
    root = study(tmp_path / "s")
    bad = root / "store" / "runs" / "run0.parquet"
    bad.write_bytes(b"")
    with pytest.raises(RaremixError, match=f"^{bad}: damaged results file"):
        ResultStore.open(root).has_run("run0")


def test_a_query_error_is_still_blamed_on_the_query(tmp_path: Path, raremix) -> None:
    root = study(tmp_path / "s")
    one_line(raremix("results", "sql", str(root), "select nope from runs"), "SQL error", "nope")


def _fingerprint(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


WRITES = [
    ("drop view runs", "DROP statements are not allowed"),
    ("drop table metrics", "DROP statements are not allowed"),
    ("insert into runs (run_id) values ('x')", "INSERT statements are not allowed"),
    ("delete from runs", "DELETE statements are not allowed"),
    ("create table t as select 1", "CREATE statements are not allowed"),
    ("copy (select * from runs) to '{out}'", "COPY statements are not allowed"),
    ("copy runs to '{store}/runs/evil.parquet' (format parquet)", "COPY statements"),
    ("select 1; drop view runs", "DROP statements are not allowed"),
    ("attach '{out}.db' as x", "ATTACH statements are not allowed"),
    ("set enable_external_access = true", "SET statements are not allowed"),
    ("export database '{out}'", "EXPORT statements are not allowed"),
    ("explain analyze copy (select 1) to '{out}'", "EXPLAIN statements are not allowed"),
    ("select * from read_text('/etc/hostname')", "Permission Error"),
    ("select * from read_csv('{out}.csv')", "Permission Error"),
]


@pytest.mark.parametrize(("query", "message"), WRITES)
def test_results_sql_is_read_only(tmp_path: Path, raremix, query: str, message: str) -> None:
    root = study(tmp_path / "s")
    out = tmp_path / "leak"
    (tmp_path / "leak.csv").write_text("a\n1\n")  # outside the store: not readable either
    before = _fingerprint(root)
    q = query.format(out=out, store=root / "store")
    one_line(raremix("results", "sql", str(root), q), message)
    assert _fingerprint(root) == before
    assert not out.exists() and not Path(f"{out}.db").exists()
    # the views still answer afterwards, in a fresh connection as in every query
    assert ResultStore.open(root).sql("select count(*) as n from runs")["n"][0] == 3


def test_select_queries_and_export_still_work(tmp_path: Path, raremix) -> None:
    root = study(tmp_path / "s")
    result = raremix(
        "results", "sql", str(root), "with m as (select * from metrics) select count(*) from m"
    )
    assert result.code == 0 and "900" in result.out
    result = raremix("results", "export", str(root), "--to", str(tmp_path / "out" / "m.parquet"))
    assert result.code == 0 and "wrote 900 metrics rows" in result.out


@pytest.mark.parametrize("text", ["name: [unclosed", "- a list\n- of things\n"])
def test_show_with_a_broken_study_yaml_is_one_line(tmp_path: Path, raremix, text: str) -> None:
    root = study(tmp_path / "s")
    (root / "study.yaml").write_text(text)
    one_line(raremix("results", "show", str(root)), "study.yaml")
