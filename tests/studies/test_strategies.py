"""The strategies study (issue #6) in miniature: every arm runs, the verdict ranks them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raremix.results.store import ResultStore
from raremix.studies.strategies.verdict import Arm, beats, compare_arms

ARMS = {
    "natural",
    "stratified",
    "temperature",
    "upweight",
    "rarity-first",
    "doremi",
    "exp3",
    "protect",
    "ledger",
    "natural-100k",
}


@pytest.mark.slow
def test_quick_study_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "strategies"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "raremix", "study", "run", "strategies", "--quick"]
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--workers", "2"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    verdict = json.loads((out / "analysis" / "verdict.json").read_text())
    cols = verdict["table"]["columns"]
    rows = {
        r[cols.index("strategy")]: dict(zip(cols, r, strict=True)) for r in verdict["table"]["rows"]
    }
    assert set(rows) == ARMS
    kinds = {name: row["kind"] for name, row in rows.items()}
    assert kinds["doremi"] == kinds["exp3"] == kinds["protect"] == kinds["ledger"] == "adaptive"
    assert kinds["natural-100k"] == "bigger model"
    assert kinds["upweight"] == kinds["rarity-first"] == "simple"
    assert sorted(r["rank"] for r in rows.values()) == list(range(1, 11))
    for row in rows.values():  # one seed: plain numbers, no spread
        assert 0 <= float(row["rare acc"]) <= 1 and 0 <= float(row["common acc"]) <= 1
    assert rows["natural"]["vs natural"] == "1.00×"
    assert float(rows["doremi"]["vs natural"].rstrip("×")) > 2  # its reference run is counted
    assert float(rows["natural-100k"]["vs natural"].rstrip("×")) > 2.5
    assert rows["upweight"]["rare share"] == "30.0%" and rows["natural"]["rare share"] == "3.0%"
    # one seed per arm: nothing is tested, so nothing beats anything
    assert verdict["finding"] == "inconclusive"
    assert {c["call"] for c in verdict["comparisons"]} == {"untested"}
    # 4 adaptive × 5 simple × (rare, common), then 9 small-model arms vs natural-100k
    assert len(verdict["comparisons"]) == 4 * 5 * 2 + 9
    assert verdict["outcomes"][0]["id"] == "doremi-vs-stratified"
    assert (out / "analysis" / "figures" / "strategies.png").stat().st_size > 10_000
    weights = ResultStore.open(out).sql("select count(*) as n from metrics where metric = 'weight'")
    assert (
        int(weights.n.iloc[0]) == 4 * 6 * 2
    )  # 4 adaptive runs × 6 tasks × steps 0 and 20 (not the last, 40)


SPREAD = (-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03)


def _arm(name: str, kind: str, rare: float, common: float, spread: float = 1.0) -> Arm:
    """An arm of 7 seeds around the given means (`spread` scales the seed-to-seed spread)."""
    r = tuple(rare + spread * d for d in SPREAD)
    c = tuple(common + spread * d for d in SPREAD)
    return Arm(name, kind, "25k", rare, 0.0, common, 0.0, 1.0, 0.0, 1.0, 0.1, 7, r, c)


def test_beats_needs_a_significant_gain_and_no_significant_loss() -> None:
    simple = [_arm("natural", "simple", 0.6, 0.9), _arm("upweight", "simple", 0.9, 0.7)]
    adaptive = [_arm("a", "adaptive", 0.9, 0.9), _arm("noisy", "adaptive", 0.65, 0.9, spread=8)]
    judged = compare_arms(adaptive, simple)
    calls = {j.name: j.call for j in judged}
    assert calls["a − natural, rare acc"] == "greater"  # 7 vs 7: exact p 2/3432, Holm over 8 passes
    assert calls["a − natural, common acc"] == "indistinguishable"  # equal means
    assert beats("a", "natural", calls) and not beats("natural", "a", calls)
    assert beats("a", "upweight", calls)  # better common, same rare
    # better rare, significantly worse common: no win either way
    assert not beats(
        "upweight",
        "natural",
        {"upweight − natural, rare acc": "greater", "upweight − natural, common acc": "less"},
    )
    # the noisy arm's +0.05 lies within its seeds' spread: not significant, so no win
    assert calls["noisy − natural, rare acc"] == "indistinguishable"
    assert not beats("noisy", "natural", calls)
    assert all(j.family == judged[0].family for j in judged)  # one Holm family
