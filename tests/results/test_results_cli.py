"""`raremix results show|sql|export` through the real entry point (`raremix.cli.main`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import Result, cli
from raremix.results.store import ResultStore


@pytest.fixture
def raremix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Call the CLI in-process as `raremix ARGS…`; exit code and output come back."""
    return lambda *args: cli(capsys, monkeypatch, *args)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    (out / "study.yaml").write_text("name: toy\nbase: {seed: 0}\naxes: {seed: [0, 1]}\n")
    store = ResultStore(out / "store")
    for seed in (0, 1):
        rows = [
            {"step": s, "task": "rare", "metric": "acc", "value": s / 10 + seed} for s in range(3)
        ]
        store.add_run(f"run{seed}", {"study": "toy", "seed": str(seed), "wall_s": 2.0}, rows)
    return out


def test_show_sql_export(raremix, study_dir: Path, tmp_path: Path) -> None:
    shown = raremix("results", "show", str(study_dir))
    assert shown.code == 0 and "toy: 2 done, 0 failed" in shown.out and "run1" in shown.out
    sql = raremix(
        "results",
        "sql",
        str(study_dir),
        "select seed, max(value) as best from metrics join runs using (run_id) group by seed order by seed",
    )
    assert sql.code == 0 and "1.2" in sql.out
    exported = raremix("results", "export", str(study_dir), "--to", str(tmp_path / "m.csv"))
    assert exported.code == 0 and "wrote 6 metrics rows" in exported.out
    assert len(pd.read_csv(tmp_path / "m.csv")) == 6
    runs = raremix(
        "results", "export", str(study_dir), "--to", str(tmp_path / "r.parquet"), "--table", "runs"
    )
    assert runs.code == 0 and pd.read_parquet(tmp_path / "r.parquet")["run_id"].tolist() == [
        "run0",
        "run1",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "{d}", "--to", "x.json"], "name it *.parquet or *.csv"),
        (["export", "{d}", "--to", "x.csv", "--table", "metric"], "did you mean 'metrics'"),
        (["sql", "{d}", "select nope from runs"], "SQL error"),
        (["show", "/nonexistent"], "no results store"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    raremix, study_dir: Path, args: list[str], message: str
) -> None:
    result = raremix("results", *(a.format(d=study_dir) for a in args))
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
