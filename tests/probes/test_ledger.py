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
    groups = [{"params": params[:1], "weight_decay": 0.1}, {"params": params[1:], "weight_decay": 0.0}]
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
