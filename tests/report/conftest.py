"""Fixtures for the report tests: the real tiny study and its report, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_study import real_report, theory_dir


@pytest.fixture(scope="session")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(study dir with report.html and report.md, what `raremix report` printed)."""
    return real_report(tmp_path_factory)


@pytest.fixture(scope="session")
def theory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return theory_dir(tmp_path_factory)
