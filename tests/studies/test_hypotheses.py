"""Declared hypotheses: validated before any run, evaluated into typed outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from raremix.configbase import load, packaged_configs
from raremix.errors import RaremixError
from raremix.results.store import label_column
from raremix.studies.hypotheses import Declaration, declaration_hash, record_declaration
from raremix.studies.outcomes import evaluate
from raremix.studies.power import seeds_table
from raremix.studies.spec import confirm_variant, expand, load_spec

DEMO = Path(packaged_configs("studies")["demo"])


def _declaration(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "confirmation_seeds": [100, 101, 102, 103, 104],
        "calibration_seeds": [0, 1],
        "tests": [
            {
                "id": "bigger",
                "claim": "bigger learns it",
                "metric": "rare_acc",
                "treatment": {"arm": "big"},
                "control": {"arm": "small"},
            }
        ],
    }
    return data | over


def _write_study(tmp_path: Path, hypotheses: dict[str, Any]) -> Path:
    spec = yaml.safe_load(DEMO.read_text())
    spec["hypotheses"] = hypotheses
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0}, "alpha"),
        ({"learned": {"threshold": 1.2}}, "threshold"),
        ({"calibration_seeds": [0, 100]}, r"confirmation seeds \[100\] are also calibration"),
        ({"eval_seed": 0}, "eval_seed 0 is the calibration"),
        ({"confirmation_seeds": [7]}, "confirmation_seeds"),
    ],
)
def test_a_bad_declaration_is_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RaremixError, match=message) as err:
        load(Declaration, _declaration(**change), "hypotheses")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ({"treatment": {"arm": "natural-400k"}}, "not a label of that axis.*natural-100k"),
        ({"treatment": {"arms": "natural-100k"}}, "names axis 'arms'.*did you mean 'arm'"),
        ({"metric": "rare_accuracy"}, "unknown metric 'rare_accuracy'"),
        ({"metric": "acc:chian"}, "names task 'chian'.*did you mean 'chain'"),
        ({"control": {"arm": "natural-100k"}}, "treatment and control are the same arm"),
    ],
)
def test_a_hypothesis_naming_an_unknown_arm_or_metric_fails_before_any_run(
    tmp_path: Path, test: dict[str, Any], message: str
) -> None:
    base = {
        "id": "h",
        "claim": "c",
        "metric": "rare_acc",
        "treatment": {"arm": "natural-100k"},
        "control": {"arm": "longer-12k"},
    }
    path = _write_study(tmp_path, _declaration(tests=[base | test]))
    with pytest.raises(RaremixError, match=message):
        load_spec(path)


def test_confirmation_runs_fresh_seeds_on_a_fresh_heldout_draw() -> None:
    spec = load_spec(DEMO)
    assert spec.hypotheses is not None
    confirm = confirm_variant(spec, "eval_seed")
    runs = expand(confirm)
    seeds = {int(r.labels["seed"]) for r in runs}
    assert seeds == set(spec.hypotheses.confirmation_seeds)
    assert not seeds & set(spec.hypotheses.calibration_seeds)
    assert {r.config["eval_seed"] for r in runs} == {spec.hypotheses.eval_seed} != {0}
    assert not {r.run_id for r in runs} & {r.run_id for r in expand(spec)}


def test_the_declaration_is_recorded_once_before_the_first_run(tmp_path: Path) -> None:
    first = load(Declaration, _declaration(), "h")
    info = record_declaration(tmp_path, first)
    assert info["hash"] == declaration_hash(first)
    edited = load(Declaration, _declaration(alpha=0.1), "h")
    assert record_declaration(tmp_path, edited)["hash"] == declaration_hash(first)  # kept


def _table(rng: np.random.Generator, big: float, small: float, n: int = 5) -> pd.DataFrame:
    rows = []
    for arm, mean in (("big", big), ("small", small)):
        for seed in range(n):
            acc = float(np.clip(rng.normal(mean, 0.05), 0, 1))
            rows.append(
                {"run_id": f"{arm}{seed}", "seed": seed, label_column("arm"): arm}
                | {"rare_acc": acc, "rare_learned": float(acc >= 0.9)}
            )
    return pd.DataFrame(rows)


def test_outcomes_are_typed_and_come_from_the_runs() -> None:
    rng = np.random.default_rng(0)
    declaration = load(Declaration, _declaration(), "h")
    [result] = evaluate(declaration, _table(rng, big=0.95, small=0.10))
    assert result.outcome == "supported" and result.effect > 0.7
    assert result.n == (5, 5) and result.ci[0] > 0.5 and result.p < 0.05
    [null] = evaluate(declaration, _table(rng, big=0.5, small=0.5))
    assert null.outcome == "inconclusive"


def test_a_published_effect_the_data_exclude_is_contradicted() -> None:
    rng = np.random.default_rng(1)
    test = _declaration()["tests"][0] | {"published": {"effect": 0.6, "source": "a paper"}}
    declaration = load(Declaration, _declaration(tests=[test]), "h")
    [result] = evaluate(declaration, _table(rng, big=0.52, small=0.5, n=8))
    assert result.outcome == "contradicted" and result.ci[1] < 0.6


def test_learned_counts_use_an_exact_test_and_holm_adjusts_the_family() -> None:
    rng = np.random.default_rng(2)
    tests = [
        _declaration()["tests"][0],
        _declaration()["tests"][0] | {"id": "learned", "metric": "rare_learned"},
    ]
    declaration = load(Declaration, _declaration(tests=tests), "h")
    table = _table(rng, big=0.97, small=0.1)
    results = evaluate(declaration, table)
    assert [r.id for r in results] == ["bigger", "learned"]
    share = table.groupby(label_column("arm"))["rare_learned"].mean()
    assert results[1].means == (share["big"], share["small"]) and "Barnard" in results[1].test
    assert all(r.p_adjusted >= r.p for r in results)


def test_too_few_runs_are_inconclusive_not_an_error() -> None:
    declaration = load(Declaration, _declaration(), "h")
    [result] = evaluate(declaration, _table(np.random.default_rng(3), 0.9, 0.1, n=1))
    assert result.outcome == "inconclusive" and "too few runs" in result.reason


def test_power_table_from_a_pilot() -> None:
    declaration = load(Declaration, _declaration(), "h")
    values = {"big": [0.45, 0.65, 0.55, 0.55], "small": [0.4, 0.6, 0.5, 0.5]}  # d = 0.05 / 0.08
    pilot = pd.DataFrame(
        [
            {"run_id": f"{arm}{i}", "seed": i, label_column("arm"): arm, "rare_acc": v}
            for arm, accs in values.items()
            for i, v in enumerate(accs)
        ]
    )
    row = seeds_table(declaration, pilot, power=0.8).iloc[0]
    assert row["source"] == "pilot" and row["seeds needed"] > 5 and not row["enough"]
    big = seeds_table(declaration, pilot, power=0.8, effect=0.8).iloc[0]
    assert big["seeds needed"] <= 5 and big["enough"]


@pytest.mark.parametrize("metric", ["rare_acc", "rare_learned"])
def test_null_simulation_through_the_verdict_engine(metric: str) -> None:
    """Two arms from one distribution, through `evaluate` as a study's verdict calls it:
    `supported` at most α of the time (binomial 99.9% bound on 300 simulations)."""
    rng = np.random.default_rng(7)
    test = _declaration()["tests"][0] | {"metric": metric}
    declaration = load(Declaration, _declaration(tests=[test]), "h")
    sims, hits = 300, 0
    for _ in range(sims):
        same = rng.uniform(0.2, 0.95)  # the arms' common mean differs per simulation
        hits += evaluate(declaration, _table(rng, big=same, small=same))[0].outcome == "supported"
    bound = 0.05 + 3.1 * np.sqrt(0.05 * 0.95 / sims)
    assert hits / sims <= bound, hits


def test_a_bad_axis_value_is_one_line_before_any_worker_starts(tmp_path: Path) -> None:
    from raremix.studies.runner import run_study

    spec = yaml.safe_load(DEMO.read_text())
    spec["axes"] = {"model.size": ["25k", "999k"], "seed": [0]}
    del spec["hypotheses"], spec["quick"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(RaremixError, match=r"unknown ladder size '999k'") as err:
        run_study(path, tmp_path / "out", progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "out" / "runs").exists()
