"""The probe callback in raremix training: rows appear, the trajectory does not change."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_config
from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.results.rows import read_rows
from raremix.trainer import train

NAMES = {
    "probe/grad_norm",
    "probe/grad_cos",
    "probe/interference",
    "probe/first_order",
    "probe/first_order_real",
    "probe/neuron_share",
    "probe/dead_neurons",
    "probe/entropy",
    "probe/probe_task_acc",
    "probe/probe_feature_acc",
    "probe/common_grad_norm",
}


def test_probes_add_rows_without_changing_training(tmp_path: Path) -> None:
    plain = train(load_config(data=tiny_config()), tmp_path / "plain")
    probed = train(load_config(data=tiny_config(probes={"batch": 16})), tmp_path / "probed")
    a = read_rows(tmp_path / "plain" / "metrics.jsonl").drop(columns="run")
    b = read_rows(tmp_path / "probed" / "metrics.jsonl").drop(columns="run")
    is_probe = b.metric.str.startswith("probe/")
    # bit-identical accuracy, loss, train_loss and lr rows, in the same order
    assert b[~is_probe].reset_index(drop=True).equals(a.reset_index(drop=True))
    probes = b[is_probe]
    assert set(probes.metric) == NAMES
    assert sorted(probes.step.unique()) == [0, 20, 40, 60]  # with each evaluation by default
    assert set(probes[probes.metric == "probe/interference"].task) == {"successor"}
    assert set(probes[probes.metric == "probe/grad_cos"].task) == {"copy|successor"}
    assert probed.facts["probe_seconds"] > 0 and "probe_seconds" not in plain.facts


def test_probe_cadence_and_resume_are_exact(tmp_path: Path) -> None:
    from raremix.callbacks import Callback

    cfg = tiny_config(probes={"every": 15, "batch": 8, "probes": ["interference", "first_order"]})
    train(load_config(data=cfg), tmp_path / "whole" / "run")
    rows = read_rows(tmp_path / "whole" / "run" / "metrics.jsonl")
    probes = rows[rows.metric.str.startswith("probe/")]
    assert sorted(probes.step.unique()) == [0, 15, 30, 45, 60]
    assert set(probes.metric) == {
        "probe/grad_norm",
        "probe/grad_cos",
        "probe/interference",
        "probe/first_order",
        "probe/first_order_real",
        "probe/common_grad_norm",
    }

    class StopAt(Callback):
        def on_step_end(self, state) -> None:  # type: ignore[no-untyped-def]
            if state.step == 50:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load_config(data=cfg), tmp_path / "part" / "run", callbacks=[StopAt()])
    train(load_config(data=cfg), tmp_path / "part" / "run")
    assert (tmp_path / "part" / "run" / "metrics.jsonl").read_text() == (
        tmp_path / "whole" / "run" / "metrics.jsonl"
    ).read_text()


def test_probe_config_validates_and_keeps_old_hashes() -> None:
    with pytest.raises(RaremixError, match="unknown probe 'gradz'"):
        load_config(data=tiny_config(probes={"probes": ["gradz"]}))
    with pytest.raises(RaremixError, match=r"probes\.evrey"):
        load_config(data=tiny_config(probes={"evrey": 5}))
    plain = load_config(data=tiny_config())
    assert plain.hash() == load_config(data=tiny_config(probes=None)).hash()
    assert plain.hash() != load_config(data=tiny_config(probes={})).hash()
