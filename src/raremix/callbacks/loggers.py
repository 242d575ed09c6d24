"""Optional loggers to the trackers people already use, all local by default.

* `TensorBoardLogger` — event files in `RUN_DIR/tensorboard` (`tensorboard --logdir runs`).
* `MLflowLogger` — a local SQLite store, `./mlflow.db` (MLflow's own default; `mlflow ui
  --backend-store-uri sqlite:///mlflow.db` opens it), unless `MLFLOW_TRACKING_URI` or
  `tracking_uri` names another; never a server by default.
* `WandbLogger` — Weights & Biases under `RUN_DIR/wandb`, offline unless `mode` or
  `WANDB_MODE` says otherwise (`wandb sync RUN_DIR/wandb/offline-run-*` uploads it
  later); a resumed run continues the same W&B run (its id is kept in the run dir).

Each logs the training loss and learning rate every `every` steps, the run's config,
and every metric row the run writes (`raremix.results.rows.MetricWriter`): evaluation
metrics as `<task>/<metric>`, probes as `probe/<name>/<task>`, adaptive weights, ….
A resumed run logs from its checkpoint's step on: TensorBoard drops only the events
written after it. They work in `raremix train`
(`--logger tensorboard`) and `raremix hf-train` (`loggers: [tensorboard]`), on rank 0.
Install with `pip install 'raremix[loggers]'`; a missing package is a one-line error.
"""

from __future__ import annotations

import os
import uuid
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


def row_name(task: str, metric: str) -> str:
    """A metric row's tracker name: `task/metric`, `probe/<name>/<task>` (probes grouped by
    probe, as `RaremixProbeCallback` names them), or the metric alone for run-level rows."""
    if not task:
        return metric
    return f"{metric}/{task}" if metric.startswith("probe/") else f"{task}/{metric}"


class _Logger(Callback):
    """The cadence shared by every logger; subclasses say where scalars go."""

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise RaremixError(f"logger every must be >= 1, got {every}")
        self.every = every

    def log(self, scalars: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def start(self, state: TrainState) -> None:
        """Open the tracker (subclasses); rows are forwarded from then on."""

    def on_start(self, state: TrainState) -> None:
        self.start(state)
        state.writer.listeners.append(self.rows)

    def rows(self, rows: list[dict[str, Any]]) -> None:
        """Every metric row the run writes, at its step (evaluations, probes, weights …)."""
        for step in sorted({r["step"] for r in rows}):
            at = [r for r in rows if r["step"] == step]
            self.log({row_name(r["task"], r["metric"]): float(r["value"]) for r in at}, step)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0 or state.step == state.cfg.steps:
            self.log({"train/loss": state.loss, "train/lr": state.lr}, state.step)


class TensorBoardLogger(_Logger):
    """Scalars to TensorBoard event files (`log_dir`, default RUN_DIR/tensorboard)."""

    def __init__(self, log_dir: str | Path | None = None, every: int = 10) -> None:
        super().__init__(every)
        _need("tensorboard", "tensorboard")
        self.log_dir = log_dir
        self.writer: Any = None

    def start(self, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = Path(self.log_dir or state.run_dir / "tensorboard")
        # a resumed run discards the events written *after* its checkpoint: purge_step drops
        # steps >= itself, and the checkpoint step's evaluation was logged before the save
        self.writer = SummaryWriter(str(log_dir), purge_step=state.step + 1 if state.step else None)
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

    def __init__(
        self, tracking_uri: str | None = None, experiment: str = "raremix", every: int = 10
    ) -> None:
        super().__init__(every)
        _need("mlflow", "mlflow")
        self.tracking_uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
        )
        self.experiment = experiment
        self.client: Any = None
        self.run_id = ""

    def start(self, state: TrainState) -> None:
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
        run = self.client.create_run(
            exp_id,
            run_name=state.run_id,
            tags={"raremix_run_dir": where, "raremix_config_hash": state.cfg.hash()},
        )
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


WANDB_MODES = ("offline", "online", "disabled")
WANDB_ID = "wandb/raremix_run_id"
"""Where in a run directory its W&B run id is kept, so a resumed run continues that run."""


class WandbLogger(_Logger):
    """Metrics and config to Weights & Biases under RUN_DIR/wandb (offline by default)."""

    def __init__(
        self, project: str | None = None, every: int = 10, mode: str | None = None
    ) -> None:
        super().__init__(every)
        _need("wandb", "wandb")
        self.project = project or os.environ.get("WANDB_PROJECT") or "raremix"
        self.mode: Any = mode or os.environ.get("WANDB_MODE") or "offline"
        if self.mode not in WANDB_MODES:
            raise RaremixError(
                f"W&B mode '{self.mode}' (WANDB_MODE): use one of {', '.join(WANDB_MODES)}"
            )
        self.run: Any = None

    def start(self, state: TrainState) -> None:
        import wandb

        id_file = Path(state.run_dir) / WANDB_ID
        if id_file.exists():  # a resumed run: the same W&B run, continued
            run_id = id_file.read_text().strip()
        else:
            run_id = uuid.uuid4().hex[:12]  # W&B's own ids are like it: short, [a-z0-9]
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(run_id)
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
        self.run = wandb.init(
            mode=self.mode,
            dir=str(state.run_dir),
            project=self.project,
            name=state.run_id,
            id=run_id,
            resume="allow",
            config=state.cfg.model_dump(mode="json"),
            settings=settings,
        )

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
