"""The callbacks a run config declares: its `probes`, `adaptive`, `stop_when_learned`, `collapse_alarm` and `ledger` sections.

`TrainConfig.callbacks` and `HFTrainConfig.callbacks` build them here, so the loop
never asks which behaviours a run has. `runner` trains a config of the same family in
a directory (DoReMi's reference run): passed in, so no callback imports the loop.
"""

from __future__ import annotations

from typing import Any

from raremix.callbacks import Callback
from raremix.callbacks.adaptive import AdaptiveCallback, Runner
from raremix.callbacks.collapse import CollapseAlarmCallback
from raremix.callbacks.ledger import LedgerCallback
from raremix.callbacks.probes import ProbeCallback
from raremix.callbacks.stop import StopWhenLearnedCallback


def configured(cfg: Any, runner: Runner | None = None) -> list[Callback]:
    """The callbacks of `cfg`'s sections that are set, in the order probes, adaptive, stop, alarm, ledger."""
    out: list[Callback] = []
    if getattr(cfg, "probes", None) is not None:
        out.append(ProbeCallback(cfg.probes))
    if getattr(cfg, "adaptive", None) is not None:
        out.append(AdaptiveCallback(cfg.adaptive, runner))
    if getattr(cfg, "stop_when_learned", None) is not None:
        out.append(StopWhenLearnedCallback(cfg.stop_when_learned))
    if getattr(cfg, "collapse_alarm", None) is not None:
        out.append(CollapseAlarmCallback(cfg.collapse_alarm))
    if getattr(cfg, "ledger", None) is not None:
        out.append(LedgerCallback(cfg.ledger))
    return out
