"""`raremix report` over a damaged results store: one line naming the file, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_study import fake_study

from cli_runner import cli


@pytest.mark.parametrize("table", ["runs", "metrics"])
def test_report_names_a_damaged_store_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    table: str,
) -> None:
    root = fake_study(tmp_path / "study")
    bad = root / "store" / table / "12k-natural-0.parquet"
    bad.write_bytes(bad.read_bytes()[:100])  # a copy cut short
    result = cli(capsys, monkeypatch, "report", str(root))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert f"{bad}: damaged results file" in result.err
    assert "redo run '12k-natural-0'" in result.err
    assert not (root / "report.html").exists()
