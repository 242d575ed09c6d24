"""Probe metrics from a `transformers.Trainer` reach its `report_to` trackers (TensorBoard)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # transformers.Trainer needs it
pytest.importorskip("tensorboard")

from raremix.callbacks.hf import add_probe_callback
from tests.probes.test_probes_hf import examples, probe_batches, tiny_model


def test_probe_metrics_reach_report_to_tensorboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import Trainer, TrainingArguments

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    ids, labels = examples(1, 32, seed=0)
    data = [{"input_ids": i, "labels": y} for i, y in zip(ids, labels, strict=True)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=8,
                             report_to=["tensorboard"],
                             save_strategy="no", use_cpu=True, disable_tqdm=True)  # fmt: skip
    trainer = Trainer(model=tiny_model(), args=args, train_dataset=data)
    cb = add_probe_callback(trainer, probe_batches(), every=2, rare=["rare"])
    trainer.train()

    (events_dir,) = {p.parent for p in (tmp_path / "tb").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(events_dir))
    events.Reload()
    want = {r["step"]: r["value"] for r in cb.rows if r["metric"] == "probe/interference" and r["task"] == "rare"}
    assert sorted(want) == [0, 2, 4]
    # transformers' TensorBoardCallback files logs under train/
    got = {e.step: e.value for e in events.Scalars("train/probe/interference/rare")}
    assert got == pytest.approx(want, rel=1e-6)
    history = [h for h in trainer.state.log_history if "probe/interference/rare" in h]
    assert [h["step"] for h in history] == [0, 2, 4]  # and kept in log_history, once per probe
