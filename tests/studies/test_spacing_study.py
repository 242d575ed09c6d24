"""The spacing study: its quick variant runs end to end and judges every declared hypothesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import cli
from raremix.configbase import packaged_configs
from raremix.studies.spec import expand, load_spec, quick_variant

STUDY = Path(packaged_configs("studies")["spacing"])
OUTCOMES = {"supported", "contradicted", "inconclusive", "out of regime"}


def test_arms_share_the_rare_task_frequency() -> None:
    spec = load_spec(STUDY)
    runs = expand(spec)
    assert len(runs) == 2 * 3 * 5
    chain = {r.labels["exposure"]: r.config["mixture"]["sources"][-1] for r in runs}
    assert chain["spaced"]["every"] == 4 and chain["clumped"]["every"] == 150
    assert "every" not in chain["iid"] and len(expand(quick_variant(spec))) == 12


@pytest.mark.slow
def test_quick_study_yields_typed_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "spacing"
    res = cli(capsys, monkeypatch, "study", "run", "spacing", "--quick", "--out", str(out))
    assert res.code == 0 and "12 done, 0 skipped, 0 failed" in res.out, res.out + res.err
    verdict = json.loads((out / "analysis" / "verdict.json").read_text())
    outcomes = {o["id"]: o["outcome"] for o in verdict["outcomes"]}
    assert list(outcomes) == [
        "spaced-beats-clumped-25k",
        "spaced-beats-clumped-200k",
        "spaced-vs-iid-25k",
        "clumped-costs-common-25k",
    ]
    assert set(outcomes.values()) <= OUTCOMES
    assert outcomes["spaced-beats-clumped-200k"] == "inconclusive"  # no 200k arm in quick
