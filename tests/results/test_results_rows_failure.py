"""Metric rows when the disk refuses a write: one line, and the rows written before stand."""

from __future__ import annotations

from pathlib import Path

import pytest

from limits import file_size_limit
from raremix.errors import RaremixError
from raremix.results.rows import MetricWriter, load_rows


def _rows(step: int, n: int) -> list[dict[str, object]]:
    return [{"step": step, "task": f"task{i:03d}", "metric": "acc", "value": 0.5} for i in range(n)]


def test_a_failed_row_write_is_one_line_and_cuts_the_part_written_rows(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricWriter(path, run="r") as writer:
        writer.write(_rows(0, 3))
        before = path.read_bytes()
        # room for part of the batch only: the kernel writes up to the limit, then EFBIG
        with file_size_limit(len(before) + 100), pytest.raises(RaremixError) as err:
            writer.write(_rows(1, 50))
        message = str(err.value)
        assert "\n" not in message and str(path) in message and "File too large" in message
        assert path.read_bytes() == before  # no torn line left to sit mid-file
        writer.write(_rows(2, 1))  # with room again, appending goes on cleanly
    assert [r["step"] for r in load_rows(path)] == [0, 0, 0, 2]


def test_a_failed_rewrite_on_resume_leaves_the_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricWriter(path, run="r") as writer:
        writer.write(_rows(0, 20) + _rows(10, 20))
    before = path.read_bytes()
    writer = MetricWriter(path, run="r")
    with file_size_limit(100), pytest.raises(RaremixError) as err:
        writer.truncate_after(0)  # the rewrite goes to a temp file first; it cannot grow
    assert "\n" not in str(err.value) and "unchanged" in str(err.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temp file left
    writer.write(_rows(20, 1))  # the writer is still open for rows
    writer.close()
    assert len(load_rows(path)) == 41
