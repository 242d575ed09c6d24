"""`raremix demo --quick`: the demo's study, runs and FLOPs-to-learn verdict, in miniature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raremix.configbase import load, packaged_configs
from raremix.results.store import label_column
from raremix.studies.hypotheses import Declaration
from raremix.studies.outcomes import evaluate
from raremix.studies.spec import expand, load_spec, prepare_study

DEMO = Path(packaged_configs("studies")["demo"])


def test_the_demo_declares_equal_flops_comparisons_on_fresh_seeds() -> None:
    spec = load_spec(DEMO)
    assert spec.hypotheses is not None and spec.analysis == "demo"
    h = spec.hypotheses
    assert len(h.confirmation_seeds) >= 8 and not set(h.confirmation_seeds) & set(
        h.calibration_seeds
    )
    runs = expand(prepare_study(spec, quick=False, confirm=True))
    arms = {r.labels["arm"]: r.config for r in runs}
    assert len(runs) == 8 * len(arms)
    for config in arms.values():  # budget-free schedule, so "longer" continues "natural"
        assert config["optim"]["schedule"] == "constant" and config["stop_when_learned"]
        assert config["stop_when_learned"]["threshold"] == h.learned.threshold
    assert {t.metric for t in h.tests} == {"flops_to_learn"}


def _survival_table(rng: np.random.Generator, scale: dict[str, float], n: int = 8) -> pd.DataFrame:
    rows = []
    for arm, s in scale.items():
        for seed in range(n):
            t = float(rng.weibull(1.5) * s)
            rows.append(
                {
                    "run_id": f"{arm}{seed}",
                    "seed": seed,
                    label_column("arm"): arm,
                    "flops_to_learn": min(t, 1e12),
                    "flops_to_learn.observed": float(t <= 1e12),
                }
            )
    return pd.DataFrame(rows)


def test_flops_to_learn_hypotheses_are_tested_at_equal_flops() -> None:
    test = {
        "id": "fast",
        "claim": "c",
        "metric": "flops_to_learn",
        "direction": "less",
        "treatment": {"arm": "a"},
        "control": {"arm": "b"},
    }
    declaration = load(
        Declaration, {"confirmation_seeds": list(range(100, 108)), "tests": [test]}, "h"
    )
    rng = np.random.default_rng(0)
    [r] = evaluate(declaration, _survival_table(rng, {"a": 1e11, "b": 2e12}))
    assert r.outcome == "supported" and r.effect < -0.3 and r.ci[1] < 0
    assert "log-rank" in r.test and r.n == (8, 8)
    [null] = evaluate(declaration, _survival_table(rng, {"a": 5e11, "b": 5e11}))
    assert null.outcome in ("inconclusive", "supported")  # one draw; the rate is tested in stats


def test_the_quick_demo_prints_a_line_per_run_and_km_arms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The main command end to end, tiny: progress lines when piped, the natural arm split
    into its equal-steps cut and its continuation, typed outcomes, a figure, a report."""
    from cli_runner import cli
    from raremix.stats import OUTCOMES
    from raremix.studies.analysis import Verdict

    result = cli(capsys, monkeypatch, "demo", "--quick", "--out", str(tmp_path / "d"))
    assert result.code == 0, result.err
    assert result.out.count(" done arm=") == 6  # one line per finished run, not a terminal
    v = Verdict.load(tmp_path / "d" / "analysis")
    assert v.analysis == "demo" and v.evidence == "confirmation"
    arms = [row[0] for row in v.table["rows"]]
    assert arms == ["natural-12k", "longer-12k", "natural-100k", "upweight-12k"]
    caps = {row[0]: float(row[2]) for row in v.table["rows"]}
    assert caps["natural-12k"] < caps["longer-12k"] == pytest.approx(caps["upweight-12k"])
    assert caps["longer-12k"] == pytest.approx(caps["natural-100k"], rel=0.1)  # equal FLOPs
    assert all(o["outcome"] in OUTCOMES for o in v.outcomes) and len(v.outcomes) == 3
    assert (tmp_path / "d" / "analysis" / "figures" / "flops_to_learn.png").exists()
    assert (tmp_path / "d" / "report.md").exists()
