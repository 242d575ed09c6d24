"""The interference ledger: its split is the real update, sums to the measured loss change,
and leaves training bit-identical."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch

from raremix.config import load_config
from raremix.probes.ledger import adamw_split
from raremix.results.rows import load_rows
from raremix.trainer import train
from tiny_configs import tiny_config


def ledger_run(tmp_path: Path, name: str, **over: Any) -> list[dict[str, Any]]:
    cfg = tiny_config(steps=30, eval_every=10, optim={"lr": 3e-4, "warmup_steps": 1}, **over)
    train(load_config(data=cfg), tmp_path / name / "run")  # one run id: the directory's name
    return load_rows(tmp_path / name / "run" / "metrics.jsonl")


def test_adamw_split_is_the_step_adamw_takes() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    params = list(model.parameters())
    groups = [
        {"params": params[:1], "weight_decay": 0.1},
        {"params": params[1:], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=0.01, betas=(0.9, 0.95))
    for step in range(4):  # states with real moments, and a clipped step
        grads = [torch.randn_like(p) for p in params]
        flat_g = torch.cat([g.reshape(-1) for g in grads])
        split = adamw_split(opt, params, flat_g, clip=0.5)
        before = torch.cat([p.detach().reshape(-1) for p in params])
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        real = torch.cat([p.detach().reshape(-1) for p in params]) - before
        assert torch.allclose(real, split.history + split.part(flat_g), atol=1e-7), step
        # the split is additive: two halves of the gradient move θ by the sum of their parts
        half = split.part(flat_g * 0.3) + split.part(flat_g * 0.7)
        assert torch.allclose(half, split.part(flat_g), atol=1e-9)


def test_split_sums_to_the_measured_change(tmp_path: Path) -> None:
    rows = ledger_run(tmp_path, "ledger", ledger={"every": 1, "victims": ["successor", "copy"]})
    at: dict[int, dict[tuple[str, str], float]] = defaultdict(dict)
    for r in rows:
        if r["metric"].startswith("ledger/"):
            at[r["step"]][(r["task"], r["metric"].removeprefix("ledger/"))] = r["value"]
    assert sorted(at) == list(range(1, 31))  # every step measured
    for step, e in at.items():
        assert e[("", "update_error")] < 1e-3  # the split update is the one AdamW made
        for v in ("successor", "copy"):
            parts = e[(v, "from_common")] + e[(v, "from_rare")] + e[(v, "from_history")]
            assert parts == pytest.approx(e[(v, "predicted")], rel=1e-9, abs=1e-12)
            # small lr: first order holds, the parts sum to the measured change
            assert parts == pytest.approx(e[(v, "measured")], rel=0.05, abs=2e-5), (step, v)
            by_task = [x for (t, m), x in e.items() if m == "from_task" and t.endswith(f">{v}")]
            assert sum(by_task) == pytest.approx(e[(v, "from_common")] + e[(v, "from_rare")])
    # the rare victim's own examples are its "rare" part; the common task's rows come from copy
    assert any(e[("successor", "from_rare")] != 0 for e in at.values())
    cum = [at[s][("successor", "cum_measured")] for s in sorted(at)]
    steps = [at[s][("successor", "measured")] for s in sorted(at)]
    assert cum[-1] == pytest.approx(sum(steps))


def test_training_rows_are_bit_identical_with_the_ledger(tmp_path: Path) -> None:
    plain = ledger_run(tmp_path, "plain")
    ledgered = ledger_run(tmp_path, "ledger", ledger={"every": 3})
    assert [r for r in ledgered if not r["metric"].startswith("ledger/")] == plain
    assert {r["step"] for r in ledgered if r["metric"] == "ledger/measured"} == set(range(3, 31, 3))


def test_a_resumed_run_continues_the_ledger_exactly(tmp_path: Path) -> None:
    from raremix.callbacks import Callback

    class StopAt(Callback):
        def on_step_end(self, state) -> None:  # type: ignore[no-untyped-def]
            if state.step == 25:
                raise KeyboardInterrupt

    cfg = load_config(data=tiny_config(steps=30, eval_every=10, ledger={"every": 2}))
    train(cfg, tmp_path / "whole" / "run")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "part" / "run", callbacks=[StopAt()])
    train(cfg, tmp_path / "part" / "run")  # from the step-20 checkpoint: cumulative rows go on
    whole, part = (tmp_path / d / "run" / "metrics.jsonl" for d in ("whole", "part"))
    assert part.read_text() == whole.read_text()


def test_satisfied_early_is_where_the_common_norm_falls_below_the_fraction() -> None:
    import pandas as pd

    from raremix.probes.satisfied import satisfied_flops, satisfied_step

    assert satisfied_step([0, 10, 20, 30], [4.0, 2.0, 0.3, 0.5], 0.1) == 20
    assert satisfied_step([0, 10], [4.0, 2.0], 0.1) is None
    rows = pd.DataFrame(
        {
            "step": [0, 10, 20],
            "metric": "probe/common_grad_norm",
            "task": "",
            "value": [5.0, 1.0, 0.2],
        }
    )
    assert satisfied_flops(rows, flops_per_step=1e6, fraction=0.1) == 2e7


def test_ledger_figure_draws_real_ledger_rows_and_skips_all_zero_ones(tmp_path: Path) -> None:
    import pandas as pd

    from raremix.report.ledger_figures import ledger_figure, satisfied_figure

    frames, runs = [], []
    for d in (8, 16):
        model = {"size": None, "n_layer": 1, "d_model": d, "n_head": 2}
        rows = ledger_run(tmp_path, f"d{d}", model=model, ledger={"every": 5})
        frame = pd.DataFrame(rows).assign(run_id=f"d{d}")
        frames.append(frame)
        runs.append(
            {
                "run_id": f"d{d}",
                "seed": 0,
                "size": f"d{d}",
                "params": d,
                "flops": 3e6,
                "rare": ["successor"],
            }
        )
    metrics, table = pd.concat(frames), pd.DataFrame(runs)
    fig = ledger_figure(metrics, table)
    assert fig is not None and len(fig.axes) == 2 and "common vs rare" in fig.texts[0].get_text()
    assert satisfied_figure(metrics, table) is not None
    zero = metrics.assign(value=0.0)
    assert ledger_figure(zero, table) is None and satisfied_figure(zero, table) is None
