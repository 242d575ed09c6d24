"""A reproduction's report opens with its regime header (PROTOCOL §7)."""

from __future__ import annotations

from pathlib import Path

import tiny_study as tiny
import yaml

from raremix.configbase import packaged_configs
from raremix.report import build_report


def _headings(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("## ")]


def test_a_reports_first_section_is_the_regime_header(tmp_path: Path) -> None:
    study = tiny.fake_study(tmp_path / "s")
    spec = yaml.safe_load((study / "study.yaml").read_text())
    spec["regime"] = yaml.safe_load(packaged_configs("studies")["scale-vs-mix"].read_text())[
        "regime"
    ]
    (study / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    html, md_path = build_report(study)
    md = md_path.read_text()
    assert _headings(md)[0] == "## Regime"
    assert md.index("## Regime") < md.index("> **")  # above the verdict's headline
    assert "Paper: OLMo" in md and "4M–4B parameters" in md
    assert "Here: 16.8k–89.4k parameters (2 distinct models)" in md  # the 12k and 100k rungs
    assert "Paradigm differs" in md and "bridged" in md
    assert html.read_text().index("<h2>Regime</h2>") < html.read_text().index('class="headline"')


def test_the_theory_labs_report_opens_with_its_regime(tmp_path: Path) -> None:
    from raremix.studies.analysis import execute_study

    execute_study("theory", tmp_path / "t", quick=True)
    _, md_path = build_report(tmp_path / "t")
    md = md_path.read_text()
    assert _headings(md)[0] == "## Regime" and md.index("## Regime") < md.index("> **")
    assert "Paradigm: the same" in md
    assert "38.4k examples per run" in md  # the quick variant: 600 steps × 64 examples
