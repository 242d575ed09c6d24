"""Resolve a mixture spec against source sizes into a `Plan`: the numbers a sampler runs on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from raremix.errors import RaremixError, unknown
from raremix.mixture.schedule import Schedule, compile_schedule
from raremix.mixture.spacing import Spacing
from raremix.mixture.spec import MixtureConfig
from raremix.mixture.weights import SourceStats, compute, normalise

NO_CAP = np.iinfo(np.int64).max // 4  # "never exhausts", with room to add a batch without overflow
MAX_SIZE = 2**48  # permutations are exact below 2**53; this is far past any dataset


@dataclass(frozen=True)
class Plan:
    """A resolved mixture: sources, sizes, exhaustion caps and the weight schedule."""

    names: tuple[str, ...]
    sizes: np.ndarray
    """Examples per source (int64)."""
    caps: np.ndarray
    """Draws after which each source is exhausted (int64; NO_CAP: never)."""
    schedule: Schedule
    mode: str
    """iid | stratified."""
    total_steps: int | None
    per_epoch: np.ndarray | None
    """Examples per mixture epoch (repeat/count mixtures only)."""
    spec: MixtureConfig
    spacing: Spacing | None = None
    """Per-source every/window guarantees (None: no source is spaced)."""

    @property
    def epoch_length(self) -> int | None:
        """Examples in one mixture epoch (repeat/count mixtures only)."""
        return None if self.per_epoch is None else round(float(self.per_epoch.sum()))


def resolve(
    mix: MixtureConfig,
    sizes: Mapping[str, int] | None = None,
    *,
    batch_size: int | None = None,
    total_steps: int | None = None,
    where: str = "mixture",
) -> Plan:
    """Resolve `mix` with source sizes (from the config and/or `sizes`) into a `Plan`."""
    names = tuple(s.name for s in mix.sources)
    given = dict(sizes or {})
    for name in given:
        if name not in names:
            raise RaremixError(f"{where}: sizes: {unknown('source', name, names)}")
    resolved = []
    for s in mix.sources:
        size = given.get(s.name, s.size)
        if size is None:
            raise RaremixError(
                f"{where}: source '{s.name}' has no size: add 'size: N' (its number of examples) "
                f"to it, or pass sizes={{'{s.name}': N}}"
            )
        if s.size is not None and int(size) != s.size:
            raise RaremixError(
                f"{where}: source '{s.name}' has size {s.size} in the config but {size} was passed: "
                "make them agree"
            )
        if not 1 <= int(size) <= MAX_SIZE:
            raise RaremixError(
                f"{where}: source '{s.name}' has size {size}: give it between 1 and 2**48 examples"
            )
        resolved.append(int(size))
    size_arr = np.array(resolved, dtype=np.int64)
    budget = (
        total_steps * batch_size if total_steps is not None and batch_size is not None else None
    )
    stats = SourceStats(names, size_arr.astype(np.float64), budget)

    per_epoch = None
    try:
        if any(s.amount == "weight" for s in mix.sources):
            base = normalise(np.array([s.weight for s in mix.sources], dtype=np.float64))
        elif any(s.amount for s in mix.sources):
            per_epoch = np.array(
                [
                    s.count if s.count is not None else (s.repeat or 0) * n
                    for s, n in zip(mix.sources, resolved, strict=True)
                ],
                dtype=np.float64,
            )
            base = normalise(per_epoch)
        else:
            base = compute(mix.strategy or "natural", mix.params, stats)
    except RaremixError as err:
        raise RaremixError(f"{where}: {err}") from None

    spec, at = mix.schedule, f"{where}.schedule"
    if mix.curriculum is not None:
        from raremix.mixture.curricula import curriculum_schedule, task_facts

        at = f"{where}.curriculum"
        try:
            spec = curriculum_schedule(mix.curriculum, task_facts(names, base, mix.curriculum))
        except RaremixError as err:
            raise RaremixError(f"{at}: {err}") from None
    schedule = compile_schedule(spec, base, stats, total_steps, at)
    caps = np.array(
        [
            NO_CAP if (e := s.max_epochs) is None else max(1, math.floor(e * n))
            for s, n in zip(mix.sources, resolved, strict=True)
        ],
        dtype=np.int64,
    )
    spacing = None
    if any(s.every is not None or s.window is not None for s in mix.sources):
        spacing = Spacing(
            np.array([s.every or 0 for s in mix.sources], dtype=np.int64),
            np.array([s.window or 0 for s in mix.sources], dtype=np.int64),
        )
    return Plan(names, size_arr, caps, schedule, mix.mode, total_steps, per_epoch, mix, spacing)
