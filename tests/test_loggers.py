"""The optional loggers: a tiny run logs to TensorBoard, MLflow and W&B (offline), and the
values read back from each equal the run's own metric rows."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from raremix.callbacks.loggers import (
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
    flat_config,
    make_loggers,
)
from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.results.rows import load_rows
from raremix.trainer import train
from tiny_configs import tiny_config


def final_rows(run_dir: Path) -> dict[str, float]:
    """{"task/metric": value} of the last evaluation, and the train loss rows by step."""
    rows = load_rows(run_dir / "metrics.jsonl")
    last = max(r["step"] for r in rows)
    return {
        f"{r['task']}/{r['metric']}": r["value"] for r in rows if r["step"] == last and r["task"]
    }


def wandb_history(run_file: Path) -> Iterator[dict[str, float]]:
    """History rows of an offline W&B run file (a LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, buf = run_file.read_bytes(), 7, b""  # 7: the file header
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a record header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        buf, pos = buf + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            if record.WhichOneof("record_type") == "history":
                # "copy/acc" is stored as the nested key ["copy", "acc"]
                items = record.history.item
                yield {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


@pytest.mark.slow
def test_tensorboard_mlflow_and_wandb_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    run_dir = tmp_path / "run"
    # the file store: the default SQLite store spends ~10-20 s creating its tables here
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    loggers = [TensorBoardLogger(), MLflowLogger(tracking_uri=uri), WandbLogger()]
    cfg = load_config(data=tiny_config(steps=20, eval_every=10))
    train(cfg, run_dir, callbacks=loggers)
    want = final_rows(run_dir)
    losses = {
        r["step"]: r["value"]
        for r in load_rows(run_dir / "metrics.jsonl")
        if r["metric"] == "train_loss"
    }
    evidence = ("n", "chance", "majority", "heuristic")  # held-out size and baselines
    every = {f"{t}/{m}" for t in ("copy", "successor") for m in ("acc", "loss", *evidence)}
    assert set(want) == every - {"copy/heuristic"}  # copy has no rule that does well

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    for name, value in want.items():
        last = events.Scalars(name)[-1]
        assert last.step == 20 and last.value == pytest.approx(value, rel=1e-6)
    assert [e.step for e in events.Scalars("train/loss")] == [10, 20]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("raremix").experiment_id])
    assert run.data.params["optim.lr"] == str(cfg.optim.lr)
    for name, value in want.items():
        assert run.data.metrics[name] == pytest.approx(value, rel=1e-12)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "copy/acc")] == [0, 10, 20]

    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    history = list(wandb_history(run_file))
    last = {k: v for row in history if row.get("_step") == 20 for k, v in row.items()}
    for name, value in want.items():
        assert last[name] == pytest.approx(value, rel=1e-12)
    # the train loss logged at step 10 is that step's loss (the row averages steps 1..10)
    assert any(row.get("_step") == 10 and "train/loss" in row for row in history)
    assert losses[20] > 0


def test_unknown_logger_and_flat_config() -> None:
    with pytest.raises(
        RaremixError, match="unknown logger 'tensorbord': did you mean 'tensorboard'"
    ):
        make_loggers(["tensorbord"])
    assert flat_config({"a": 1, "optim": {"lr": 0.1, "betas": {"b1": 0.9}}, "e": {}}) == {
        "a": 1,
        "optim.lr": 0.1,
        "optim.betas.b1": 0.9,
        "e": {},
    }
