"""Data-parallel training: 2 CPU processes on gloo against one process with the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from raremix.callbacks import Callback
from raremix.config import load_config
from raremix.results.rows import load_rows
from raremix.trainer import TrainState, train
from tiny_configs import tiny_config

STEPS, STOP = 40, 20


def config(**over: Any) -> dict[str, Any]:
    return tiny_config(steps=STEPS, eval_every=10, checkpoint_every=10, batch_size=32, **over)


ADAPTIVE = {"adaptive": {"rule": "exp3", "every": 10, "batch": 16}}


class Record(Callback):
    """What this rank trained on at each step (token rows, padding cut) and the loss it reported."""

    all_ranks = True

    def __init__(self) -> None:
        self.rows: list[list[tuple[int, ...]]] = []
        self.losses: list[float] = []

    def on_step_end(self, state: TrainState) -> None:
        ids, lengths = state.batch.idx.tolist(), state.batch.lengths.tolist()
        self.rows.append([tuple(r[:n]) for r, n in zip(ids, lengths, strict=True)])
        self.losses.append(state.loss)


class StopAt(Callback):
    all_ranks = True  # every rank must stop at the same step

    def on_step_end(self, state: TrainState) -> None:
        state.stop = state.step == STOP


def _worker(rank: int, world: int, port: int, tmp: Path) -> None:
    # what torchrun puts in the environment
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")  # one group for both runs below
    record = Record()
    train(load_config(data=config()), tmp / "ddp", callbacks=[record])
    train(load_config(data=config()), tmp / "stopped", callbacks=[StopAt()])
    adaptive = Record()  # per-task signals are all-reduced: every rank takes the same weights
    train(load_config(data=config(**ADAPTIVE)), tmp / "adaptive", callbacks=[adaptive])
    torch.save(
        {"rows": record.rows, "losses": record.losses, "adaptive": adaptive.rows},
        tmp / f"rank{rank}.pt",
    )
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def values(run_dir: Path) -> dict[tuple[int, str, str], float]:
    return {
        (r["step"], r["task"], r["metric"]): r["value"]
        for r in load_rows(run_dir / "metrics.jsonl")
    }


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process_and_resume_on_one(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = Record()
    train(load_config(data=config()), tmp_path / "single", callbacks=[single])

    # the union of what the ranks saw is the single-process stream, in order, step by step
    assert len(single.rows) == STEPS
    for step in range(STEPS):
        assert ranks[0]["rows"][step] + ranks[1]["rows"][step] == single.rows[step]
    assert len(ranks[0]["rows"][0]) == len(ranks[1]["rows"][0]) == 16
    # the loss is the global batch's, equal on both ranks and to the one-process loss
    assert ranks[0]["losses"] == ranks[1]["losses"]
    np.testing.assert_allclose(ranks[0]["losses"], single.losses, rtol=1e-4)

    # rank 0's metric rows (evaluated on the trained weights) match the one-process run's
    ddp, one = values(tmp_path / "ddp"), values(tmp_path / "single")
    assert ddp.keys() == one.keys()
    keys = sorted(one)
    np.testing.assert_allclose([ddp[k] for k in keys], [one[k] for k in keys], atol=2e-3)

    # a checkpoint written by 2 ranks at step STOP resumes in 1 process to the same end
    stopped = tmp_path / "stopped"
    assert max(k[0] for k in values(stopped)) == STOP
    train(load_config(data=config()), stopped)
    resumed = values(stopped)
    assert resumed.keys() == one.keys()
    np.testing.assert_allclose([resumed[k] for k in keys], [one[k] for k in keys], atol=2e-3)

    # adaptive mixing under DDP: the weights move, and the ranks still see the one-process stream
    single_adaptive = Record()
    train(
        load_config(data=config(**ADAPTIVE)), tmp_path / "adaptive-one", callbacks=[single_adaptive]
    )
    for step in range(STEPS):
        assert ranks[0]["adaptive"][step] + ranks[1]["adaptive"][step] == single_adaptive.rows[step]
    weights, weights_one = values(tmp_path / "adaptive"), values(tmp_path / "adaptive-one")
    moved = [k for k in weights if k[2] == "weight" and k[0] == 30]
    assert moved and all(abs(weights[k] - weights_one[k]) < 1e-6 for k in moved)
    assert weights[(30, "successor", "weight")] != weights[(0, "successor", "weight")]
