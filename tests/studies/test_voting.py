"""The voting study: the vote, red flags and closed forms, the executor, and the quick study."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from raremix.cli import main
from raremix.results.store import ResultStore
from raremix.studies.voting.lab import (
    FLAGGED,
    expected_samples,
    k_needed,
    red_flag,
    simulate_votes,
    survival,
    task_success,
    vote,
    voted_success,
    wilson,
)
from raremix.studies.voting.run import lengths_upto, programs, register_step, trainable_moves
from raremix.tasks import make_task

F = FLAGGED

# --- the vote on synthetic sample streams ----------------------------------------------


def test_vote_decides_at_the_first_sample_that_leads_by_k() -> None:
    stream = np.array(
        [
            [3, 3, 1, 1, 3, 3, 3],  # 3 leads by 2 after sample 2: decided there
            [3, 1, 3, 1, 3, 3, 0],  # lead 2 first reached after sample 6
            [F, F, 2, F, 2, 5, 5],  # flags count for nothing: 2 leads by 2 after sample 5
            [1, 2, 1, 2, 1, 2, F],  # never ahead by 2: open, all 7 used
        ]
    )
    res = vote(stream, 2, 10)
    assert res.winner.tolist() == [3, 3, 2, -1]
    assert res.used.tolist() == [2, 6, 5, 7]
    assert res.counts[0].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    assert res.counts[3, 1] == 3 and res.counts[3, 2] == 3


def test_vote_k1_takes_the_first_valid_sample_and_k_may_vary_by_row() -> None:
    stream = np.array([[F, 7, 1], [F, F, F], [4, 4, 4]])
    res = vote(stream, np.array([1, 1, 3]), 10)
    assert res.winner.tolist() == [7, -1, 4] and res.used.tolist() == [2, 3, 3]


def test_vote_continues_from_counts_like_one_long_stream() -> None:
    rng = np.random.default_rng(0)
    stream = rng.choice([0, 1, 2, F], p=[0.6, 0.2, 0.1, 0.1], size=(500, 12))
    whole = vote(stream, 3, 3)
    first = vote(stream[:, :5], 3, 3)
    still = first.winner < 0
    rest = vote(stream[still, 5:], 3, 3, first.counts[still])
    winner = first.winner.copy()
    winner[still] = rest.winner
    used = first.used.copy()
    used[still] += rest.used
    assert (winner == whole.winner).all() and (used == whole.used).all()


def test_red_flag_keeps_only_one_answer_token_then_eos() -> None:
    answers, eos = np.array([10, 11, 12]), 2
    first = np.array([10, 12, 5, 11, 11])
    second = np.array([2, 2, 2, 11, 0])  # ok, ok, not an answer token, too long, too long
    assert red_flag(first, second, answers, eos).tolist() == [0, 2, F, F, F]


# --- closed forms vs simulation --------------------------------------------------------


@pytest.mark.parametrize(("p", "k"), [(0.7, 1), (0.7, 3), (0.6, 5), (0.9, 2)])
def test_voted_success_matches_simulated_two_outcome_votes(p: float, k: int) -> None:
    n = 20_000
    sim = simulate_votes(p, k, n, seed=1)
    right = (sim.winner == 0).mean()
    predicted = float(voted_success(p, k))
    assert abs(right - predicted) < 4 * np.sqrt(predicted * (1 - predicted) / n) + 1e-9
    assert abs(sim.used.mean() - expected_samples(p, k)) < 0.05 * expected_samples(p, k)


def test_more_wrong_answers_only_help_the_vote() -> None:
    two = (simulate_votes(0.6, 3, 20_000, seed=2).winner == 0).mean()
    ten = (simulate_votes(0.6, 3, 20_000, seed=2, n_answers=10).winner == 0).mean()
    assert ten > two > 0.7  # closed form 0.77 for two answers; spread errors rarely agree


def test_task_success_and_k_needed() -> None:
    assert float(voted_success(0.9, 1)) == pytest.approx(0.9)
    assert float(voted_success(0.9, 3)) == pytest.approx(0.729 / (0.729 + 0.001))
    assert float(task_success(0.9, 3, 100)) == pytest.approx(float(voted_success(0.9, 3)) ** 100)
    assert float(voted_success(0.0, 3)) == 0.0 and float(voted_success(1.0, 3)) == 1.0
    k = k_needed(0.9, 1_000_000, 0.95)
    assert (
        float(task_success(0.9, k, 1_000_000)) >= 0.95 > float(task_success(0.9, k - 1, 1_000_000))
    )
    assert k_needed(0.9, 10**6, 0.95) > k_needed(0.9, 10**3, 0.95)  # Θ(ln s)


def test_wilson_interval_and_survival() -> None:
    lo, hi = wilson(np.array([0, 16, 32]), np.array([32, 32, 32]))
    assert lo[0] == 0 and 0 < hi[0] < 0.15 and lo[1] < 0.5 < hi[1] and hi[2] == 1 and lo[2] > 0.85
    first_error = np.array([1, 5, 100, 1001])  # 1001: never failed in 1000 steps
    assert survival(first_error, np.array([1, 4, 5, 99, 100, 1000])).tolist() == [3, 3, 2, 2, 1, 1]


# --- the executor's pieces -------------------------------------------------------------


def test_register_step_is_the_step_task() -> None:
    task = make_task("step")
    inputs = [f"{r}{o}{x}" for r in range(10) for o in "+-*" for x in range(10)]
    ours = register_step(
        np.repeat(np.arange(10), 30),
        np.tile(np.repeat(np.arange(3), 10), 10),
        np.tile(np.arange(10), 30),
    )
    assert [str(v) for v in ours] == task.solve(inputs, None)  # type: ignore[arg-type]


def test_programs_use_only_training_steps() -> None:
    ok = trainable_moves()
    assert 0.7 < ok.mean() < 0.9  # 20% of step inputs are held out
    reg, ops, xs = programs(16, 300, seed=3)
    for t in range(300):
        assert ok[reg, ops[:, t] * 10 + xs[:, t]].all()
        reg = register_step(reg, ops[:, t], xs[:, t])
    assert lengths_upto(1000)[-3:] == [200, 500, 1000] and 9 in lengths_upto(1000)


# --- the quick study through the CLI ---------------------------------------------------


@pytest.mark.slow
def test_quick_voting_study_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "voting"
    monkeypatch.setattr(
        sys, "argv", ["raremix", "study", "run", "voting", "--quick", "--out", str(out)]
    )
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code in (0, None), capsys.readouterr()
    rows = ResultStore.open(out).metrics()
    arms = ["single", "k1", "k2", "k3", "k5", "k8"]
    success = rows[rows.metric == "success"].pivot_table(
        index="step", columns="task", values="value"
    )
    assert set(arms) <= set(success.columns) and success.index.max() == 1000
    assert (success[arms].diff().dropna() <= 0).all().all()  # no chain recovers from an error
    assert set(rows.loc[rows.task == "whole", "step"]) == {2, 3, 5, 9}
    speed = rows[(rows.task == "") & (rows.metric == "calls_per_s")]["value"]
    assert len(speed) == 1 and speed.iloc[0] > 0
    verdict = json.loads((out / "analysis" / "verdict.json").read_text())
    word = verdict["headline"].split(":")[0]
    assert word in ("supported", "contradicted", "inconclusive") and verdict["finding"] == word
    assert [r[0] for r in verdict["table"]["rows"]] == [*arms, "whole (greedy)"]
    assert (out / "analysis" / verdict["figures"][0]["file"]).stat().st_size > 10_000
    assert "voting" in capsys.readouterr().out
