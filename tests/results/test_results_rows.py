"""Metric rows: append, resume-truncate, torn lines after a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from raremix.errors import RaremixError
from raremix.results.rows import METRIC_COLUMNS, MetricWriter, read_rows


def _write_steps(path: Path, steps: range) -> None:
    with MetricWriter(path) as w:
        for s in steps:
            w.write(
                [
                    {"step": s, "task": "rare", "metric": "loss", "value": 1 / (s + 1)},
                    {"step": s, "task": "", "metric": "lr", "value": 0.1},
                ]
            )


def test_rows_round_trip_with_types_and_run_from_dir(tmp_path: Path) -> None:
    path = tmp_path / "abc123" / "metrics.jsonl"
    _write_steps(path, range(3))
    rows = read_rows(path)
    assert list(rows.columns) == list(METRIC_COLUMNS)
    assert len(rows) == 6 and set(rows["run"]) == {"abc123"}
    assert rows["step"].dtype == "int64" and rows["value"].dtype == "float64"
    assert rows.loc[rows.task == "rare", "value"].tolist() == [1.0, 0.5, 1 / 3]


def test_truncate_after_drops_later_rows_so_resume_has_no_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "r" / "metrics.jsonl"
    _write_steps(path, range(10))
    with MetricWriter(path) as w:
        w.truncate_after(4)  # resumed from the checkpoint at step 4
        for s in range(5, 10):
            w.log(s, "rare", "loss", 1 / (s + 1))
            w.log(s, "", "lr", 0.1)
    rows = read_rows(path)
    assert len(rows) == 20 and not rows.duplicated(["step", "task", "metric"]).any()
    with MetricWriter(path) as w:
        w.truncate_after(-1)
    assert read_rows(path).empty


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "r" / "metrics.jsonl"
    _write_steps(path, range(2))
    with path.open("a") as f:
        f.write('{"run": "r", "step": 2, "task": "rare", "metric": "lo')  # killed mid-write
    assert len(read_rows(path)) == 4
    _write_steps(path, range(2, 3))  # reopening cuts the torn line; appends start clean
    rows = read_rows(path)
    assert rows["step"].tolist() == [0, 0, 1, 1, 2, 2]


def test_corrupt_middle_line_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"run": "r", "step": 0, "task": "a", "metric": "m", "value": 1}\nnot json\n{}\n'
    )
    with pytest.raises(RaremixError, match=r"metrics.jsonl:2: not a metric row") as err:
        read_rows(path)
    assert "\n" not in str(err.value)


def test_missing_keys_and_missing_file(tmp_path: Path) -> None:
    with MetricWriter(tmp_path / "m.jsonl") as w, pytest.raises(RaremixError, match="lacks"):
        w.write({"step": 1, "task": "a", "value": 1.0})
    with pytest.raises(RaremixError, match="no such metrics file"):
        read_rows(tmp_path / "nope.jsonl")
    assert read_rows(tmp_path / "nope.jsonl", missing_ok=True).empty
