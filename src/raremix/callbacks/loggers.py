"""Optional loggers to the trackers people already use, all local by default.

* `TensorBoardLogger` — event files in `RUN_DIR/tensorboard` (`tensorboard --logdir runs`).
* `MLflowLogger` — a local SQLite store, `./mlflow.db` (MLflow's own default; `mlflow ui`
  opens it), unless `MLFLOW_TRACKING_URI` or `tracking_uri` names another; never a
  server by default.
* `WandbLogger` — Weights & Biases in offline mode, under `RUN_DIR/wandb`
  (`wandb sync RUN_DIR/wandb/offline-run-*` uploads it later).

Each logs the training loss and learning rate every `every` steps, every evaluation
metric as `<task>/<metric>`, and the run's config. They work in `raremix train`
(`--logger tensorboard`) and `raremix hf-train` (`loggers: [tensorboard]`), on rank 0.
Install with `pip install 'raremix[loggers]'`; a missing package is a one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raremix.callbacks import Callback
from raremix.errors import RaremixError, lookup

if TYPE_CHECKING:
    from raremix.state import TrainState


def _need(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RaremixError(
            f"this logger needs {package}: pip install 'raremix[loggers]' (or pip install {package})"
        ) from None


def flat_config(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 0.1}} → {"optim.lr": 0.1}: configs as tracker parameters."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_config(value, name + "."))
        else:
            out[name] = value
    return out


def eval_scalars(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """{task: {metric: v}} → {"task/metric": v}."""
    return {f"{task}/{m}": float(v) for task, vs in metrics.items() for m, v in vs.items()}


class _Logger(Callback):
    """The cadence shared by every logger; subclasses say where scalars go."""

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise RaremixError(f"logger every must be >= 1, got {every}")
        self.every = every

    def log(self, scalars: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0 or state.step == state.cfg.steps:
            self.log({"train/loss": state.loss, "train/lr": state.lr}, state.step)

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        self.log(eval_scalars(metrics), state.step)


class TensorBoardLogger(_Logger):
    """Scalars to TensorBoard event files (`log_dir`, default RUN_DIR/tensorboard)."""

    def __init__(self, log_dir: str | Path | None = None, every: int = 10) -> None:
        super().__init__(every)
        _need("tensorboard", "tensorboard")
        self.log_dir = log_dir
        self.writer: Any = None

    def on_start(self, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = Path(self.log_dir or state.run_dir / "tensorboard")
        # a resumed run discards the events written after its checkpoint
        self.writer = SummaryWriter(str(log_dir), purge_step=state.step or None)
        if state.step == 0:
            params = flat_config(state.cfg.model_dump(mode="json"))
            self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)

    def on_end(self, state: TrainState) -> None:
        self.writer.close()


class MLflowLogger(_Logger):
    """Params and metrics to MLflow (a local SQLite store unless told otherwise)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "raremix",
                 every: int = 10) -> None:  # fmt: skip
        super().__init__(every)
        _need("mlflow", "mlflow")
        self.tracking_uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
        )
        self.experiment = experiment
        self.client: Any = None
        self.run_id = ""

    def on_start(self, state: TrainState) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = self.client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
        where = str(Path(state.run_dir).resolve())
        found = self.client.search_runs(
            [exp_id], f"tags.raremix_run_dir = '{where}'", max_results=1
        )
        if found:  # a resumed run continues its MLflow run
            self.run_id = found[0].info.run_id
            return
        run = self.client.create_run(exp_id, run_name=state.run_id,
                                     tags={"raremix_run_dir": where, "raremix_config_hash": state.cfg.hash()})  # fmt: skip
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = flat_config(state.cfg.model_dump(mode="json"))
        self.client.log_batch(
            self.run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()]
        )

    def log(self, scalars: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in scalars.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def on_end(self, state: TrainState) -> None:
        self.client.set_terminated(self.run_id)


class WandbLogger(_Logger):
    """Metrics and config to Weights & Biases, offline, under RUN_DIR/wandb."""

    def __init__(self, project: str = "raremix", every: int = 10) -> None:
        super().__init__(every)
        _need("wandb", "wandb")
        self.project = project
        self.run: Any = None

    def on_start(self, state: TrainState) -> None:
        import wandb

        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
        self.run = wandb.init(mode="offline", dir=str(state.run_dir), project=self.project,
                              name=state.run_id, config=state.cfg.model_dump(mode="json"),
                              settings=settings)  # fmt: skip

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(scalars, step=step)

    def on_end(self, state: TrainState) -> None:
        self.run.finish()


LOGGERS: dict[str, type[_Logger]] = {
    "tensorboard": TensorBoardLogger,
    "mlflow": MLflowLogger,
    "wandb": WandbLogger,
}
"""Trackers by name (`--logger`, hf-train `loggers:`); adding one is one `_Logger` plus one line."""


def make_loggers(names: Sequence[str]) -> list[Callback]:
    """Loggers by name, with their defaults (`raremix train --logger NAME`, hf-train `loggers:`)."""
    return [cls() for cls in [lookup(LOGGERS, "logger", name) for name in names]]
