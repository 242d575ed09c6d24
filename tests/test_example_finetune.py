"""The LoRA chat fine-tuning walk-through (examples/finetune_lora_chat.py), end to end:
a tiny offline Llama, per-task results and probes in TensorBoard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_lora_chat_walkthrough_shows_tasks_and_probes_in_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/finetune_lora_chat.py"),
            "--out",
            "ft",
            "--steps",
            "20",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            "HF_HUB_OFFLINE": "1",
            "PATH": str(Path(sys.executable).parent),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },  # this checkout's raremix
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "greet" in proc.stdout and "tensorboard --logdir" in proc.stdout
    facts = json.loads((tmp_path / "ft/run/summary.json").read_text())["facts"]
    assert 0 < facts["trainable_params"] < facts["params"] and facts["truncated"] > 0
    events = EventAccumulator(str(tmp_path / "ft/run/tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {f"{t}/acc" for t in ("greet", "add", "rev")} <= tags
    assert {"probe/interference/rev", "probe/entropy/greet", "train/loss"} <= tags
    assert [e.step for e in events.Scalars("rev/acc")] == [0, 20]
