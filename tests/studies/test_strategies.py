"""The strategies study (issue #6) in miniature: every arm runs, the verdict ranks them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raremix.results.store import ResultStore
from raremix.studies.analysis_strategies import Arm, beats, clearly_above

ARMS = {
    "natural",
    "stratified",
    "temperature",
    "upweight",
    "rarity-first",
    "doremi",
    "exp3",
    "protect",
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
    assert kinds["doremi"] == kinds["exp3"] == kinds["protect"] == "adaptive"
    assert kinds["natural-100k"] == "bigger model"
    assert kinds["upweight"] == kinds["rarity-first"] == "simple"
    assert sorted(r["rank"] for r in rows.values()) == list(range(1, 10))
    for row in rows.values():  # one seed: plain numbers, no spread
        assert 0 <= float(row["rare acc"]) <= 1 and 0 <= float(row["common acc"]) <= 1
    assert rows["natural"]["vs natural"] == "1.00×"
    assert float(rows["doremi"]["vs natural"].rstrip("×")) > 2  # its reference run is counted
    assert float(rows["natural-100k"]["vs natural"].rstrip("×")) > 2.5
    assert rows["upweight"]["rare share"] == "30.0%" and rows["natural"]["rare share"] == "3.0%"
    assert "one seed" in verdict["headline"]
    assert (out / "analysis" / "figures" / "strategies.png").stat().st_size > 10_000
    weights = ResultStore.open(out).sql("select count(*) as n from metrics where metric = 'weight'")
    assert (
        int(weights.n.iloc[0]) == 3 * 6 * 2
    )  # 3 adaptive runs × 6 tasks × steps 0 and 20 (not the last, 40)


def _arm(rare: float, common: float, sd: float = 0.02) -> Arm:
    return Arm("x", "adaptive", "25k", rare, sd, common, sd, 1.0, 0.0, 1.0, 0.1, 3)


def test_beats_needs_separated_spreads_and_no_loss_elsewhere() -> None:
    assert clearly_above(0.8, 0.05, 0.6, 0.05) and not clearly_above(0.7, 0.05, 0.62, 0.05)
    assert beats(_arm(0.9, 0.9), _arm(0.6, 0.9))  # better rare, same common
    assert not beats(_arm(0.9, 0.7), _arm(0.6, 0.9))  # better rare, clearly worse common
    assert not beats(_arm(0.63, 0.9), _arm(0.6, 0.9))  # overlapping: no clear winner
    assert not beats(_arm(0.9, 0.9, sd=float("nan")), _arm(0.6, 0.9))  # one seed: no spread
