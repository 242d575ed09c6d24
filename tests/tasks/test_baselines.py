"""Baselines: hand-computed values on small held-out sets, compare's length + equality rule
on the real held-out set against the value its input distribution predicts, and every task
covered."""

from __future__ import annotations

import math

import numpy as np
import pytest

from raremix.errors import RaremixError
from raremix.tasks import BASELINES, HEURISTICS, TASKS, baselines, heldout_set, make_task


def test_compare_by_hand() -> None:
    inputs = ["5?12", "12?5", "7?7", "34?21", "21?34"]
    answers = ["<", ">", "=", ">", "<"]
    b = baselines(make_task("compare"), inputs, answers)
    # one of three symbols; ">" and "<" are each 2 of 5; the rule misses only 21?34 (guess >)
    assert b == pytest.approx({"chance": 1 / 3, "majority": 2 / 5, "heuristic": 4 / 5})


def test_successor_and_majority_by_hand() -> None:
    b = baselines(make_task("successor", 2), ["19", "5", "8"], ["20", "6", "9"])
    # answers of up to 3 digits: 1000 of them; every answer distinct; 19 needs a carry
    assert b == pytest.approx({"chance": 1 / 1000, "majority": 1 / 3, "heuristic": 2 / 3})
    b = baselines(make_task("majority", 7), ["xxxoooo", "oooxxxx", "xoxoxox"], ["o", "x", "x"])
    # first three letters: xxx → x (wrong), ooo → o (wrong), xox → x (right)
    assert b == pytest.approx({"chance": 1 / 2, "majority": 2 / 3, "heuristic": 1 / 3})


def test_open_tasks_by_hand() -> None:
    b = baselines(make_task("bigger", 3), ["100", "500", "998"], ["200", "999", "999"])
    # 900 three-digit numbers, 899, 499 and 1 of them larger; "999" is larger than all three
    assert b == pytest.approx({"chance": (899 + 499 + 1) / 2700, "majority": 1, "heuristic": 1})
    b = baselines(make_task("permute", 2), ["ab", "aa"], ["ba", "aa"])
    # two-letter strings: 676; "ab" has two orders, "aa" one; echoing is a valid permutation
    assert b == pytest.approx({"chance": 1.5 / 676, "majority": 1 / 2, "heuristic": 1})
    b = baselines(make_task("pairsum", 2), ["3", "99"], ["1 2", "50 49"])
    # pairs of numbers below 100: 10^4; 4 and 100 of them sum to x; "0 x" always does
    assert b == pytest.approx({"chance": (4 + 100) / 2 / 1e4, "majority": 1 / 2, "heuristic": 1})


def test_tool_chance_counts_names_digits_and_both_parallel_orders() -> None:
    inputs, answers = ["akk,hws:a3", "akk,hws:a3+h5"], ["kk(3)", "kk(3),ws(5)"]
    b = baselines(make_task("fcall"), inputs, answers)
    assert b["chance"] == pytest.approx((1 / 640 + 2 / 640**2) / 2)
    assert "heuristic" not in b  # fcall has no rule worth stating


def test_compare_rule_on_the_real_heldout_set_matches_its_input_distribution() -> None:
    task = make_task("compare", 3)
    held = heldout_set(task)
    measured = baselines(task, held.inputs, held.answers)["heuristic"]
    # compare draws b = a (2/10), b as long as a (4/10), or b of an independent length
    # (4/10), with a's length uniform in 1..3. The rule is right on equal pairs, on pairs of
    # different length, and on same-length pairs with a >= b (its guess is ">").
    same_len = np.mean([(1 + 1 / span) / 2 for span in (10, 90, 900)])  # P(a >= b)
    expected = 0.2 + 0.4 * same_len + 0.4 * (2 / 3 + same_len / 3)
    sd = math.sqrt(expected * (1 - expected) / len(held))
    assert 0.7 < expected < 0.76  # the 0.74 the audit measured
    assert abs(measured - expected) < 3 * sd


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_chance_and_majority_in_range(name: str) -> None:
    task = make_task(name)
    held = heldout_set(task, 64)
    b = baselines(task, held.inputs, held.answers)
    assert set(b) == (set(BASELINES) if name in HEURISTICS else {"chance", "majority"})
    assert all(0 <= v <= 1 for v in b.values())
    assert b["majority"] >= 1 / len(held)  # the most common answer is right at least once


def test_rules_beat_the_majority_answer_where_the_suite_says_they_do() -> None:
    for name in ("successor", "modadd", "compare", "step", "majority", "kvrecall", "depth"):
        task = make_task(name)
        held = heldout_set(task)
        b = baselines(task, held.inputs, held.answers)
        assert b["heuristic"] > b["majority"] + 0.1, name


def test_mismatched_lengths_and_empty_sets() -> None:
    task = make_task("compare")
    with pytest.raises(RaremixError, match="2 inputs but 1 answers"):
        baselines(task, ["1?2", "2?1"], ["<"])
    assert baselines(task, [], []) == {}
