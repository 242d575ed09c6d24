"""Mixture engine: weights, schedules, and one sampler that is exact, resumable and shardable.

Data flow: `spec` (pydantic configs) → `weights` (strategies), `schedule` (phases) and
`curricula` (task orderings that generate phases) → `resolve` (a `Plan` with sizes and
caps) → `sampler` (batches of source ids and example indices) → `adapters` (PyTorch,
Hugging Face, shards) and `plan` (tables).

    from raremix.mixture import MixtureConfig, build_sampler
    mix = load(MixtureConfig, yaml_dict["mixture"], "config.mixture")
    sampler = build_sampler(mix, sizes={"copy": 100_000}, seed=0, batch_size=128, total_steps=4000)
    sources, indices = sampler.next_batch()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from raremix.configbase import load
from raremix.errors import whole_number
from raremix.mixture.curricula import CURRICULA, TaskFacts, curriculum_schedule
from raremix.mixture.resolve import Plan, resolve
from raremix.mixture.sampler import MixtureSampler
from raremix.mixture.schedule import Schedule
from raremix.mixture.spec import (
    CurriculumSpec,
    MaxEpochs,
    MixtureConfig,
    PhaseSpec,
    ReplaySpec,
    ScheduleSpec,
    SourceSpec,
)
from raremix.mixture.weights import STRATEGIES, SourceStats

if TYPE_CHECKING:
    from raremix.mixture.adapters import (
        MixtureDataset,
        TableSources,
        read_shards,
        to_hf_iterable,
        write_shards,
    )
    from raremix.mixture.loader import MixtureLoader
    from raremix.mixture.plan import plan_table, realised_report

__all__ = [
    "CURRICULA",
    "STRATEGIES",
    "CurriculumSpec",
    "MaxEpochs",
    "MixtureConfig",
    "MixtureDataset",
    "MixtureLoader",
    "MixtureSampler",
    "PhaseSpec",
    "Plan",
    "ReplaySpec",
    "Schedule",
    "ScheduleSpec",
    "SourceSpec",
    "SourceStats",
    "TableSources",
    "TaskFacts",
    "build_sampler",
    "curriculum_schedule",
    "plan_table",
    "read_shards",
    "realised_report",
    "resolve",
    "to_hf_iterable",
    "write_shards",
]

# adapters pull in torch (and optionally datasets); plan pulls in pandas: import on use
_LAZY = {
    "MixtureDataset": "adapters",
    "MixtureLoader": "loader",  # needs torchdata (the hf extra)
    "TableSources": "adapters",
    "read_shards": "adapters",
    "to_hf_iterable": "adapters",
    "write_shards": "adapters",
    "plan_table": "plan",
    "realised_report": "plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_sampler(
    mix: MixtureConfig | Mapping[str, Any],
    sizes: Mapping[str, int] | None = None,
    *,
    seed: int,
    batch_size: int,
    total_steps: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> MixtureSampler:
    """Resolve `mix` against source sizes and build this rank's sampler.

    `sizes` maps source names to example counts (or each source gives `size:`);
    `batch_size` is the global batch over all ranks; `total_steps` is needed by
    fraction-based schedules, end-of-training anneals and unimax.
    """
    if total_steps is not None:
        whole_number(total_steps, "total_steps", minimum=1)
    config = mix if isinstance(mix, MixtureConfig) else load(MixtureConfig, mix, "mixture")
    plan = resolve(config, sizes, batch_size=batch_size, total_steps=total_steps)
    return MixtureSampler(plan, seed=seed, batch_size=batch_size, rank=rank, world_size=world_size)
