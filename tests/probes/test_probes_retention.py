"""Retention measures on synthetic accuracy curves with known events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raremix.errors import RaremixError
from raremix.probes import (
    Event,
    acquire_then_forget,
    bwt,
    peak_final,
    phase_matrix,
    retention_table,
    time_to_learn,
)

STEPS = np.arange(0, 1100, 100)


def test_time_to_learn_is_the_first_crossing() -> None:
    acc = [0.0, 0.1, 0.5, 0.92, 0.85, 0.95, 0.96, 0.97, 0.97, 0.98, 0.99]
    assert time_to_learn(STEPS, acc, 0.9) == 300
    assert time_to_learn(STEPS, acc, 0.995) is None


def test_peak_and_final_average_the_last_window() -> None:
    acc = [0.0, 0.2, 0.9, 1.0, 0.8, 0.7, 0.6, 0.6, 0.5, 0.4, 0.3]
    pf = peak_final(STEPS, acc, window=3)
    assert (pf.peak, pf.peak_step) == (1.0, 300)
    assert pf.final == pytest.approx(0.4) and pf.lost == pytest.approx(0.6)


def test_acquire_then_forget_finds_each_episode() -> None:
    # learned at 200, peak 0.9 at 300, lost at 500 (0.3), back at 700, lost again at 900, never back
    acc = [0.0, 0.2, 0.6, 0.9, 0.8, 0.3, 0.2, 0.8, 0.85, 0.4, 0.35]
    events = acquire_then_forget(STEPS, acc, threshold=0.5, drop=0.2)
    assert events == [
        Event(
            acquired_step=200, peak_step=300, peak=0.9, forgot_step=500, low=0.2, relearned_step=700
        ),
        Event(
            acquired_step=700,
            peak_step=800,
            peak=0.85,
            forgot_step=900,
            low=0.35,
            relearned_step=None,
        ),
    ]


def test_no_event_for_noise_or_steady_learning() -> None:
    steady = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.99, 1.0]
    noisy = [0.0, 0.6, 0.5, 0.62, 0.55, 0.6, 0.58, 0.61, 0.57, 0.6, 0.59]
    never = [0.0, 0.1, 0.2, 0.3, 0.2, 0.1, 0.4, 0.3, 0.2, 0.1, 0.0]
    for curve in (steady, noisy, never):
        assert acquire_then_forget(STEPS, curve, threshold=0.5, drop=0.2) == []


def test_forgetting_while_still_above_threshold_counts() -> None:
    acc = [0.0, 0.95, 0.95, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    (event,) = acquire_then_forget(STEPS, acc, threshold=0.5, drop=0.2)
    assert event.forgot_step == 300 and event.low == 0.7 and event.relearned_step is None


def test_bwt_of_a_known_matrix() -> None:
    r = [[0.9, 0.0, 0.0], [0.6, 0.8, 0.0], [0.5, 0.7, 0.95]]
    assert bwt(r) == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert bwt(np.eye(3)) == pytest.approx(-1.0)
    with pytest.raises(RaremixError):
        bwt([[1.0]])


def test_phase_matrix_reads_the_last_eval_of_each_phase() -> None:
    curves = {"a": np.linspace(0, 1, 11), "b": np.linspace(1, 0, 11)}
    r = phase_matrix(STEPS, curves, phase_ends=[450, 1000], phase_tasks=["a", "b"])
    np.testing.assert_allclose(r, [[0.4, 0.6], [1.0, 0.0]])


def test_retention_table_from_metric_rows() -> None:
    acc = [0.0, 0.2, 0.6, 0.9, 0.8, 0.3, 0.2, 0.8, 0.85, 0.4, 0.35]
    rows = pd.DataFrame(
        [
            {"run": "r", "step": int(s), "task": "rare", "metric": "acc", "value": v}
            for s, v in zip(STEPS, acc, strict=True)
        ]
        + [
            {"run": "r", "step": int(s), "task": "rare", "metric": "loss", "value": 1.0}
            for s in STEPS
        ]
    )
    (row,) = retention_table(rows.sample(frac=1, random_state=0), learn=0.85).to_dict("records")
    assert (
        row["time_to_learn"] == 300
        and row["forget_events"] == 2
        and row["first_forget_step"] == 500
    )
    assert row["peak"] == 0.9 and row["final"] == pytest.approx((0.85 + 0.4 + 0.35) / 3)
