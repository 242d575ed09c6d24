"""Shared fixtures: tiny, fast training configs."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

# one thread per test process: pytest-xdist runs two of them side by side on CI's 2 cores
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def tiny_config(**over: Any) -> dict[str, Any]:
    """A seconds-long run: two easy tasks, a d16 model."""
    cfg: dict[str, Any] = {
        "seed": 0,
        "steps": 60,
        "batch_size": 32,
        "eval_every": 20,
        "eval_examples": 64,
        "checkpoint_every": 20,
        "threads": 1,
        "rare": ["successor"],
        "tasks": {"copy": {"complexity": 3}, "successor": {"complexity": 2}},
        "model": {"size": None, "n_layer": 1, "d_model": 16, "n_head": 2},
        "mixture": {
            "strategy": "natural",
            "sources": [{"name": "copy", "size": 9000}, {"name": "successor", "size": 1000}],
        },
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def tiny() -> dict[str, Any]:
    return tiny_config()
