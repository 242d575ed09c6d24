"""FLOPs-to-learn: onsets located within one evaluation interval, censoring at the cap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raremix.configbase import load
from raremix.errors import RaremixError
from raremix.results.onset import LearnedRule, flops_to_learn, onset_index, run_onsets
from raremix.schedules import eval_steps

RULE = LearnedRule(threshold=0.9, consecutive=2)
FPS = 1.5e6  # FLOPs per step


def abrupt(steps: np.ndarray, onset: int, seed: int = 0) -> np.ndarray:
    """A grokking-like curve: near chance before `onset`, near 1 from it on."""
    rng = np.random.default_rng(seed)
    low, high = rng.uniform(0.0, 0.3, steps.size), rng.uniform(0.93, 1.0, steps.size)
    return np.where(steps >= onset, high, low)


@pytest.mark.parametrize("true_onset", [37, 137, 401, 999])
@pytest.mark.parametrize("grid", ["linear", "log"])
def test_an_onset_known_by_construction_is_found_within_one_eval_interval(
    true_onset: int, grid: str
) -> None:
    steps = np.array([0, *eval_steps(2000, 100, grid, per_decade=10)])
    found = flops_to_learn(steps, abrupt(steps, true_onset), RULE, FPS)
    assert found.observed
    interval = np.diff(steps)[np.searchsorted(steps, true_onset) - 1]
    assert true_onset <= found.step < true_onset + interval
    assert found.flops == found.step * FPS


def test_never_learned_is_censored_at_the_cap_or_where_the_curve_ends() -> None:
    steps = np.arange(0, 1001, 100)
    acc = np.full(steps.size, 0.5)
    at_end = flops_to_learn(steps, acc, RULE, FPS)
    assert not at_end.observed and at_end.flops == 1000 * FPS
    capped = flops_to_learn(steps, acc, RULE, FPS, cap=650 * FPS)
    assert not capped.observed and capped.flops == 650 * FPS and capped.step == 650
    # followed only to step 1000: a cap beyond it does not lengthen the follow-up
    short = flops_to_learn(steps, acc, RULE, FPS, cap=5000 * FPS)
    assert not short.observed and short.flops == 1000 * FPS


def test_an_onset_after_the_cap_is_censored() -> None:
    steps = np.arange(0, 1001, 100)
    acc = abrupt(steps, 700)
    assert flops_to_learn(steps, acc, RULE, FPS).step == 700
    # confirmed at 800 > cap: not learned within the cap
    late = flops_to_learn(steps, acc, RULE, FPS, cap=750 * FPS)
    assert not late.observed and late.flops == 750 * FPS


def test_consecutive_evaluations_rule_out_a_single_spike() -> None:
    acc = [0.1, 0.95, 0.2, 0.3, 0.91, 0.97, 0.99]
    assert onset_index(acc, LearnedRule(threshold=0.9, consecutive=1)) == 1
    assert onset_index(acc, LearnedRule(threshold=0.9, consecutive=2)) == 4
    assert onset_index(acc, LearnedRule(threshold=0.9, consecutive=4)) is None
    assert onset_index([0.5, float("nan"), 0.95], LearnedRule(threshold=0.9, consecutive=1)) == 2


def test_run_onsets_reads_one_runs_metric_rows() -> None:
    steps = np.arange(0, 501, 50)
    curves = {"copy": abrupt(steps, 120), "sort": np.zeros(steps.size)}
    rows = pd.DataFrame(
        {"run": "r", "step": int(s), "task": t, "metric": m, "value": float(v)}
        for t, curve in curves.items()
        for s, v in zip(steps, curve, strict=True)
        for m in ("acc", "loss")
    )
    onsets = run_onsets(rows, RULE, FPS, cap=400 * FPS)
    assert onsets["copy"].observed and onsets["copy"].step == 150
    assert not onsets["sort"].observed and onsets["sort"].flops == 400 * FPS
    with pytest.raises(RaremixError, match="one run"):
        run_onsets(pd.concat([rows, rows.assign(run="other")]), RULE, FPS)


def test_bad_rules_and_caps_are_one_line_errors() -> None:
    steps, acc = np.arange(0, 101, 10), np.zeros(11)
    with pytest.raises(RaremixError, match="below one training step"):
        flops_to_learn(steps, acc, RULE, FPS, cap=FPS / 2)
    with pytest.raises(RaremixError, match="must increase"):
        flops_to_learn(steps[::-1], acc, RULE, FPS)
    with pytest.raises(RaremixError, match="equal-length"):
        flops_to_learn(steps, acc[:-1], RULE, FPS)
    with pytest.raises(RaremixError, match="'threshold'"):
        load(LearnedRule, {"threshold": 1.2}, "rule")
    with pytest.raises(RaremixError, match="'consecutive'"):
        load(LearnedRule, {"consecutive": 0}, "rule")
