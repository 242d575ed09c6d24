"""A Hugging Face run rides raremix's one loop: probes and adaptive mixing, resumed bit-exactly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded

from raremix.callbacks import Callback
from raremix.hf import load_hf_config, train_hf
from raremix.hf.tiny import char_tokenizer, tiny_model
from raremix.results.rows import load_rows

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz :<>\n"


def rows() -> pa.Table:
    rng = np.random.default_rng(1)
    words = ["".join(rng.choice(list("abcdefghij"), 3)) for _ in range(120)]
    tasks = ["const"] * 90 + ["rev"] * 30
    responses = ["yes"] * 90 + [w[::-1] for w in words[90:]]
    return pa.table({"task": tasks, "prompt": [w + "\n" for w in words], "response": responses})


def config(model: Path) -> dict[str, Any]:
    return {
        "model": str(model),
        "steps": 12,
        "batch_size": 8,
        "eval_every": 6,
        "checkpoint_every": 6,
        "eval_examples": 8,
        "threads": 1,
        "rare": ["rev"],
        "optim": {"lr": 1e-2, "warmup_steps": 2},
        "data": {"path": "unused.jsonl"},
        "heldout": 0.2,
        "mixture": {"sources": [{"name": "const"}, {"name": "rev"}]},
        "probes": {"batch": 4, "every": 3, "probes": ["interference", "entropy"]},
        "adaptive": {"rule": "protect", "params": {"target": 0.99}, "every": 4, "batch": 4},
    }


class Interrupt(Callback):
    def on_step_end(self, state: Any) -> None:
        if state.step == 9:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_hf_run_with_probes_and_adaptive_mixing_resumes_bit_exactly(tmp_path: Path) -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()
    model = tiny_model("gpt2", char_tokenizer(CHARS), tmp_path / "gpt2")
    cfg = load_hf_config(data=config(model))

    whole = train_hf(cfg, tmp_path / "whole" / "run", table=rows())
    killed = tmp_path / "killed" / "run"
    with pytest.raises(KeyboardInterrupt):  # killed at step 9; the checkpoint is at 6
        train_hf(cfg, killed, table=rows(), callbacks=[Interrupt()])
    assert json.loads((killed / "checkpoint" / "meta.json").read_text())["step"] == 6
    resumed = train_hf(cfg, killed, table=rows())

    want, got = (
        load_rows(tmp_path / "whole" / "run" / "metrics.jsonl"),
        load_rows(killed / "metrics.jsonl"),
    )
    assert got == want  # every row, values bit for bit, the same run id
    metrics = {r["metric"] for r in want}
    assert {"probe/interference", "probe/entropy", "weight", "adaptive/acc"} <= metrics
    weights = [(r["step"], r["task"]) for r in want if r["metric"] == "weight"]
    assert weights == [(s, t) for s in (0, 4, 8) for t in ("const", "rev")]
    # protect raises the unlearned rare task's weight above its prior share
    w = {(r["step"], r["task"]): r["value"] for r in want if r["metric"] == "weight"}
    assert w[8, "rev"] > w[0, "rev"]
    assert resumed.facts["adaptive_updates"] == whole.facts["adaptive_updates"] == 2
    assert resumed.facts["flops"] == whole.facts["flops"] > 0
