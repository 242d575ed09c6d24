"""The study registry: one folder per study, each record's code resolvable, nothing by name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from raremix.configbase import packaged_configs, read_yaml
from raremix.studies.registry import FOLDERS, STUDIES, Study
from raremix.studies.runner import RUN_FNS

STUDIES_DIR = Path(__file__).parents[2] / "src/raremix/studies"


@pytest.mark.parametrize("analysis", sorted(STUDIES))
def test_every_record_resolves_to_code(analysis: str) -> None:
    record = STUDIES[analysis]
    assert callable(record.verdict_fn())
    assert record.run_fn in RUN_FNS  # a packaged study never needs --trust-run-fn
    for ref in (record.final_columns_fn(), record.report_fn(), record.execute_fn()):
        assert ref is None or callable(ref)
    if record.execute:  # an in-process lab reports itself: it has no store for the runner's
        assert callable(record.report_fn())


def test_every_packaged_yaml_sits_in_the_folder_of_its_analysis() -> None:
    shipped = packaged_configs("studies")
    assert len(shipped) >= len(STUDIES)
    for name, path in shipped.items():
        analysis = read_yaml(path).get("analysis", "scale")
        folder = next(f for f in FOLDERS if analysis in {s.analysis for s in _records(f)})
        assert path.parent == STUDIES_DIR / folder, name


def _records(folder: str) -> list[Study]:
    records: list[Study] = importlib.import_module(f"raremix.studies.{folder}").STUDIES
    return records


def _imports(path: Path) -> set[str]:
    """Modules `path` imports at run time (annotations under `if TYPE_CHECKING:` excluded)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def test_no_study_imports_the_report_outside_its_own_report_sections() -> None:
    """Figures come from `raremix.figures`; only a study's `report.py` builds report sections."""
    offenders = [
        str(p.relative_to(STUDIES_DIR))
        for p in STUDIES_DIR.rglob("*.py")
        if p.name != "report.py" and any(m.startswith("raremix.report") for m in _imports(p))
    ]
    assert offenders == []
    figures = STUDIES_DIR.parent / "figures"
    for p in figures.rglob("*.py"):
        assert not any(m.startswith(("raremix.report", "raremix.studies")) for m in _imports(p))
