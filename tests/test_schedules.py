"""Learning-rate schedules, the per-size rate rule, the evaluation grid and early stopping."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli_runner import cli
from raremix.config import OptimConfig, load_config
from raremix.configbase import load
from raremix.results.rows import load_rows
from raremix.schedules import decay_start, eval_steps, lr_at
from raremix.trainer import train
from tiny_configs import tiny_config


def optim(**over: Any) -> OptimConfig:
    return load(OptimConfig, {"lr": 1e-2, "warmup_steps": 10, **over}, "optim")


def test_cosine_decays_over_exactly_the_budget() -> None:
    o = optim()
    assert lr_at(9, 100, o) == pytest.approx(1e-2)  # warm-up ends at the peak
    assert lr_at(10, 100, o) == pytest.approx(1e-2)
    assert lr_at(100, 100, o) == pytest.approx(1e-3)  # min_lr_ratio 0.1
    rates = [lr_at(t, 100, o) for t in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    # the rate at step 50 depends on the budget: why cosine cannot say "learned late"
    assert lr_at(50, 100, o) < lr_at(50, 300, o)


def test_constant_and_wsd_rates_do_not_depend_on_the_budget_before_the_decay() -> None:
    const = optim(schedule="constant")
    assert {lr_at(t, n, const) for t in range(10, 200) for n in (200, 400, 10_000)} == {1e-2}
    w = optim(schedule="wsd", decay_steps=50, decay_start=150, min_lr_ratio=0.0)
    assert [lr_at(t, 200, w) for t in range(150)] == [lr_at(t, 400, w) for t in range(150)]
    assert lr_at(149, 200, w) == 1e-2
    assert lr_at(175, 200, w) == pytest.approx(5e-3)  # linear: half-way, half the rate
    assert lr_at(200, 400, w) == 0.0
    assert lr_at(300, 400, w) == 0.0  # holds the floor after the decay
    # undeclared start: the decay ends the run; a fraction: a fraction of the run
    assert decay_start(1000, optim(schedule="wsd", decay_steps=100)) == 900
    assert (
        decay_start(1000, optim(schedule="wsd", decay_steps=100, decay_start_fraction=0.5)) == 500
    )


def test_lr_rule_scales_the_peak_with_params() -> None:
    o = optim(schedule="constant", lr_rule={"ref_params": 25_000, "exponent": -0.5})
    assert lr_at(50, 100, o, 25_000) == pytest.approx(1e-2)
    assert lr_at(50, 100, o, 100_000) == pytest.approx(5e-3)  # 4× the params, half the rate


def test_eval_grid_is_log_dense_early_and_keeps_the_linear_one() -> None:
    assert eval_steps(100, 25) == [25, 50, 75, 100]  # the old cadence, unchanged by default
    log = eval_steps(1000, 250, "log", per_decade=5)
    assert {250, 500, 750, 1000} <= set(log)
    assert log[:6] == [1, 2, 3, 4, 6, 10]  # round(10^(i/5)), repeats dropped
    # a shorter run evaluates where a longer one does, up to its end
    assert [s for s in eval_steps(1000, 250, "log", 5) if s < 300] == eval_steps(
        300, 250, "log", 5
    )[:-1]


def run_rows(run_dir: Path) -> list[tuple[int, str, str, float]]:
    """A run's rows without the run id (which is the config's hash)."""
    return [
        (r["step"], r["task"], r["metric"], r["value"])
        for r in load_rows(run_dir / "metrics.jsonl")
    ]


def test_a_longer_constant_run_continues_a_shorter_one_exactly(tmp_path: Path) -> None:
    over = {
        "eval_every": 20,
        "eval_schedule": "log",
        "eval_per_decade": 4,
        "optim": {
            "schedule": "constant",
            "warmup_steps": 5,
            "lr_rule": {"ref_params": 1000, "exponent": -0.5},
        },
    }
    short = train(load_config(data=tiny_config(steps=40, **over)), tmp_path / "short")
    long = train(load_config(data=tiny_config(steps=80, **over)), tmp_path / "long")
    a, b = run_rows(tmp_path / "short"), run_rows(tmp_path / "long")
    assert a == [row for row in b if row[0] <= 40]
    assert sorted({r[0] for r in b}) == [
        0,
        *eval_steps(80, 20, "log", 4),
    ]  # 1, 2, 3, 6, 10, 18, 20…
    # the rule's rate is the one used and recorded: the lr rows after warm-up, meta, summary
    peak = 3e-3 * (long.facts["params"] / 1000) ** -0.5
    assert long.facts["lr_peak"] == pytest.approx(peak)
    rates = [v for s, _, m, v in b if m == "lr" and s > 5]
    assert len(rates) > 5 and rates == pytest.approx([peak] * len(rates))
    meta = json.loads((tmp_path / "long" / "meta.json").read_text())
    assert meta["lr_peak"] == pytest.approx(peak)
    assert meta["flops"] == meta["flops_per_step"] * 80
    assert short.facts["lr_peak"] == long.facts["lr_peak"]


def test_stop_when_learned_ends_the_run_and_stays_stopped_on_rerun(tmp_path: Path) -> None:
    # threshold 0 holds at every evaluation: learned at step 0, confirmed at the 2nd (step 20)
    cfg = load_config(
        data=tiny_config(
            steps=60,
            checkpoint_every=30,
            stop_when_learned={"tasks": ["copy"], "threshold": 0.0, "consecutive": 2},
        )
    )
    state = train(cfg, tmp_path / "run")
    assert state.step == 20
    assert "learned copy" in state.facts["stopped"]
    rows = run_rows(tmp_path / "run")
    assert (20, "copy", "onset_step", 0.0) in rows
    assert (20, "", "stopped_learned", 1.0) in rows
    assert max(r[0] for r in rows) == 20
    again = train(cfg, tmp_path / "run")  # resumes from the checkpoint at 20 and stops there
    assert again.step == 20
    assert run_rows(tmp_path / "run") == rows


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"optim": {"schedule": "cosin"}}, "unknown schedule 'cosin': did you mean 'cosine'?"),
        ({"optim": {"schedule": "wsd", "decay_steps": 80}}, "longer than the run (60 steps)"),
        (
            {"optim": {"schedule": "wsd", "decay_steps": 10, "decay_start": 60}},
            "beyond the run's 60 steps",
        ),
        ({"optim": {"schedule": "wsd", "decay_steps": 20, "decay_start": 50}}, "ends at step 70"),
        ({"optim": {"schedule": "wsd"}}, "needs decay_steps ≥ 1"),
        ({"optim": {"decay_steps": 10}}, "applies to schedule: wsd only"),
        (
            {"stop_when_learned": {"tasks": ["copy"], "threshold": 1.5}},
            "'stop_when_learned.threshold'",
        ),
        (
            {"stop_when_learned": {"tasks": ["copy"], "consecutive": 0}},
            "'stop_when_learned.consecutive'",
        ),
        ({"stop_when_learned": {"tasks": ["cpy"]}}, "unknown task 'cpy': did you mean 'copy'?"),
        ({"optim": {"lr_rule": {"exponent": float("nan")}}}, "'optim.lr_rule.exponent'"),
        ({"eval_per_decade": 5}, "applies to eval_schedule: log only"),
    ],
)
def test_bad_schedule_input_is_one_line_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    over: dict[str, Any],
    needle: str,
) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**over)))
    result = cli(capsys, monkeypatch, "train", str(path), "--out", str(tmp_path / "run"))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.err
    assert not (tmp_path / "run").exists()
