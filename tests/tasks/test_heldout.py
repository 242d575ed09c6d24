"""Held-out sets: distinct held-out inputs, ≥ 200 wherever the task's held-out space has that
many, and the whole space where it has fewer (the space is enumerated here, independently)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from raremix.tasks import MIN_HELDOUT, TASKS, heldout_set, in_heldout, make_task
from raremix.tasks.logic import _dyck_table
from raremix.tasks.text import rows_to_strings


def _strings(alphabet: str, lengths: range) -> list[str]:
    return ["".join(p) for n in lengths for p in itertools.product(alphabet, repeat=n)]


# Every possible input of a task whose input space is small enough to list.
SMALL_SPACES: dict[tuple[str, int], list[str]] = {
    ("majority", 7): _strings("xo", range(7, 8)),
    ("majority", 9): _strings("xo", range(9, 10)),
    ("successor", 2): [str(i) for i in range(100)],
    ("modadd", 17): [f"{a}+{b}" for a in range(17) for b in range(17)],
    ("step", 1): [f"{r}{op}{x}" for r in range(10) for op in "+-*" for x in range(10)],
    ("parity", 3): _strings("01", range(10, 11)),
    ("pairsum", 2): [str(i) for i in range(100)],
    ("bigger", 3): [str(i) for i in range(100, 999)],
    ("depth", 6): rows_to_strings(_dyck_table(6)[0]),
    ("reverse", 3): _strings("0123456789", range(2, 4)),
}


@pytest.mark.parametrize(("name", "complexity"), sorted(SMALL_SPACES))
def test_a_small_space_is_scored_on_all_its_heldout_inputs(name: str, complexity: int) -> None:
    space = SMALL_SPACES[(name, complexity)]
    held_space = {s for s, h in zip(space, in_heldout(space), strict=True) if h}
    held = heldout_set(make_task(name, complexity), 256)
    assert set(held.inputs) <= held_space
    assert len(held) == min(256, len(held_space))  # ≥ 200 exactly when the space allows
    assert (len(held) >= MIN_HELDOUT) == (len(held_space) >= MIN_HELDOUT)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_default_sets_are_distinct_heldout_and_at_least_200_where_the_space_allows(
    name: str,
) -> None:
    task = make_task(name)
    held = heldout_set(task, 256)
    assert len(set(held.inputs)) == len(held) and in_heldout(held.inputs).all()
    assert task.verify(held.inputs, held.answers).all()
    if (name, task.complexity) not in SMALL_SPACES:  # the rest have thousands of inputs
        assert len(held) == 256


def test_a_larger_set_extends_a_smaller_one() -> None:
    task = make_task("compare")
    small, large = heldout_set(task, 64), heldout_set(task, 256)
    assert large.inputs[:64] == small.inputs and large.answers[:64] == small.answers


def test_the_set_depends_on_the_seed() -> None:
    task = make_task("add")
    assert heldout_set(task, 64, seed=0).inputs != heldout_set(task, 64, seed=1).inputs
    assert heldout_set(task, 64, seed=1).inputs == heldout_set(task, 64, seed=1).inputs


def test_held_out_draws_are_unchanged_where_the_first_round_fills_the_set() -> None:
    # the sets runs were scored on before the draw could extend: first n distinct of 4n draws
    task = make_task("copy", 6)
    ex = task.generate(np.arange(4 * 128), 0, "heldout")
    first = list(dict.fromkeys(ex.inputs))[:128]
    assert heldout_set(task, 128).inputs == first
