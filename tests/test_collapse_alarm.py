"""The collapse alarm: it fires on a run built to forget, not on a stable one, and can respond."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raremix.callbacks.collapse import CollapseAlarm, collapses
from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.results.rows import load_rows
from raremix.trainer import train
from tiny_configs import tiny_config

ALARM = {"acquired": 0.8, "below": 0.5, "consecutive": 2}


def copy_then_switch(switch: bool, **alarm: Any) -> dict[str, Any]:
    """copy (the watched task) learned at 90% of the mix; optionally switched off at 60%."""
    cfg = tiny_config(
        steps=300,
        eval_every=15,
        checkpoint_every=1000,
        rare=["copy"],
        tasks={"copy": {"complexity": 2}, "successor": {"complexity": 2}},
        model={"size": None, "n_layer": 2, "d_model": 32, "n_head": 2},
        optim={"lr": 0.01, "warmup_steps": 10},
        collapse_alarm={**ALARM, **alarm},
    )
    cfg["mixture"] = {
        "sources": [
            {"name": "copy", "size": 9000, "weight": 0.9},
            {"name": "successor", "size": 1000, "weight": 0.1},
        ],
    }
    if switch:
        cfg["mixture"]["schedule"] = {
            "phases": [{"start": 0}, {"start": 0.6, "weights": {"copy": 0, "successor": 1}}]
        }
    return cfg


def alarm_rows(run: Path) -> list[dict[str, Any]]:
    return [r for r in load_rows(run / "metrics.jsonl") if r["metric"].startswith("collapse")]


def test_fires_on_a_run_built_to_forget(tmp_path: Path) -> None:
    state = train(load_config(data=copy_then_switch(True)), tmp_path)
    rows = alarm_rows(tmp_path)
    assert [(r["task"], r["metric"]) for r in rows] == [
        ("copy", "collapse_alarm"),
        ("copy", "collapse_peak"),
    ]
    (event,) = state.facts["events"]
    assert event["task"] == "copy" and event["step"] > 180  # after the switch, not before
    assert event["peak"] >= 0.8 and event["acc"] < 0.5 and rows[0]["value"] == event["acc"]


def test_quiet_on_a_stable_run(tmp_path: Path) -> None:
    state = train(load_config(data=copy_then_switch(False)), tmp_path)
    assert state.last_eval["copy"]["acc"] >= 0.8  # it was acquired and kept
    assert alarm_rows(tmp_path) == [] and state.facts["events"] == []


@pytest.mark.slow
@pytest.mark.parametrize("respond", ["boost", "adaptive"])
def test_an_alarm_hands_the_mix_to_a_response(tmp_path: Path, respond: str) -> None:
    extra: dict[str, Any] = {"respond": respond}
    if respond == "adaptive":
        extra["adaptive"] = {"rule": "protect", "every": 15, "batch": 16, "params": {"target": 0.8}}
    state = train(load_config(data=copy_then_switch(True, **extra)), tmp_path)
    (event,) = state.facts["events"]
    copy = state.sampler.names.index("copy")
    # the schedule had switched copy off; the response gave it a share again
    assert state.sampler.weights_at(state.step)[copy] > 0.05
    if respond == "adaptive":
        weights = [r for r in load_rows(tmp_path / "metrics.jsonl") if r["metric"] == "weight"]
        assert weights and min(r["step"] for r in weights) == event["step"]


def test_collapses_on_curves() -> None:
    rule = CollapseAlarm(**ALARM)
    steps = list(range(0, 100, 10))
    # acquired, lost for two evaluations (alarm), re-acquired (re-armed), lost again
    acc = [0.1, 0.9, 0.95, 0.4, 0.3, 0.9, 0.2, 0.6, 0.1, 0.1]
    got = collapses(steps, acc, rule)
    assert [(c.peak_step, c.peak, c.step) for c in got] == [(20, 0.95, 40), (50, 0.9, 90)]
    assert collapses(steps, [0.1, 0.4, 0.3, 0.2, 0.1] * 2, rule) == []  # never acquired
    assert collapses(steps, [0.9, 0.4, 0.6, 0.4, 0.6] * 2, rule) == []  # never 2 low in a row


def test_bad_alarm_config_is_one_line() -> None:
    with pytest.raises(RaremixError, match=r"below .* must be under acquired"):
        load_config(data=tiny_config(collapse_alarm={"acquired": 0.5, "below": 0.6}))
    with pytest.raises(RaremixError, match="set both or neither"):
        load_config(data=tiny_config(collapse_alarm={"respond": "adaptive"}))
    with pytest.raises(RaremixError, match=r"collapse_alarm\.tasks: unknown source"):
        load_config(data=tiny_config(collapse_alarm={"tasks": ["nope"]}))
