"""Tiny, seconds-long training configs shared by the tests."""

from __future__ import annotations

from typing import Any


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
