"""Schedules: phases, linear/cosine anneals, rare-task replay; weights_at is pure."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raremix.configbase import load
from raremix.errors import RaremixError
from raremix.mixture import MixtureConfig, resolve

SOURCES = [{"name": "common", "size": 1000}, {"name": "rare", "size": 10}]


def plan(schedule: dict, total_steps: int | None = 100, **top: object):
    return resolve(
        load(MixtureConfig, {"sources": SOURCES, "schedule": schedule, **top}),
        total_steps=total_steps,
    )


def test_phases_switch_at_their_start_in_fractions_and_steps() -> None:
    phases = [
        {"start": 0, "weights": {"common": 1, "rare": 0}},
        {"start": 0.25, "weights": {"common": 1, "rare": 1}},
    ]
    p = plan({"phases": phases})
    assert p.schedule.weights_at(24).tolist() == [1.0, 0.0]
    assert p.schedule.weights_at(25).tolist() == [0.5, 0.5]
    assert p.schedule.weights_at(10**9).tolist() == [0.5, 0.5]
    steps = [{**phases[0]}, {**phases[1], "start": 40}]
    q = plan({"unit": "steps", "phases": steps}, total_steps=None)
    assert q.schedule.weights_at(39).tolist() == [1.0, 0.0] and q.schedule.weights_at(
        40
    ).tolist() == [0.5, 0.5]


def test_phase_without_weights_uses_the_base_mix() -> None:
    p = plan({"phases": [{"start": 0}, {"start": 0.5, "strategy": "uniform"}]})
    assert p.schedule.weights_at(0) == pytest.approx(np.array([1000, 10]) / 1010)
    assert p.schedule.weights_at(60).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_anneals_move_between_weight_vectors(kind: str) -> None:
    a, b = {"common": 1, "rare": 0}, {"common": 0, "rare": 1}
    p = plan(
        {
            "phases": [
                {"start": 0, "weights": a},
                {"start": 0.2, "weights": b, "anneal": kind},
                {"start": 0.6, "weights": a},
            ]
        }
    )
    s = p.schedule
    assert s.weights_at(20).tolist() == [1.0, 0.0]  # the anneal starts from the previous vector
    t = 0.25  # step 30 of the 20..60 anneal
    alpha = t if kind == "linear" else (1 - math.cos(math.pi * t)) / 2
    assert s.weights_at(30) == pytest.approx([1 - alpha, alpha])
    assert s.weights_at(40) == pytest.approx([0.5, 0.5])
    assert s.weights_at(59)[1] > 0.95 and s.weights_at(60).tolist() == [1.0, 0.0]
    # weights_at is pure: same step, same answer, whatever was asked before
    assert s.weights_at(30).tolist() == s.weights_at(30).tolist()


def test_last_phase_anneals_until_the_end() -> None:
    p = plan(
        {
            "phases": [
                {"start": 0, "weights": {"common": 1, "rare": 0}},
                {"start": 0.5, "strategy": "uniform", "anneal": "linear"},
            ]
        }
    )
    assert p.schedule.weights_at(75) == pytest.approx([0.75, 0.25])
    assert p.schedule.weights_at(500).tolist() == [0.5, 0.5]
    with pytest.raises(RaremixError, match="anneals until the end of training"):
        plan(
            {
                "unit": "steps",
                "phases": [{"start": 0}, {"start": 10, "strategy": "uniform", "anneal": "linear"}],
            },
            total_steps=None,
        )


def test_replay_keeps_a_fraction_of_every_later_phase() -> None:
    rare_first = {"common": 0, "rare": 1}
    common_only = {"common": 1, "rare": 0}
    p = plan(
        {
            "phases": [
                {"start": 0, "weights": rare_first},
                {"start": 0.3, "weights": common_only},
                {"start": 0.6, "weights": common_only},
            ],
            "replay": {"tasks": ["rare"], "fraction": 0.05},
        }
    )
    assert p.schedule.weights_at(0).tolist() == [0.0, 1.0]
    assert p.schedule.weights_at(30) == pytest.approx([0.95, 0.05])
    assert p.schedule.weights_at(99) == pytest.approx([0.95, 0.05])
    # replay starts only after the first phase that trains the task
    q = plan(
        {
            "phases": [
                {"start": 0, "weights": common_only},
                {"start": 0.5, "weights": {"common": 1, "rare": 1}},
                {"start": 0.8, "weights": common_only},
            ],
            "replay": {"tasks": ["rare"], "fraction": 0.1},
        }
    )
    assert q.schedule.weights_at(10).tolist() == [1.0, 0.0]
    assert q.schedule.weights_at(90) == pytest.approx([0.9, 0.1])
    with pytest.raises(RaremixError, match="has zero weight in every phase: nothing to replay"):
        plan(
            {
                "phases": [{"start": 0, "weights": common_only}],
                "replay": {"tasks": ["rare"], "fraction": 0.1},
            }
        )


def test_fraction_starts_that_collide_are_refused() -> None:
    with pytest.raises(RaremixError, match="both start at step 0: train for more steps"):
        plan({"phases": [{"start": 0}, {"start": 0.001, "strategy": "uniform"}]}, total_steps=10)


@given(
    st.integers(1, 300),
    st.sampled_from(["none", "linear", "cosine"]),
    st.sampled_from(["none", "linear", "cosine"]),
)
@settings(max_examples=40, deadline=None)
def test_cumulative_is_the_sum_of_weights_at(steps: int, a1: str, a2: str) -> None:
    phases = [
        {"start": 0, "weights": {"common": 1, "rare": 3}},
        {"start": 37, "weights": {"common": 1, "rare": 0}, "anneal": a1},
        {"start": 90, "strategy": "uniform", "anneal": a2},
    ]
    p = plan({"unit": "steps", "phases": phases}, total_steps=150)
    brute = np.sum([p.schedule.weights_at(s) for s in range(steps)], axis=0)
    assert p.schedule.cumulative(steps) == pytest.approx(brute, abs=1e-9)
