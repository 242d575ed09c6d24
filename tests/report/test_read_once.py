"""A study is read from its store once per analysis + report, and fast at 48 runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import tiny_study as tiny

from raremix.report import build_report
from raremix.results.store import ResultStore
from raremix.studies.analysis import analyze_study


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every `ResultStore.open` during the test (the real one still runs)."""
    seen: list[Path] = []
    real = ResultStore.open.__func__  # type: ignore[attr-defined]

    def counted(cls: type[ResultStore], path: str | Path) -> ResultStore:
        seen.append(Path(path))
        return real(cls, path)

    monkeypatch.setattr(ResultStore, "open", classmethod(counted))
    return seen


def test_a_48_run_study_is_analysed_and_reported_from_one_store_read(
    tmp_path: Path, opens: list[Path]
) -> None:
    study = tiny.fake_study(tmp_path / "s", seeds=tuple(range(12)), evidence=True)  # 4 × 12 runs
    start = time.perf_counter()
    html, _ = build_report(study)  # never analysed: verdict and report both come from one read
    elapsed = time.perf_counter() - start
    assert opens == [study]
    assert (study / "analysis" / "verdict.json").exists() and html.exists()
    assert "48 finished runs" in html.read_text()
    print(f"48-run study, verdict + report: {elapsed:.1f} s")  # the target is < 10 s (2 cores)


def test_an_analysed_study_is_reported_from_one_store_read(
    tmp_path: Path, opens: list[Path]
) -> None:
    study = tiny.fake_study(tmp_path / "s")
    analyze_study(study, echo=False)
    assert len(opens) == 1
    build_report(study)
    assert len(opens) == 2  # the report's own single read
