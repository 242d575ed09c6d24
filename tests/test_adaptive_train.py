"""Adaptive mixing in the trainer: weights move, the stream redraws, a killed run resumes exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raremix.callbacks import Callback
from raremix.config import load_config
from raremix.data import BatchStream, TaskData
from raremix.errors import RaremixError
from raremix.mixture import build_sampler
from raremix.results.rows import read_rows
from raremix.trainer import train
from tiny_configs import tiny_config


def _adaptive(rule: str, **params: Any) -> dict[str, Any]:
    return tiny_config(
        steps=40,
        checkpoint_every=20,
        adaptive={"rule": rule, "params": params, "every": 10, "batch": 16},
    )


def test_stream_set_weights_drops_the_look_ahead_exactly() -> None:
    cfg = load_config(data=tiny_config())
    new = np.array([0.3, 0.7])

    def sampler():  # type: ignore[no-untyped-def]
        return build_sampler(cfg.mixture, seed=0, batch_size=32, total_steps=60)

    direct = sampler()  # no look-ahead: the weights change exactly after batch 5
    want = []
    for step in range(12):
        if step == 5:
            direct.set_weights(new)
        want.append(direct.next_batch()[0])
    data = TaskData(cfg, list(direct.names))
    stream = BatchStream(sampler(), data, 60)
    got = []
    for step in range(12):
        if step == 5:
            stream.set_weights(new)  # 11 batches of look-ahead were drawn under the old weights
        got.append(stream.next(step))
    ids = {
        n: data.tokenizer.encode(
            [data.prefixes[n]], *data.examples(n, np.arange(1), 0, "train")
        ).idx[0, 0]
        for n in direct.names
    }
    for step, (srcs, batch) in enumerate(zip(want, got, strict=True)):
        assert batch is not None
        first = batch.idx[:, 0]  # each example opens with its task's token
        assert [int(t) for t in first] == [int(ids[direct.names[s]]) for s in srcs], step
    # a resume from the state after the change continues the same stream
    state = stream.state_dict()
    again = BatchStream(sampler(), data, 60)
    again.load_state_dict(state)
    assert np.array_equal(again.next(12).idx, stream.next(12).idx)  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize(
    "rule, params",
    [
        ("exp3", {"start": "uniform"}),
        ("protect", {"target": 0.99}),
        ("doremi", {}),
        ("ledger", {"harm": -1.0}),  # every update counts as harmful: raised every update
    ],
)
def test_adaptive_run_moves_weights_and_resumes_bit_exactly(
    tmp_path: Path, rule: str, params: dict[str, Any]
) -> None:
    cfg = _adaptive(rule, **params)
    whole = tmp_path / "whole" / "run"
    state = train(load_config(data=cfg), whole)
    rows = read_rows(whole / "metrics.jsonl")
    w = rows[rows.metric == "weight"].pivot_table(index="step", columns="task", values="value")
    assert list(w.index) == [0, 10, 20, 30]  # step 0 and every 10 steps, not at the last step
    assert np.allclose(w.sum(axis=1), 1.0) and (w.to_numpy() >= 0.01 - 1e-12).all()
    assert not np.allclose(w.iloc[-1].to_numpy(), w.iloc[0].to_numpy(), atol=1e-3)  # they moved
    assert state.facts["adaptive_updates"] == 3 and state.facts["adaptive_flops"] > 0
    if rule == "ledger":  # the predicted harm is measured and written for the rare task only
        harm = rows[rows.metric == "adaptive/harm"]
        assert set(harm.task) == {"successor"} and len(harm) == 3
        assert np.isfinite(harm.value).all() and (harm.value != 0).all()
    if rule in ("protect", "ledger"):  # successor is rare and raised every update
        assert (
            w["successor"].is_monotonic_increasing
            and w["successor"].iloc[-1] > w["successor"].iloc[0]
        )
    if rule == "doremi":
        assert state.facts["reference_flops"] == state.facts["flops"]
        assert (whole / "reference" / "summary.json").exists()

    class StopAt(Callback):
        def on_step_end(self, state) -> None:  # type: ignore[no-untyped-def]
            if state.step == 30:
                raise KeyboardInterrupt

    part = tmp_path / "part" / "run"
    with pytest.raises(
        KeyboardInterrupt
    ):  # killed after the checkpoint at 20, past an update at 30
        train(load_config(data=cfg), part, callbacks=[StopAt()])
    resumed = train(load_config(data=cfg), part)
    assert (part / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()
    for key in ("adaptive_updates", "adaptive_flops", "reference_flops"):  # kept over the resume
        assert resumed.facts.get(key) == state.facts.get(key)


def test_adaptive_config_errors_are_one_line() -> None:
    with pytest.raises(RaremixError, match="unknown adaptive rule 'bandit'"):
        load_config(data=tiny_config(adaptive={"rule": "bandit"}))
    with pytest.raises(RaremixError, match=r"unknown key 'adaptive\.evrey'.*did you mean 'every'"):
        load_config(data=tiny_config(adaptive={"rule": "exp3", "evrey": 5}))
    with pytest.raises(RaremixError, match="unknown source 'sucessor'"):
        load_config(
            data=tiny_config(adaptive={"rule": "protect", "params": {"tasks": ["sucessor"]}})
        )
    plain = load_config(data=tiny_config())
    assert plain.hash() == load_config(data={**tiny_config(), "adaptive": None}).hash()
