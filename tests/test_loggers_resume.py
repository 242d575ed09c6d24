"""Trackers get every metric row (probes included), and a resumed run continues them:
TensorBoard keeps the checkpoint step's evaluation, W&B continues the same run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from raremix.callbacks import Callback
from raremix.callbacks.loggers import TensorBoardLogger, WandbLogger, row_name
from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.results.rows import load_rows
from raremix.trainer import train
from tiny_configs import tiny_config


class Interrupt(Callback):
    def on_step_end(self, state: Any) -> None:
        if state.step == 15:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resumed_run_keeps_the_checkpoint_step_in_tensorboard_and_continues_its_wandb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = load_config(
        data=tiny_config(
            steps=30,
            eval_every=10,
            checkpoint_every=10,
            probes={"batch": 8, "probes": ["interference", "entropy"]},
        )
    )
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # killed at 15; the checkpoint is at 10
        train(cfg, run_dir, callbacks=[TensorBoardLogger(), WandbLogger(), Interrupt()])
    train(cfg, run_dir, callbacks=[TensorBoardLogger(), WandbLogger()])

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    # the evaluation at the checkpoint's step (10) was logged before the kill and stays
    assert [e.step for e in events.Scalars("copy/acc")] == [0, 10, 20, 30]
    rows = load_rows(run_dir / "metrics.jsonl")
    probes = {
        (row_name(r["task"], r["metric"]), r["step"]): r["value"]
        for r in rows
        if r["metric"].startswith("probe/")
    }
    assert ("probe/interference/successor", 30) in probes and (
        "probe/entropy/successor",
        30,
    ) in probes
    for (name, step), value in probes.items():  # every probe row reached TensorBoard, once per step
        logged = {e.step: e.value for e in events.Scalars(name)}
        assert logged[step] == pytest.approx(value, rel=1e-6)
    assert [e.step for e in events.Scalars("probe/interference/successor")] == [0, 10, 20, 30]

    # both W&B sessions are the same run: one id, kept in the run directory, resume="allow"
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    run_id = (run_dir / "wandb" / "raremix_run_id").read_text()
    # offline-run-<time>-<id>; W&B appends -1 when both sessions start within one second
    assert all(re.search(rf"-{run_id}(-\d+)?$", r.name) for r in runs), [r.name for r in runs]


def test_wandb_mode_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offlne")
    with pytest.raises(
        RaremixError, match="W&B mode 'offlne' \\(WANDB_MODE\\): use one of offline"
    ):
        WandbLogger()
    assert WandbLogger(mode="disabled").mode == "disabled"
