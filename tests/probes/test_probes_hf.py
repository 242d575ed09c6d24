"""The Hugging Face callback on a tiny random GPT-2 built from a config (no download)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.trainer_callback import CallbackHandler, TrainerControl, TrainerState

from raremix.callbacks.hf import RaremixProbeCallback, add_probe_callback
from raremix.probes import shift_labels
from raremix.results.rows import read_rows

VOCAB = 20


def tiny_model() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=VOCAB,
            n_positions=16,
            bos_token_id=0,
            eos_token_id=0,
        )
    )


def examples(task: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Task token, 5 random tokens, then the task's answer (the same tokens, shifted by the task)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(3, VOCAB - 3, (n, 5), generator=gen)
    ids = torch.cat([torch.full((n, 1), task), x, x + task], dim=1)  # (n, 11)
    labels = ids.clone()
    labels[:, :6] = -100  # HF convention: labels aligned with the inputs
    return ids, labels


def probe_batches() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    out = {}
    for name, task in (("common", 1), ("rare", 2)):
        ids, labels = examples(task, 16, seed=100 + task)
        out[name] = (ids, shift_labels(labels))
    return out


def test_callback_in_the_trainer_event_loop(tmp_path: Path) -> None:
    """Drives the callback through transformers' own CallbackHandler, in the Trainer's event order."""
    from raremix.results.rows import MetricWriter

    model = tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    writer = MetricWriter(tmp_path / "metrics.jsonl", run="hf")
    cb = RaremixProbeCallback(probe_batches(), every=2, rare=["rare"], writer=writer)
    handler = CallbackHandler([cb], model, None, opt, None)
    args, state, control = (
        SimpleNamespace(max_grad_norm=1.0),
        TrainerState(max_steps=4),
        TrainerControl(),
    )
    train_ids, train_labels = examples(1, 32, seed=0)
    handler.on_train_begin(args, state, control)
    for step in range(4):
        rows = slice(8 * step, 8 * step + 8)
        loss = model(input_ids=train_ids[rows], labels=train_labels[rows]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        state.global_step = step + 1
        handler.on_step_end(args, state, control)
    writer.close()
    frame = read_rows(tmp_path / "metrics.jsonl")
    assert sorted(frame.step.unique()) == [0, 2, 4]
    assert {
        "probe/grad_cos",
        "probe/interference",
        "probe/first_order",
        "probe/neuron_share",
        "probe/probe_feature_acc",
        "probe/entropy",
    } <= set(frame.metric)
    assert len(cb.rows) == len(frame)
    assert state.log_history[-1]["step"] == 4 and "probe/interference/rare" in state.log_history[-1]
    assert model.training


def test_callback_with_transformers_trainer(tmp_path: Path) -> None:
    pytest.importorskip("accelerate")  # transformers.Trainer needs it
    from transformers import Trainer, TrainingArguments

    ids, labels = examples(1, 32, seed=0)
    data = [{"input_ids": i, "labels": y} for i, y in zip(ids, labels, strict=True)]
    cb = RaremixProbeCallback(probe_batches(), every=2, rare=["rare"])
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=8,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=tiny_model(), args=args, train_dataset=data, callbacks=[cb]).train()
    assert sorted({r["step"] for r in cb.rows}) == [0, 2, 4]
    assert {"probe/grad_cos", "probe/first_order"} <= {r["metric"] for r in cb.rows}


def test_probe_metrics_reach_report_to_tensorboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probe metrics from a Trainer bound by `add_probe_callback` reach its report_to trackers."""
    pytest.importorskip("accelerate")  # transformers.Trainer needs it
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import Trainer, TrainingArguments

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    ids, labels = examples(1, 32, seed=0)
    data = [{"input_ids": i, "labels": y} for i, y in zip(ids, labels, strict=True)]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=8,
        report_to=["tensorboard"],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=tiny_model(), args=args, train_dataset=data)
    cb = add_probe_callback(trainer, probe_batches(), every=2, rare=["rare"])
    trainer.train()

    (events_dir,) = {p.parent for p in (tmp_path / "tb").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(events_dir))
    events.Reload()
    want = {
        r["step"]: r["value"]
        for r in cb.rows
        if r["metric"] == "probe/interference" and r["task"] == "rare"
    }
    assert sorted(want) == [0, 2, 4]
    # transformers' TensorBoardCallback files logs under train/
    got = {e.step: e.value for e in events.Scalars("train/probe/interference/rare")}
    assert got == pytest.approx(want, rel=1e-6)
    history = [h for h in trainer.state.log_history if "probe/interference/rare" in h]
    assert [h["step"] for h in history] == [0, 2, 4]  # and kept in log_history, once per probe
