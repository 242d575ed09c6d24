import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.results.rows import read_rows
from raremix.tasks import in_heldout
from raremix.trainer import lr_at, train
from tiny_configs import tiny_config


def test_tiny_model_learns_an_easy_task(tmp_path: Path) -> None:
    cfg = load_config(
        data=tiny_config(
            steps=400,
            batch_size=64,
            eval_every=400,
            checkpoint_every=400,
            rare=[],
            tasks={"copy": {"complexity": 3}},
            model={"size": None, "n_layer": 2, "d_model": 32, "n_head": 2},
            mixture={"sources": [{"name": "copy", "size": 1000}]},
        )
    )
    state = train(cfg, tmp_path)
    assert state.last_eval["copy"]["acc"] >= 0.95
    assert state.last_eval["copy"]["loss"] < 0.2


def test_metric_rows_cover_every_task_and_eval_step(tmp_path: Path, tiny: dict) -> None:
    train(load_config(data=tiny), tmp_path)
    rows = read_rows(tmp_path / "metrics.jsonl")
    acc = rows[rows.metric == "acc"]
    assert set(acc.task) == {"copy", "successor"}
    assert sorted(acc.step.unique()) == [0, 20, 40, 60]
    assert ((acc.value >= 0) & (acc.value <= 1)).all()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["params"] > 0 and meta["config_hash"] == load_config(data=tiny).hash()


def test_every_accuracy_row_has_its_n_and_baselines_beside_it(tmp_path: Path, tiny: dict) -> None:
    train(load_config(data=tiny), tmp_path)
    rows = read_rows(tmp_path / "metrics.jsonl")
    wide = rows[rows.task != ""].pivot_table(
        index=["step", "task"], columns="metric", values="value"
    )
    assert wide[["acc", "n", "chance", "majority"]].notna().all().all()
    rule = wide.heuristic.unstack("task")  # copy has no rule: echoing is the task itself
    assert rule["successor"].notna().all() and rule["copy"].isna().all()
    # successor(2) holds out whichever of 0..99 the hash picks: fewer than eval_examples = 64
    space = [str(i) for i in range(100)]
    n = wide.n.unstack("task")
    assert (n["successor"] == in_heldout(space).sum()).all() and (n["copy"] == 64).all()
    assert (wide.chance.xs("successor", level="task") == 1 / 1000).all()


def test_resume_in_process_is_bit_exact(tmp_path: Path, tiny: dict) -> None:
    whole = tmp_path / "whole" / "run"
    train(load_config(data=tiny), whole)
    part = tmp_path / "part" / "run"
    # stop after 30 steps (checkpoint at 20), then resume to the end
    from raremix.callbacks import Callback

    class StopAt(Callback):
        def on_step_end(self, state) -> None:  # type: ignore[no-untyped-def]
            if state.step == 30:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load_config(data=tiny), part, callbacks=[StopAt()])
    train(load_config(data=tiny), part)
    assert (part / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()


@pytest.mark.slow
def test_sigkill_mid_run_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    cfg = tiny_config(steps=200, eval_every=25, checkpoint_every=10)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cli = [sys.executable, "-m", "raremix", "train", str(path)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(
        [*cli, "--out", str(tmp_path / "whole" / "run")], check=True, capture_output=True, env=env
    )

    killed = tmp_path / "killed" / "run"
    proc = subprocess.Popen(
        [*cli, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.time() + 120
    meta = killed / "checkpoint" / "meta.json"
    while time.time() < deadline:
        if meta.exists() and json.loads(meta.read_text())["step"] >= 50:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(meta.read_text())["step"]
    assert 50 <= done < 200, "the run must be killed mid-way"
    subprocess.run([*cli, "--out", str(killed)], check=True, capture_output=True, env=env)
    assert (killed / "metrics.jsonl").read_text() == (
        tmp_path / "whole" / "run" / "metrics.jsonl"
    ).read_text()


def test_checkpoint_from_another_model_shape_is_a_clear_error(tmp_path: Path, tiny: dict) -> None:
    train(load_config(data=tiny), tmp_path)
    wider = tiny_config(model={"size": None, "n_layer": 1, "d_model": 24, "n_head": 2})
    with pytest.raises(RaremixError, match="different model"):
        train(load_config(data=wider), tmp_path)


def test_lr_schedule_warms_up_then_decays() -> None:
    o = load_config(
        data=tiny_config(optim={"lr": 1.0, "warmup_steps": 10, "min_lr_ratio": 0.1})
    ).optim
    assert lr_at(0, 100, o) == pytest.approx(0.1)
    assert lr_at(9, 100, o) == pytest.approx(1.0)
    assert lr_at(99, 100, o) == pytest.approx(0.1, abs=0.01)
    assert lr_at(50, 100, o) < lr_at(20, 100, o)
